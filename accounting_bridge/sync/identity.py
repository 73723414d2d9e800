"""A ledger's stable, secret-free name in the journal (backend + where + whose books), and redaction of errors."""

from __future__ import annotations

import re
import uuid
import weakref
from typing import Any
from urllib.parse import urlsplit

from ..errors import FieldError, ValidationError
from ..ledger import Ledger
from ..transport.redact import REDACTED, SECRET_PARAMS, Redactor

__all__ = ["ledger_key", "redacted"]

#: settings that say whose books a ledger reaches; never a secret field
_IDENTITY_SETTINGS = ("tenant", "company", "client_id", "username")
#: ``api_key=...`` and the like inside a text (a URL an error message quotes)
_SECRET_PARAM = re.compile(r"(?i)\b(" + "|".join(sorted(SECRET_PARAMS)) + r")=([^&\s'\"]+)")


def _origin(base_url: Any) -> str | None:
    if not isinstance(base_url, str) or not base_url:
        return None
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    port = f":{parts.port}" if parts.port and parts.port != default else ""  # the same books either way
    return f"{host}{port}{parts.path.rstrip('/')}"  # no user info, no query: they may hold credentials


def ledger_key(ledger: Ledger, given: str | None = None) -> str:
    """`given` as it is, else ``backend|origin|tenant=...`` from the adapter's settings (an adapter may say
    better with a ``ledger_identity()`` method). Two ledgers on the same books get the same key."""
    if given is not None:
        if not isinstance(given, str) or not given.strip():
            raise ValidationError(FieldError("ledger_key", "must be non-empty text"))
        return given
    identity = getattr(ledger.adapter, "ledger_identity", None)
    if callable(identity):
        return f"{ledger.backend}|{identity()}"
    settings = getattr(ledger.adapter, "settings", None)
    parts = [ledger.backend]
    origin = _origin(getattr(settings, "base_url", None))
    if origin:
        parts.append(origin)
    for name in _IDENTITY_SETTINGS:
        value = getattr(settings, name, None)
        if value is not None and value != "":
            parts.append(f"{name}={value}")
    store = getattr(ledger.adapter, "store", None)
    if store is not None:  # books held in this process (memory): each store is other books
        parts.append(f"store={_token_of(store)}")
    return "|".join(parts)


#: id of a live in-process store → a random token (an id alone repeats in the next process, or after the store died)
_STORE_TOKENS: dict[int, str] = {}


def _token_of(store: object) -> str:
    key = id(store)
    token = _STORE_TOKENS.get(key)
    if token is None:
        token = _STORE_TOKENS[key] = uuid.uuid4().hex[:16]
        weakref.finalize(store, _STORE_TOKENS.pop, key, None)
    return token


def redacted(ledger: Ledger, text: str) -> str:
    """The text with the ledger's known secrets and secret-named URL parameters masked."""
    redactor = getattr(getattr(ledger.adapter, "transport", None), "redactor", None)
    if isinstance(redactor, Redactor):
        text = redactor.text(text)
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}={REDACTED}", text)
