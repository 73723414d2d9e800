"""Retry decisions of the transport: N failures then success, 429 handling, write safety, deadline, leaks."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge.transport import Request, RetryPolicy, Transport, TransportConfig, parse_retry_after

BASE = "http://backend.test/api"


def make_transport(fake_sleep: object, base_url: str = BASE, **policy: object) -> Transport:
    config = TransportConfig(backend="test", base_url=base_url, retry=RetryPolicy(**policy))  # type: ignore[arg-type]
    return Transport(config, sleep=fake_sleep)  # type: ignore[arg-type]


@pytest.mark.parametrize("failures", [0, 1, 3])
async def test_read_succeeds_after_n_failures(mock_http, fake_sleep, failures: int) -> None:
    for _ in range(failures):
        mock_http.get(f"{BASE}/items", status=503)
    mock_http.get(f"{BASE}/items", status=200, payload={"ok": True})
    transport = make_transport(fake_sleep, max_retries=3)
    response = await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert response.status == 200 and response.json() == {"ok": True}
    assert transport.attempts == failures + 1
    assert len(fake_sleep.delays) == failures
    for n, delay in enumerate(fake_sleep.delays, start=1):
        assert 0.75 * 0.5 * 2 ** (n - 1) <= delay <= 0.5 * 2 ** (n - 1)


async def test_retries_exhausted_raise_the_typed_error_with_request_id(mock_http, fake_sleep, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="accounting_bridge")
    for _ in range(3):
        mock_http.get(f"{BASE}/items", status=502, headers={"X-Request-Id": "req-42"}, payload={"message": "down"})
    transport = make_transport(fake_sleep, max_retries=2)
    with pytest.raises(ab.ServerError) as info:
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert info.value.status == 502 and info.value.request_id == "req-42"
    assert "down" in str(info.value) and "req-42" in str(info.value)
    assert transport.attempts == 3
    debug_lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in debug_lines] == ["test attempt 1", "test attempt 2", "test attempt 3"]
    assert all("GET http://backend.test/api/items -> 502" in line and "request_id=req-42" in line for line in debug_lines)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"Retry-After": "2"}, 2.0), ({"X-Rate-Limit-Reset": "3"}, 3.0), ({"Retry-After": "1", "X-Rate-Limit-Reset": "5"}, 1.0)],
)
async def test_429_waits_what_the_server_says(mock_http, fake_sleep, headers: dict[str, str], expected: float) -> None:
    mock_http.get(f"{BASE}/items", status=429, headers=headers)
    mock_http.get(f"{BASE}/items", status=200, payload={})
    transport = make_transport(fake_sleep)
    assert (await transport.send(Request("GET", "/items"))).status == 200
    await transport.aclose()
    assert fake_sleep.delays == [expected]


async def test_429_without_headers_backs_off(mock_http, fake_sleep) -> None:
    mock_http.get(f"{BASE}/items", status=429)
    mock_http.get(f"{BASE}/items", status=429)
    mock_http.get(f"{BASE}/items", status=200, payload={})
    transport = make_transport(fake_sleep)
    await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert len(fake_sleep.delays) == 2
    assert 0.375 <= fake_sleep.delays[0] <= 0.5 and 0.75 <= fake_sleep.delays[1] <= 1.0


async def test_429_with_a_long_wait_is_raised_not_slept(mock_http, fake_sleep) -> None:
    mock_http.get(f"{BASE}/items", status=429, headers={"Retry-After": "86400"})
    transport = make_transport(fake_sleep)
    with pytest.raises(ab.RateLimited) as info:
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert info.value.retry_after == 86400.0 and fake_sleep.delays == []


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
async def test_client_errors_are_not_retried(mock_http, fake_sleep, status: int) -> None:
    mock_http.get(f"{BASE}/items", status=status, payload={"message": "nope"})
    transport = make_transport(fake_sleep)
    with pytest.raises(ab.BackendError) as info:
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert info.value.status == status and transport.attempts == 1
    assert isinstance(info.value, ab.errors.error_for_status(status))


async def test_ambiguous_write_without_lookup_is_write_outcome_unknown(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/invoices", status=500)
    transport = make_transport(fake_sleep)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await transport.send(Request("POST", "/invoices", json={"n": 1}, reference="R-7"))
    await transport.aclose()
    assert transport.attempts == 1 and info.value.reference == "R-7"


async def test_write_rejected_with_429_is_resent(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/invoices", status=429, headers={"Retry-After": "1"})
    mock_http.post(f"{BASE}/invoices", status=201, payload={"id": 1})
    transport = make_transport(fake_sleep)
    assert (await transport.send(Request("POST", "/invoices", json={}))).status == 201
    await transport.aclose()
    assert transport.attempts == 2


async def test_ambiguous_write_is_resent_only_after_lookup_confirms_absence(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/invoices", status=503)
    mock_http.post(f"{BASE}/invoices", status=201, payload={"id": 1})
    lookups: list[bool] = []

    async def absent() -> bool:
        lookups.append(False)
        return False

    transport = make_transport(fake_sleep)
    response = await transport.send(Request("POST", "/invoices", json={}), lookup=absent)
    await transport.aclose()
    assert response.status == 201 and lookups == [False] and transport.attempts == 2


async def test_ambiguous_write_found_by_lookup_is_not_resent(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/invoices", status=504)

    async def present() -> bool:
        return True

    transport = make_transport(fake_sleep)
    response = await transport.send(Request("POST", "/invoices", json={}), lookup=present)
    await transport.aclose()
    assert response.confirmed_by_lookup and transport.attempts == 1


async def test_failing_lookup_gives_write_outcome_unknown(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/invoices", status=500)

    async def broken() -> bool:
        raise ab.TransportError("lookup failed")

    transport = make_transport(fake_sleep)
    with pytest.raises(ab.WriteOutcomeUnknown):
        await transport.send(Request("POST", "/invoices", json={}, reference="R-9"), lookup=broken)
    await transport.aclose()


async def test_deadline_stops_retrying(mock_http, fake_sleep) -> None:
    for _ in range(5):
        mock_http.get(f"{BASE}/items", status=503, headers={"Retry-After": "30"})
    transport = make_transport(fake_sleep, max_retries=4, deadline=45.0)
    transport.clock = fake_sleep.clock
    with pytest.raises(ab.ServerError):
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert fake_sleep.delays == [30.0]  # a second 30 s wait would cross the 45 s deadline


# --- real sockets ------------------------------------------------------------------------------------------------


def _open_connections(transport: Transport) -> int:
    connector = transport.session.connector
    assert connector is not None
    return len(connector._acquired)  # type: ignore[attr-defined]


async def test_no_connection_leaks_after_retries(local_server: Callable[[web.Application], Awaitable[str]], fake_sleep) -> None:
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return web.json_response({"message": "busy"}, status=503)
        return web.json_response({"ok": True})

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application()
    app.router.add_get("/flaky", flaky)
    app.router.add_get("/drop", drop)
    base = await local_server(app)
    transport = make_transport(fake_sleep, base_url=base, max_retries=3)
    assert (await transport.send(Request("GET", "/flaky"))).status == 200
    with pytest.raises(ab.TransportError):
        await transport.send(Request("GET", "/drop"))
    assert transport.attempts == 3 + 4
    assert _open_connections(transport) == 0
    session = transport.session
    await transport.aclose()
    assert session.closed
    with pytest.raises(ab.ConfigurationError):
        await transport.send(Request("GET", "/flaky"))


async def test_dropped_connection_after_commit_is_not_resent(local_server, fake_sleep) -> None:
    stored: list[bytes] = []

    async def create(request: web.Request) -> web.Response:
        stored.append(await request.read())
        assert request.transport is not None
        request.transport.close()  # committed, then the answer is lost
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/invoices", create)
    base = await local_server(app)
    transport = make_transport(fake_sleep, base_url=base)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await transport.send(Request("POST", "/invoices", json={"number": "R-1"}, reference="R-1"))
    await transport.aclose()
    assert len(stored) == 1 and info.value.reference == "R-1"


async def test_connection_refused_write_is_retried_then_transport_error(fake_sleep) -> None:
    transport = make_transport(fake_sleep, base_url="http://127.0.0.1:9", max_retries=2)
    with pytest.raises(ab.TransportError) as info:
        await transport.send(Request("POST", "/invoices", json={}))
    await transport.aclose()
    assert not isinstance(info.value, ab.WriteOutcomeUnknown)
    assert transport.attempts == 3  # never reached the server, so resending cannot duplicate


async def test_shared_session_is_not_closed(local_server, fake_sleep) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/ok", ok)
    base = await local_server(app)
    async with aiohttp.ClientSession() as shared:
        config = TransportConfig(backend="test", base_url=base)
        transport = Transport(config, session=shared, sleep=fake_sleep)
        await transport.send(Request("GET", "/ok"))
        await transport.aclose()
        assert not shared.closed


async def test_per_attempt_timeout_then_retry(local_server, fake_sleep) -> None:
    calls = {"n": 0}

    async def slow_once(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(0.6)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/slow", slow_once)
    base = await local_server(app)
    transport = Transport(TransportConfig(backend="test", base_url=base, timeout=0.2), sleep=fake_sleep)
    response = await transport.send(Request("GET", "/slow"))
    await transport.aclose()
    assert response.status == 200 and calls["n"] == 2 and len(fake_sleep.delays) == 1


async def test_unsettled_failure_asks_the_lookup_until_settled(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/payments", status=504)
    mock_http.post(f"{BASE}/payments", status=201, payload={"id": 1})
    answers = iter([False, False, False])
    asked: list[int] = []

    async def lookup() -> bool:
        asked.append(1)
        return next(answers)

    transport = make_transport(fake_sleep, settle_delay=0.7, settle_checks=3)
    response = await transport.send(Request("POST", "/payments", json={}), lookup=lookup)
    await transport.aclose()
    assert len(asked) == 3 and fake_sleep.delays[:2] == [0.7, 0.7]
    assert response.status == 201 and transport.attempts == 2


async def test_slow_commit_after_client_timeout_is_found_not_resent(local_server) -> None:
    stored: list[bytes] = []
    received: list[bytes] = []

    async def create(request: web.Request) -> web.Response:
        body = await request.read()
        received.append(body)
        await asyncio.sleep(0.4)  # still working when the client gives up
        stored.append(body)
        return web.Response(status=201)

    async def find(request: web.Request) -> web.Response:
        return web.json_response({"count": len(stored)})

    app = web.Application()
    app.router.add_post("/payments", create)
    app.router.add_get("/payments", find)
    base = await local_server(app)
    config = TransportConfig(
        backend="test", base_url=base, timeout=0.2, retry=RetryPolicy(settle_delay=0.3, settle_checks=3)
    )
    transport = Transport(config)  # real sleeping: the backend needs the time to finish

    async def landed() -> bool:
        return (await transport.send(Request("GET", "/payments"))).json()["count"] > 0

    response = await transport.send(Request("POST", "/payments", json={"amount": "10.00"}), lookup=landed)
    await transport.aclose()
    assert response.confirmed_by_lookup
    assert len(received) == 1  # never resent
    await asyncio.sleep(0.5)
    assert len(stored) == 1


def test_request_repr_hides_bodies_and_headers() -> None:
    request = Request(
        "POST", "/tokens", json={"password": "hunter2-secret"}, headers={"Authorization": "Bearer tok-secret"}
    )
    assert "hunter2-secret" not in repr(request) and "tok-secret" not in repr(request)


async def test_conflict_on_a_resend_after_a_lost_answer_means_the_write_landed(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/belege", status=502)
    mock_http.post(f"{BASE}/belege", status=409, payload={"error": "Dieses Dokument wurde bereits hochgeladen."})
    transport = make_transport(fake_sleep)
    response = await transport.send(Request("POST", "/belege", body=b"pdf", conflict_means_landed=True))
    assert response.confirmed_by_lookup and transport.attempts == 2
    mock_http.post(f"{BASE}/belege", status=409, payload={"error": "Dieses Dokument wurde bereits hochgeladen."})
    with pytest.raises(ab.Conflict):  # a first attempt's 409 is a real conflict
        await transport.send(Request("POST", "/belege", body=b"pdf", conflict_means_landed=True))
    await transport.aclose()


@pytest.mark.parametrize("status", [520, 522, 524, 599])
async def test_any_gateway_5xx_on_a_write_is_ambiguous(mock_http, fake_sleep, status: int) -> None:
    mock_http.post(f"{BASE}/payments", status=status)
    transport = make_transport(fake_sleep)
    with pytest.raises(ab.WriteOutcomeUnknown):
        await transport.send(Request("POST", "/payments", json={}, reference="P-1"))
    mock_http.post(f"{BASE}/payments", status=status)
    asked: list[bool] = []

    async def present() -> bool:
        asked.append(True)
        return True

    assert (await transport.send(Request("POST", "/payments", json={}), lookup=present)).confirmed_by_lookup
    await transport.aclose()
    assert asked == [True]


async def test_deduplicated_write_is_resent_only_after_the_settle_time(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/belege", status=504)
    mock_http.post(f"{BASE}/belege", status=201, payload={"id": 1})
    transport = make_transport(fake_sleep, settle_delay=1.5, settle_checks=3)
    response = await transport.send(Request("POST", "/belege", body=b"pdf", conflict_means_landed=True))
    await transport.aclose()
    assert response.status == 201 and fake_sleep.delays == [3.0]


async def test_deduplicated_write_that_runs_out_of_attempts_after_a_lost_answer_is_unknown(mock_http, fake_sleep) -> None:
    mock_http.post(f"{BASE}/belege", status=502)
    for _ in range(3):
        mock_http.post(f"{BASE}/belege", status=503)
    transport = make_transport(fake_sleep, max_retries=3)
    with pytest.raises(ab.WriteOutcomeUnknown) as info:
        await transport.send(Request("POST", "/belege", body=b"pdf", conflict_means_landed=True, reference="a.pdf"))
    await transport.aclose()
    assert info.value.reference == "a.pdf" and transport.attempts == 4


# --- odd Retry-After / X-Rate-Limit-Reset values ---------------------------------------------------------------

NOW = 1_800_000_000.0  # a fixed wall-clock time (2027-01-15)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", "-1", "-0.5", "99999999999", "soon"])
def test_unusable_retry_after_values_are_ignored(value: str) -> None:
    assert parse_retry_after({"Retry-After": value}, now=NOW) is None


def test_an_ignored_retry_after_falls_back_to_the_reset_header() -> None:
    assert parse_retry_after({"Retry-After": "nan", "X-Rate-Limit-Reset": "4"}, now=NOW) == 4.0


@pytest.fixture
def far_from_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is not UTC (a naive date read as local time would be hours off)."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["-0000", "+0000", "GMT"])
def test_a_retry_after_date_in_utc_is_read_as_utc_whatever_its_spelling(far_from_utc: None, zone: str) -> None:
    when = email.utils.formatdate(NOW + 30, usegmt=False).rsplit(" ", 1)[0] + f" {zone}"
    assert parse_retry_after({"Retry-After": when}, now=NOW) == pytest.approx(30.0)


def test_a_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after({"Retry-After": email.utils.formatdate(NOW - 60, usegmt=True)}, now=NOW) == 0.0


def test_an_epoch_rate_limit_reset_is_an_absolute_time() -> None:
    assert parse_retry_after({"X-Rate-Limit-Reset": str(int(NOW) + 42)}, now=NOW) == pytest.approx(42.0)
    assert parse_retry_after({"X-Rate-Limit-Reset": "42"}, now=NOW) == 42.0


async def test_a_429_with_retry_after_nan_backs_off_within_the_deadline(mock_http, fake_sleep) -> None:
    for _ in range(10):
        mock_http.get(f"{BASE}/items", status=429, headers={"Retry-After": "nan"})
    transport = make_transport(fake_sleep, max_retries=9, deadline=5.0)
    transport.clock = fake_sleep.clock
    with pytest.raises(ab.RateLimited):
        await transport.send(Request("GET", "/items"))
    await transport.aclose()
    assert all(math.isfinite(d) for d in fake_sleep.delays)
    assert sum(fake_sleep.delays) < 5.0


# --- a DELETE whose answer was lost ------------------------------------------------------------------------------


async def test_a_delete_whose_answer_was_lost_and_whose_resend_finds_nothing_succeeds(local_server, fake_sleep) -> None:
    documents = {"7": b"pdf"}

    async def delete(request: web.Request) -> web.Response:
        if documents.pop(request.match_info["id"], None) is None:
            return web.json_response({"message": "no such document"}, status=404)
        assert request.transport is not None
        request.transport.close()  # deleted, then the answer is lost
        return web.Response(status=204)

    app = web.Application()
    app.router.add_delete("/documents/{id}", delete)
    transport = make_transport(fake_sleep, base_url=await local_server(app))
    response = await transport.send(Request("DELETE", "/documents/7"))
    assert response.confirmed_by_lookup and response.status == 404
    assert transport.attempts == 2 and documents == {}
    with pytest.raises(ab.NotFound):  # a first attempt's 404 is a real "not found"
        await transport.send(Request("DELETE", "/documents/8"))
    await transport.aclose()


# --- URLs aiohttp would refuse -----------------------------------------------------------------------------------


@pytest.mark.parametrize("base_url", ["ftp://files.example/api", "http://", "mailto:x@example.com", "example.com/api"])
def test_a_base_url_that_is_not_http_fails_at_connect(base_url: str) -> None:
    with pytest.raises(ab.ConfigurationError, match="base_url") as info:
        ab.connect("runmyaccounts", tenant="t", api_key="k", base_url=base_url)
    assert "x@example.com" not in str(info.value)  # the URL itself is not echoed (it may carry a secret)
    with pytest.raises(ab.ConfigurationError):
        Transport(TransportConfig(backend="test", base_url=base_url))


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_an_absolute_path_that_is_not_http_is_a_configuration_error(fake_sleep, method: str) -> None:
    transport = make_transport(fake_sleep)
    with pytest.raises(ab.ConfigurationError, match="ftp://"):
        await transport.send(Request(method, "ftp://files.example/upload", json={}))
    await transport.aclose()
    assert transport.attempts == 0 and fake_sleep.delays == []


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_url_aiohttp_refuses_is_a_configuration_error_not_retried(fake_sleep, method: str) -> None:
    transport = make_transport(fake_sleep)
    transport.url = lambda path: "ftp://files.example/upload"  # type: ignore[method-assign]  # past the check
    with pytest.raises(ab.ConfigurationError) as info:
        await transport.send(Request(method, "/upload", json={}))
    await transport.aclose()
    assert not isinstance(info.value, ab.WriteOutcomeUnknown)
    assert transport.attempts == 1 and fake_sleep.delays == []
