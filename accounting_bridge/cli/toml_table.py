"""Writing one flat TOML table (a profile) from plain values: the `sandbox` command prints one."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["toml_table"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_table(name: str, values: Mapping[str, Any]) -> str:
    """``[name]`` and one ``key = value`` line per value (None left out), ending with a blank line."""
    lines = [f"[{_key(name)}]"]
    for key, value in values.items():
        if value is not None:
            lines.append(f"{_key(key)} = {_value(value)}")
    return "\n".join(lines) + "\n\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(str(k))} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"{type(value).__name__} cannot be written as TOML")


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, except that DEL must be escaped too."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
