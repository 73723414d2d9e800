"""Every adapter's read path against a hostile server: each answer ends in a typed error, within the deadline
(plus a scheduling margin), with bounded memory, and without a secret in the error text.

The auth steps (smallinvoice's token endpoint, Multi-Regnskab's /login and /companies) answer normally; only
the read under test is hostile, and it is only served to a request that carries the credential.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import zlib
import zoneinfo
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from accounting_bridge.adapters.multiregnskab import wire as mr_wire
from aiohttp import web

import accounting_bridge as ab

from .hostile import (
    Behaviour,
    GzipBomb,
    HostileServer,
    MiB,
    build_gzip_bomb,
    endless_chunked,
    fixed,
    gzip_bomb,
    huge_content_length,
    silent,
    trickle,
)
from .probes import Cost, measure

DEADLINE = 1.0
#: Per attempt, and longer than the deadline: only a real deadline ends a stalled read in time.
TIMEOUT = 3.0
#: Scheduling slack on a loaded 2-core machine; an upper bound only.
MARGIN = 1.5
#: Above the bomb's compressed size (~1 MB), far below what it inflates to: the limit must count decompressed bytes.
SMALL_LIMIT = 2 * MiB
SMALL_LIMIT_MEMORY = 32 * MiB
DEFAULT_LIMIT = 64 * MiB  # the documented default of `max_response_bytes`
DEFAULT_LIMIT_DEADLINE = 2.0
DEFAULT_LIMIT_MEMORY = 200 * MiB
COMPANY_XID = 1002


# --- credentials and targets -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Fresh per test: no token slot, token store key or rate limiter is shared with another test."""

    user: str
    secret: str
    token: str
    refresh: str

    @classmethod
    def fresh(cls) -> Credentials:
        return cls(
            user="hostile-" + secrets.token_hex(6),
            secret="sec-" + secrets.token_urlsafe(18),
            token="tok-" + secrets.token_urlsafe(18),
            refresh="ref-" + secrets.token_urlsafe(18),
        )

    def named(self) -> dict[str, str]:
        return {"secret": self.secret, "token": self.token, "refresh token": self.refresh}


@dataclass(frozen=True)
class Target:
    """One adapter's read path: how to connect, which request the read sends, and how it is authorised."""

    name: str
    wire: str  # "json" or "xml": what the read expects on the wire
    connect: Callable[..., ab.Ledger]  # (base_url, credentials, **settings)
    read_path: Callable[[Credentials], str]
    authorised: Callable[[web.Request, Credentials], bool]
    read: Callable[[ab.Ledger], Awaitable[Any]]
    install_auth: Callable[[HostileServer, Credentials], None] = lambda _server, _creds: None


async def _list_invoices(ledger: ab.Ledger) -> Any:
    return [invoice async for invoice in ledger.invoices.list()]


async def _list_customers(ledger: ab.Ledger) -> Any:
    return [customer async for customer in ledger.customers.list()]


def _bearer(request: web.Request, creds: Credentials) -> bool:
    return request.headers.get("Authorization") == f"Bearer {creds.token}"


def _runmyaccounts(wire_format: str) -> Target:
    def connect(base_url: str, creds: Credentials, **settings: Any) -> ab.Ledger:
        return ab.connect(
            "runmyaccounts",
            base_url=f"{base_url}/api/latest/clients/",
            tenant=creds.user,
            api_key=creds.secret,
            wire_format=wire_format,
            **settings,
        )

    return Target(
        name=f"runmyaccounts-{wire_format}",
        wire=wire_format,
        connect=connect,
        read_path=lambda creds: f"/api/latest/clients/{creds.user}/invoices",
        authorised=lambda request, creds: request.query.get("api_key") == creds.secret,
        read=_list_invoices,
    )


def _smallinvoice_auth(server: HostileServer, creds: Credentials) -> None:
    async def token(request: web.Request) -> web.StreamResponse:
        fields = await request.json()
        if fields.get("client_id") != creds.user or fields.get("client_secret") != creds.secret:
            return web.json_response({"error": "invalid_client"}, status=401)
        return web.json_response({"access_token": creds.token, "token_type": "Bearer", "expires_in": 3600})

    server.answer("POST", "/v2/auth/access-tokens", token)


def _smallinvoice() -> Target:
    def connect(base_url: str, creds: Credentials, **settings: Any) -> ab.Ledger:
        return ab.connect(
            "smallinvoice", base_url=f"{base_url}/v2", client_id=creds.user, client_secret=creds.secret, **settings
        )

    return Target(
        name="smallinvoice",
        wire="json",
        connect=connect,
        read_path=lambda _creds: "/v2/receivables/invoices",
        authorised=_bearer,
        read=_list_invoices,
        install_auth=_smallinvoice_auth,
    )


MR_PUBLIC = "/open/clientapi/v1"
MR_S2S = "/open/systemapi/v1"


def _multiregnskab_auth(server: HostileServer, creds: Credentials) -> None:
    async def login(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("userName") != creds.user or body.get("password") != creds.secret:
            return web.json_response({"message": "wrong user name or password"}, status=401)
        zone = zoneinfo.ZoneInfo(mr_wire.DEFAULT_TOKEN_TIMEZONE)
        expires = _dt.datetime.now(zone).replace(tzinfo=None) + _dt.timedelta(hours=1)
        return web.json_response(
            {
                "token": creds.token,
                "tokenExpires": mr_wire.format_local_timestamp(expires),
                "refreshToken": creds.refresh,
            }
        )

    async def companies(request: web.Request) -> web.StreamResponse:
        if not _bearer(request, creds):
            return web.json_response({"message": "unauthorised"}, status=401)
        company = {"xid": COMPANY_XID, "name": "Hostile ApS", "cvr": "12345678"}
        return web.json_response({"companiesAndAccessList": [company], "lastCompanies": [COMPANY_XID]})

    server.answer("POST", f"{MR_PUBLIC}/login", login)
    server.answer("GET", f"{MR_PUBLIC}/companies", companies)


def _multiregnskab() -> Target:
    def connect(base_url: str, creds: Credentials, **settings: Any) -> ab.Ledger:
        return ab.connect(
            "multiregnskab", base_url=f"{base_url}{MR_PUBLIC}", username=creds.user, password=creds.secret, **settings
        )

    return Target(
        name="multiregnskab",
        wire="json",
        connect=connect,
        read_path=lambda _creds: f"{MR_PUBLIC}/customers/{COMPANY_XID}",
        authorised=_bearer,
        read=_list_customers,
        install_auth=_multiregnskab_auth,
    )


def _multiregnskab_s2s() -> Target:
    def connect(base_url: str, creds: Credentials, **settings: Any) -> ab.Ledger:
        return ab.connect(
            "multiregnskab-s2s", base_url=f"{base_url}{MR_S2S}", api_key=creds.secret, company=COMPANY_XID, **settings
        )

    return Target(
        name="multiregnskab-s2s",
        wire="json",
        connect=connect,
        read_path=lambda _creds: f"{MR_S2S}/customers/{COMPANY_XID}",
        authorised=lambda request, creds: request.headers.get("X-Api-Key") == creds.secret,
        read=_list_customers,
    )


TARGETS = [
    _runmyaccounts("json"),
    _runmyaccounts("xml"),
    _smallinvoice(),
    _multiregnskab(),
    _multiregnskab_s2s(),
]


# --- hostile answers --------------------------------------------------------------------------------------------

CONTENT_TYPE = {"json": "application/json", "xml": "application/xml"}
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
#: The start of a plausible list answer in each wire format.
OPENING = {"json": b'{"items": [', "xml": XML_DECLARATION + b"<invoices>"}
TRUNCATED = {
    "json": b'{"items": [{"id": 1, "number": "R-1", "name": "Trunc',
    "xml": XML_DECLARATION + b"<invoices><invoice><invnumber>R-1</invnumber><transd",
}
#: Well-formed documents of the wrong structure: a list of alien objects where an object (or invoices) belongs.
WRONG_SHAPE = {
    "json": b'[{"unexpected": true}]',
    "xml": XML_DECLARATION + b"<invoices><invoice><unexpected>true</unexpected></invoice></invoices>",
}
#: Well-formed, of the wrong structure: an object (root) without the list the read asked for.
WRONG_OBJECT = {
    "json": b'{"unexpected": true}',
    "xml": XML_DECLARATION + b"<invoices><unexpected>true</unexpected></invoices>",
}
#: A proxy's or maintenance page: HTML5 (not well-formed XML), and an XHTML one that an XML parser accepts.
HTML_PAGE = (
    b'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Service unavailable</title></head>'
    b"<body><h1>We'll be back soon</h1><p>Scheduled maintenance<br>until 18:00</p></body></html>"
)
XHTML_PAGE = (
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Service unavailable</title></head>'
    b"<body><h1>Service unavailable</h1><p>Scheduled maintenance until 18:00</p></body></html>"
)
BILLION_LAUGHS = XML_DECLARATION + (
    b'<!DOCTYPE invoices [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
        for level in range(1, 10)
    )
    + b"]>\n<invoices><invoice><invnumber>&lol9;</invnumber></invoice></invoices>"
)
XXE_PROBE = "/xxe-probe"


def _xxe(base_url: str) -> bytes:
    """An external entity that a resolving parser would fetch from the hostile server itself."""
    return (
        XML_DECLARATION
        + (
            f'<!DOCTYPE invoices [<!ENTITY xxe SYSTEM "{base_url}{XXE_PROBE}">]>'
            "<invoices><invoice><invnumber>&xxe;</invnumber></invoice></invoices>"
        ).encode()
    )


@dataclass(frozen=True)
class Scene:
    """What a hostile behaviour may depend on."""

    wire: str
    server: HostileServer
    bomb: GzipBomb

    @property
    def content_type(self) -> str:
        return CONTENT_TYPE[self.wire]


@dataclass(frozen=True)
class Case:
    name: str
    behaviour: Callable[[Scene], Behaviour]
    expected: tuple[type[ab.AccountingError], ...]
    names_limit: bool = False  # the error must name `max_response_bytes`


CASES = [
    Case(
        "gzip-bomb",
        lambda s: gzip_bomb(s.bomb, s.content_type),
        (ab.ResponseError,),
        names_limit=True,
    ),
    Case(
        "endless-chunked",
        lambda s: endless_chunked(s.server.stopping, s.content_type, OPENING[s.wire]),
        (ab.ResponseError,),
        names_limit=True,
    ),
    Case(
        "2gb-content-length-short-body",
        lambda s: huge_content_length(s.server.stopping, s.content_type, OPENING[s.wire]),
        (ab.ResponseError,),  # refused from the header: the declared size is over the limit
        names_limit=True,
    ),
    Case(
        # the same within the limit: only the deadline ends the wait for the rest of the body
        "short-body-under-declared-length",
        lambda s: huge_content_length(s.server.stopping, s.content_type, OPENING[s.wire], declared=SMALL_LIMIT // 2),
        (ab.DeadlineExceeded,),
    ),
    Case("no-answer", lambda s: silent(s.server.stopping), (ab.DeadlineExceeded,)),  # headers never come
    Case(
        "trickle-1-byte-per-interval",
        lambda s: trickle(s.server.stopping, s.content_type, OPENING[s.wire] + b" " * 4096),
        (ab.DeadlineExceeded,),
    ),
    Case("html-with-200", lambda s: fixed(HTML_PAGE, "text/html; charset=utf-8"), (ab.ResponseError,)),
    Case("well-formed-xhtml-with-200", lambda s: fixed(XHTML_PAGE, "text/html; charset=utf-8"), (ab.ResponseError,)),
    Case("truncated", lambda s: fixed(TRUNCATED[s.wire], s.content_type), (ab.ResponseError,)),
    Case("wrong-shape", lambda s: fixed(WRONG_SHAPE[s.wire], s.content_type), (ab.ResponseError,)),
    Case("wrong-shape-object", lambda s: fixed(WRONG_OBJECT[s.wire], s.content_type), (ab.ResponseError,)),
    Case("billion-laughs-xml", lambda s: fixed(BILLION_LAUGHS, "application/xml"), (ab.ResponseError,)),
    Case("external-entity-xml", lambda s: fixed(_xxe(s.server.base_url), "application/xml"), (ab.ResponseError,)),
]
CASE = {case.name: case for case in CASES}


def _only_when_authorised(behaviour: Behaviour, target: Target, creds: Credentials) -> Behaviour:
    async def guarded(request: web.Request) -> web.StreamResponse:
        if not target.authorised(request, creds):
            return web.json_response({"message": "unauthorised"}, status=401)
        return await behaviour(request)

    return guarded


def _serve(server: HostileServer, target: Target, case: Case, bomb: GzipBomb, creds: Credentials) -> str:
    target.install_auth(server, creds)
    path = target.read_path(creds)
    behaviour = case.behaviour(Scene(target.wire, server, bomb))
    server.answer("GET", path, _only_when_authorised(behaviour, target, creds))
    return path


async def _read_expecting_error(
    server: HostileServer, target: Target, creds: Credentials, settings: Mapping[str, Any]
) -> tuple[ab.AccountingError, Cost]:
    with measure() as cost:
        try:
            async with target.connect(server.base_url, creds, **settings) as ledger:
                result = await target.read(ledger)
        except ab.AccountingError as exc:
            return exc, cost
    pytest.fail(f"the read returned {result!r} instead of an error")


def _names_limit(text: str, limit: int) -> bool:
    """The setting and its value (in any usual spelling) are in the text."""
    spellings = (str(limit), f"{limit:,}", f"{limit:_}", f"{limit // MiB} MiB")
    return "max_response_bytes" in text and any(spelling in text for spelling in spellings)


def _assert_no_secret(error: BaseException, creds: Credentials) -> None:
    shown = f"{error}\n{error!r}"
    leaked = [name for name, value in creds.named().items() if value in shown]
    assert leaked == [], f"{leaked} in {shown!r}"


# --- the tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
async def test_hostile_answer_to_a_read_is_a_typed_error_in_time_and_memory(
    target: Target, case: Case, hostile_server: HostileServer, gzip_bomb: GzipBomb
) -> None:
    creds = Credentials.fresh()
    path = _serve(hostile_server, target, case, gzip_bomb, creds)
    settings = {"deadline": DEADLINE, "timeout": TIMEOUT, "max_retries": 1, "max_response_bytes": SMALL_LIMIT}

    error, cost = await _read_expecting_error(hostile_server, target, creds, settings)

    assert isinstance(error, case.expected), f"{type(error).__name__}: {error}"
    assert not isinstance(error, ab.DeadlineExceeded) or isinstance(error, ab.TransportError)
    assert f"GET {path}" in hostile_server.hits  # the read under test was sent (without its credential: 401)
    assert cost.elapsed <= DEADLINE + MARGIN
    assert cost.peak_allocated < SMALL_LIMIT_MEMORY
    assert cost.rss_growth < SMALL_LIMIT_MEMORY
    _assert_no_secret(error, creds)
    if case.names_limit:
        assert _names_limit(str(error), SMALL_LIMIT), str(error)
    assert f"GET {XXE_PROBE}" not in hostile_server.hits  # no external entity was ever resolved


@pytest.mark.parametrize("case", [CASE["gzip-bomb"], CASE["endless-chunked"]], ids=lambda c: c.name)
@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
async def test_default_response_limit_bounds_memory(
    target: Target, case: Case, hostile_server: HostileServer, gzip_bomb: GzipBomb
) -> None:
    creds = Credentials.fresh()
    _serve(hostile_server, target, case, gzip_bomb, creds)
    settings = {"deadline": DEFAULT_LIMIT_DEADLINE, "timeout": DEFAULT_LIMIT_DEADLINE * 3, "max_retries": 0}

    error, cost = await _read_expecting_error(hostile_server, target, creds, settings)

    # the limit, or on a slow machine the deadline, ends it; either way memory stays bounded
    assert isinstance(error, (ab.ResponseError, ab.DeadlineExceeded)), f"{type(error).__name__}: {error}"
    if isinstance(error, ab.ResponseError):
        assert _names_limit(str(error), DEFAULT_LIMIT), str(error)
    assert cost.elapsed <= DEFAULT_LIMIT_DEADLINE + MARGIN
    assert cost.peak_allocated < DEFAULT_LIMIT_MEMORY
    assert cost.rss_growth < DEFAULT_LIMIT_MEMORY
    _assert_no_secret(error, creds)


def test_gzip_bomb_is_a_valid_gzip_stream(gzip_bomb: GzipBomb) -> None:
    """The bomb's construction (one compressed block repeated) yields valid gzip: checked on a small one, whose
    CRC and size the decompressor verifies; the session's bomb is small on the wire and ≥ 1 GiB inflated."""
    small = build_gzip_bomb(inflated_size=8 * MiB, block_size=MiB)
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated = sum(len(decompressor.decompress(piece)) for piece in small.pieces()) + len(decompressor.flush())
    assert (inflated, decompressor.eof, decompressor.unused_data) == (8 * MiB, True, b"")
    assert gzip_bomb.inflated_size >= 1024 * MiB
    assert gzip_bomb.compressed_size < SMALL_LIMIT // 2
