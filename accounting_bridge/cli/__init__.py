"""The `accounting-bridge` command (optional extra `cli`): demo, sandbox, capabilities, profiles, list, push, pull.

`import accounting_bridge` never imports this package; each command's module (and rich) is imported when it runs.
"""

from .app import main

__all__ = ["main"]
