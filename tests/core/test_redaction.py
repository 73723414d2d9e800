"""Secrets never reach a log line, an exception text or a repr."""

from __future__ import annotations

import logging
import re
import threading

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import (
    ApiKeyQuery,
    OAuth2Client,
    Redactor,
    Request,
    TokenAuth,
    Transport,
    TransportConfig,
)

API_KEY = "sk-live-0123456789abcdef"
ACCESS = "eyJhbGciOi-access-token-abc"
REFRESH = "rt-refresh-token-xyz-987"
CLIENT_SECRET = "client-secret-shh-42"


async def test_api_key_and_tokens_never_reach_logs_or_errors(local_server, caplog, fake_sleep) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"access_token": ACCESS, "refresh_token": REFRESH, "expires_in": 3600})

    async def fail(request: web.Request) -> web.Response:
        # a careless backend echoes the credentials back in its error body
        return web.json_response(
            {"message": f"bad key {request.query.get('api_key')} / {request.headers.get('Authorization')}"}, status=500
        )

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/fail", fail)
    app.router.add_post("/fail", fail)
    app.router.add_get("/drop", drop)
    base = await local_server(app)
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")

    texts: list[str] = []
    keyed = Transport(TransportConfig(backend="redact", base_url=base), auth=ApiKeyQuery(API_KEY), sleep=fake_sleep)
    client = OAuth2Client(token_url=f"{base}/token", client_id="cid", client_secret=CLIENT_SECRET)
    bearer = Transport(
        TransportConfig(backend="redact-oauth", base_url=base),
        auth=TokenAuth(store_key="cid", obtain=client.client_credentials, refresh=client.refresh_token),
        secrets=client.secrets(),
        sleep=fake_sleep,
    )
    for transport in (keyed, bearer):
        for path in ("/fail", "/drop"):
            with pytest.raises(ab.AccountingError) as info:
                await transport.send(Request("GET", path, params={"page": "1"}))
            texts += [str(info.value), repr(info.value), repr(getattr(info.value, "detail", None))]
        with pytest.raises(ab.WriteOutcomeUnknown) as unknown:
            await transport.send(Request("POST", "/fail", json={}))
        texts += [str(unknown.value), repr(transport)]
        await transport.aclose()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "attempt 1" in logged and "/fail" in logged and "api_key=***" in logged  # the lines exist
    everything = logged + "\n".join(texts)
    for secret in (API_KEY, ACCESS, REFRESH, CLIENT_SECRET):
        assert secret not in everything


def test_settings_and_ledger_reprs_hide_secrets() -> None:
    auth = ApiKeyQuery(API_KEY)
    assert API_KEY not in repr(auth)
    assert ACCESS not in repr(ab.Token(access_token=ACCESS, refresh_token=REFRESH))
    assert REFRESH not in repr(ab.Token(access_token=ACCESS, refresh_token=REFRESH))


def test_redactor_masks_query_parameters_and_known_values() -> None:
    redactor = Redactor([API_KEY])
    url = redactor.url(f"https://x.test/api?api_key={API_KEY}&from=2026-01-01&token=abc")
    assert API_KEY not in url and "token=***" in url and "from=2026-01-01" in url
    assert redactor.text(f"key {API_KEY} leaked") == "key *** leaked"
    assert redactor.headers({"Authorization": "Bearer x", "Accept": "application/json"}) == {
        "Authorization": "***",
        "Accept": "application/json",
    }


def test_redactor_masks_percent_encoded_secrets() -> None:
    secret = "k+y/ab=cd ef&gh~!*"
    redactor = Redactor([secret])
    for shown in (
        "k%2By%2Fab%3Dcd%20ef%26gh~!*",  # aiohttp / RFC 3986
        "k%2By%2Fab%3Dcd+ef%26gh%7E%21%2A",  # PHP urlencode, Java URLEncoder
        "k%2by%2fab%3dcd%20ef%26gh~!*",  # lower-case hex
        "k%252By%252Fab%253Dcd%2520ef%2526gh~!*",  # double-encoded
        secret,
    ):
        assert redactor.text(f"Connection timeout to host https://x.test/?q={shown}") == (
            "Connection timeout to host https://x.test/?q=***"
        )


async def test_a_long_error_body_is_cut_only_after_redaction(mock_http, fake_sleep) -> None:
    from accounting_bridge.transport import TransportConfig as Config

    body = "x" * 290 + API_KEY + "y" * 300  # the key straddles the old 300-character cut
    mock_http.get(re.compile(r"http://backend\.test/items.*"), status=404, body=body, content_type="text/html")
    transport = Transport(Config(backend="cut", base_url="http://backend.test"), auth=ApiKeyQuery(API_KEY), sleep=fake_sleep)
    with pytest.raises(ab.NotFound) as info:
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert API_KEY[:8] not in str(info.value) and "***" in str(info.value)


async def test_renewals_do_not_grow_the_redactor() -> None:
    """A long-running ledger renews its token a thousand times: the redactor keeps the configured secrets plus the
    current and previous token, no more (bounded memory, and a pattern of constant size to match)."""
    from accounting_bridge.transport import Token

    issued: list[Token] = []

    async def obtain(_transport: Transport) -> Token:
        n = len(issued)
        issued.append(Token(access_token=f"access-token-number-{n:04d}", refresh_token=f"refresh-token-{n:04d}"))
        return issued[-1]

    auth = TokenAuth(store_key="long-running", obtain=obtain)
    transport = Transport(TransportConfig(backend="redact-growth", base_url="http://x.test"), auth=auth,
                          secrets=(CLIENT_SECRET,))  # fmt: skip
    sizes = []
    for _ in range(1000):
        await auth.apply(transport, {}, {})
        await auth.renew_after_401(transport, await auth.token(transport))
        sizes.append(len(transport.redactor))
    await auth.apply(transport, {}, {})
    assert len(issued) == 1001
    assert max(sizes) <= 5  # the client secret, and access + refresh token of the current and previous token
    redactor = transport.redactor
    first, previous, current = issued[0], issued[-2], issued[-1]
    assert redactor.text(first.access_token) == first.access_token  # superseded long ago: dropped
    assert redactor.text(f"{previous.access_token} {current.access_token}") == "*** ***"
    assert redactor.text(f"{current.refresh_token} {CLIENT_SECRET}") == "*** ***"


def test_the_pattern_is_rebuilt_only_when_needed_and_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor([CLIENT_SECRET])
    redactor.rotate("slot", ACCESS, REFRESH)
    assert redactor.text(ACCESS) == "***"
    compiled: list[str] = []
    original = re.compile

    def counting(pattern: str, flags: int = 0) -> re.Pattern[str]:
        compiled.append(pattern)
        return original(pattern, flags)

    monkeypatch.setattr(re, "compile", counting)
    for _ in range(100):
        redactor.rotate("slot", ACCESS, REFRESH)  # what every request does
        assert redactor.text(f"{ACCESS} {CLIENT_SECRET}") == "*** ***"
    assert compiled == []
    for n in range(100):  # renewals with nothing to redact in between
        redactor.rotate("slot", f"a-new-access-token-{n}", f"a-new-refresh-token-{n}")
    assert compiled == []
    assert redactor.text("a-new-access-token-99 a-new-access-token-98 a-new-access-token-97") == (
        "*** *** a-new-access-token-97"
    )
    assert len(compiled) == 1


def test_a_token_rotated_by_another_thread_during_a_rebuild_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from accounting_bridge.transport import redact

    redactor = Redactor(["client-secret-value"])
    redactor.rotate("credential", "old-access-token-value")
    compile_pattern = re.compile
    rotated: list[bool] = []

    def compile_while_another_thread_rotates(pattern: str, *args: int) -> re.Pattern[str]:
        if not rotated:  # another thread (event loop) renews the token while this one rebuilds the pattern
            rotated.append(True)
            other = threading.Thread(target=redactor.rotate, args=("credential", "new-access-token-value"))
            other.start()
            other.join()
        return compile_pattern(pattern, *args)

    monkeypatch.setattr(redact.re, "compile", compile_while_another_thread_rotates)
    redactor.text("rebuild")
    monkeypatch.setattr(redact.re, "compile", compile_pattern)
    assert rotated
    assert redactor.text("Bearer new-access-token-value") == "Bearer ***"
    assert redactor.text("Bearer old-access-token-value") == "Bearer ***"  # the previous one stays masked
