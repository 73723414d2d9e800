"""Caller text bound for a URL path segment or an HTTP header: refused or encoded here, before any I/O.

One rule for every adapter:

* **path segment** (an invoice number in ``invoices/{number}``): refused when it is not text, empty, ``.`` or
  ``..``, or holds ``/ \\ ? # %``, a control character or a lone surrogate; anything else is percent-encoded
  (UTF-8). ``.``/``..`` would be normalised away by the URL library (``invoices/..`` is the tenant root), the
  others would end the segment or change what the server decodes.
* **header value** (a trace id): refused when it is not text or holds a control character or a lone surrogate;
  ``%`` and non-ASCII characters are percent-encoded (UTF-8), so only visible ASCII and spaces go on the wire.
* **business key** looked up without a path (a filter value, a client-side match): text, not blank, no control
  character, no lone surrogate.
* **server id** put into a path (``contacts/{id}``): a whole number, else the server's answer is a `ResponseError`;
  a hostile server cannot steer a request elsewhere.

Caller values give `ValidationError` naming the field, settings `ConfigurationError` naming the setting (never the
value: it may be a secret). The models use `FREE_TEXT_FORBIDDEN` and `KEY_FORBIDDEN` for their own text rules.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from .errors import ConfigurationError, FieldError, ResponseError, ValidationError

__all__ = [
    "FREE_TEXT_FORBIDDEN",
    "HEADER_NAME",
    "KEY_FORBIDDEN",
    "business_key",
    "describe_forbidden",
    "header_problem",
    "header_value",
    "key_problem",
    "path_segment",
    "segment_problem",
    "server_id",
    "setting_header_value",
    "setting_path_segment",
]

#: In free text (descriptions, names, addresses): control characters except tab, LF and CR; lone surrogates.
FREE_TEXT_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
#: In business keys (numbers, references, account numbers, codes) and header values: every control character.
KEY_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: What a path segment may not hold besides `KEY_FORBIDDEN`: separators and the escape character.
_SEGMENT_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff/\\\\?#%]")
#: An HTTP header name or method (an RFC 9110 `token`).
HEADER_NAME = re.compile("[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DOT_SEGMENTS = frozenset({".", ".."})
_WHOLE_NUMBER = re.compile("[0-9]{1,19}")


def describe_forbidden(match: re.Match[str]) -> str:
    """The message for a forbidden character found by one of the patterns above."""
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        what = "a lone surrogate (invalid Unicode)"
    elif char in "/\\?#%":
        what = f"{char!r}"
    else:
        what = "a control character"
    return f"contains {what} U+{ord(char):04X} at position {match.start()}"


def key_problem(value: Any) -> str | None:
    """Why `value` cannot be a business key, or None."""
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if not value.strip():
        return "is required (non-empty text)"
    found = KEY_FORBIDDEN.search(value)
    return describe_forbidden(found) if found else None


def segment_problem(value: Any) -> str | None:
    """Why `value` cannot be one URL path segment, or None."""
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    if not value.strip():
        return "is required (non-empty text)"
    if value in _DOT_SEGMENTS:
        return f"{value!r} cannot be used as a key in a URL path"
    found = _SEGMENT_FORBIDDEN.search(value)
    return describe_forbidden(found) + " (not allowed in a key used in a URL path)" if found else None


def _refuse(field: str, problem: str, backend: str | None, model: str | None) -> ValidationError:
    return ValidationError(FieldError(field, problem), backend=backend, model=model)


def business_key(value: Any, field: str, *, backend: str | None = None, model: str | None = None) -> str:
    """`value` unchanged, or `ValidationError` naming `field` when it cannot be a business key."""
    problem = key_problem(value)
    if problem is not None:
        raise _refuse(field, problem, backend, model)
    return str(value)


def path_segment(value: Any, field: str, *, backend: str | None = None, model: str | None = None) -> str:
    """`value` percent-encoded as one URL path segment, or `ValidationError` naming `field`."""
    problem = segment_problem(value)
    if problem is not None:
        raise _refuse(field, problem, backend, model)
    return quote(value, safe="")


def setting_path_segment(value: Any, setting: str, *, backend: str | None = None) -> str:
    """Like `path_segment` for a setting: `ConfigurationError` naming the setting (never its value)."""
    problem = segment_problem(value)
    if problem is not None:
        raise ConfigurationError(f"setting {setting!r} {problem}", backend=backend)
    return quote(value, safe="")


def header_value(value: Any, field: str, *, backend: str | None = None, model: str | None = None) -> str:
    """`value` as an HTTP header value (``%`` and non-ASCII percent-encoded), or `ValidationError`."""
    problem = header_problem(value)
    if problem is not None:
        raise _refuse(field, problem, backend, model)
    return _ascii(value)


def setting_header_value(value: Any, setting: str, *, backend: str | None = None) -> str:
    """Like `header_value` for a setting (an API key, a trace id): `ConfigurationError` naming the setting only."""
    problem = header_problem(value)
    if problem is not None:
        raise ConfigurationError(f"setting {setting!r} {problem}", backend=backend)
    return _ascii(value)


def server_id(value: Any, what: str, *, backend: str | None = None) -> str:
    """An id from a server's answer that goes into a path: a whole number (JSON number or digits), else
    `ResponseError` — the answer, not the caller, is wrong."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _WHOLE_NUMBER.fullmatch(value):
        return value
    raise ResponseError(f"{what}: the server sent an id that is not a whole number", backend=backend)


def header_problem(value: Any) -> str | None:
    """Why `value` cannot be sent as an HTTP header value, or None."""
    if not isinstance(value, str):
        return f"must be text, not {type(value).__name__}"
    found = KEY_FORBIDDEN.search(value)
    return describe_forbidden(found) + " (not allowed in an HTTP header)" if found else None


def _ascii(value: str) -> str:
    if value.isascii() and "%" not in value:
        return value
    return quote(value, safe=" !\"#$&'()*+,/:;<=>?@[\\]^_`{|}~")
