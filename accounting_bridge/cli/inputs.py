"""Reading push input: a JSON array or JSON Lines of neutral models, each record remembered with its line number.

A record that is not valid JSON, or not a valid model, becomes a `Malformed` entry naming its line and field;
the others are built with `ab.from_dict` (numbers are read as Decimal, never float).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs

from ..converter import from_dict
from ..errors import ValidationError
from ..models import Customer, Document, Invoice, Payment, Registration
from .exits import CliError, ExitCode

__all__ = ["MODELS", "Malformed", "Record", "read_records"]

MODELS: dict[str, type[Any]] = {
    "customers": Customer,
    "invoices": Invoice,
    "payments": Payment,
    "registrations": Registration,
    "documents": Document,
}

_decoder = json.JSONDecoder(parse_float=Decimal)


@attrs.frozen
class Record:
    line: int
    model: Any


@attrs.frozen
class Malformed:
    line: int
    problem: str  # "field: what is wrong", or what is wrong with the JSON


def read_records(path: str, kind: str) -> list[Record | Malformed]:
    """Every record of the file (or stdin for "-"), in order. A file that cannot be read at all, or a JSON array
    that is broken (no record after the break can be found), is a `CliError` (exit 64): nothing is sent."""
    text = _read(path)
    model = MODELS[kind]
    stripped = text.lstrip()
    entries = _array(text) if stripped.startswith("[") else _lines(text)
    return [_build(line, data, model) if not isinstance(data, Malformed) else data for line, data in entries]


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(f"input file {path} does not exist", ExitCode.USAGE) from None
    except UnicodeDecodeError as exc:
        raise CliError(f"input file {path} is not UTF-8 text (byte {exc.start})", ExitCode.USAGE) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CliError(f"input file {path} cannot be read ({reason})", ExitCode.USAGE) from None


def _lines(text: str) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, _decoder.decode(line)
        except json.JSONDecodeError as exc:
            yield number, Malformed(number, f"not valid JSON (column {exc.colno}: {exc.msg})")


def _array(text: str) -> Iterator[tuple[int, Any]]:
    """The elements of a JSON array with the line each starts on."""
    line_of = _LineCounter(text)
    position = _skip_space(text, text.index("[") + 1)
    if text.startswith("]", position):
        return
    while True:
        position = _skip_space(text, position)
        try:
            value, end = _decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise CliError(f"line {exc.lineno}: not valid JSON (column {exc.colno}: {exc.msg}); nothing was sent",
                           ExitCode.USAGE) from None
        yield line_of(position), value
        position = _skip_space(text, end)
        if text.startswith(",", position):
            position += 1
        elif text.startswith("]", position):
            return
        else:
            where = "at the end of the file" if position >= len(text) else f"on line {line_of(position)}"
            raise CliError(f"expected ',' or ']' in the JSON array {where}; nothing was sent", ExitCode.USAGE)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


class _LineCounter:
    """Line numbers of increasing positions, counting each stretch of text once."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._position = 0
        self._line = 1

    def __call__(self, position: int) -> int:
        self._line += self._text.count("\n", self._position, position)
        self._position = position
        return self._line


def _build(line: int, data: Any, model: type[Any]) -> Record | Malformed:
    if not isinstance(data, dict):
        return Malformed(line, f"expected a JSON object (a {model.__name__}), not {type(data).__name__}")
    try:
        return Record(line, from_dict(model, data))
    except ValidationError as exc:
        problems = [f"{e.path}: {e.message}" if e.path else e.message for e in exc.errors]
        return Malformed(line, "; ".join(problems) or exc.message)
