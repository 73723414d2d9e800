"""Keeps secrets out of log lines, exception texts and reprs."""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_HEADERS", "SECRET_PARAMS", "Redactor"]

REDACTED = "***"
SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "refresh_token", "password", "client_secret", "secret"}
)
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-auth-token", "cookie", "set-cookie", "proxy-authorization"}
)


def _secret_pattern(secret: str) -> str:
    """A pattern matching the secret however URL handling spelled it (an error page or a library message may echo a
    request URI): every character literally, percent-encoded in either case of hex, or double-encoded (%25XX);
    a space also as '+'."""
    parts = []
    for char in secret:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        alternatives = [re.escape(char), f"(?i:{re.escape(encoded)})", f"(?i:{re.escape(encoded.replace('%', '%25'))})"]
        if char == " ":
            alternatives.append(r"\+")
        parts.append("(?:" + "|".join(alternatives) + ")")
    return "".join(parts)


def _spellings(secrets: Iterable[str | None]) -> set[str]:
    """The secrets and their decoded forms (a secret that itself contains %XX or '+' may be shown decoded).
    Very short values would mask ordinary text and are no real secret: skipped."""
    plain = {s for s in secrets if s and len(s) >= 4}
    forms = plain | {unquote(s) for s in plain} | {unquote_plus(s) for s in plain}
    return {s for s in forms if len(s) >= 4}


#: Compiled patterns shared by every redactor with the same secrets (the ledgers of one credential), kept while
#: one of them uses it: building a pattern costs more than building a ledger.
_shared_patterns: weakref.WeakValueDictionary[tuple[str, ...], re.Pattern[str]] = weakref.WeakValueDictionary()
_shared_lock = threading.Lock()


def _compiled(ordered: tuple[str, ...]) -> re.Pattern[str]:
    with _shared_lock:
        pattern = _shared_patterns.get(ordered)
    if pattern is None:
        pattern = re.compile("|".join(_secret_pattern(s) for s in ordered))
        with _shared_lock:
            pattern = _shared_patterns.setdefault(ordered, pattern)
    return pattern


class Redactor:
    """Replaces known secret values anywhere in a text, and secret-named query parameters and headers.

    Configured secrets (`add`) are kept for good; rotating ones such as access tokens (`rotate`) only as the
    current and the previous value of their name, so the set and the cost of a match stay bounded.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._fixed: set[str] = set()
        self._rotating: dict[str, tuple[frozenset[str], frozenset[str]]] = {}  # name -> (current, previous)
        self._last_rotated: dict[str, tuple[str | None, ...]] = {}
        self._pattern: re.Pattern[str] | None = None
        self._stale = False  # the set changed: the pattern is rebuilt when next needed, not on every change
        self._changes = 0  # counts changes: a rebuild that saw a change happen meanwhile leaves the pattern stale
        self._pattern_of = 0  # the change count `_pattern` was built from
        #: Ledgers are used from several threads (event loops): changes and the pattern swap are serialized.
        self._lock = threading.Lock()
        self.add(*secrets)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self)} secrets>)"

    def __len__(self) -> int:
        with self._lock:
            return len(self._all())

    def add(self, *secrets: str | None) -> None:
        """Secrets redacted for the lifetime of this redactor (client secrets, passwords, api keys)."""
        with self._lock:
            fresh = _spellings(secrets) - self._fixed
            if fresh:
                self._fixed |= fresh
                self._changed()

    def rotate(self, name: str, *secrets: str | None) -> None:
        """The current value(s) of a rotating secret (e.g. the token of one credential). The previous value stays
        redacted (requests may still be in flight with it); older ones are dropped. Cheap when unchanged."""
        if self._last_rotated.get(name) == secrets:
            return  # the common case: every request of a token's lifetime
        forms = frozenset(_spellings(secrets))
        with self._lock:
            self._last_rotated[name] = secrets
            current, _previous = self._rotating.get(name, (frozenset(), frozenset()))
            if not forms or forms == current:
                return
            self._rotating[name] = (forms, current)
            self._changed()

    def _changed(self) -> None:
        """Call with the lock held."""
        self._changes += 1
        self._stale = True

    def _all(self) -> set[str]:
        every = set(self._fixed)
        for current, previous in self._rotating.values():
            every |= current | previous
        return every

    def _current_pattern(self) -> re.Pattern[str] | None:
        if not self._stale:
            return self._pattern
        with self._lock:
            seen = self._changes
            ordered = tuple(sorted(self._all(), key=lambda s: (-len(s), s)))  # longest first; one order per set
        # compiled without the lock (it can be slow); a change meanwhile keeps the flag: rebuilt on the next use
        pattern = _compiled(ordered) if ordered else None
        with self._lock:
            if seen > self._pattern_of:  # never replace a pattern built from a later set
                self._pattern, self._pattern_of = pattern, seen
            if self._changes == seen:
                self._stale = False
        return pattern

    def text(self, value: str) -> str:
        pattern = self._current_pattern()
        if pattern is None:
            return value
        return pattern.sub(REDACTED, value)

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.query:
            pairs = [(k, REDACTED if k.lower() in SECRET_PARAMS else v) for k, v in parse_qsl(parts.query, True)]
            url = urlunsplit(parts._replace(query=urlencode(pairs, safe="*")))
        return self.text(url)

    def data(self, value: Any) -> Any:
        """Decoded data (an error body) with every known secret masked in its texts."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {k: REDACTED if k.lower() in SECRET_HEADERS else self.text(v) for k, v in headers.items()}
