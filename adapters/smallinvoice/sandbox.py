"""A local fake of the smallinvoice API v2 (aiohttp.web) for tests, demos and users' own test suites.

It follows the documented contract (``backends/smallinvoice.md``): the OAuth2 token endpoint (JSON and form
bodies, client credentials in the body or HTTP Basic, rotating single-use refresh tokens, configurable lifetime),
bearer and scope checks, `{"item"}` / `{"items", "pagination"}` envelopes with first/last/next/previous URLs,
201 on create, 204 on delete and e-mail actions, `{code, message, meta}` errors, `X-Rate-Limit-*` and
`X-Request-Id` on every response with a configurable quota per window and 429 past it, PDF bytes, and fault
switches. State lives in memory.

    sandbox = SmallInvoiceSandbox(client_id="my-client", client_secret="my-secret")
    base_url = await sandbox.start()          # http://127.0.0.1:<port>/v2
    ledger = ab.connect("smallinvoice", base_url=base_url, **sandbox.connect_settings())
    ...
    await sandbox.stop()

Accounts (books): the sandbox starts with one account, "main", whose API client is `client_id`/`client_secret`;
`sandbox.contacts`, `.invoices`, `.payments` are its books. `add_tenant(name)` opens another account with its own
books, numbers and ids and an API client of its own (its settings are returned); `add_client(id, secret)` adds an
API client with a new account of its own, or (``tenant=``) one more client of an existing account. A token sees
only the books of its client's account. The rate window (`quota` per `window`) is shared by the whole sandbox.

The rate window is a fixed window that starts with the first request after the previous one ended;
`X-Rate-Limit-Reset` is the CEILING of the seconds left in it, so a client that waits Reset never arrives early.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as _dt
import itertools
import math
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

import attrs
from aiohttp import web

from accounting_bridge import jsoncodec
from accounting_bridge import sandbox as common
from accounting_bridge.errors import ConfigurationError
from accounting_bridge.testing import minimal_pdf

from . import constants as c
from . import sandbox_shapes as shapes

__all__ = ["ALL_SCOPES", "Fault", "SmallInvoiceSandbox"]

ALL_SCOPES = (
    "profile",
    "contact",
    "contact_reminder",
    "letter",
    "configuration",
    "catalog",
    "invoice",
    "offer",
    "delivery_note",
    "order_confirmation",
    "project",
    "cost_unit",
    "working_hours",
    "activity",
    "effort",
)

#: [V S4] scope per path prefix (longest prefix first); `None` = authenticated only.
_SCOPES: tuple[tuple[str, str | None], ...] = (
    ("/auth/owner", None),
    ("/auth/profile", "profile"),
    ("/catalog/configuration/units", "configuration"),
    ("/configuration/", "configuration"),
    ("/receivables/configuration/", "configuration"),
    ("/receivables/invoices", "invoice"),
    ("/contacts", "contact"),
)

CENT = Decimal("0.01")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """Answer with `{code, message, meta}` and this status."""

    def __init__(self, status: int, code: int, message: str, meta: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message}
        if meta is not None:
            self.body["meta"] = dict(meta)


@attrs.define
class Fault:
    """One scripted answer: `status` with `body` (JSON) and extra `headers`, or `drop` the connection."""

    status: int = 500
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    path: str | None = None  # only requests whose path contains this
    method: str | None = None  # only requests with this method
    drop: bool = False
    after_commit: bool = False  # drop only after the request was performed (the write landed, the answer is lost)
    garbled: bool = False  # perform the request, then answer `status` with a body that is not JSON
    skip: int = 0  # let this many matching requests through untouched before the fault applies


@attrs.define
class _Client:
    secret: str = attrs.field(repr=False)
    scopes: tuple[str, ...]
    tenant: str = "main"


def _default_units() -> dict[int, dict[str, Any]]:
    return {
        7: {"id": 7, "name": "piece", "scope": "p", "custom": False},
        1: {"id": 1, "name": "hour", "scope": "s", "custom": False},
        13: {"id": 13, "name": "flat rate", "scope": "a", "custom": False},
    }


def _default_bank_accounts() -> dict[int, dict[str, Any]]:
    return {
        1: shapes.full(
            shapes.BANK_ACCOUNT,
            {
                "id": 1,
                "description": "Main account",
                "iban": "CH9300762011623852957",
                "bank_name": "Test Bank",
                "bic": None,
                "default": True,
                "auto_sync": "inactive",
                "auto_sync_direction": None,
                "permissions": ["view", "edit"],
            },
        )
    }


@attrs.define
class Books:
    """The books of one smallinvoice account: its own data, configuration and id sequence."""

    contacts: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    invoices: dict[int, dict[str, Any]] = attrs.field(factory=dict)
    payments: dict[int, list[dict[str, Any]]] = attrs.field(factory=dict)
    units: dict[int, dict[str, Any]] = attrs.field(factory=_default_units)
    bank_accounts: dict[int, dict[str, Any]] = attrs.field(factory=_default_bank_accounts)
    isrs: dict[int, dict[str, Any]] = attrs.field(
        factory=lambda: {1: shapes.full(shapes.ISR, {"id": 1, "type": "ISR+", "name": "QR invoice", "default": True})}
    )
    sent_emails: list[dict[str, Any]] = attrs.field(factory=list)
    ids: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))


class Faults(common.Faults):
    """The common switches; a 429 carries smallinvoice's ``X-Rate-Limit-*`` headers."""

    def rate_limit_headers(self, reset: int) -> dict[str, str]:
        return {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)}


#: The account whose request is being served (set after the bearer check), so handlers read `self.contacts` etc.
_SERVING: contextvars.ContextVar[tuple[SmallInvoiceSandbox, Books] | None] = contextvars.ContextVar(
    "smallinvoice_sandbox_serving", default=None
)


@attrs.define
class _Access:
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=jsoncodec.dumps(body).encode(), content_type="application/json", headers=headers
    )


def _now_text() -> str:
    return _dt.datetime.now().strftime(c.DATETIME_FORMAT)


def _sort_key(name: str) -> Callable[[Mapping[str, Any]], str]:
    def key(item: Mapping[str, Any]) -> str:
        return str(item.get(name) or "")

    return key


def _validation(errors: list[tuple[str, str]]) -> ApiError:
    return ApiError(
        422,
        1000,
        "Validation failed",
        {"errors": [{"key": key, "code": 1001 + i, "message": msg} for i, (key, msg) in enumerate(errors)]},
    )


class SmallInvoiceSandbox(common.SandboxServer):
    """The fake server. Public attributes are switches and counters (ints) for tests."""

    backend = "smallinvoice"
    faults: Faults

    def __init__(
        self,
        *,
        backend: str = "smallinvoice",
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        quota: int = 1000,
        window: float = 3600.0,
        token_lifetime: int = 43200,
        latency: float = 0.0,
    ) -> None:
        if backend != self.backend:
            raise ConfigurationError(f"SmallInvoiceSandbox serves 'smallinvoice', not {backend!r}")
        super().__init__()
        self.faults = Faults(expire_tokens=self._expire_access_tokens)
        self.quota = quota
        self.window = window
        self.token_lifetime = token_lifetime
        self.latency = latency
        #: Seconds added to the token clock (`advance`): lets tests expire access tokens without waiting.
        self.clock_offset = 0.0
        #: When set, the N-th API request (counted from now) expires every access token issued so far.
        self.expire_tokens_at_request: int | None = None
        self.contact_limit: int | None = None  # 402 past this many contacts (plan limit)
        self.locked_features: set[str] = set()  # "pdf", "send_by_email": 403 feature not in plan
        #: This sandbox's own scripted answers (`fail_next`, `drop_next`, `garble_next`, ...), beside `faults`.
        self.scripted_faults: list[Fault] = []
        #: How list endpoints treat `filter` (the real syntax is undocumented, [3P] says some filters "don't work
        #: properly"): "apply" (equality, the default), "ignore" (every item is listed as if there were no filter),
        #: "prefix" (misapplied: a value matches every field value that starts with it, e.g. K-1 also finds K-10),
        #: "empty" (applied too narrowly: a filtered list answers no items at all).
        self.filter_mode = "apply"
        # counters
        self.api_requests = 0
        self.token_grants = 0
        self.grant_types: list[str] = []  # the grant type of every token granted, in order
        self.invalid_grants = 0
        self.rate_limited = 0
        self.unauthorized = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.request_log: list[tuple[str, str, int, str]] = []  # method, path+query, status, request id
        # auth state
        self.clients: dict[str, _Client] = {}
        self.default_client = client_id
        self.tenants: dict[str, Books] = {"main": Books()}
        self.add_client(client_id, client_secret, tenant="main")
        self.access_tokens: dict[str, _Access] = {}
        self.refresh_tokens: dict[str, str] = {}  # valid (unused) refresh token -> client id
        self.issued_refresh_tokens: list[str] = []
        # rate window
        self._window_start: float | None = None
        self._window_count = 0

    # --- the books of the account being served -----------------------------------------------------------------

    @property
    def books_now(self) -> Books:
        """The books of the account whose request is being served; outside a request, the main account's."""
        serving = _SERVING.get()
        if serving is not None and serving[0] is self:
            return serving[1]
        return self.tenants["main"]

    @property
    def contacts(self) -> dict[int, dict[str, Any]]:
        return self.books_now.contacts

    @property
    def invoices(self) -> dict[int, dict[str, Any]]:
        return self.books_now.invoices

    @property
    def payments(self) -> dict[int, list[dict[str, Any]]]:
        return self.books_now.payments

    @property
    def units(self) -> dict[int, dict[str, Any]]:
        return self.books_now.units

    @property
    def bank_accounts(self) -> dict[int, dict[str, Any]]:
        return self.books_now.bank_accounts

    @property
    def isrs(self) -> dict[int, dict[str, Any]]:
        return self.books_now.isrs

    @property
    def sent_emails(self) -> list[dict[str, Any]]:
        return self.books_now.sent_emails

    @property
    def _ids(self) -> Iterator[int]:
        return self.books_now.ids

    @property
    def latency(self) -> float:
        return self.faults.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.faults.latency = value

    @contextlib.contextmanager
    def _serving(self, books: Books) -> Iterator[None]:
        token = _SERVING.set((self, books))
        try:
            yield
        finally:
            _SERVING.reset(token)

    # --- lifecycle and the common protocol ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The value for the adapter's `base_url` setting (``.../v2``); empty before `start`."""
        return f"http://{self._host}:{self.port}/v2" if self.port else ""

    def connect_settings(self, tenant: str | None = None) -> dict[str, Any]:
        """`client_id` and `client_secret` of an account's first API client (default: the main account)."""
        if tenant is None:
            client_id = self.default_client
        else:
            client_id = next((cid for cid, c in self.clients.items() if c.tenant == tenant), "")
            if not client_id:
                raise ConfigurationError(f"no sandbox tenant {tenant!r}; tenants: {', '.join(sorted(self.tenants))}")
        return {"client_id": client_id, "client_secret": self.clients[client_id].secret}

    def add_tenant(self, tenant: str) -> dict[str, Any]:
        """An account with its own books and an API client named `tenant`; returns its connect settings."""
        if tenant not in self.tenants:
            self.add_client(tenant, f"sandbox-secret-{tenant}", tenant=tenant)
        return self.connect_settings(tenant)

    def books(self, tenant: str | None = None) -> Books:
        """The books of an account (default: the main account)."""
        name = "main" if tenant is None else tenant
        if name not in self.tenants:
            raise ConfigurationError(f"no sandbox tenant {name!r}; tenants: {', '.join(sorted(self.tenants))}")
        return self.tenants[name]

    def seed(self, *, tenant: str | None = None, customers: int = 3, invoices: int = 5) -> None:
        """Add realistic contacts and invoices (drafts, sent, paid) to an account's books."""
        with self._serving(self.books(tenant)):
            _seed_books(self, customers, invoices)

    def request_count(self, method: str | None = None, path: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for m, p, s, _id in self.request_log
            if (method is None or m == method.upper()) and (path is None or path in p) and status in (None, s)
        )

    def fault_response(self, request: web.Request, rule: common.FaultRule) -> web.StreamResponse:
        if rule.status == 429:
            self.rate_limited += 1
            body = {"code": 6000, "message": "Rate limit exceeded"}
        else:
            body = {"code": rule.status, "message": "Injected fault"}
        return _json(rule.status, body, rule.headers)

    def _expire_access_tokens(self) -> None:
        expired = self.token_clock()
        for access in self.access_tokens.values():
            access.expires_at = min(access.expires_at, expired)

    # --- server ------------------------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.count_middleware, self._middleware, self.fault_middleware])
        r = app.router
        r.add_post("/v2/auth/access-tokens", self._token)
        r.add_get("/v2/auth/owner", self._owner)
        r.add_get("/v2/contacts", self._contacts_list)
        r.add_post("/v2/contacts", self._contacts_create)
        r.add_get("/v2/contacts/{id:\\d+}", self._contacts_get)
        r.add_put("/v2/contacts/{id:\\d+}", self._contacts_update)
        r.add_delete("/v2/contacts/{ids:[\\d,]+}", self._contacts_delete)
        r.add_put("/v2/contacts/{id:\\d+}/addresses/{aid:\\d+}", self._addresses_update)
        r.add_get("/v2/catalog/configuration/units", self._config_list("units"))
        r.add_get("/v2/catalog/configuration/units/{id:\\d+}", self._config_get("units"))
        r.add_get("/v2/configuration/bank-accounts", self._config_list("bank_accounts"))
        r.add_get("/v2/configuration/bank-accounts/{id:\\d+}", self._config_get("bank_accounts"))
        r.add_get("/v2/receivables/configuration/isrs", self._config_list("isrs"))
        r.add_get("/v2/receivables/configuration/isrs/{id:\\d+}", self._config_get("isrs"))
        r.add_get("/v2/receivables/invoices", self._invoices_list)
        r.add_post("/v2/receivables/invoices", self._invoices_create)
        r.add_get("/v2/receivables/invoices/{id:\\d+}", self._invoices_get)
        r.add_delete("/v2/receivables/invoices/{ids:[\\d,]+}", self._invoices_delete)
        r.add_get("/v2/receivables/invoices/{id:\\d+}/pdf", self._invoices_pdf)
        r.add_patch("/v2/receivables/invoices/{id:\\d+}/change-status", self._invoices_change_status)
        r.add_patch("/v2/receivables/invoices/{id:\\d+}/send-by-email", self._invoices_send_by_email)
        r.add_get("/v2/receivables/invoices/{id:\\d+}/payments", self._payments_list)
        r.add_post("/v2/receivables/invoices/{id:\\d+}/payments", self._payments_create)
        r.add_get("/v2/receivables/invoices/{id:\\d+}/payments/{pid:\\d+}", self._payments_get)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host` (a free port by default); returns the base URL including ``/v2``."""
        await self.serve(self.app(), host, port)
        return self.base_url

    async def __aenter__(self) -> SmallInvoiceSandbox:
        await self.start()
        return self

    # --- test helpers ------------------------------------------------------------------------------------------

    def add_client(
        self, client_id: str, secret: str, scopes: Iterable[str] = ALL_SCOPES, *, tenant: str | None = None
    ) -> None:
        """An API client of the account `tenant` (created when new); by default a new account named `client_id`."""
        name = client_id if tenant is None else tenant
        self.tenants.setdefault(name, Books())
        self.clients[client_id] = _Client(secret, tuple(scopes), name)

    def issue_refresh_token(self, client_id: str) -> str:
        """A refresh token as the authorization-code grant would hand it out (for the refresh-token grant)."""
        token = "rt_" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = client_id
        self.issued_refresh_tokens.append(token)
        return token

    def current_refresh_token(self, client_id: str) -> str | None:
        """The one unused refresh token of `client_id` (None when there is none or several)."""
        tokens = [t for t, owner in self.refresh_tokens.items() if owner == client_id]
        return tokens[0] if len(tokens) == 1 else None

    def advance(self, seconds: float) -> None:
        """Move the token clock forward (access tokens expire by this clock)."""
        self.clock_offset += seconds

    def token_clock(self) -> float:
        return time.time() + self.clock_offset

    def fail_next(
        self,
        status: int = 500,
        *,
        count: int = 1,
        body: Any = None,
        path: str | None = None,
        method: str | None = None,
        skip: int = 0,
    ) -> None:
        """The next `count` matching requests get `status`, after `skip` matching ones went through."""
        self.scripted_faults.append(Fault(status=status, body=body, path=path, method=method, skip=skip))
        for _ in range(count - 1):
            self.scripted_faults.append(Fault(status=status, body=body, path=path, method=method))

    def rate_limit_next(self, *, reset: int = 1, count: int = 1) -> None:
        """The next request(s) get 429 with Remaining=0 and this Reset (and no Retry-After)."""
        for _ in range(count):
            self.scripted_faults.append(
                Fault(
                    status=429,
                    body={"code": 6000, "message": "Rate limit exceeded"},
                    headers={"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)},
                )
            )

    def garble_next(self, *, status: int = 201, path: str | None = None, method: str | None = None) -> None:
        """Perform the next matching request, then answer `status` with a truncated, unreadable body."""
        self.scripted_faults.append(Fault(status=status, path=path, method=method, garbled=True))

    def drop_next(self, *, path: str | None = None, method: str | None = None, after_commit: bool = False) -> None:
        """Close the connection without an answer: before the request is performed, or after (`after_commit`)."""
        self.scripted_faults.append(Fault(drop=True, path=path, method=method, after_commit=after_commit))

    def status_count(self, status: int) -> int:
        return sum(1 for entry in self.request_log if entry[2] == status)

    # --- middleware: request id, rate window, faults, latency, bearer and scope ---------------------------------

    def _rate_headers(self, now: float) -> dict[str, str]:
        start = self._window_start if self._window_start is not None else now
        left = max(start + self.window - now, 0.0)
        return {
            "X-Rate-Limit-Limit": str(self.quota),
            "X-Rate-Limit-Remaining": str(max(self.quota - self._window_count, 0)),
            "X-Rate-Limit-Reset": str(max(math.ceil(left), 0)),
        }

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = str(uuid.uuid4())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await self._handle(request, handler)
        finally:
            self.in_flight -= 1
        response.headers["X-Request-Id"] = request_id
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, PATCH"
        response.headers["Access-Control-Allow-Headers"] = (
            "X-Requested-With, Content-Type, Accept, Origin, Authorization"
        )
        self.request_log.append((request.method, request.path_qs, response.status, request_id))
        return response

    async def _handle(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        now = time.monotonic()
        if self._window_start is None or now >= self._window_start + self.window:
            self._window_start, self._window_count = now, 0
        if self._window_count >= self.quota:
            self.rate_limited += 1
            return _json(429, {"code": 6000, "message": "Rate limit exceeded"}, self._rate_headers(now))
        self._window_count += 1
        rate = self._rate_headers(now)
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            if fault.garbled:
                await self._handle_authorized(request, handler)
                return web.Response(status=fault.status, body=b'{"item": {"id": 1', content_type="application/json")
            if fault.drop and fault.after_commit:
                await self._handle_authorized(request, handler)
                transport = request.transport
                if transport is not None:
                    transport.close()
                return web.Response(status=500)  # never arrives: the connection is gone
            if fault.drop:
                transport = request.transport
                if transport is not None:
                    transport.close()
                return web.Response(status=500)  # never arrives: the connection is gone
            if fault.status == 429:
                self.rate_limited += 1
            body = fault.body if fault.body is not None else {"code": fault.status, "message": "Injected fault"}
            return _json(fault.status, body, {**rate, **fault.headers})
        response = await self._handle_authorized(request, handler)
        for key, value in rate.items():
            response.headers.setdefault(key, value)  # an injected 429 keeps its own
        return response

    async def _handle_authorized(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            books = self.tenants["main"]
            if request.path != "/v2/auth/access-tokens":
                self.api_requests += 1
                if self.expire_tokens_at_request is not None:
                    self.expire_tokens_at_request -= 1
                    if self.expire_tokens_at_request <= 0:
                        self.expire_tokens_at_request = None
                        self.advance(self.token_lifetime + 1)
                books = self._authorize(request)
            with self._serving(books):
                response = await handler(request)
        except ApiError as exc:
            if exc.status == 401:
                self.unauthorized += 1
            response = _json(exc.status, exc.body)
        except web.HTTPException as exc:  # unknown route / method
            response = _json(exc.status, {"code": exc.status * 10, "message": exc.reason})
        return response

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for index, fault in enumerate(self.scripted_faults):
            if (fault.path is None or fault.path in path) and (fault.method is None or fault.method == method):
                if fault.skip > 0:
                    fault.skip -= 1
                    return None
                return self.scripted_faults.pop(index)
        return None

    def _authorize(self, request: web.Request) -> Books:
        """The books the bearer token may see (ApiError 401/403 otherwise)."""
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            raise ApiError(401, 401, "Missing access token", {"error_type": "access_denied", "hint": "Bearer"})
        access = self.access_tokens.get(header[len("Bearer ") :])
        if access is None:
            raise ApiError(401, 401, "The access token is invalid", {"error_type": "access_denied", "hint": "unknown"})
        if access.expires_at <= self.token_clock():
            raise ApiError(401, 401, "The access token has expired", {"error_type": "access_denied", "hint": "expired"})
        needed = self._scope_for(request.path)
        if needed is not None and needed not in access.scopes:
            raise ApiError(
                403,
                11,
                "Some of the required scopes are missing in the request",
                {"error_type": "required_scopes_missing", "scopes": [needed]},
            )
        client = self.clients.get(access.client_id)
        return self.tenants[client.tenant if client is not None else "main"]

    @staticmethod
    def _scope_for(path: str) -> str | None:
        relative = path[len("/v2") :]
        for prefix, scope in _SCOPES:
            if relative.startswith(prefix):
                return scope
        return None

    # --- token endpoint ----------------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.StreamResponse:
        fields = await self._token_fields(request)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user = password = ""
            fields.setdefault("client_id", user)
            fields.setdefault("client_secret", password)
        client = self.clients.get(fields.get("client_id", ""))
        if client is None or not secrets.compare_digest(client.secret, fields.get("client_secret", "")):
            return _json(
                401,
                {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed",
                    "message": "Client authentication failed",
                },
            )
        grant = fields.get("grant_type", "")
        client_id = fields["client_id"]
        scopes = client.scopes
        if "scope" in fields and fields["scope"].strip():
            asked = tuple(fields["scope"].split())
            unknown = [s for s in asked if s not in client.scopes]
            if unknown:
                return _json(
                    400,
                    {
                        "error": "invalid_scope",
                        "error_description": "The requested scope is invalid",
                        "message": "The requested scope is invalid",
                        "hint": " ".join(unknown),
                    },
                )
            scopes = asked
        body: dict[str, Any]
        if grant == "client_credentials":
            body = self._issue(client_id, scopes, with_refresh=False)
        elif grant == "refresh_token":
            token = fields.get("refresh_token", "")
            if self.refresh_tokens.get(token) != client_id:
                self.invalid_grants += 1
                return _json(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "The refresh token is invalid.",
                        "hint": "Token has been revoked",
                        "message": "The refresh token is invalid.",
                    },
                )
            del self.refresh_tokens[token]  # single use: rotated on every refresh
            body = self._issue(client_id, scopes, with_refresh=True)
        else:
            return _json(400, {"error": "unsupported_grant_type", "message": "The grant type is not supported"})
        self.token_grants += 1
        self.grant_types.append(grant)
        return _json(200, body)

    @staticmethod
    async def _token_fields(request: web.Request) -> dict[str, str]:
        raw = await request.read()
        if request.content_type == "application/json":
            try:
                data = jsoncodec.loads(raw or b"{}")
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise ApiError(400, 2000, "The request body is not a JSON object")
            return {str(k): str(v) for k, v in data.items() if v is not None}
        return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))

    def _issue(self, client_id: str, scopes: tuple[str, ...], *, with_refresh: bool) -> dict[str, Any]:
        access = "at_" + secrets.token_urlsafe(24)
        self.access_tokens[access] = _Access(client_id, scopes, self.token_clock() + self.token_lifetime)
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.token_lifetime, "access_token": access}
        if with_refresh:
            body["refresh_token"] = self.issue_refresh_token(client_id)
        return body

    async def _owner(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"item": {"id": 1, "name": "Muster", "surname": "Hans"}})

    # --- lists -------------------------------------------------------------------------------------------------

    def _list(self, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", str(c.DEFAULT_PAGE_SIZE)))
            if not 1 <= limit <= c.MAX_PAGE_SIZE:
                raise ValueError
        except ValueError:
            raise ApiError(400, 2004, f"Invalid limit value, allowed 1..{c.MAX_PAGE_SIZE}") from None
        try:
            offset = int(query.get("offset", "0"))
            if offset < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, 2005, "Invalid offset value") from None
        if "filter" in query and self.filter_mode != "ignore":
            try:
                condition = jsoncodec.loads(query["filter"])
            except ValueError:
                raise ApiError(400, 2001, "Invalid filter: not JSON") from None
            items = [item for item in items if self._matches(item, condition) and self.filter_mode != "empty"]
        sort = query.get("sort")
        if sort:
            for key in reversed(sort.split(",")):
                name = key.lstrip("-")
                if items and name not in items[0]:
                    raise ApiError(400, 2002, f"Invalid sort key: {name}")
                items = sorted(items, key=_sort_key(name), reverse=key.startswith("-"))
        total = len(items)
        page_items = items[offset : offset + limit]
        base = str(request.url.with_query({k: v for k, v in query.items() if k not in ("limit", "offset")}))
        sep = "&" if "?" in base else "?"

        def url(at: int) -> str:
            return f"{base}{sep}limit={limit}&offset={at}"

        last = max((total - 1) // limit * limit, 0)
        pagination: dict[str, Any] = {
            "page": offset // limit + 1,
            "pages": max(math.ceil(total / limit), 1),
            "total": total,
            "first": url(0),
            "last": url(last),
        }
        if offset + limit < total:
            pagination["next"] = url(offset + limit)
        if offset > 0:
            pagination["previous"] = url(max(offset - limit, 0))
        return _json(200, {"items": page_items, "pagination": pagination})

    def _matches(self, item: Mapping[str, Any], condition: Any) -> bool:
        if not isinstance(condition, dict):
            raise ApiError(400, 2001, "Invalid filter")
        for key, value in condition.items():
            if key == "and":
                if not all(self._matches(item, sub) for sub in value):
                    return False
            elif key == "or":
                if not any(self._matches(item, sub) for sub in value):
                    return False
            else:
                if key not in item:
                    raise ApiError(400, 2001, f"Invalid filter key: {key}")
                if self.filter_mode == "prefix":
                    if not str(item[key]).startswith(str(value)):
                        return False
                elif str(item[key]) != str(value):
                    return False
        return True

    def _with(self, request: web.Request, invoice: dict[str, Any]) -> dict[str, Any]:
        keys = [k for k in request.query.get("with", "").split(",") if k]
        result = dict(invoice)
        for key in keys:
            if key == "contact":
                result["contact"] = self.contacts.get(invoice["contact_id"])
            elif key == "contact_address":
                contact = self.contacts.get(invoice["contact_id"])
                result["contact_address"] = contact["main_address"] if contact else None
            else:
                raise ApiError(400, 2003, f"Invalid with key: {key}")
        return result

    def _config_list(self, name: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return self._list(request, list(getattr(self, name).values()))

        return handler

    def _config_get(self, name: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            item = getattr(self, name).get(int(request.match_info["id"]))
            if item is None:
                raise ApiError(404, 3000, "Entity not found", {"entity_type": name})
            return _json(200, {"item": item})

        return handler

    # --- contacts ----------------------------------------------------------------------------------------------

    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            data = jsoncodec.loads(await request.read() or b"{}")
        except ValueError:
            raise ApiError(400, 2000, "The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, 2000, "The request body is not a JSON object")
        return data

    def _contact(self, request: web.Request) -> dict[str, Any]:
        contact = self.contacts.get(int(request.match_info["id"]))
        if contact is None:
            raise ApiError(404, 3000, "Contact not found", {"entity_type": "contact"})
        return contact

    async def _contacts_list(self, request: web.Request) -> web.StreamResponse:
        return self._list(request, list(self.contacts.values()))

    async def _contacts_get(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"item": self._contact(request)})

    def _check_contact(self, data: Mapping[str, Any], *, create: bool, own_id: int | None) -> None:
        errors: list[tuple[str, str]] = []
        if create:
            for key in ("relation", "type", "name", "main_address"):
                if not data.get(key):
                    errors.append((key, "This value should not be blank."))
            if data.get("type") == "P" and data.get("gender") not in ("M", "F"):
                errors.append(("gender", "Gender is required for private contacts."))
        if data.get("type") not in (None, "C", "P"):
            errors.append(("type", "The value you selected is not a valid choice."))
        email = data.get("email")
        if email is not None and (not isinstance(email, str) or "@" not in email):
            errors.append(("email", "This value is not a valid email address."))
        address = data.get("main_address")
        if isinstance(address, Mapping) and create:
            for key in ("country", "street", "postcode", "city"):
                if not address.get(key):
                    errors.append((f"main_address.{key}", "This value should not be blank."))
        number = data.get("number")
        if number is not None and any(
            str(other.get("number")) == str(number) and other_id != own_id for other_id, other in self.contacts.items()
        ):
            errors.append(("number", "This number is already in use."))
        if errors:
            raise _validation(errors)

    async def _contacts_create(self, request: web.Request) -> web.StreamResponse:
        return _json(201, {"item": self.store_contact(await self._body(request))})

    def store_contact(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new contact in the books being served (the body of ``POST /contacts``)."""
        self._check_contact(data, create=True, own_id=None)
        if self.contact_limit is not None and len(self.contacts) >= self.contact_limit:
            raise ApiError(402, 4001, "Limit of contacts reached", {"feature": "contacts", "limit": self.contact_limit})
        contact_id = next(self._ids)
        address = shapes.full(shapes.ADDRESS, {"id": next(self._ids), "default": True, **data.pop("main_address")})
        contact = {
            **shapes.CONTACT,
            "id": contact_id,
            "number": str(data.pop("number", None) or contact_id),
            "created": _now_text(),
            "communication_channel": "U",
            "email": None,
            "currency": "CHF",
            **data,
            "main_address_id": address["id"],
            "main_address": address,
            "groups": [],
            "permissions": ["view", "edit"],
        }
        self.contacts[contact_id] = contact
        return contact

    async def _contacts_update(self, request: web.Request) -> web.StreamResponse:
        contact = self._contact(request)
        data = await self._body(request)
        self._check_contact(data, create=False, own_id=contact["id"])
        data.pop("main_address", None)  # not a field of ContactPUT: addresses are a sub-resource (ignored)
        data.pop("relation", None)
        contact.update(data)
        return _json(200, {"item": contact})

    async def _addresses_update(self, request: web.Request) -> web.StreamResponse:
        """`PUT /contacts/{id}/addresses/{addressId}`: the contact's main address is the one address kept."""
        contact = self._contact(request)
        if int(request.match_info["aid"]) != contact["main_address_id"]:
            raise ApiError(404, 3000, "Address not found", {"entity_type": "contact_address"})
        data = await self._body(request)
        required: tuple[str, ...] = ("country", "street", "postcode", "city")
        errors = [(key, "This value should not be blank.") for key in required if key in data and not data[key]]
        if errors:
            raise _validation(errors)
        contact["main_address"].update({k: v for k, v in data.items() if k in shapes.ADDRESS})
        return _json(200, {"item": contact["main_address"]})

    async def _contacts_delete(self, request: web.Request) -> web.StreamResponse:
        ids = [int(i) for i in request.match_info["ids"].split(",") if i]
        if any(i not in self.contacts for i in ids):
            raise ApiError(404, 3000, "Contact not found", {"entity_type": "contact"})
        for i in ids:
            del self.contacts[i]
        return web.Response(status=204)

    # --- invoices ----------------------------------------------------------------------------------------------

    def _invoice(self, request: web.Request) -> dict[str, Any]:
        invoice = self.invoices.get(int(request.match_info["id"]))
        if invoice is None:
            raise ApiError(404, 3000, "Invoice not found", {"entity_type": "invoice"})
        return invoice

    async def _invoices_list(self, request: web.Request) -> web.StreamResponse:
        items = [self._with(request, i) for i in self.invoices.values()]
        return self._list(request, items)

    async def _invoices_get(self, request: web.Request) -> web.StreamResponse:
        return _json(200, {"item": self._with(request, self._invoice(request))})

    def _check_invoice(self, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        errors: list[tuple[str, str]] = []
        for key in ("contact_id", "contact_address_id", "date", "due", "currency", "language", "positions"):
            if data.get(key) in (None, "", []):
                errors.append((key, "This value should not be blank."))
        contact = self.contacts.get(data.get("contact_id") or 0)
        if data.get("contact_id") and contact is None:
            errors.append(("contact_id", "Contact does not exist."))
        if contact is not None and data.get("contact_address_id") != contact["main_address_id"]:
            errors.append(("contact_address_id", "Address does not belong to the contact."))
        if data.get("language") not in (None, *c.INVOICE_LANGUAGES):
            errors.append(("language", "The value you selected is not a valid choice."))
        for key in ("date", "due"):
            try:
                _dt.date.fromisoformat(str(data.get(key)))
            except ValueError:
                if data.get(key):
                    errors.append((key, "This value is not a valid date."))
        number = data.get("number")
        if number is not None and any(str(i["number"]) == str(number) for i in self.invoices.values()):
            errors.append(("number", "This number is already in use."))
        positions: list[dict[str, Any]] = []
        for index, position in enumerate(data.get("positions") or []):
            if not isinstance(position, Mapping):
                errors.append((f"positions[{index}]", "Invalid position."))
                continue
            if position.get("type") not in ("N", "T", "PB", "H", "SI", "SNI"):
                errors.append((f"positions[{index}].type", "The value you selected is not a valid choice."))
            if position.get("catalog_type") not in ("P", "S"):
                errors.append((f"positions[{index}].catalog_type", "The value you selected is not a valid choice."))
            if position.get("type") == "N":
                for key in ("price", "vat", "amount", "unit_id"):
                    if position.get(key) is None:
                        errors.append((f"positions[{index}].{key}", "This value should not be blank."))
                    elif key != "unit_id" and not isinstance(position.get(key), (int, Decimal)):
                        errors.append((f"positions[{index}].{key}", "This value should be a number."))
                if position.get("unit_id") is not None and position.get("unit_id") not in self.units:
                    errors.append((f"positions[{index}].unit_id", "Unit does not exist."))
            positions.append(dict(position))
        if errors:
            raise _validation(errors)
        return positions

    @staticmethod
    def _position_total(position: Mapping[str, Any], vat_included: bool) -> tuple[Decimal, Decimal]:
        if position.get("type") != "N":
            return Decimal(0), Decimal(0)
        net = Decimal(position["price"]) * Decimal(position["amount"])
        discount = position.get("discount_rate")
        if discount:
            if position.get("discount_type", "P") == "P":
                net -= net * Decimal(discount) / 100
            else:
                net -= Decimal(discount)
        net = net.quantize(CENT, ROUND_HALF_UP)
        rate = Decimal(position["vat"]) / 100
        vat = (net - net / (1 + rate)) if vat_included else net * rate
        return net, vat.quantize(CENT, ROUND_HALF_UP)

    async def _invoices_create(self, request: web.Request) -> web.StreamResponse:
        return _json(201, {"item": self.store_invoice(await self._body(request))})

    def store_invoice(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new invoice in the books being served (the body of ``POST .../invoices``)."""
        positions = [shapes.full(shapes.POSITION, p) for p in self._check_invoice(data)]
        invoice_id = next(self._ids)
        vat_included = bool(data.get("vat_included", False))
        total = Decimal(0)
        for position in positions:
            net, vat = self._position_total(position, vat_included)
            position["total"] = net if vat_included else net + vat
            total += net if vat_included else net + vat
        contact = self.contacts[data["contact_id"]]
        invoice = {
            **shapes.INVOICE,
            "id": invoice_id,
            "created": _now_text(),
            "status": c.STATUS_DRAFT,
            "vat_included": vat_included,
            "discount_type": "P",
            **data,
            "number": str(data.get("number") or invoice_id),
            "contact_name": contact["name"],
            "positions": positions,
            "texts": [shapes.full(shapes.TEXT, text) for text in data.get("texts") or []],
            "total": total,
            "total_paid": Decimal("0.00"),
            "paid_date": None,
            "isr_reference_number": f"{invoice_id:026d}1",
            "permissions": ["view", "edit", "manage"],
        }
        self.invoices[invoice_id] = invoice
        self.payments[invoice_id] = []
        return invoice

    async def _invoices_delete(self, request: web.Request) -> web.StreamResponse:
        ids = [int(i) for i in request.match_info["ids"].split(",") if i]
        if any(i not in self.invoices for i in ids):
            raise ApiError(404, 3000, "Invoice not found", {"entity_type": "invoice"})
        for i in ids:
            self.invoices[i]["status"] = c.STATUS_DELETED
        return web.Response(status=204)

    async def _invoices_pdf(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        if "pdf" in self.locked_features:
            raise ApiError(403, 4000, "Feature not available in your plan", {"feature": "pdf", "plans": ["premium"]})
        text = f"Invoice {invoice['number']} total {invoice['total']}"
        return web.Response(status=200, body=minimal_pdf(text), content_type="application/pdf")

    async def _invoices_change_status(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        data = await self._body(request)
        if data.get("status") not in c.ALL_STATUSES:
            raise _validation([("status", "The value you selected is not a valid choice.")])
        date_time = data.get("date_time")
        if date_time is not None:
            try:
                _dt.datetime.strptime(str(date_time), c.DATETIME_FORMAT)
            except ValueError:
                raise _validation([("date_time", "Expected format Y-m-d H:i:s.")]) from None
        invoice["status"] = data["status"]
        return _json(200, {"item": self._with(request, invoice)})

    async def _invoices_send_by_email(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        data = await self._body(request)
        if "send_by_email" in self.locked_features:
            raise ApiError(
                403, 4000, "Feature not available in your plan", {"feature": "send_by_email", "plans": ["premium"]}
            )
        errors = [
            (key, "This value should not be blank.") for key in ("subject", "body", "recipients") if not data.get(key)
        ]
        for index, recipient in enumerate(data.get("recipients") or []):
            if not isinstance(recipient, Mapping) or "@" not in str(recipient.get("email", "")):
                errors.append((f"recipients[{index}].email", "This value is not a valid email address."))
        if data.get("from") not in (None, "CO", "U", "S", "CE"):
            errors.append(("from", "The value you selected is not a valid choice."))
        if errors:
            raise _validation(errors)
        self.sent_emails.append({"invoice_id": invoice["id"], **data})
        if invoice["status"] == c.STATUS_DRAFT:
            invoice["status"] = c.STATUS_SENT  # INFERRED: sending marks a draft as sent
        return web.Response(status=204)

    # --- payments ----------------------------------------------------------------------------------------------

    async def _payments_list(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        return self._list(request, list(self.payments[invoice["id"]]))

    async def _payments_get(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        for payment in self.payments[invoice["id"]]:
            if payment["id"] == int(request.match_info["pid"]):
                return _json(200, {"item": payment})
        raise ApiError(404, 3000, "Payment not found", {"entity_type": "payment"})

    async def _payments_create(self, request: web.Request) -> web.StreamResponse:
        invoice = self._invoice(request)
        return _json(201, {"item": self.store_payment(invoice, await self._body(request))})

    def store_payment(self, invoice: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a payment of `invoice` (the body of ``POST .../payments``); updates its status."""
        errors: list[tuple[str, str]] = []
        if data.get("type") not in c.PAYMENT_TYPES:
            errors.append(("type", "The value you selected is not a valid choice."))
        amount = data.get("amount")
        if not isinstance(amount, (int, Decimal)) or isinstance(amount, bool) or amount <= 0:
            errors.append(("amount", "This value should be a positive number."))
        try:
            _dt.date.fromisoformat(str(data.get("date")))
        except ValueError:
            errors.append(("date", "This value is not a valid date."))
        if data.get("channel") not in (None, *c.PAYMENT_CHANNELS):
            errors.append(("channel", "The value you selected is not a valid choice."))
        if errors:
            raise _validation(errors)
        payment = {
            "id": next(self._ids),
            "type": data["type"],
            "channel": data.get("channel", "T"),
            "amount": Decimal(str(amount)),
            "date": data["date"],
            "notes": data.get("notes"),
            "created": _now_text(),
        }
        self.payments[invoice["id"]].append(payment)
        paid = sum((Decimal(p["amount"]) for p in self.payments[invoice["id"]]), Decimal(0))
        invoice["total_paid"] = paid
        if paid >= Decimal(invoice["total"]):
            invoice["status"], invoice["paid_date"] = c.STATUS_PAID, data["date"]
        elif invoice["status"] not in (c.STATUS_CANCELLED, c.STATUS_DELETED):
            invoice["status"] = c.STATUS_PARTIALLY_PAID
        return payment


_SEED_CONTACTS = (
    ("Bäckerei Zürcher GmbH", "Limmatquai 14", "8001", "Zürich"),
    ("Schreinerei Holzer AG", "Industriestrasse 7", "3600", "Thun"),
    ("Café du Lac Sàrl", "Quai du Mont-Blanc 3", "1201", "Genève"),
    ("Velo Meier & Co.", "Bahnhofplatz 2", "4051", "Basel"),
    ("Treuhand Gerber AG", "Poststrasse 21", "9000", "St. Gallen"),
)
_SEED_POSITIONS = (
    ("Beratung", Decimal("140.00"), Decimal("3.5"), 1),
    ("Softwarelizenz", Decimal("480.00"), Decimal(1), 7),
)


def _seed_books(sandbox: SmallInvoiceSandbox, customers: int, invoices: int) -> None:
    """Realistic contacts and invoices (a draft, sent ones, every third paid) in the books being served."""
    contact_ids = []
    for index in range(customers):
        name, street, postcode, city = _SEED_CONTACTS[index % len(_SEED_CONTACTS)]
        contact = sandbox.store_contact(
            {
                "relation": ["CL"], "type": "C", "name": name, "email": f"buchhaltung{index + 1}@example.ch",
                "number": _free_number(sandbox.contacts.values(), "K-", 3001),
                "main_address": {"country": "CH", "street": street, "postcode": postcode, "city": city},
            }
        )  # fmt: skip
        contact_ids.append(contact["id"])
    contact_ids = contact_ids or list(sandbox.contacts)
    today = _dt.date.today()
    for index in range(invoices):
        if not contact_ids:
            break
        contact = sandbox.contacts[contact_ids[index % len(contact_ids)]]
        day = today - _dt.timedelta(days=10 * (invoices - index))
        text, price, amount, unit = _SEED_POSITIONS[index % len(_SEED_POSITIONS)]
        invoice = sandbox.store_invoice(
            {
                "contact_id": contact["id"], "contact_address_id": contact["main_address_id"],
                "number": _free_number(sandbox.invoices.values(), "RE-", 5001),
                "date": day.isoformat(), "due": (day + _dt.timedelta(days=30)).isoformat(),
                "currency": "CHF", "language": "de",
                "positions": [{"type": "N", "catalog_type": "S", "name": text, "price": price, "amount": amount,
                               "vat": Decimal("8.1"), "unit_id": unit}],
            }
        )  # fmt: skip
        if index > 0:
            invoice["status"] = c.STATUS_SENT
        if index % 3 == 1:
            paid_on = (day + _dt.timedelta(days=12)).isoformat()
            sandbox.store_payment(invoice, {"type": "N", "amount": invoice["total"], "date": paid_on})


def _free_number(records: Iterable[Mapping[str, Any]], prefix: str, start: int) -> str:
    taken = {str(record.get("number")) for record in records}
    return next(f"{prefix}{n}" for n in itertools.count(start) if f"{prefix}{n}" not in taken)
