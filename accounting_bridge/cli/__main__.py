"""`python -m accounting_bridge.cli` = the `accounting-bridge` command."""

import sys

from .app import main

sys.exit(main())
