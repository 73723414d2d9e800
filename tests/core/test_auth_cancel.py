"""Token renewal under cancellation and failure: one shielded renewal, shared by every caller that needs it.

A renewal (store look-up, token request, save of the rotated refresh token) runs in its own task. A caller that is
cancelled at any of its awaits stops waiting; the renewal completes, so the store always ends up holding the newest
token the server issued. A failed renewal is reported to every waiter, not repeated by each of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import (
    MemoryTokenStore,
    OAuth2Client,
    Request,
    Token,
    TokenAuth,
    Transport,
    TransportConfig,
)
from accounting_bridge.transport.retry import RetryPolicy

KEY = "tenant-7"
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.timezone.utc)


class Gates:
    """Every await of a renewal is a gate: it waits until the test opens it (or runs freely once `free`)."""

    def __init__(self) -> None:
        self.passed: list[str] = []
        self.waiting: asyncio.Event = asyncio.Event()
        self.opened: asyncio.Event = asyncio.Event()
        self.free = False

    async def gate(self, name: str) -> None:
        self.passed.append(name)
        if self.free:
            await asyncio.sleep(0)  # still a real suspension point
            return
        self.opened.clear()
        self.waiting.set()
        await self.opened.wait()

    async def reached(self) -> None:
        await self.waiting.wait()
        self.waiting.clear()

    def open(self) -> None:
        self.opened.set()

    def run_freely(self) -> None:
        self.free = True
        self.opened.set()


class RotatingServer:
    """Single-use rotating refresh tokens; the rotation happens at the server before the answer travels back."""

    def __init__(self, gates: Gates) -> None:
        self.gates = gates
        self.valid_refresh = {"refresh-0"}
        self.issued: list[Token] = [Token(access_token="access-0", refresh_token="refresh-0", expires_at=NOW)]

    async def refresh(self, _transport: Transport, token: Token) -> Token:
        await self.gates.gate("request sent")
        if token.refresh_token not in self.valid_refresh:
            raise ab.AuthenticationError("invalid_grant: the refresh token was already used")
        self.valid_refresh.discard(token.refresh_token)
        n = len(self.issued)
        new = Token(access_token=f"access-{n}", refresh_token=f"refresh-{n}", expires_at=NOW + dt.timedelta(hours=1))
        self.valid_refresh.add(f"refresh-{n}")
        self.issued.append(new)
        await self.gates.gate("answer travelling back")  # rotated at the server, not yet known to the client
        return new


class GatedStore(MemoryTokenStore):
    def __init__(self, gates: Gates, initial: Token) -> None:
        super().__init__({KEY: initial})
        self.gates = gates

    async def load(self, key: str) -> Token | None:
        await self.gates.gate("store load")
        return await super().load(key)

    async def save(self, key: str, token: Token) -> None:
        await self.gates.gate("store save started")
        await super().save(key, token)
        await self.gates.gate("store save finished")


def transport_for(auth: TokenAuth) -> Transport:
    return Transport(TransportConfig(backend="cancel-test", base_url="http://127.0.0.1:9"), auth=auth)


async def cancel_renewal_at_step(step: int, *, after_401: bool = False) -> tuple[RotatingServer, GatedStore, Token]:
    """Start a call whose token needs a renewal (expired, or refused with a 401), cancel the caller at the
    `step`-th await, let everything else run; returns what the server issued, the store, and the token the next
    call gets."""
    gates = Gates()
    server = RotatingServer(gates)
    store = GatedStore(gates, server.issued[0])
    clock = NOW - dt.timedelta(hours=1) if after_401 else NOW  # after a 401 the token had not expired yet
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, clock=lambda: clock)
    transport = transport_for(auth)
    refused: Token | None = None
    if after_401:
        gates.free = True
        refused = await auth.token(transport)
        gates.free = False
        caller = asyncio.ensure_future(auth.renew_after_401(transport, refused))
    else:
        caller = asyncio.ensure_future(auth.token(transport))
    for _ in range(step):
        await gates.reached()
        gates.open()
    await gates.reached()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    gates.run_freely()
    if after_401:  # the next call is refused with the old token too, unless the renewal has replaced it
        await auth.renew_after_401(transport, refused)
    following = await auth.token(transport)
    return server, store, following


RENEWAL_AWAITS = 5  # store load, request sent, answer travelling back, store save started, store save finished


@pytest.mark.parametrize("after_401", [False, True], ids=["expired", "refused"])
@pytest.mark.parametrize("step", range(RENEWAL_AWAITS))
async def test_a_cancelled_caller_never_loses_the_rotated_refresh_token(step: int, after_401: bool) -> None:
    server, store, following = await cancel_renewal_at_step(step, after_401=after_401)
    newest = server.issued[-1]
    assert len(server.issued) == 2  # exactly one rotation: nobody retried with the spent refresh token
    assert store.tokens[KEY] == newest  # the store holds the newest token the server issued
    assert following == newest  # and the next call uses it


async def test_every_await_of_the_renewal_was_a_cancellation_point() -> None:
    gates = Gates()
    server = RotatingServer(gates)
    store = GatedStore(gates, server.issued[0])
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, clock=lambda: NOW)
    gates.run_freely()
    await auth.token(transport_for(auth))
    assert gates.passed == [
        "store load",
        "request sent",
        "answer travelling back",
        "store save started",
        "store save finished",
    ]
    assert len(gates.passed) == RENEWAL_AWAITS


async def test_a_caller_timing_out_does_not_cancel_the_renewal() -> None:
    gates = Gates()
    server = RotatingServer(gates)
    store = GatedStore(gates, server.issued[0])
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, clock=lambda: NOW)
    transport = transport_for(auth)
    waiting = asyncio.ensure_future(asyncio.wait_for(auth.token(transport), timeout=3600))
    await gates.reached()  # the renewal is at the store look-up
    waiting.cancel()  # what a deadline does to the caller (wait_for cancels what it waits for)
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gates.run_freely()
    assert await auth.token(transport) == server.issued[-1] == store.tokens[KEY]
    assert len(server.issued) == 2


class FailingOnceTokenEndpoint:
    """The token endpoint answers 503 once (after every caller has piled up), then issues tokens."""

    def __init__(self) -> None:
        self.requests = 0
        self.arrived = asyncio.Event()
        self.answer = asyncio.Event()

    async def token(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests == 1:
            self.arrived.set()
            await self.answer.wait()
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        return web.json_response({"access_token": f"access-{self.requests}-value", "expires_in": 3600})

    async def data(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})


async def test_a_failed_renewal_is_shared_by_all_waiters_not_repeated(local_server, fake_sleep) -> None:
    endpoint = FailingOnceTokenEndpoint()
    app = web.Application()
    app.router.add_post("/token", endpoint.token)
    app.router.add_get("/data", endpoint.data)
    base = await local_server(app)
    client = OAuth2Client(token_url=f"{base}/token", client_id="cid", client_secret="client-secret-value")
    config = TransportConfig(backend="shared-failure", base_url=base, retry=RetryPolicy(max_retries=0))
    transport = Transport(config, auth=TokenAuth(store_key="cid@shared", obtain=client.client_credentials),
                          sleep=fake_sleep)  # fmt: skip
    calls = [asyncio.ensure_future(transport.send(Request("GET", "/data"))) for _ in range(5)]
    await endpoint.arrived.wait()  # every caller started before the first one's token request got here
    endpoint.answer.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert endpoint.requests == 1  # one token request, not five
    assert all(isinstance(o, ab.ServerError) and o.status == 503 for o in outcomes), outcomes
    # a later call starts a new renewal
    assert (await transport.send(Request("GET", "/data"))).status == 200
    assert endpoint.requests == 2
    await transport.aclose()
