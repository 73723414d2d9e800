"""runmyaccounts adapter (work in progress)."""
