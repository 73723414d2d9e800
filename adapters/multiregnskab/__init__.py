"""multiregnskab adapter (work in progress)."""
