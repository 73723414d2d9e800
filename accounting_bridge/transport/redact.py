"""Keeps secrets out of log lines, exception texts and reprs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, unquote_plus, urlencode, urlsplit, urlunsplit

from yarl import URL

__all__ = ["REDACTED", "SECRET_HEADERS", "SECRET_PARAMS", "Redactor"]

REDACTED = "***"
SECRET_PARAMS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "refresh_token", "password", "client_secret", "secret"}
)
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-auth-token", "cookie", "set-cookie", "proxy-authorization"}
)


def spellings(secret: str) -> set[str]:
    """The secret and the forms URL handling turns it into (an error page or a library message may echo a request
    URI): the query value as aiohttp sends it, the usual percent-encodings, also with lower-case hex, and the
    value decoded once."""
    query_form = URL.build(query={"k": secret}).raw_query_string.partition("=")[2]
    forms = {
        secret,
        query_form,
        quote(secret, safe=""),
        quote(secret, safe="/"),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        unquote(secret),
        unquote_plus(secret),
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(), form) for form in forms}
    return {form for form in forms if len(form) >= 4}


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
        fresh = {form for s in secrets if s and len(s) >= 4 for form in spellings(s)} - self._secrets
        if not fresh:
            return
        self._secrets |= fresh
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

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
