"""What the CLI tests share: the console script, a scratch user environment, a free port."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

#: The console script pip installed next to this interpreter (what a user runs).
SCRIPT = Path(sys.executable).with_name("accounting-bridge")


def scratch_env(root: Path) -> dict[str, str]:
    """The environment of a user whose config and data folders are under `root` (nothing of ours leaks in)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "AB_"))}
    env.update(XDG_CONFIG_HOME=str(root / "config"), XDG_DATA_HOME=str(root / "data"), HOME=str(root))
    env.pop("FORCE_COLOR", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
