"""Built-in adapters, shipped as ``accounting_bridge.adapters``; each is registered as an entry point."""
