"""Bounded responses (`max_response_bytes`), the call deadline as a real deadline, and the limiter's concurrency
cap and slot waits as the transport sees them (hostile local servers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import gzip
import math
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep
from accounting_bridge.transport import Request, RetryPolicy, Transport, TransportConfig
from accounting_bridge.transport.http import DEADLINE_SLACK, attempt_timeout

Start = Callable[[web.Application], Awaitable[str]]

#: Upper bound on how far past its deadline a call may end on a loaded machine (the logic allows a few ms).
MARGIN = 1.0
#: Bounds a test that would hang without the fix, so that it fails instead.
HANG_GUARD = 5.0


def make_transport(base: str, *, backend: str = "test", **config: Any) -> Transport:
    policy = config.pop("retry", RetryPolicy())
    return Transport(TransportConfig(backend=backend, base_url=base, retry=policy, **config))


def _open_connections(transport: Transport) -> int:
    connector = transport.session.connector
    assert connector is not None
    return len(connector._acquired)  # type: ignore[attr-defined]


async def _until_client_leaves(request: web.Request, bound: float = HANG_GUARD) -> None:
    """Keep a handler alive (sending nothing) until the client closes the connection, `bound` seconds at most."""
    give_up = time.monotonic() + bound
    while time.monotonic() < give_up:
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(0.02)


# --- max_response_bytes ------------------------------------------------------------------------------------------


async def test_a_declared_content_length_over_the_limit_is_refused_before_reading(local_server: Start) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 2 * 1024**3  # 2 GB announced, a few bytes sent
        await response.prepare(request)
        await response.write(b"{}")
        await _until_client_leaves(request)
        return response

    app = web.Application()
    app.router.add_get("/huge", huge)
    transport = make_transport(await local_server(app), max_response_bytes=1000)
    started = time.monotonic()
    with pytest.raises(ab.ResponseError) as info:
        await transport.send(Request("GET", "/huge"))
    assert time.monotonic() - started < MARGIN
    assert "max_response_bytes=1000" in str(info.value) and info.value.status == 200
    assert transport.attempts == 1  # the same answer would come again: not retried
    assert _open_connections(transport) == 0
    await transport.aclose()


async def test_an_endless_chunked_body_stops_at_the_limit(local_server: Start) -> None:
    sent = {"bytes": 0}

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(4096):  # 256 MiB at most: the test server stops by itself
                await response.write(chunk)
                sent["bytes"] += len(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_get("/endless", endless)
    transport = make_transport(await local_server(app), max_response_bytes=1024 * 1024)
    with pytest.raises(ab.ResponseError, match=r"max_response_bytes=1048576"):
        await transport.send(Request("GET", "/endless"))
    assert _open_connections(transport) == 0
    await transport.aclose()
    assert sent["bytes"] < 64 * 1024 * 1024


async def test_a_gzip_bomb_is_counted_after_decompression(local_server: Start) -> None:
    bomb = gzip.compress(b"\0" * (48 * 1024 * 1024), compresslevel=9)  # ~48 KB that inflate to 48 MiB
    assert len(bomb) < 1024 * 1024

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    app = web.Application()
    app.router.add_get("/bomb", serve)
    transport = make_transport(await local_server(app), max_response_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(ab.ResponseError, match=r"max_response_bytes=1048576"):
            await transport.send(Request("GET", "/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024  # bounded by the limit, not by what the body inflates to
    await transport.aclose()


async def test_a_body_within_the_limit_is_read_whole(local_server: Start) -> None:
    payload = b"y" * 4096

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(payload), headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/ok", serve)
    transport = make_transport(await local_server(app), max_response_bytes=4096)
    assert (await transport.send(Request("GET", "/ok"))).body == payload
    await transport.aclose()


async def test_a_write_whose_2xx_answer_is_too_large_is_not_a_definite_failure(local_server: Start) -> None:
    stored: list[bytes] = []

    async def create(request: web.Request) -> web.Response:
        stored.append(await request.read())
        return web.Response(status=201, body=b"z" * 5000)

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=422, body=b"e" * 5000)

    app = web.Application()
    app.router.add_post("/invoices", create)
    app.router.add_post("/refused", refuse)
    transport = make_transport(await local_server(app), max_response_bytes=1000)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await transport.send(Request("POST", "/invoices", json={"n": "R-1"}, reference="R-1"))
    assert info.value.reference == "R-1" and "max_response_bytes=1000" in str(info.value)
    assert len(stored) == 1  # never resent
    with pytest.raises(ab.ResponseError) as refused:  # a 4xx was not performed: that failure is definite
        await transport.send(Request("POST", "/refused", json={}))
    assert refused.value.status == 422
    await transport.aclose()


def test_max_response_bytes_is_a_validated_common_setting() -> None:
    with pytest.raises(ab.ConfigurationError, match="max_response_bytes"):
        ab.connect("runmyaccounts", tenant="t", api_key="k", max_response_bytes=0)
    with pytest.raises(ab.ConfigurationError, match="max_response_bytes"):
        ab.connect("runmyaccounts", tenant="t", api_key="k", max_response_bytes=True)
    ledger = ab.connect("runmyaccounts", tenant="t", api_key="k", max_response_bytes=4096)
    assert ledger.adapter.transport.config.max_response_bytes == 4096
    default = ab.connect("runmyaccounts", tenant="t", api_key="k")
    assert default.adapter.transport.config.max_response_bytes == 64 * 1024 * 1024


# --- the deadline ------------------------------------------------------------------------------------------------

DEADLINE = 0.4


async def _trickle(request: web.Request) -> web.StreamResponse:
    """A slow-loris answer: one byte every 50 ms (for 5 s at most), until the client leaves."""
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        for _ in range(100):
            await response.write(b" ")
            await asyncio.sleep(0.05)
    except (ConnectionResetError, RuntimeError):
        pass
    return response


async def _short_body(request: web.Request) -> web.StreamResponse:
    """Announces 10 MB, sends 10 bytes, then nothing."""
    await request.read()
    response = web.StreamResponse()
    response.content_length = 10_000_000
    await response.prepare(request)
    await response.write(b"0123456789")
    await _until_client_leaves(request)
    return response


@pytest.mark.parametrize("path", ["/trickle", "/short"])
async def test_a_read_ends_by_its_deadline_whatever_the_server_sends(local_server: Start, path: str) -> None:
    app = web.Application()
    app.router.add_get("/trickle", _trickle)
    app.router.add_get("/short", _short_body)
    transport = make_transport(await local_server(app), retry=RetryPolicy(deadline=DEADLINE))  # timeout stays 60 s
    started = time.monotonic()
    with pytest.raises(ab.DeadlineExceeded) as info:
        await asyncio.wait_for(transport.send(Request("GET", path)), HANG_GUARD)
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + MARGIN
    assert isinstance(info.value, ab.TransportError) and info.value.deadline == DEADLINE
    assert "deadline" in str(info.value)
    assert _open_connections(transport) == 0
    await transport.aclose()


async def test_a_write_cut_by_the_deadline_after_sending_is_outcome_unknown(local_server: Start) -> None:
    app = web.Application()
    app.router.add_post("/payments", _short_body)
    transport = make_transport(await local_server(app), retry=RetryPolicy(deadline=DEADLINE))
    started = time.monotonic()
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await asyncio.wait_for(
            transport.send(Request("POST", "/payments", json={"amount": "1.00"}, reference="P-1")), HANG_GUARD
        )
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert info.value.reference == "P-1" and transport.attempts == 1
    await transport.aclose()


class _StuckAuth:
    """An auth step that never finishes (a token endpoint that hangs)."""

    credential_id = "stuck"

    def __init__(self) -> None:
        self.cancelled = False

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return None  # pragma: no cover

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        return False  # pragma: no cover

    def secrets(self) -> tuple[str, ...]:
        return ()


async def test_the_auth_step_is_bounded_by_the_deadline() -> None:
    auth = _StuckAuth()
    config = TransportConfig(backend="test", base_url="http://127.0.0.1:9", retry=RetryPolicy(deadline=DEADLINE))
    transport = Transport(config, auth=auth)
    started = time.monotonic()
    with pytest.raises(ab.DeadlineExceeded, match="credential"):
        await asyncio.wait_for(transport.send(Request("POST", "/invoices", json={})), HANG_GUARD)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert transport.attempts == 0  # nothing was sent, so even a POST is a plain deadline expiry
    await asyncio.sleep(0)
    assert auth.cancelled  # the abandoned auth step does not live on
    await transport.aclose()


async def test_a_cancelled_caller_cancels_its_bounded_auth_step() -> None:
    auth = _StuckAuth()
    transport = Transport(TransportConfig(backend="test", base_url="http://127.0.0.1:9"), auth=auth)
    task = asyncio.ensure_future(transport.send(Request("GET", "/items")))
    for _ in range(5):
        await asyncio.sleep(0)  # loop steps, not time: the call is now parked in the auth step
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert auth.cancelled
    await transport.aclose()


# --- the concurrency cap and slot waits (ratelimit.py's owner-cap interface) ------------------------------------


class _Gate:
    """A server whose handler counts requests in flight and holds each one until the test opens the gate."""

    def __init__(self, *, hold: int) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.served = 0
        self.holding = asyncio.Event()  # set once `hold` requests are held at once
        self.gate = asyncio.Event()
        self._hold = hold

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        if self.in_flight >= self._hold:
            self.holding.set()
        try:
            await asyncio.wait_for(self.gate.wait(), HANG_GUARD)
        finally:
            self.in_flight -= 1
            self.served += 1
        return web.json_response({})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/work", self.handle)
        app.router.add_get("/quick", _json_ok)
        return app


async def _json_ok(request: web.Request) -> web.Response:
    return web.json_response({})


async def test_the_smallest_cap_of_a_credentials_open_ledgers_holds(local_server: Start) -> None:
    server = _Gate(hold=2)
    base = await local_server(server.app())
    ledger_a = make_transport(base, backend="capped")  # no cap, and it makes the first call
    ledger_b = make_transport(base, backend="capped", max_concurrency=2)
    assert (await ledger_a.send(Request("GET", "/quick"))).status == 200
    calls = [asyncio.ensure_future(ledger_b.send(Request("GET", "/work"))) for _ in range(8)]
    await asyncio.wait_for(server.holding.wait(), HANG_GUARD)
    for _ in range(20):
        await asyncio.sleep(0)  # loop steps: any caller that could take a slot has taken it by now
    assert ledger_b.attempts == 2
    server.gate.set()
    responses = await asyncio.wait_for(asyncio.gather(*calls), HANG_GUARD)
    assert [r.status for r in responses] == [200] * 8
    assert server.max_in_flight == 2 and server.served == 8
    await ledger_a.aclose()
    await ledger_b.aclose()


async def test_a_call_queued_for_a_slot_gets_deadline_exceeded_by_its_deadline(local_server: Start) -> None:
    server = _Gate(hold=1)
    base = await local_server(server.app())
    slow = make_transport(base, backend="queued", max_concurrency=1)
    hurried = make_transport(base, backend="queued", max_concurrency=1, retry=RetryPolicy(deadline=DEADLINE))
    assert (await slow.send(Request("GET", "/quick"))).status == 200  # the window is learned: no probe
    first = asyncio.ensure_future(slow.send(Request("GET", "/work")))
    await asyncio.wait_for(server.holding.wait(), HANG_GUARD)
    started = time.monotonic()
    with pytest.raises(ab.DeadlineExceeded, match="slot"):
        await asyncio.wait_for(hurried.send(Request("GET", "/work")), HANG_GUARD)
    assert time.monotonic() - started < DEADLINE + MARGIN
    assert hurried.attempts == 0
    server.gate.set()
    assert (await asyncio.wait_for(first, HANG_GUARD)).status == 200
    await slow.aclose()
    await hurried.aclose()


async def test_waiting_behind_a_slow_probe_is_a_deadline_not_a_rate_limit(local_server: Start) -> None:
    server = _Gate(hold=1)
    base = await local_server(server.app())
    prober = make_transport(base, backend="probing")
    hurried = make_transport(base, backend="probing", retry=RetryPolicy(deadline=DEADLINE))
    probe = asyncio.ensure_future(prober.send(Request("GET", "/work")))  # the first call of a fresh limiter
    await asyncio.wait_for(server.holding.wait(), HANG_GUARD)
    started = time.monotonic()
    with pytest.raises(ab.DeadlineExceeded) as info:
        await asyncio.wait_for(hurried.send(Request("GET", "/work")), HANG_GUARD)
    assert not isinstance(info.value, ab.RateLimited)
    assert time.monotonic() - started < DEADLINE + MARGIN
    server.gate.set()
    assert (await asyncio.wait_for(probe, HANG_GUARD)).status == 200
    await prober.aclose()
    await hurried.aclose()


async def test_a_closed_ledger_no_longer_caps_its_credential(local_server: Start) -> None:
    base = await local_server(_Gate(hold=1).app())
    capped = make_transport(base, backend="dropcap", max_concurrency=1)
    free = make_transport(base, backend="dropcap")
    await capped.send(Request("GET", "/quick"))  # a ledger registers its cap with the loop's limiter as it sends
    await free.send(Request("GET", "/quick"))
    assert free.limiter.max_concurrency == 1
    await capped.aclose()
    assert free.limiter.max_concurrency is None
    await free.aclose()


# --- attempt timeouts near the deadline ------------------------------------------------------------------------


def test_attempt_timeouts_are_never_rounded_up_to_the_next_second() -> None:
    """aiohttp rounds timeouts of `ceil_threshold` (default 5) seconds or more up to the next second: a 6 s
    timeout with 6.1 s left could end ~7 s in, past the deadline."""
    uncapped, capped_by_deadline = attempt_timeout(6.0, 10.0, left=6.1)
    assert (uncapped.total, uncapped.ceil_threshold, capped_by_deadline) == (6.0, math.inf, False)
    near, capped_by_deadline = attempt_timeout(6.0, 10.0, left=6.0 + DEADLINE_SLACK / 2)
    assert (near.total, near.ceil_threshold, capped_by_deadline) == (6.0 + DEADLINE_SLACK / 2, math.inf, True)


async def test_the_sessions_default_timeout_is_not_rounded_up() -> None:
    transport = make_transport("http://127.0.0.1:9", timeout=6.0)
    assert transport.session.timeout.ceil_threshold == math.inf
    await transport.aclose()


async def _silent(request: web.Request) -> web.StreamResponse:
    await _until_client_leaves(request)
    return web.Response()


async def test_an_attempt_timeout_just_short_of_the_deadline_ends_as_deadline_exceeded(local_server: Start) -> None:
    app = web.Application()
    app.router.add_get("/silent", _silent)
    transport = make_transport(await local_server(app), timeout=0.3, retry=RetryPolicy(deadline=0.34))
    started = time.monotonic()
    with pytest.raises(ab.DeadlineExceeded):
        await asyncio.wait_for(transport.send(Request("GET", "/silent")), HANG_GUARD)
    assert time.monotonic() - started < 0.34 + MARGIN
    assert transport.attempts == 1
    await transport.aclose()


async def test_retries_stopped_by_the_deadline_are_deadline_exceeded(local_server: Start) -> None:
    async def hang_up(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_get("/flaky", hang_up)
    transport = make_transport(await local_server(app), retry=RetryPolicy(deadline=1.0, max_retries=3))
    fake = FakeSleep()
    transport.sleep, transport.clock = fake, fake.clock  # only the backoff sleeps move the clock
    with pytest.raises(ab.DeadlineExceeded, match="deadline of 1 s"):
        await transport.send(Request("GET", "/flaky"))
    assert transport.attempts == 2  # a third attempt was allowed, but its backoff would end past the deadline
    await transport.aclose()


# --- an over-limit answer to a resend ------------------------------------------------------------------------


def _lost_then(status: int) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The first attempt is performed but its answer lost (connection dropped); resends get `status` with a
    body larger than the test's max_response_bytes."""
    calls = {"n": 0}

    async def handler(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            assert request.transport is not None
            request.transport.close()
        return web.Response(status=status, body=b"x" * 5000)

    return handler


async def test_a_delete_whose_resend_gets_an_over_limit_404_is_confirmed(local_server: Start) -> None:
    app = web.Application()
    app.router.add_delete("/doc/1", _lost_then(404))
    transport = make_transport(await local_server(app), max_response_bytes=4096)
    transport.sleep = FakeSleep()
    response = await transport.send(Request("DELETE", "/doc/1"))
    assert response.confirmed_by_lookup and response.status == 404
    await transport.aclose()


@pytest.mark.parametrize(("status", "outcome"), [(409, "confirmed"), (422, "unknown")])
async def test_an_over_limit_answer_after_a_lost_write_never_hides_that_it_landed(
    local_server: Start, status: int, outcome: str
) -> None:
    app = web.Application()
    app.router.add_post("/invoices", _lost_then(status))
    transport = make_transport(await local_server(app), max_response_bytes=4096)
    transport.sleep = FakeSleep()
    request = Request("POST", "/invoices", json={}, reference="R-9", conflict_means_landed=True)
    if outcome == "confirmed":
        assert (await transport.send(request)).confirmed_by_lookup
    else:
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await transport.send(request)
        assert info.value.reference == "R-9"
    assert transport.attempts == 2
    await transport.aclose()
