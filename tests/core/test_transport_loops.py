"""Sessions and event loops: a ledger made outside a running loop serves several `asyncio.run` calls, each on a
session of its own that its loop closes; a caller's session that is closed or bound to another loop is a
`ConfigurationError` that says what to do."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import threading
import warnings
import weakref
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import Request, Transport, TransportConfig

_T = TypeVar("_T")


async def _ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A listening socket that outlives event loops: each `asyncio.run` serves on a duplicate of it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock
    sock.close()


async def _serving(sock: socket.socket) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.SockSite(runner, sock.dup()).start()
    return runner


def _base(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_owned_session_is_reopened_for_each_asyncio_run(listening_socket: socket.socket, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    transport = Transport(TransportConfig(backend="loops", base_url=_base(listening_socket)))  # outside any loop
    sessions: list[aiohttp.ClientSession] = []

    async def one_run() -> int:
        runner = await _serving(listening_socket)
        try:
            response = await transport.send(Request("GET", "/items"))
            sessions.append(transport.session)
            return response.status
        finally:
            await runner.cleanup()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert asyncio.run(one_run()) == 200
            assert sessions[-1].closed  # closed by its own loop as asyncio.run ended: no leak into the next run
        asyncio.run(transport.aclose())
        gc.collect()
    assert len({id(s) for s in sessions}) == 3
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def test_a_ledger_made_outside_a_loop_serves_two_asyncio_runs(listening_socket: socket.socket) -> None:
    ledger = ab.connect("runmyaccounts", tenant="muster", api_key="key-1", base_url=_base(listening_socket))

    async def one_run() -> int:
        runner = await _serving(listening_socket)
        try:
            return (await ledger.raw("GET", "/muster/customers")).status
        finally:
            await runner.cleanup()

    assert asyncio.run(one_run()) == 200
    assert asyncio.run(one_run()) == 200
    asyncio.run(ledger.aclose())


async def test_a_closed_caller_session_is_a_configuration_error() -> None:
    session = aiohttp.ClientSession()
    await session.close()
    transport = Transport(TransportConfig(backend="loops", base_url="http://127.0.0.1:9"), session=session)
    with pytest.raises(ab.ConfigurationError, match="session= is closed"):
        await transport.send(Request("POST", "/invoices", json={}))
    assert transport.attempts == 0
    await transport.aclose()


def test_a_caller_session_of_another_loop_is_a_configuration_error() -> None:
    other = asyncio.new_event_loop()

    async def make_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = other.run_until_complete(make_session())
    try:
        transport = Transport(TransportConfig(backend="loops", base_url="http://127.0.0.1:9"), session=session)

        async def use() -> None:
            await transport.send(Request("GET", "/items"))

        with pytest.raises(ab.ConfigurationError, match="another event loop"):
            asyncio.run(use())
        assert not session.closed  # the caller's session is the caller's to close
    finally:
        other.run_until_complete(session.close())
        other.close()


def test_a_session_whose_loop_closed_without_closing_it_is_dropped_quietly(
    listening_socket: socket.socket, caplog
) -> None:
    """A loop closed by hand (no `shutdown_asyncgens`) cannot close the session: it is detached, not reused."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    transport = Transport(TransportConfig(backend="loops", base_url=_base(listening_socket)))
    loop = asyncio.new_event_loop()

    async def open_session() -> aiohttp.ClientSession:
        return transport.session

    first = loop.run_until_complete(open_session())
    loop.close()

    async def one_run() -> int:
        runner = await _serving(listening_socket)
        try:
            return (await transport.send(Request("GET", "/items"))).status
        finally:
            await runner.cleanup()
            await transport.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(one_run()) == 200
        gc.collect()
    assert first.closed
    assert not [w for w in caught if "Unclosed" in str(w.message)]
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


class _ServedFromAThread:
    """A local server on an event loop of its own thread; it holds the first `expected` requests until all of
    them have arrived, so that their answers go out only while they are all in flight at once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.arrived = 0
        self.loop = asyncio.new_event_loop()
        self.all_arrived = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = self._run(self._start())

    def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._held)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    async def _held(self, request: web.Request) -> web.Response:
        self.arrived += 1
        if self.arrived == self.expected:
            self.all_arrived.set()
        await asyncio.wait_for(self.all_arrived.wait(), timeout=10)  # a guard against a hang, never reached
        return web.json_response({"ok": True}, status=201 if request.method == "POST" else 200)

    def close(self) -> None:
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_one_ledger_serves_two_event_loops_in_two_threads_at_the_same_time() -> None:
    """Each loop gets a session of its own: opening one for a loop never closes the other loop's live session
    (before, its GETs failed with a bare RuntimeError and its POSTs ended as WriteOutcomeUnknown)."""
    # The limiter lets a loop's first request go alone (it learns the limits from its answer): one from each
    # loop is held until both are in flight, then the second of each follows.
    server = _ServedFromAThread(expected=2)
    transport = Transport(TransportConfig(backend="loops", base_url=f"http://127.0.0.1:{server.port}"))
    outcomes: dict[str, list[object]] = {}

    def worker(name: str) -> None:
        async def both() -> list[object]:
            sends = (transport.send(Request(method, "/items")) for method in ("GET", "POST"))
            answers = await asyncio.gather(*sends, return_exceptions=True)
            return [a.status if isinstance(a, ab.transport.Response) else repr(a) for a in answers]

        outcomes[name] = asyncio.run(both())

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("first", "second")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        server.close()
    assert outcomes == {"first": [200, 201], "second": [200, 201]}
    assert server.arrived == 4
    assert transport.attempts == 4
    asyncio.run(transport.aclose())


async def test_a_session_closed_under_a_request_is_a_configuration_error(local_server) -> None:
    """aiohttp's bare RuntimeError("Session is closed") never escapes: the ledger was closed meanwhile."""
    base = await local_server(_app())
    entered, release = asyncio.Event(), asyncio.Event()

    class SlowAuth(ab.transport.NoAuth):
        async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
            entered.set()
            await release.wait()
            return None

    transport = Transport(TransportConfig(backend="loops", base_url=base), auth=SlowAuth())
    sending = asyncio.ensure_future(transport.send(Request("POST", "/invoices", json={})))
    await entered.wait()  # the request has its session and waits for the credential
    await transport.aclose()
    release.set()
    with pytest.raises(ab.ConfigurationError, match="session was closed"):
        await sending


def _app() -> web.Application:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _ok)
    return app


def test_sessions_of_closed_loops_are_dropped_and_their_loops_freed(listening_socket: socket.socket) -> None:
    transport = Transport(TransportConfig(backend="loops", base_url=_base(listening_socket)))
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one_run() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        runner = await _serving(listening_socket)
        try:
            assert (await transport.send(Request("GET", "/items"))).status == 200
            assert list(transport._owned) == [asyncio.get_running_loop()]  # earlier (closed) loops were dropped
        finally:
            await runner.cleanup()

    for _ in range(3):
        asyncio.run(one_run())
    asyncio.run(transport.aclose())
    gc.collect()
    assert [ref for ref in loops if ref() is not None] == []
    assert len(transport._owned) == 0
