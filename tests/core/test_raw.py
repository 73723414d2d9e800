"""`ledger.raw()`: the same retries, 401 renewal, limits and deadline as every other call, the final response
returned whatever its status, `data` sent, unknown keyword arguments refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.http_adapter import HttpAdapter
from accounting_bridge.ledger import Capability
from accounting_bridge.testing import FakeSleep
from accounting_bridge.transport import AuthStrategy, Request, Token, TokenAuth, Transport, TransportConfig

Start = Callable[[web.Application], Awaitable[str]]


class RawAdapter(HttpAdapter):
    name = "rawtest"
    capabilities = frozenset({Capability.RAW})

    def __init__(self, transport: Transport) -> None:
        self.transport = transport


def make_ledger(base: str, *, auth: AuthStrategy | None = None) -> ab.Ledger:
    transport = Transport(TransportConfig(backend="rawtest", base_url=base), auth=auth, sleep=FakeSleep())
    return ab.Ledger(RawAdapter(transport))


async def test_raw_retries_a_503_like_any_call(local_server: Start) -> None:
    calls = {"n": 0}

    async def busy_once(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return web.Response(status=503, headers={"Retry-After": "0"})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/things", busy_once)
    async with make_ledger(await local_server(app)) as ledger:
        response = await ledger.raw("GET", "/things")
        assert response.status == 200 and response.json() == {"ok": True}
        assert ledger.adapter.transport.attempts == 2


async def test_raw_renews_a_refused_token_once(local_server: Start) -> None:
    issued: list[str] = []

    async def obtain(_transport: Transport) -> Token:
        issued.append(f"tok-{len(issued) + 1}")
        return Token(access_token=issued[-1])

    async def protected(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer tok-2":
            return web.json_response({"error": "expired"}, status=401)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/me", protected)
    auth = TokenAuth(store_key="raw-renewal", obtain=obtain)
    async with make_ledger(await local_server(app), auth=auth) as ledger:
        response = await ledger.raw("GET", "/me")
    assert response.status == 200
    assert issued == ["tok-1", "tok-2"]  # one renewal after the 401


async def test_raw_returns_the_final_error_response_instead_of_raising(local_server: Start) -> None:
    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"message": "no such thing"}, status=404)

    app = web.Application()
    app.router.add_get("/gone", missing)
    async with make_ledger(await local_server(app)) as ledger:
        response = await ledger.raw("GET", "/gone")
        assert response.status == 404 and ledger.adapter.transport.attempts == 1


async def test_raw_sends_data_as_a_form_or_as_the_body(local_server: Start) -> None:
    received: list[tuple[str, bytes]] = []

    async def echo(request: web.Request) -> web.Response:
        received.append((request.content_type, await request.read()))
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/forms", echo)
    async with make_ledger(await local_server(app)) as ledger:
        assert (await ledger.raw("POST", "/forms", data={"name": "Muster AG", "city": "Bern"})).status == 201
        assert (await ledger.raw("POST", "/forms", data=b"<x/>", headers={"Content-Type": "text/xml"})).status == 201
    assert received[0] == ("application/x-www-form-urlencoded", b"name=Muster+AG&city=Bern")
    assert received[1] == ("text/xml", b"<x/>")


async def test_raw_refuses_unknown_keyword_arguments_by_name() -> None:
    async with make_ledger("http://127.0.0.1:9") as ledger:
        with pytest.raises(ab.ConfigurationError, match="timeout, verify_ssl"):
            await ledger.raw("GET", "/x", timeout=3, verify_ssl=False)
        with pytest.raises(ab.ConfigurationError, match="one of"):
            await ledger.raw("POST", "/x", json={}, data={"a": "b"})
        assert ledger.adapter.transport.attempts == 0


async def test_raw_refuses_an_absolute_url_of_another_origin_before_sending_the_credential(
    local_server: Start,
) -> None:
    seen: list[str] = []

    async def spy(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", spy)
    base = await local_server(app)
    elsewhere = await local_server(app)  # same host, another port: another origin

    async def obtain(_transport: Transport) -> Token:
        return Token(access_token="tok-secret")

    async with make_ledger(base, auth=TokenAuth(store_key="raw-origin", obtain=obtain)) as ledger:
        with pytest.raises(ab.ConfigurationError, match="origin"):
            await ledger.raw("GET", f"{elsewhere}/collect")
        assert seen == [] and ledger.adapter.transport.attempts == 0
        assert (await ledger.raw("GET", f"{base}/same-origin")).status == 200  # its own origin is fine
    assert seen == ["Bearer tok-secret"]


async def test_the_transport_sends_no_credential_to_another_origin() -> None:
    async def obtain(_transport: Transport) -> Token:
        raise AssertionError("no credential is fetched for a refused request")  # pragma: no cover

    transport = Transport(
        TransportConfig(backend="rawtest", base_url="http://127.0.0.1:9/api"),
        auth=TokenAuth(store_key="raw-origin-transport", obtain=obtain),
    )
    with pytest.raises(ab.ConfigurationError, match="another origin"):
        await transport.send(Request("GET", "https://collector.example/x"))
    assert transport.attempts == 0
    await transport.aclose()


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({"X-Trace": "a\r\nInjected: 1"}, "headers[X-Trace]"),
        ({"X-Trace\r\nInjected": "1"}, "headers['X-Trace\\r\\nInjected']"),
        ({"Bad Name": "1"}, "headers['Bad Name']"),
        ({"X-Trace": 7}, "headers[X-Trace]"),
    ],
)
async def test_raw_refuses_a_header_that_could_split_the_request(headers: dict[str, Any], field: str) -> None:
    async with make_ledger("http://127.0.0.1:9") as ledger:
        with pytest.raises(ab.ValidationError) as info:
            await ledger.raw("GET", "/x", headers=headers)
        assert [e.path for e in info.value.errors] == [field]
        assert "Injected: 1" not in str(info.value)  # the value is never echoed
        assert ledger.adapter.transport.attempts == 0


@pytest.mark.parametrize("params", [{"q": "bad\udcff"}, {"bad\ud800": "1"}])
async def test_raw_refuses_params_with_a_lone_surrogate(params: dict[str, str]) -> None:
    async with make_ledger("http://127.0.0.1:9") as ledger:
        with pytest.raises(ab.ValidationError, match="surrogate") as info:
            await ledger.raw("GET", "/x", params=params)
        assert info.value.errors[0].path.startswith("params[")
        assert ledger.adapter.transport.attempts == 0


async def test_raw_sends_a_caller_header_unchanged(local_server: Start) -> None:
    received: list[str] = []

    async def echo(request: web.Request) -> web.Response:
        received.append(request.headers["X-Note"])
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/note", echo)
    async with make_ledger(await local_server(app)) as ledger:
        assert (await ledger.raw("GET", "/note", headers={"X-Note": "50% off"})).status == 200
    assert received == ["50% off"]  # not percent-encoded


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda ledger: ledger.raw("GE T", "customers"), "method"),
        (lambda ledger: ledger.raw("GET\r\n", "customers"), "method"),
        (lambda ledger: ledger.raw("GET", "customers", params={"a": None}), "params['a']"),
        (lambda ledger: ledger.raw("GET", "customers", params={1: "x"}), "params[1]"),
        (lambda ledger: ledger.raw("POST", "customers", body=5), "body"),
    ],
    ids=["space-in-method", "crlf-in-method", "none-param", "int-param-name", "int-body"],
)
async def test_raw_refuses_a_bad_method_param_or_body_before_sending(call: Any, field: str) -> None:
    async with ab.connect("runmyaccounts", tenant="demo", api_key="raw-secret-key", base_url="http://127.0.0.1:9") as ledger:
        with pytest.raises(ab.ValidationError) as info:
            await call(ledger)
        assert field in info.value.fields
        assert ledger.adapter.transport.attempts == 0  # type: ignore[attr-defined]
