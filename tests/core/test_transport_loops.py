"""Sessions and event loops: a ledger made outside a running loop serves several `asyncio.run` calls, each on a
session of its own that its loop closes; a caller's session that is closed or bound to another loop is a
`ConfigurationError` that says what to do."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import warnings
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import Request, Transport, TransportConfig


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
