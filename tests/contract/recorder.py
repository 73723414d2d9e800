"""Records every exchange a sandbox serves, as it went over the socket (a server middleware, not a mock)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import StreamReader, web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class Exchange:
    method: str
    path: str  # without the query
    query: tuple[tuple[str, str], ...]
    request_headers: dict[str, str]
    request_body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes

    @property
    def request_content_type(self) -> str:
        return _media_type(self.request_headers)

    @property
    def response_content_type(self) -> str:
        return _media_type(self.response_headers)


async def _keep_multipart_body(request: web.Request) -> None:
    """A multipart body is parsed from the stream (`request.post()`), which aiohttp does not keep: read it here
    and hand the handler a fresh stream holding the same bytes."""
    body = await request.read()
    stream = StreamReader(request.protocol, 2**16, loop=asyncio.get_running_loop())
    stream.feed_data(body)
    stream.feed_eof()
    request._payload = stream  # the only way to let the handler parse the body again
    request._read_bytes = body


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("Content-Type", "").split(";")[0].strip().lower()


class Recorder:
    """`Recorder().attach(sandbox)` before `sandbox.start()`: its app gets an outermost recording middleware."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def attach(self, sandbox: Any) -> None:
        serve = sandbox.serve

        async def recording_serve(app: web.Application, host: str, port: int) -> None:
            app.middlewares.insert(0, self.middleware)
            await serve(app, host, port)

        sandbox.serve = recording_serve

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.content_type.startswith("multipart/"):
            await _keep_multipart_body(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self._record(request, await self._body(request), exc)
            raise
        self._record(request, await self._body(request), response)
        return response

    @staticmethod
    async def _body(request: web.Request) -> bytes:
        """Read after the handler (reading first would tell it `can_read_body` is false); aiohttp keeps a body
        the handler read."""
        try:
            return await request.read()
        except (ConnectionError, RuntimeError):
            return b""  # the connection was cut (a fault switch)

    def _record(self, request: web.Request, body: bytes, response: web.StreamResponse) -> None:
        payload = response.body if isinstance(response, web.Response) else b""
        self.exchanges.append(
            Exchange(
                method=request.method,
                path=request.path,
                query=tuple(request.query.items()),
                request_headers=dict(request.headers),
                request_body=body,
                status=response.status,
                response_headers={**dict(response.headers), "Content-Type": response.content_type},
                response_body=payload if isinstance(payload, bytes) else b"",
            )
        )
