"""`HttpAdapter`: the base of adapters that talk HTTP through the core `Transport` (owns it, exposes `raw`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import ConfigurationError, FieldError, ValidationError
from .ledger import AdapterBase
from .safety import HEADER_NAME, describe_forbidden, header_problem
from .settings import CommonSettings
from .transport.http import Request, Response, Transport

__all__ = ["HttpAdapter"]

_RAW_ARGUMENTS = ("body", "data", "headers", "idempotent", "json", "params")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class HttpAdapter(AdapterBase):
    """Subclasses build their `Transport` in `__init__` (auth, error decoding) and describe requests."""

    settings_class: ClassVar[type[Any]] = CommonSettings
    transport: Transport

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | str | None = None,
        data: Mapping[str, str] | bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        **unknown: Any,
    ) -> Response:
        """Any request through the same transport as every other call: auth (a 401 renews the token once),
        the limiter, retries, write safety and the deadline. The final response is returned whatever its status.

        `data` is sent as a form when it is a mapping, as the body when it is bytes or str; pass at most one of
        `json`, `body` and `data`.
        """
        if unknown:
            raise ConfigurationError(
                f"raw() got unknown keyword argument(s) {', '.join(sorted(unknown))}; "
                f"accepted: {', '.join(_RAW_ARGUMENTS)}",
                backend=self.name,
            )
        if sum(part is not None for part in (json, body, data)) > 1:
            raise ConfigurationError("raw(): pass at most one of json=, body= and data=", backend=self.name)
        if self.transport.is_foreign(path):
            raise ConfigurationError(
                "raw(): an absolute URL must have the origin (scheme, host, port) of the ledger's base_url: "
                "the ledger's credential is sent with it",
                backend=self.name,
            )
        if not isinstance(method, str) or HEADER_NAME.fullmatch(method) is None:
            # aiohttp would raise a bare ValueError, after the credential was applied
            raise ValidationError(FieldError("method", "is not an HTTP method (token characters only)"),
                                  backend=self.name)  # fmt: skip
        if body is not None and not isinstance(body, (bytes, str)):
            raise ValidationError(FieldError("body", f"must be bytes or str, not {type(body).__name__}"),
                                  backend=self.name)  # fmt: skip
        _check_headers(headers or {}, self.name)
        _check_params(params or {}, self.name)
        form: Mapping[str, str] | None = None
        if isinstance(data, Mapping):
            form = dict(data)
        elif data is not None:
            body = data
        request = Request(
            method.upper(),
            path,
            params=dict(params or {}),
            json=json,
            body=body,
            form=form,
            headers=dict(headers or {}),
            idempotent=idempotent,
            raise_for_status=False,
        )
        return await self.transport.send(request)


def _check_headers(headers: Mapping[Any, Any], backend: str) -> None:
    """A caller's raw headers go out as given (never re-encoded): refuse, before any I/O, what could split the
    header block (CR, LF) or is not a header at all. Messages name the header, never its value."""
    problems: list[FieldError] = []
    for name, value in headers.items():
        valid_name = isinstance(name, str) and HEADER_NAME.fullmatch(name) is not None
        field = f"headers[{name}]" if valid_name else f"headers[{name!r}]"
        if not valid_name:
            problems.append(FieldError(field, "is not a valid HTTP header name (RFC 7230 token characters only)"))
        elif (problem := header_problem(value)) is not None:
            problems.append(FieldError(field, problem))
    if problems:
        raise ValidationError(problems, backend=backend)


def _check_params(params: Mapping[Any, Any], backend: str) -> None:
    """Query parameters are UTF-8 encoded: a lone surrogate cannot be, refuse it before any I/O."""
    problems: list[FieldError] = []
    for key, value in params.items():
        if not isinstance(key, str) or not isinstance(value, str):
            wrong = key if not isinstance(key, str) else value
            problem = f"names and values must be text, not {type(wrong).__name__}"
            problems.append(FieldError(f"params[{key!r}]", problem))
            continue
        for part, which in ((key, "its name "), (value, "")):
            found = _LONE_SURROGATE.search(part) if isinstance(part, str) else None
            if found:
                problems.append(FieldError(f"params[{key!r}]", which + describe_forbidden(found)))
                break
    if problems:
        raise ValidationError(problems, backend=backend)
