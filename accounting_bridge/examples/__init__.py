"""Backend-neutral user code, shipped so it can be run and tested against every adapter."""
