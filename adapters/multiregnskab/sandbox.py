"""A local fake of both Multi-Regnskab APIs (aiohttp.web, in-memory state) for tests, demos and users' own suites.

    async with MultiRegnskabSandbox() as sandbox:
        async with ab.connect("multiregnskab", base_url=sandbox.public_url, username=sandbox.username,
                              password=sandbox.password) as ledger: ...
        async with ab.connect("multiregnskab-s2s", base_url=sandbox.s2s_url, api_key=sandbox.api_key,
                              company=1002) as ledger: ...

Public Client API (prefix ``/open/clientapi/v1``): all 21 paths of spec v1.0.17 with their odd shapes —
company in the query (archive), the path (customers, bank, products) or the body (POSTs); money as Danish strings;
base64 uploads hidden until a registration references them unless ``keepHiddenUntilRegistration: false``;
409 when deleting a file attached to a registration; bank postings default to the last month when no window is
sent; only the archive list pages (``maxLines`` + ``continuationToken``); tokens expire on the sandbox clock
(`advance()`), refresh tokens rotate and are single use; 401 ``{"message": "Not authorized"}``; no idempotency:
every accepted ``POST /suggestedRegistrations`` is a new registration.

System-to-System API (prefix from the contract's base URL path, default ``/open/systemapi/v1``): follows
`S2SContract` — the same inferred paths, header and field names the adapter uses, so both can be overridden
together.

Tenants are companies: each has its own books. `add_tenant(name)` adds a company with a user of its own (who sees
only that company) and a System-to-System API key; the returned connect settings are those of the sandbox's backend
(`backend="multiregnskab"` serves `public_url`, ``"multiregnskab-s2s"`` `s2s_url`; both APIs always run).

Fault switches: the common ones of `accounting_bridge.sandbox.Faults` (`fail_next`, `rate_limit_next`,
`drop_after_commit`, `expire_tokens`, `latency`) and this sandbox's own (`faults.add(...)`): a status (5xx, 429 with
Retry-After) without performing the request, a dropped connection before or *after* the request was performed,
latency, a malformed body, a replaced 200 answer (`answer=`: performed, then this JSON instead), each optionally
after letting `skip` matching requests through.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as _dt
import itertools
import re
import secrets
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import attrs
from aiohttp import web

from accounting_bridge import jsoncodec
from accounting_bridge import sandbox as common
from accounting_bridge.errors import ConfigurationError

from .s2s_contract import DEFAULT_CONTRACT, S2SContract
from .wire import MoneyFormatError, format_local_timestamp, format_money, parse_money, rename_keys

__all__ = ["Fault", "Faults", "MultiRegnskabSandbox", "SandboxCall"]

PUBLIC_PREFIX = "/open/clientapi/v1"
CET = zoneinfo.ZoneInfo("Europe/Copenhagen")


def _local_now() -> _dt.datetime:
    return _dt.datetime.now(CET).replace(tzinfo=None)


@attrs.define
class Fault:
    method: str
    path: str  # prefix of the path below the API prefix, e.g. "/suggestedRegistrations"
    api: str | None = None  # "public", "s2s" or None for both
    status: int | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    drop: str | None = None  # "before" (not performed) or "after" (performed, answer lost)
    delay: float = 0.0
    malformed: bool = False  # perform, then answer 200 with a body that is not JSON
    answer: Any = None  # perform, then answer 200 with this JSON body instead of the real one
    skip: int = 0  # let this many matching requests through untouched before the fault applies
    times: int = 1


class Faults(common.Faults):
    """The common switches plus this sandbox's own queued faults, each consumed by the next matching request(s)."""

    def __init__(self, *, expire_tokens: Callable[[], None] | None = None) -> None:
        super().__init__(expire_tokens=expire_tokens)
        self.queue: list[Fault] = []

    def add(self, method: str, path: str, **kwargs: Any) -> Fault:
        fault = Fault(method=method.upper(), path=path, **kwargs)
        self.queue.append(fault)
        return fault

    def clear(self) -> None:
        super().clear()
        self.queue.clear()

    def pending(self, kind: str | None = None) -> int:
        return super().pending(kind) + (sum(f.times for f in self.queue) if kind is None else 0)

    def take_queued(self, api: str, method: str, path: str) -> Fault | None:
        for fault in self.queue:
            if fault.method == method and path.startswith(fault.path) and fault.api in (None, api):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                fault.times -= 1
                if fault.times <= 0:
                    self.queue.remove(fault)
                return fault
        return None


@attrs.define
class SandboxCall:
    api: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str] = attrs.field(repr=False)
    body: Any = None


@attrs.define
class _Token:
    user: str
    access: str
    refresh: str
    expires: _dt.datetime
    refresh_expires: _dt.datetime
    valid: bool = True
    refresh_used: bool = False


@attrs.define
class _File:
    xid: int
    data: dict[str, Any]
    hidden: bool
    attached_to: set[int] = attrs.field(factory=set)
    comments: list[dict[str, Any]] = attrs.field(factory=list)


@attrs.define
class CompanyState:
    xid: int
    name: str
    cvr: str
    customers: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    files: dict[int, _File] = attrs.field(factory=dict)
    registrations: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    invoices: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    sales: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    bank_accounts: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    bank_postings: dict[int, list[dict[str, Any]]] = attrs.field(factory=dict)
    bank_balances: list[dict[str, Any]] = attrs.field(factory=list)
    product_types: list[dict[str, Any]] = attrs.field(factory=list)
    products: list[dict[str, Any]] = attrs.field(factory=list)


class _Refuse(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=jsoncodec.dumps(data).encode(), status=status, content_type="application/json", headers=headers
    )


_BODY = web.RequestKey("multiregnskab_body", object)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


_BACKENDS = ("multiregnskab", "multiregnskab-s2s")
DEFAULT_COMPANY = 1002


class MultiRegnskabSandbox(common.SandboxServer):
    """Both APIs on one 127.0.0.1 server, sharing the companies' books."""

    username = "bogholder@example.dk"
    password = "Kodeord-1234!"
    api_key = "s2s-key-1002-7f3a9c1e5b"
    faults: Faults

    def __init__(
        self,
        *,
        backend: str = "multiregnskab",
        token_lifetime: _dt.timedelta = _dt.timedelta(minutes=30),
        refresh_lifetime: _dt.timedelta = _dt.timedelta(days=30),
        clock: Callable[[], _dt.datetime] = _local_now,
        contract: S2SContract = DEFAULT_CONTRACT,
        seed: bool = True,
    ) -> None:
        if backend not in _BACKENDS:
            raise ConfigurationError(f"MultiRegnskabSandbox serves {' or '.join(_BACKENDS)}, not {backend!r}")
        super().__init__()
        self.backend = backend
        self.token_lifetime = token_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.clock = clock  # naive local (CET) time, as the API speaks it
        self.offset = _dt.timedelta()
        self.contract = contract
        self.faults = Faults(expire_tokens=self._expire_access_tokens)
        self.calls: list[SandboxCall] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.access: dict[str, list[int]] = {}
        self.last_companies: dict[str, list[int]] = {}
        self.tokens: dict[str, _Token] = {}
        self.api_keys: dict[str, int] = {}
        self.companies: dict[int, CompanyState] = {}
        self.tenants: dict[str, int] = {}  # tenant name -> companyXid (added by `add_tenant`)
        self.logins = 0
        self.refreshes = 0
        self._ids = itertools.count(5001)
        self.s2s_prefix = urlsplit(contract.base_url).path.rstrip("/") or "/s2s"
        if seed:
            self._seed()

    # --- clock and ids -----------------------------------------------------------------------------------------

    def now(self) -> _dt.datetime:
        return self.clock() + self.offset

    def today(self) -> _dt.date:
        return self.now().date()

    def advance(self, delta: _dt.timedelta) -> None:
        """Move the sandbox clock (token expiry, default bank window)."""
        self.offset += delta

    def next_id(self) -> int:
        return next(self._ids)

    # --- seed --------------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        self.users[self.username] = {"password": self.password, "realName": "Birgitte Bogholder"}
        first = CompanyState(xid=1001, name="Bager Hansen ApS", cvr="11223344")
        second = CompanyState(xid=1002, name="Tømrer Jensen IVS", cvr="22334455")
        self.companies = {1001: first, 1002: second}
        self.access[self.username] = [1001, 1002]
        self.last_companies[self.username] = [1002]
        self.api_keys[self.api_key] = 1002
        for company in (first, second):
            self._seed_company(company)

    def _seed_company(self, company: CompanyState) -> None:
        """A company's chart of products, a bank account with postings and balance, and three archive files."""
        today = self.today()
        company.product_types = [
            {"productTypeXid": company.xid * 10 + 1, "typeName": "Salg af ydelser"},
            {"productTypeXid": company.xid * 10 + 2, "typeName": "Salg af varer"},
        ]
        company.products = [
            {
                "productXid": company.xid * 100 + 1,
                "productId": "P2345",
                "productName": "Abonnement, en måned",
                "productTypeXid": company.xid * 10 + 1,
                "unitOfMeasureCode": "EA",
                "prices": [{"price": "33,95", "currencyCode": "DKK"}],
            }
        ]
        account = company.xid * 10 + 7
        company.bank_accounts[account] = {
            "xid": account,
            "name": "Driftskonto",
            "currency": "DKK",
            "banksIdentification": "1234 0123456789",
        }
        company.bank_postings[account] = [
            self._posting(today - _dt.timedelta(days=3), "Gebyr januar", "-197,00", "Danske Bank"),
            self._posting(today - _dt.timedelta(days=20), "Indbetaling faktura 1042", "12.500,00", "Kunde A/S"),
            self._posting(today - _dt.timedelta(days=45), "Husleje", "-8.750,50", None),
            self._posting(today - _dt.timedelta(days=200), "Moms", "-21.337,25", "Skattestyrelsen"),
        ]
        company.bank_balances = [
            {
                "bankAccountXid": account,
                "bankAccountName": "Driftskonto",
                "balanceType": "ITBD",
                "iban": "DK5000400440116243",
                "balanceAmount": "123.456,78",
                "currency": "DKK",
                "timestamp": format_local_timestamp(self.now()),
            }
        ]
        for name in ("kvittering-1.pdf", "kvittering-2.pdf", "faktura-leverandor.pdf"):
            self._store_file(company, {"fileName": name, "contentType": "application/pdf"}, b"%PDF-1.4 seed")

    def _posting(self, day: _dt.date, text: str, amount: str, extra: str | None) -> dict[str, Any]:
        posting: dict[str, Any] = {"xid": self.next_id(), "bankDate": day.isoformat(), "bankText": text}
        posting["bankAmount"] = amount
        if extra:
            posting["extraBankText"] = extra
        return posting

    def _store_file(
        self, company: CompanyState, data: Mapping[str, Any], content: bytes, *, hidden: bool = False
    ) -> _File:
        xid = self.next_id()
        record = {
            "companyXid": company.xid,
            "archiveFileXid": xid,
            "date": data.get("date") or self.today().isoformat(),
            "contentType": data.get("contentType") or "application/octet-stream",
            "fileName": data.get("fileName") or f"file-{xid}",
            "friendlyFilename": data.get("friendlyFilename") or data.get("fileName") or f"file-{xid}",
            "fileBodyBase64": base64.b64encode(content).decode(),
            "timestampLastUpdate": format_local_timestamp(self.now()),
        }
        file = _File(xid=xid, data=record, hidden=hidden)
        if data.get("comment"):
            file.comments.append(
                {"dateTime": record["timestampLastUpdate"], "userName": "api", "comment": data["comment"]}
            )
        company.files[xid] = file
        return file

    # --- server ------------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.count_middleware, self._middleware, self.fault_middleware],
            client_max_size=64 * 1024 * 1024,
        )
        p = PUBLIC_PREFIX
        routes = [
            ("POST", "/login", self.login),
            ("POST", "/refreshToken", self.refresh_token),
            ("POST", "/accessRequest", self.access_request),
            ("DELETE", "/tokens", self.delete_tokens),
            ("GET", "/user", self.get_user),
            ("POST", "/user", self.create_user),
            ("DELETE", "/user", self.delete_user),
            ("GET", "/companies", self.get_companies),
            ("GET", "/archiveFiles", self.archive_files),
            ("GET", "/archiveFile", self.archive_file),
            ("PUT", "/archiveFile/{companyXid}/{archiveFileXid}", self.update_archive_file),
            ("DELETE", "/archiveFile/{companyXid}/{archiveFileXid}", self.delete_archive_file),
            ("POST", "/filesForUseInRegistrations", self.upload_file),
            ("POST", "/suggestedRegistrations", self.suggested_registration),
            ("GET", "/customers/{companyXid}", self.list_customers),
            ("POST", "/customers", self.create_customer),
            ("POST", "/invoices", self.create_invoice),
            ("POST", "/sales", self.create_sale),
            ("GET", "/bankAccounts/{companyXid}", self.bank_accounts),
            ("GET", "/bankPostings/{companyXid}/{bankAccountXid}", self.bank_postings),
            ("GET", "/bankBalances/{companyXid}", self.bank_balances),
            ("GET", "/productTypes/{companyXid}", self.product_types),
            ("GET", "/products/{companyXid}", self.products),
            ("GET", "/unitsOfMeasure/{language}", self.units_of_measure),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, p + path, handler)
        s2s = {
            "upload_file": ("POST", self.s2s_upload_file),
            "delete_file": ("DELETE", self.s2s_delete_file),
            "suggested_registrations": ("POST", self.s2s_suggested_registration),
            "customers_list": ("GET", self.s2s_list_customers),
            "customers_create": ("POST", self.s2s_create_customer),
            "bank_transactions": ("POST", self.s2s_bank_transactions),
        }
        for operation, (method, handler) in s2s.items():
            template = self.contract.paths.get(operation)
            if template:
                template = template.replace("{xid}", "{archiveFileXid}")
                app.router.add_route(method, self.s2s_prefix + template, handler)
        return app

    @property
    def url(self) -> str:
        """The server's root URL; empty before `start` (as are the URLs below)."""
        return f"http://{self._host}:{self.port}" if self.port else ""

    @property
    def public_url(self) -> str:
        return self.url and self.url + PUBLIC_PREFIX

    @property
    def s2s_url(self) -> str:
        return self.url and self.url + self.s2s_prefix

    @property
    def base_url(self) -> str:
        """The `base_url` setting of the sandbox's backend: `public_url` or `s2s_url`."""
        return self.s2s_url if self.backend == "multiregnskab-s2s" else self.public_url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve both APIs on `host` (a free port by default); returns the `base_url` of the sandbox's backend."""
        await self.serve(self.app(), host, port)
        return self.base_url

    async def __aenter__(self) -> MultiRegnskabSandbox:
        await self.start()
        return self

    # --- the common protocol: tenants (companies), settings, seed ---------------------------------------------

    def connect_settings(self, tenant: str | None = None) -> dict[str, Any]:
        """Credentials and `company` of a tenant (default: the seeded user's company 1002) for the backend."""
        xid = DEFAULT_COMPANY if tenant is None else self.tenants.get(tenant)
        if xid is None:
            raise ConfigurationError(f"no sandbox tenant {tenant!r}; tenants: {', '.join(sorted(self.tenants))}")
        if self.backend == "multiregnskab-s2s":
            key = next(k for k, company in self.api_keys.items() if company == xid)
            return {"api_key": key, "company": xid}
        user = self.username if tenant is None else _tenant_user(tenant, xid)
        return {"username": user, "password": self.users[user]["password"], "company": xid}

    def add_tenant(self, tenant: str) -> dict[str, Any]:
        """A company with its own books, a user who sees only it and an S2S API key; returns its settings."""
        if tenant not in self.tenants:
            xid = max(self.companies, default=DEFAULT_COMPANY) + 1
            company = CompanyState(xid=xid, name=tenant, cvr=f"{40000000 + xid}")
            self.companies[xid] = company
            self._seed_company(company)
            user = _tenant_user(tenant, xid)
            self.users[user] = {"password": f"Sandbox-{xid}-kodeord!", "realName": tenant}
            self.access[user] = [xid]
            self.last_companies[user] = [xid]
            self.api_keys[f"s2s-key-{xid}"] = xid
            self.tenants[tenant] = xid
        return self.connect_settings(tenant)

    def seed(self, *, tenant: str | None = None, customers: int = 3, invoices: int = 5) -> None:
        """Add customers and draft invoices (the API keeps invoices as drafts) to a tenant's company."""
        xid = self.connect_settings(tenant)["company"]
        _seed_books(self, self.companies[xid], customers, invoices)

    def fault_response(self, request: web.Request, rule: common.FaultRule) -> web.StreamResponse:
        return _json({"message": f"injected fault {rule.status}"}, rule.status, rule.headers)

    def _expire_access_tokens(self) -> None:
        expired = self.now() - _dt.timedelta(milliseconds=1)
        for token in self.tokens.values():
            token.expires = min(token.expires, expired)

    # --- middleware: call log, faults, refusals ----------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        if path.startswith(PUBLIC_PREFIX + "/") or path == PUBLIC_PREFIX:
            api, sub = "public", path[len(PUBLIC_PREFIX) :]
        elif path.startswith(self.s2s_prefix + "/"):
            api, sub = "s2s", path[len(self.s2s_prefix) :]
        else:
            api, sub = "other", path
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = jsoncodec.loads(raw) if raw else None
            except ValueError:
                body = raw
        request[_BODY] = body
        self.calls.append(SandboxCall(api, request.method, sub, dict(request.query), dict(request.headers), body))
        fault = self.faults.take_queued(api, request.method, sub)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _json({"message": f"injected fault {fault.status}"}, fault.status, fault.headers)
            if fault.drop == "before":
                return self._drop(request)
        response: web.StreamResponse
        try:
            response = await handler(request)
        except _Refuse as refusal:
            response = _json({"message": refusal.message}, refusal.status)
        if fault is not None and fault.drop == "after":
            return self._drop(request)
        if fault is not None and fault.malformed:
            return web.Response(body=b"<html>oops", status=200, content_type="application/json")
        if fault is not None and fault.answer is not None:
            return _json(fault.answer, 200)
        return response

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError  # aiohttp ends the handler quietly; the client sees a dropped connection

    # --- helpers -----------------------------------------------------------------------------------------------

    def _body(self, request: web.Request) -> dict[str, Any]:
        body = request[_BODY]
        if not isinstance(body, dict):
            raise _Refuse(400, "A JSON object body is required")
        return body

    def _user(self, request: web.Request) -> str:
        return self._token(request, allow_expired=False).user

    def _token(self, request: web.Request, *, allow_expired: bool) -> _Token:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise _Refuse(401, "Not authorized")
        token = self.tokens.get(header[len("Bearer ") :])
        if token is None or not token.valid or token.user not in self.users:
            raise _Refuse(401, "Not authorized")
        if not allow_expired and token.expires <= self.now():
            raise _Refuse(401, "Not authorized")
        return token

    def _company(self, user: str, value: Any) -> CompanyState:
        try:
            xid = int(value)
        except (TypeError, ValueError):
            raise _Refuse(400, "companyXid is required") from None
        company = self.companies.get(xid)
        if company is None or xid not in self.access.get(user, []):
            raise _Refuse(403, "No access to company")
        last = self.last_companies.setdefault(user, [])
        if xid in last:
            last.remove(xid)
        last.insert(0, xid)
        return company

    def _issue(self, user: str) -> dict[str, Any]:
        now = self.now()
        token = _Token(
            user=user,
            access="mr-at-" + secrets.token_urlsafe(18),
            refresh="mr-rt-" + secrets.token_urlsafe(18),
            expires=now + self.token_lifetime,
            refresh_expires=now + self.refresh_lifetime,
        )
        self.tokens[token.access] = token
        return {
            "token": token.access,
            "tokenExpires": format_local_timestamp(token.expires),
            "refreshToken": token.refresh,
        }

    @staticmethod
    def _int_arg(value: Any, name: str) -> int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise _Refuse(400, f"{name} is required (int64)") from None

    @staticmethod
    def _money(value: Any, name: str) -> Decimal:
        if not isinstance(value, str):
            raise _Refuse(400, f'{name} must be an amount string such as "9.999,99"')
        try:
            return parse_money(value)
        except MoneyFormatError:
            raise _Refuse(400, f"{name}: {value!r} is not an amount") from None

    # --- user endpoints ----------------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        body = self._body(request)
        user = str(body.get("userName", "")).lower()
        record = self.users.get(user)
        if record is None or record["password"] != body.get("password"):
            return _json({"message": "Not authorized"}, 401)
        self.logins += 1
        return _json(self._issue(user))

    async def refresh_token(self, request: web.Request) -> web.Response:
        token = self._token(request, allow_expired=True)
        body = self._body(request)
        if body.get("refreshToken") != token.refresh or token.refresh_used or token.refresh_expires <= self.now():
            return _json({"message": "Not authorized"}, 401)
        token.refresh_used = True
        token.valid = False
        self.refreshes += 1
        return _json(self._issue(token.user))

    async def access_request(self, request: web.Request) -> web.Response:
        user = self._user(request)
        code = self.users[user].setdefault("accessRequestCode", secrets.token_hex(3).upper())
        return _json({"accessRequestCode": code})

    async def delete_tokens(self, request: web.Request) -> web.Response:
        current = self._token(request, allow_expired=False)
        body = self._body(request)
        flags = ("applyToAllTokensByUser", "invalidateNow", "expireAccessTokenNow", "expireRefreshTokenNow")
        if any(not isinstance(body.get(flag), bool) for flag in flags):
            raise _Refuse(400, "All four booleans are required: " + ", ".join(flags))
        targets = (
            [t for t in self.tokens.values() if t.user == current.user and t.valid]
            if body["applyToAllTokensByUser"]
            else [current]
        )
        expired = self.now() - _dt.timedelta(milliseconds=1)
        for token in targets:
            if body["invalidateNow"]:
                token.valid = False
                token.refresh_used = True
            if body["expireAccessTokenNow"]:
                token.expires = expired
            if body["expireRefreshTokenNow"]:
                token.refresh_expires = expired
        return _json({"tokensAffected": len(targets)})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        return _json({"userName": user, "realName": self.users[user].get("realName", user)})

    async def create_user(self, request: web.Request) -> web.Response:
        body = self._body(request)
        name = body.get("userName")
        if not isinstance(name, str) or "@" not in name or len(name) > 70 or not body.get("password"):
            raise _Refuse(400, "userName (e-mail, at most 70 characters) and password are required")
        name = name.lower()
        if name in self.users:
            return _json({"message": "User name already in use"}, 409)
        self.users[name] = {"password": body["password"], "realName": name.split("@")[0]}
        self.access[name] = []
        code = self.users[name]["accessRequestCode"] = secrets.token_hex(3).upper()
        return _json({"tokenResponse": self._issue(name), "codeForAccessRequest": code})

    async def delete_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        del self.users[user]
        for token in self.tokens.values():
            if token.user == user:
                token.valid = False
        return web.Response(status=200)

    async def get_companies(self, request: web.Request) -> web.Response:
        user = self._user(request)
        items = [
            {
                "xid": c.xid,
                "name": c.name,
                "cvr": c.cvr,
                "allowDocumentsAdd": True,
                "allowDocumentsEdit": True,
                "allowDocumentsView": True,
            }
            for xid, c in self.companies.items()
            if xid in self.access.get(user, [])
        ]
        last = [x for x in self.last_companies.get(user, []) if x in self.access.get(user, [])]
        return _json({"companiesAndAccessList": items, "lastCompanies": last})

    # --- archive -----------------------------------------------------------------------------------------------

    async def archive_files(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.query.get("companyXid"))
        try:
            max_lines = int(request.query.get("maxLines", ""))
        except ValueError:
            raise _Refuse(400, "maxLines is required") from None
        if max_lines < 1:
            raise _Refuse(400, "maxLines must be at least 1")
        offset = 0
        token = request.query.get("continuationToken")
        if token:
            try:
                offset = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("after:"))
            except (ValueError, binascii.Error):
                raise _Refuse(400, "Invalid continuationToken") from None
        visible = [f for f in sorted(company.files.values(), key=lambda f: f.xid) if not f.hidden]
        page = visible[offset : offset + max_lines]
        body: dict[str, Any] = {
            "archiveFilesList": [
                {
                    "xid": f.xid,
                    "id": f.xid - 5000,
                    "date": f.data["date"],
                    "name": f.data["friendlyFilename"],
                    "timestampLastUpdate": f.data["timestampLastUpdate"],
                }
                for f in page
            ]
        }
        if offset + max_lines < len(visible):
            body["continuationToken"] = base64.urlsafe_b64encode(f"after:{offset + max_lines}".encode()).decode()
        return _json(body)

    def _file(self, company: CompanyState, value: Any) -> _File:
        file = company.files.get(self._int_arg(value, "archiveFileXid"))
        if file is None:
            raise _Refuse(404, "Archive file not found")
        return file

    async def archive_file(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.query.get("companyXid"))
        file = self._file(company, request.query.get("archiveFileXid"))
        data = dict(file.data)
        data.pop("timestampLastUpdate", None)  # a field of the list's ArchiveFileLine, not of ArchiveFile
        if request.query.get("omitFileBody", "false").lower() == "true":
            data["fileBodyBase64"] = ""
        if file.comments:
            data["comments"] = list(file.comments)
        return _json(data)

    async def update_archive_file(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        file = self._file(company, request.match_info["archiveFileXid"])
        body = self._body(request)
        if not isinstance(body.get("date"), str) or not _ISO_DATE.fullmatch(body["date"]):
            raise _Refuse(400, "date (YYYY-MM-DD) is required")
        if not isinstance(body.get("friendlyFilename"), str) or not body["friendlyFilename"]:
            raise _Refuse(400, "friendlyFilename is required")
        file.data["date"] = body["date"]
        file.data["friendlyFilename"] = body["friendlyFilename"]
        file.data["timestampLastUpdate"] = format_local_timestamp(self.now())
        if body.get("comment"):
            file.comments.append(
                {"dateTime": file.data["timestampLastUpdate"], "userName": "api", "comment": body["comment"]}
            )
        return web.Response(status=200)

    async def delete_archive_file(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return self._delete_file(company, request.match_info["archiveFileXid"])

    def _delete_file(self, company: CompanyState, value: Any) -> web.Response:
        file = self._file(company, value)
        if file.attached_to:
            return _json({"message": "This archive file is delete-protected"}, 409)
        del company.files[file.xid]
        return web.Response(status=200)

    def _upload(self, company: CompanyState, body: Mapping[str, Any]) -> web.Response:
        encoded = body.get("fileBodyBase64")
        if not isinstance(encoded, str) or not encoded:
            raise _Refuse(400, "fileBodyBase64 is required")
        try:
            content = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise _Refuse(400, "fileBodyBase64 is not base64") from None
        for key, limit in (("contentType", 150), ("fileName", 250), ("friendlyFilename", 250), ("comment", 1000)):
            value = body.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > limit):
                raise _Refuse(400, f"{key} must be text of at most {limit} characters")
        hidden = body.get("keepHiddenUntilRegistration", True)  # spec default: hidden
        file = self._store_file(company, body, content, hidden=hidden is not False)
        return _json({"xid": file.xid})

    async def upload_file(self, request: web.Request) -> web.Response:
        body = self._body(request)
        return self._upload(self._company(self._user(request), body.get("companyXid")), body)

    # --- registrations -----------------------------------------------------------------------------------------

    def _register(self, company: CompanyState, body: Mapping[str, Any]) -> web.Response:
        if not isinstance(body.get("date"), str) or not _ISO_DATE.fullmatch(body["date"]):
            raise _Refuse(400, "date (YYYY-MM-DD) is required")
        if not isinstance(body.get("description"), str) or not body["description"].strip():
            raise _Refuse(400, "description is required")
        lines = body.get("debitCreditlines") or []
        if not isinstance(lines, list):
            raise _Refuse(400, "debitCreditlines must be a list")
        total = Decimal(0)
        for index, line in enumerate(lines):
            if (
                not isinstance(line, dict)
                or not isinstance(line.get("accountNumber"), str)
                or not line["accountNumber"]
            ):
                raise _Refuse(400, f"debitCreditlines[{index}].accountNumber is required")
            total += self._money(line.get("amount"), f"debitCreditlines[{index}].amount")
        if total != 0:
            raise _Refuse(400, f"The lines do not balance (sum {format_money(total)})")
        attachments = body.get("filesToAttachXids") or []
        if not isinstance(attachments, list) or len(attachments) > 3:
            raise _Refuse(400, "At most 3 files can be attached")
        files = []
        for item in attachments:
            xid = item.get("xid") if isinstance(item, dict) else None
            file = company.files.get(xid) if isinstance(xid, int) else None
            if file is None:
                raise _Refuse(400, f"Unknown file {xid!r} in filesToAttachXids")
            files.append(file)
        xid = self.next_id()
        company.registrations[xid] = {**body, "xid": xid, "status": "PENDING_ACCEPT"}
        for file in files:
            file.attached_to.add(xid)
            file.hidden = False
        return _json({"xid": xid})

    async def suggested_registration(self, request: web.Request) -> web.Response:
        body = self._body(request)
        return self._register(self._company(self._user(request), body.get("companyXid")), body)

    # --- customers ---------------------------------------------------------------------------------------------

    def _create_customer(self, company: CompanyState, body: Mapping[str, Any]) -> web.Response:
        if body.get("xid") != 0 or body.get("entityVersion") != 0:
            raise _Refuse(400, "xid and entityVersion must be 0 for a new customer")
        limits = {"customerName": 150, "currencyCode": 3, "address1": 80, "zipCode": 10, "city": 80, "countryCode": 2}
        for key, limit in limits.items():
            value = body.get(key)
            if not isinstance(value, str) or not value or len(value) > limit:
                raise _Refuse(400, f"{key} is required (at most {limit} characters)")
        if body.get("languageCode") not in ("DA", "EN"):
            raise _Refuse(400, "languageCode must be DA or EN")
        terms = body.get("paymentTermsType")
        if terms is not None and terms not in ("RUNNING_MONTH", "NET", "NET_CASH", "ALREADY_PAID"):
            raise _Refuse(400, "paymentTermsType is invalid")
        xid = self.next_id()
        company.customers[xid] = {**body, "xid": xid, "entityVersion": 1}
        return _json({"xid": xid})

    async def list_customers(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return _json({"customers": list(company.customers.values())})

    async def create_customer(self, request: web.Request) -> web.Response:
        body = self._body(request)
        return self._create_customer(self._company(self._user(request), body.get("companyXid")), body)

    # --- invoices and sales ------------------------------------------------------------------------------------

    async def create_invoice(self, request: web.Request) -> web.Response:
        body = self._body(request)
        company = self._company(self._user(request), body.get("companyXid"))
        if body.get("invoiceXid") != 0:
            raise _Refuse(400, "invoiceXid must be 0 for a new invoice")
        if self._int_arg(body.get("customerXid"), "customerXid") not in company.customers:
            raise _Refuse(400, "Unknown customerXid")
        day = body.get("date")  # the spec's `required` says invoiceDate; the property (and the server) use date
        if not isinstance(day, str) or not _ISO_DATE.fullmatch(day):
            raise _Refuse(400, "date (YYYY-MM-DD) is required")
        if int(day[:4]) not in (self.today().year, self.today().year - 1):
            raise _Refuse(400, "date is not within an open fiscal year")
        lines = body.get("lines")
        if not isinstance(lines, list) or not lines:
            raise _Refuse(400, "lines are required")
        types = {t["productTypeXid"] for t in company.product_types}
        for index, line in enumerate(lines):
            if not isinstance(line, dict) or not isinstance(line.get("lineNo"), int):
                raise _Refuse(400, f"lines[{index}].lineNo is required")
            if not isinstance(line.get("lineText"), str) or len(line["lineText"]) > 100:
                raise _Refuse(400, f"lines[{index}].lineText is required (at most 100 characters)")
            self._money(line.get("amount"), f"lines[{index}].amount")
            if line.get("productTypeXid") not in types:
                raise _Refuse(400, f"lines[{index}].productTypeXid is required and must exist")
        xid = self.next_id()
        company.invoices[xid] = {**body, "invoiceXid": xid, "draft": True}
        return _json({"xid": xid})

    async def create_sale(self, request: web.Request) -> web.Response:
        body = self._body(request)
        company = self._company(self._user(request), body.get("companyXid"))
        if self._int_arg(body.get("customerXid"), "customerXid") not in company.customers:
            raise _Refuse(400, "Unknown customerXid")
        self._money(body.get("amount"), "amount")
        xid = self.next_id()
        company.sales[xid] = dict(body)
        qr = base64.b64encode(b"\x89PNG fake qr").decode() if body.get("generateMobilePayQrCode") else ""
        return _json({"companyXid": company.xid, "saleXid": xid, "qrCodeBase64": qr})

    # --- bank and products -------------------------------------------------------------------------------------

    async def bank_accounts(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return _json({"accounts": list(company.bank_accounts.values())})

    async def bank_postings(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        account = self._int_arg(request.match_info["bankAccountXid"], "bankAccountXid")
        if account not in company.bank_accounts:
            raise _Refuse(404, "Bank account not found")
        today = self.today()
        try:
            until = _dt.date.fromisoformat(request.query.get("toDateIncl") or today.isoformat())
            default_from = _one_month_before(until if "toDateIncl" in request.query else today)
            since = _dt.date.fromisoformat(request.query.get("fromDateIncl") or default_from.isoformat())
        except ValueError:
            raise _Refuse(400, "fromDateIncl/toDateIncl must be ISO dates") from None
        items = [
            p for p in company.bank_postings.get(account, []) if since <= _dt.date.fromisoformat(p["bankDate"]) <= until
        ]
        return _json({"bpList": items})

    async def bank_balances(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return _json({"bbList": company.bank_balances})

    async def product_types(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return _json({"ptList": company.product_types})

    async def products(self, request: web.Request) -> web.Response:
        company = self._company(self._user(request), request.match_info["companyXid"])
        return _json({"productList": company.products})

    async def units_of_measure(self, request: web.Request) -> web.Response:
        self._user(request)
        language = request.match_info["language"].lower()
        if language not in ("da", "en"):
            raise _Refuse(400, "language should be 'da' or 'en'")
        names = {
            "da": [("EA", "stk.", "stk."), ("HUR", "time", "timer"), ("LTR", "liter", "liter")],
            "en": [("EA", "piece", "pieces"), ("HUR", "hour", "hours"), ("LTR", "litre", "litres")],
        }[language]
        return _json({"uomList": [{"uomCode": c, "singularis": s, "pluralis": p} for c, s, p in names]})

    # --- System-to-System (inferred contract) ------------------------------------------------------------------

    def _s2s_company(self, request: web.Request, value: Any) -> CompanyState:
        header = request.headers.get(self.contract.api_key_header, "")
        prefix = self.contract.api_key_prefix
        key = header[len(prefix) :] if header.startswith(prefix) else None
        company_xid = self.api_keys.get(key or "")
        if company_xid is None:
            raise _Refuse(401, "Not authorized")
        try:
            wanted = int(value)
        except (TypeError, ValueError):
            raise _Refuse(400, "companyXid is required") from None
        if wanted != company_xid:
            raise _Refuse(403, "The API key is not valid for this company")
        return self.companies[company_xid]

    def _s2s_body(self, request: web.Request) -> dict[str, Any]:
        body = rename_keys(self._body(request), self.contract.inverse_renames)
        assert isinstance(body, dict)
        return body

    def _s2s_answer(self, response: web.Response) -> web.Response:
        if response.status != 200 or not isinstance(response.body, bytes) or not response.body:
            return response
        data = rename_keys(jsoncodec.loads(response.body), self.contract.renames)
        return _json(data, response.status)

    async def s2s_upload_file(self, request: web.Request) -> web.Response:
        body = self._s2s_body(request)
        return self._s2s_answer(self._upload(self._s2s_company(request, body.get("companyXid")), body))

    async def s2s_delete_file(self, request: web.Request) -> web.Response:
        company = self._s2s_company(request, request.match_info.get("companyXid"))
        return self._delete_file(company, request.match_info["archiveFileXid"])

    async def s2s_suggested_registration(self, request: web.Request) -> web.Response:
        body = self._s2s_body(request)
        return self._s2s_answer(self._register(self._s2s_company(request, body.get("companyXid")), body))

    async def s2s_list_customers(self, request: web.Request) -> web.Response:
        company = self._s2s_company(request, request.match_info.get("companyXid"))
        return self._s2s_answer(_json({"customers": list(company.customers.values())}))

    async def s2s_create_customer(self, request: web.Request) -> web.Response:
        body = self._s2s_body(request)
        return self._s2s_answer(self._create_customer(self._s2s_company(request, body.get("companyXid")), body))

    async def s2s_bank_transactions(self, request: web.Request) -> web.Response:
        body = self._s2s_body(request)
        company = self._s2s_company(request, body.get("companyXid"))
        account = self._int_arg(body.get("bankAccountXid"), "bankAccountXid")
        if account not in company.bank_accounts:
            raise _Refuse(404, "Bank account not found")
        items = body.get("bpList")
        if not isinstance(items, list) or not items:
            raise _Refuse(400, "bpList is required")
        stored = []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not _ISO_DATE.fullmatch(str(item.get("bankDate", ""))):
                raise _Refuse(400, f"bpList[{index}].bankDate is required")
            if not isinstance(item.get("bankText"), str):
                raise _Refuse(400, f"bpList[{index}].bankText is required")
            self._money(item.get("bankAmount"), f"bpList[{index}].bankAmount")
        for item in items:
            posting = {**item, "xid": self.next_id()}
            company.bank_postings.setdefault(account, []).append(posting)
            stored.append(posting)
        return self._s2s_answer(_json({"bpList": stored}))

    # --- inspection helpers for tests --------------------------------------------------------------------------

    def company(self, xid: int = 1002) -> CompanyState:
        return self.companies[xid]

    def calls_to(self, method: str, path: str, api: str | None = None) -> list[SandboxCall]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path) and api in (None, c.api)]


def _one_month_before(day: _dt.date) -> _dt.date:
    year, month = (day.year, day.month - 1) if day.month > 1 else (day.year - 1, 12)
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def _tenant_user(tenant: str, xid: int) -> str:
    """The e-mail user name of a tenant's own user (the API's user names are e-mail addresses)."""
    slug = re.sub(r"[^a-z0-9]+", "-", tenant.lower()).strip("-")[:40] or "tenant"
    return f"{slug}-{xid}@sandbox.example.dk"


_SEED_CUSTOMERS = (
    ("Bager Nielsen ApS", "Algade 12", "4000", "Roskilde"),
    ("Cykelsmeden I/S", "Nørregade 7", "8000", "Aarhus C"),
    ("Frisør Larsen", "Vestergade 3", "5000", "Odense C"),
    ("Tandlæge Holm ApS", "Strandvejen 101", "2900", "Hellerup"),
    ("Kaffebaren Aps", "Jernbanegade 2", "9000", "Aalborg"),
)


def _seed_books(sandbox: MultiRegnskabSandbox, company: CompanyState, customers: int, invoices: int) -> None:
    """Realistic customers and draft invoices in one company's books, as the API would store them."""
    for index in range(customers):
        name, street, zip_code, city = _SEED_CUSTOMERS[index % len(_SEED_CUSTOMERS)]
        sandbox._create_customer(
            company,
            {
                "xid": 0, "entityVersion": 0, "companyXid": company.xid, "customerName": name,
                "customerNumber": _free_number(company),
                "currencyCode": "DKK", "address1": street, "zipCode": zip_code, "city": city, "countryCode": "DK",
                "languageCode": "DA", "email": f"bogholderi{index + 1}@example.dk", "paymentTermsType": "NET",
            },
        )  # fmt: skip
    customer_xids = list(company.customers)
    today = sandbox.today()
    for index in range(invoices if customer_xids else 0):
        xid = sandbox.next_id()
        day = max(today - _dt.timedelta(days=10 * (invoices - index)), _dt.date(today.year, 1, 1))
        company.invoices[xid] = {
            "companyXid": company.xid, "invoiceXid": xid, "customerXid": customer_xids[index % len(customer_xids)],
            "date": day.isoformat(), "currencyCode": "DKK", "draft": True,
            "lines": [{"lineNo": 1, "lineText": "Abonnement, en måned", "amount": "33,95", "quantity": "1,00",
                       "productTypeXid": company.xid * 10 + 1}],
        }  # fmt: skip


def _free_number(company: CompanyState) -> str:
    taken = {str(customer.get("customerNumber")) for customer in company.customers.values()}
    return next(str(n) for n in itertools.count(3001) if str(n) not in taken)
