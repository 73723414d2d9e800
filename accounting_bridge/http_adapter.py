"""`HttpAdapter`: the base of adapters that talk HTTP through the core `Transport` (owns it, exposes `raw`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from .ledger import AdapterBase
from .settings import CommonSettings
from .transport.http import Request, Response, Transport

__all__ = ["HttpAdapter"]


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
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        **_ignored: Any,
    ) -> Response:
        request = Request(
            method.upper(),
            path,
            params=dict(params or {}),
            json=json,
            body=body,
            headers=dict(headers or {}),
            idempotent=idempotent,
            raise_for_status=False,
        )
        return await self.transport.send(request)
