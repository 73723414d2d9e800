"""Where the command looks by default: profiles in the user's config folder, the journal in the user's data folder.

XDG_CONFIG_HOME / XDG_DATA_HOME are honoured wherever they are set; otherwise the platform's usual folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["APP_FOLDER", "default_journal", "default_profiles"]

APP_FOLDER = "accounting-bridge"


def default_profiles(environ: Mapping[str, str] | None = None) -> Path:
    return _folder("XDG_CONFIG_HOME", "APPDATA", ".config", environ) / "profiles.toml"


def default_journal(environ: Mapping[str, str] | None = None) -> Path:
    return _folder("XDG_DATA_HOME", "LOCALAPPDATA", os.path.join(".local", "share"), environ) / "journal.sqlite3"


def _folder(xdg: str, windows: str, unix_default: str, environ: Mapping[str, str] | None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(xdg):
        return Path(env[xdg]) / APP_FOLDER
    if sys.platform == "win32" and env.get(windows):
        return Path(env[windows]) / APP_FOLDER
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP_FOLDER
    return home / unix_default / APP_FOLDER
