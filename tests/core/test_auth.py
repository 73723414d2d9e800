"""Auth strategies: single-flight renewal, rotation saved before use, 401 handling, invalid_grant."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import (
    ApiKeyHeader,
    ApiKeyQuery,
    MemoryTokenStore,
    OAuth2Client,
    Request,
    Token,
    TokenAuth,
    Transport,
    TransportConfig,
)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


class OAuthServer:
    """Issues 1-hour access tokens and single-use rotating refresh tokens; `/data` needs a current token."""

    def __init__(self, events: list[str]) -> None:
        self.counter = itertools.count(1)
        self.valid_access: set[str] = set()
        self.valid_refresh: set[str] = set()
        self.token_requests: list[str] = []
        self.events = events

    def issue(self) -> dict[str, object]:
        n = next(self.counter)
        access, refresh = f"access-{n}-secretvalue", f"refresh-{n}-secretvalue"
        self.valid_access = {access}
        self.valid_refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": 3600, "token_type": "Bearer"}

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form["grant_type"])
        self.token_requests.append(grant)
        await asyncio.sleep(0.02)  # long enough for every concurrent caller to pile up behind the lock
        if grant == "refresh_token":
            used = str(form["refresh_token"])
            if used not in self.valid_refresh:
                return web.json_response({"error": "invalid_grant"}, status=400)
            self.valid_refresh.discard(used)
        elif form.get("client_secret") != "client-secret-value":
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response(self.issue())

    async def data(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_access:
            return web.json_response({"message": "expired"}, status=401)
        self.events.append(f"used {token}")
        return web.json_response({"ok": True})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.token)
        app.router.add_get("/data", self.data)
        return app


class RecordingStore(MemoryTokenStore):
    def __init__(self, events: list[str], initial: dict[str, Token] | None = None) -> None:
        super().__init__(initial)
        self.events = events

    async def save(self, key: str, token: Token) -> None:
        self.events.append(f"saved {token.access_token}")
        await super().save(key, token)


async def _setup(local_server, events: list[str], *, store: MemoryTokenStore | None = None):
    server = OAuthServer(events)
    base = await local_server(server.app())
    clock = Clock()
    client = OAuth2Client(token_url=f"{base}/token", client_id="cid", client_secret="client-secret-value", clock=clock)
    auth = TokenAuth(
        store_key="cid@test",
        obtain=client.client_credentials,
        refresh=client.refresh_token,
        store=store,
        clock=clock,
    )
    transport = Transport(TransportConfig(backend="oauth-test", base_url=base), auth=auth, secrets=client.secrets())
    return server, clock, auth, transport


async def test_twenty_concurrent_callers_cause_exactly_one_refresh(local_server) -> None:
    events: list[str] = []
    store = RecordingStore(events)
    server, clock, auth, transport = await _setup(local_server, events, store=store)
    await transport.send(Request("GET", "/data"))
    assert server.token_requests == ["client_credentials"]
    clock.now += dt.timedelta(hours=2)  # the access token has expired
    results = await asyncio.gather(*(transport.send(Request("GET", "/data")) for _ in range(20)))
    await transport.aclose()
    assert all(r.status == 200 for r in results)
    assert server.token_requests == ["client_credentials", "refresh_token"]
    assert store.tokens["cid@test"].refresh_token == "refresh-2-secretvalue"
    # the rotated token was persisted before the new access token was first used
    assert events.index("saved access-2-secretvalue") < events.index("used access-2-secretvalue")


async def test_401_renews_once_and_retries(local_server) -> None:
    events: list[str] = []
    server, clock, auth, transport = await _setup(local_server, events)
    await transport.send(Request("GET", "/data"))
    server.valid_access = set()  # revoked server-side, not expired locally
    response = await transport.send(Request("GET", "/data"))
    assert response.status == 200
    assert server.token_requests == ["client_credentials", "refresh_token"]
    server.valid_access = set()
    server.issue = lambda: {"access_token": "never-valid", "expires_in": 3600}  # type: ignore[method-assign]
    with pytest.raises(ab.AuthenticationError):
        await transport.send(Request("GET", "/data"))
    await transport.aclose()
    assert server.token_requests.count("refresh_token") + server.token_requests.count("client_credentials") == 3


async def test_used_refresh_token_is_a_clear_authentication_error(local_server) -> None:
    events: list[str] = []
    stale = Token(access_token="stale-access", refresh_token="refresh-0-already-used", expires_at=None)
    store = MemoryTokenStore({"cid@test": stale})
    server, clock, auth, transport = await _setup(local_server, events, store=store)
    auth.obtain = None  # refresh-token grant only: no client credentials to fall back on
    with pytest.raises(ab.AuthenticationError) as info:
        await transport.send(Request("GET", "/data"))
    await transport.aclose()
    assert "already used" in str(info.value)
    assert "refresh-0-already-used" not in str(info.value)


async def test_token_provider_is_asked_again_after_401(local_server) -> None:
    tokens = iter(["first-provided-token", "second-provided-token"])
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        token = request.headers["Authorization"]
        seen.append(token)
        return web.json_response({}, status=200 if token.endswith("second-provided-token") else 401)

    async def provider() -> str:
        return next(tokens)

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    transport = Transport(
        TransportConfig(backend="provider", base_url=base), auth=TokenAuth.from_provider(provider, store_key="p")
    )
    assert (await transport.send(Request("GET", "/x"))).status == 200
    await transport.aclose()
    assert seen == ["Bearer first-provided-token", "Bearer second-provided-token"]


async def test_api_key_strategies_put_the_key_where_asked(local_server) -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.query.get("api_key"), request.headers.get("X-Api-Key")))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    for auth in (ApiKeyQuery("key-in-query-1234"), ApiKeyHeader("key-in-header-1234", header="X-Api-Key", prefix="")):
        transport = Transport(TransportConfig(backend="keys", base_url=base), auth=auth)
        await transport.send(Request("GET", "/x"))
        await transport.aclose()
    assert seen == [("key-in-query-1234", None), (None, "key-in-header-1234")]


async def test_token_renewed_by_another_process_is_taken_from_the_shared_store(local_server) -> None:
    events: list[str] = []
    store = MemoryTokenStore()
    server, clock, auth, transport = await _setup(local_server, events, store=store)
    await transport.send(Request("GET", "/data"))  # token 1 cached in this process
    # Another process sharing the store refreshes: the refresh token we hold is now spent.
    rotated = server.issue()
    server.valid_refresh.discard(store.tokens["cid@test"].refresh_token)
    await store.save("cid@test", Token(access_token=rotated["access_token"], refresh_token=rotated["refresh_token"],
                                       expires_at=clock() + dt.timedelta(hours=1)))
    clock.now += dt.timedelta(hours=2)  # our cached token (and theirs) expired: a renewal is due
    assert (await transport.send(Request("GET", "/data"))).status == 200
    await transport.aclose()
    # we refreshed with the store's (unspent) refresh token, not our stale one: no invalid_grant, no new login
    assert server.token_requests == ["client_credentials", "refresh_token"]
    assert store.tokens["cid@test"].refresh_token == "refresh-3-secretvalue"


class FailingStore(MemoryTokenStore):
    async def save(self, key: str, token: Token) -> None:
        raise OSError("database unavailable")


async def test_a_failing_store_save_does_not_lose_the_rotated_token(local_server) -> None:
    events: list[str] = []
    store = FailingStore({"cid@test": Token(access_token="old", refresh_token="refresh-0-secretvalue")})
    server, clock, auth, transport = await _setup(local_server, events, store=store)
    server.valid_refresh.add("refresh-0-secretvalue")
    auth.obtain = None
    with pytest.raises(OSError, match="database unavailable"):
        await transport.send(Request("GET", "/data"))  # the save failed: the caller hears about it
    # the rotated token is kept in memory, so the next call works without a spent refresh token
    assert (await transport.send(Request("GET", "/data"))).status == 200
    await transport.aclose()
    assert server.token_requests == ["refresh_token"]


async def test_after_a_failed_save_the_stale_stored_token_is_not_adopted(local_server) -> None:
    events: list[str] = []
    store = FlakyStore({"cid@test": Token(access_token="old", refresh_token="refresh-0-secretvalue")})
    server, clock, auth, transport = await _setup(local_server, events, store=store)
    server.valid_refresh.add("refresh-0-secretvalue")
    auth.obtain = None
    store.fail = True
    with pytest.raises(OSError, match="database unavailable"):
        await transport.send(Request("GET", "/data"))  # refresh-0 spent, refresh-1 kept in memory only
    store.fail = False
    clock.now += dt.timedelta(hours=2)  # the next renewal must use refresh-1, not the store's spent refresh-0
    assert (await transport.send(Request("GET", "/data"))).status == 200
    await transport.aclose()
    assert server.token_requests == ["refresh_token", "refresh_token"]
    assert store.tokens["cid@test"].refresh_token == "refresh-2-secretvalue"


class FlakyStore(MemoryTokenStore):
    fail = False

    async def save(self, key: str, token: Token) -> None:
        if self.fail:
            raise OSError("database unavailable")
        await super().save(key, token)


async def test_a_token_that_looks_expired_on_arrival_is_kept_until_a_401(local_server) -> None:
    """The token server's clock is hours behind ours: each token's expiry is already past when it arrives."""
    clock = Clock()
    grants: list[int] = []

    async def obtain(_transport: Transport) -> Token:
        grants.append(1)
        return Token(access_token=f"token-{len(grants)}", expires_at=clock() - dt.timedelta(hours=3))

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", handler)
    base = await local_server(app)
    auth = TokenAuth(store_key="skew", obtain=obtain, clock=clock)
    transport = Transport(TransportConfig(backend="skewed", base_url=base), auth=auth)
    for _ in range(10):
        await transport.send(Request("GET", "/x"))
    await transport.aclose()
    assert len(grants) == 1  # not one renewal per request
    assert (await auth.token(transport)).expires_at is None  # an expiry past at issue is not believed


async def test_a_token_within_the_refresh_margin_at_issue_is_not_renewed_before_every_request() -> None:
    clock = Clock()
    grants: list[int] = []

    async def obtain(_transport: Transport) -> Token:
        grants.append(1)
        return Token(access_token=f"short-{len(grants)}", expires_at=clock() + dt.timedelta(seconds=30))

    auth = TokenAuth(store_key="short", obtain=obtain, clock=clock, refresh_margin=dt.timedelta(seconds=60))
    transport = Transport(TransportConfig(backend="short", base_url="http://127.0.0.1:9"), auth=auth)
    for _ in range(5):
        await auth.apply(transport, {}, {})
    assert len(grants) == 1
