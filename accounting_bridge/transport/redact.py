"""Keeps secrets out of log lines, exception texts and reprs."""

from __future__ import annotations

import re
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


class Redactor:
    """Replaces known secret values anywhere in a text, and secret-named query parameters and headers."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secrets>)"

    def add(self, *secrets: str | None) -> None:
        # Very short values would mask ordinary text and are no real secret; skip them.
        plain = {s for s in secrets if s and len(s) >= 4}
        # the decoded forms too: a secret that itself contains %XX or '+' may be shown decoded
        fresh = (plain | {unquote(s) for s in plain} | {unquote_plus(s) for s in plain}) - self._secrets
        fresh = {s for s in fresh if len(s) >= 4}
        if not fresh:
            return
        self._secrets |= fresh
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(_secret_pattern(s) for s in ordered))

    def text(self, value: str) -> str:
        if self._pattern is None:
            return value
        return self._pattern.sub(REDACTED, value)

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
