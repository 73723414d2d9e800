"""A hostile HTTP server on 127.0.0.1: every route answers what the test chose, including what no backend should.

`HostileServer` routes by (method, path); a test installs normal answers for the auth steps and one hostile
`Behaviour` for the read under test. The behaviours never hold the server past `HostileServer.close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from aiohttp import web

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]

MiB = 1024 * 1024
GiB = 1024 * MiB
#: How much an "endless" body sends at most: far beyond any sane response limit, yet a client without one
#: cannot take the test machine down with it.
ENDLESS_CAP = 512 * MiB
#: How long a behaviour holds a connection at most when the client neither reads nor closes.
HOLD_SECONDS = 30.0


@dataclass
class HostileServer:
    """One aiohttp application on 127.0.0.1 (port 0); `hits` lists every "METHOD /path" it was asked."""

    routes: dict[tuple[str, str], Behaviour] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""
    _runner: web.AppRunner | None = None

    def answer(self, method: str, path: str, behaviour: Behaviour) -> None:
        self.routes[(method.upper(), path)] = behaviour

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a behaviour holding a connection ends as soon as the client goes away.
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def close(self) -> None:
        self.stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(f"{request.method} {request.path}")
        behaviour = self.routes.get((request.method, request.path))
        if behaviour is None:
            return web.json_response({"error": f"no route {request.method} {request.path}"}, status=404)
        return await behaviour(request)


# --- normal answers ---------------------------------------------------------------------------------------------


def fixed(body: bytes, content_type: str, *, status: int = 200) -> Behaviour:
    """A complete, well-framed response (its content may be anything)."""

    async def behaviour(_request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, status=status, headers={"Content-Type": content_type})

    return behaviour


# --- hostile answers --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GzipBomb:
    """A gzip stream of zeros sent piece by piece: `head`, then `block` `repeats` times, then `tail`.

    Every block is compressed after a full flush, so identical input gives identical bytes and the stream is
    built from one compressed block instead of compressing the whole inflated size.
    """

    head: bytes
    block: bytes
    repeats: int
    tail: bytes
    inflated_size: int

    @property
    def compressed_size(self) -> int:
        return len(self.head) + len(self.block) * self.repeats + len(self.tail)

    def pieces(self) -> Iterator[bytes]:
        yield self.head
        for _ in range(self.repeats):
            yield self.block
        yield self.tail


def build_gzip_bomb(inflated_size: int = GiB, block_size: int = 16 * MiB) -> GzipBomb:
    """A valid gzip member (correct CRC and size) of `inflated_size` zeros; ~1 KB compressed per MiB."""
    if inflated_size % block_size or inflated_size < 2 * block_size:
        raise ValueError("inflated_size must be a multiple (>= 2) of block_size")
    zeros = bytes(block_size)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: the gzip container
    head = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # the empty last block; its trailer only covers what was compressed
    crc = 0
    for _ in range(inflated_size // block_size):
        crc = zlib.crc32(zeros, crc)
    tail = final_block + struct.pack("<II", crc, inflated_size & 0xFFFFFFFF)
    return GzipBomb(head, block, inflated_size // block_size - 1, tail, inflated_size)


def gzip_bomb(bomb: GzipBomb, content_type: str) -> Behaviour:
    """A small, correctly framed body with ``Content-Encoding: gzip`` that inflates to `bomb.inflated_size`."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type, "Content-Encoding": "gzip"})
        response.content_length = bomb.compressed_size
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            for piece in bomb.pieces():
                await response.write(piece)
        return response

    return behaviour


def endless_chunked(stopping: asyncio.Event, content_type: str, prefix: bytes, chunk: int = 64 * 1024) -> Behaviour:
    """A chunked body that never ends: `prefix`, then whitespace as fast as the client takes it."""
    filler = b" " * chunk

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        with contextlib.suppress(ConnectionResetError):
            await response.write(prefix)
            while sent < ENDLESS_CAP and not stopping.is_set():
                await response.write(filler)
                sent += chunk
            await _hold(stopping)  # past the cap: still no end of the body
        return response

    return behaviour


def huge_content_length(
    stopping: asyncio.Event, content_type: str, prefix: bytes, declared: int = 2 * GiB
) -> Behaviour:
    """Announces `declared` bytes, sends `prefix`, then keeps the connection open and silent."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = declared
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):
            await response.write(prefix)
            await _hold(stopping)
        return response

    return behaviour


def silent(stopping: asyncio.Event) -> Behaviour:
    """Accepts the request and never answers (not even the status line)."""

    async def behaviour(_request: web.Request) -> web.StreamResponse:
        await _hold(stopping)
        return web.Response(status=503)

    return behaviour


def trickle(stopping: asyncio.Event, content_type: str, body: bytes, interval: float = 0.05) -> Behaviour:
    """Slow loris: headers at once, then the body one byte per `interval` (repeating `body`)."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        position = 0
        with contextlib.suppress(ConnectionResetError):
            while not stopping.is_set():
                await response.write(body[position % len(body) : position % len(body) + 1])
                position += 1
                await _hold(stopping, interval)
        return response

    return behaviour


async def _hold(stopping: asyncio.Event, seconds: float = HOLD_SECONDS) -> None:
    """Wait until the server stops, at most `seconds`."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
