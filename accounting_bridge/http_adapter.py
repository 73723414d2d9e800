"""`HttpAdapter`: the base of adapters that talk HTTP through the core `Transport` (owns it, exposes `raw`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .errors import ConfigurationError
from .ledger import AdapterBase
from .settings import CommonSettings
from .transport.http import Request, Response, Transport

__all__ = ["HttpAdapter"]

_RAW_ARGUMENTS = ("body", "data", "headers", "idempotent", "json", "params")


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
