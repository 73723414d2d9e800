"""JSON that keeps money exact: numbers are read as Decimal, Decimals are written from their digits, never via float."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["dumps", "loads"]

_encode_string = json.encoder.encode_basestring_ascii


def loads(text: str | bytes) -> Any:
    """Parse JSON; every number with a fraction or exponent becomes a Decimal (integers stay int)."""
    return json.loads(text, parse_float=Decimal)


def dumps(value: Any) -> str:
    """Serialise JSON-like data; Decimal is written as a JSON number from its own digits, dates as ISO text."""
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as JSON")
        out.append(format(value, "f"))  # plain notation: Decimal's "1E+2" form is not JSON
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise TypeError("refusing to write a float into JSON: use Decimal for money")
    elif isinstance(value, _dt.date):
        out.append(_encode_string(value.isoformat()))
    elif isinstance(value, Mapping):
        out.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be text, not {type(key).__name__}")
            if index:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")

