"""smallinvoice adapter (work in progress)."""
