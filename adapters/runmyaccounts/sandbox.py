"""A fake Run my Accounts server (aiohttp.web) for tests, the demo and users' own test suites.

    async with RmaSandbox(mandant="demo", api_key="sandbox-key") as sandbox:
        ledger = ab.connect("runmyaccounts", base_url=sandbox.base_url, **sandbox.connect_settings())

Tenants are mandants: each has its own books (`SandboxState`) and API key; `add_tenant("acme")` adds one and
returns its connect settings. `sandbox.state` is the books of the mandant being served (outside a request: the
default mandant's).

Emulates the documented routes under ``/api/latest/clients/{mandant}``: 403 for a wrong key (query ``api_key``,
``Authorization: Bearer`` or ``X-RMA-KEY``) or mandant; XML and mapped JSON rendered from one model (XML when no
``Accept``; switches for the single-item and empty-list JSON forms); status computation (OPEN/PAID/OVERDUE);
``204`` on invoice create; German ``{"error": ...}`` bodies (also with 200 where the docs say errors come that
way); ``/belege`` 409/413/415; seeded chart, parts, customers; fault switches: the common ones of
`accounting_bridge.sandbox.Faults` (`fail_next`, `rate_limit_next`, `drop_after_commit`, `latency`) and
`faults.fail_after_commit` (statuses answered after a write was performed), `faults.garble_after_commit`
(writes answered 200 with an unreadable body after they were committed),
`faults.fail_reads_after_commit` (statuses answered to the GETs that follow the next committed write, after
`faults.reads_before_failing` of them went through).
The bodies of ``POST gl`` and ``POST gl/yearend`` are undocumented: the sandbox accepts exactly what the client's
inferred encoder sends (see `inferred.py`) and checks that debits equal credits.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import hmac
import itertools
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl

import attrs
from aiohttp import web

from accounting_bridge import sandbox as common
from accounting_bridge.errors import ConfigurationError
from accounting_bridge.testing import minimal_pdf

from .inferred import GL_LINE_ITEM, GL_LINES_WRAPPER
from .wire import (
    BELEG_COMMENT_FIELD,
    BELEG_FILE_FIELD,
    BELEG_MAX_BYTES,
    BELEG_TYPES,
    as_list,
    format_date,
    format_decimal,
    items,
    json_bytes,
    nested,
    parse_date,
    parse_json,
    parse_xml,
    render_xml,
    text,
)

__all__ = ["Faults", "RmaSandbox", "SandboxState"]

CENT = Decimal("0.01")
PREFIX = "/api/latest/clients/{mandant}"


_TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Faults(common.Faults):
    """The common switches plus Run my Accounts' own (applied by the write handlers once a write landed)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_after_commit: list[int] = []  # statuses answered after a write was performed
        self.garble_after_commit = 0  # writes answered 200 with an unreadable body after they were performed
        self.fail_reads_after_commit: list[int] = []  # statuses for the GETs after the next committed write
        self.reads_before_failing = 0  # ... once this many of those GETs went through

    def pending(self, kind: str | None = None) -> int:
        own = len(self.fail_after_commit) + self.garble_after_commit + len(self.fail_reads_after_commit)
        return super().pending(kind) + (own if kind is None else 0)

    def clear(self) -> None:
        super().clear()
        self.fail_after_commit.clear()
        self.fail_reads_after_commit.clear()
        self.garble_after_commit = 0


def _chart(accno: str, description: str, link: str, allow_gl: bool = True) -> dict[str, str]:
    return {
        "@id": str(10000 + int(accno)),
        "@accno": accno,
        "@description": description,
        "@link": link,
        "@allow_gl": "true" if allow_gl else "false",
        "@is_active": "true",
    }


def seed_charts() -> list[dict[str, str]]:
    return [
        _chart("1000", "Kasse", "AR_paid:AP_paid"),
        _chart("1020", "Bank", "AR_paid:AP_paid"),
        _chart("1090", "Transferkonto", "AR_paid:AP_paid"),
        _chart("1100", "Forderungen aus Lieferungen und Leistungen", "AR", False),
        _chart("2000", "Verbindlichkeiten aus Lieferungen und Leistungen", "AP", False),
        _chart("2030", "Erhaltene Anzahlungen", "AR_amount:IC_sale"),
        _chart("2201", "Geschuldete MWST Normalsatz", "AR_tax:AP_tax:IC_taxpart:IC_taxservice", False),
        _chart("2202", "Geschuldete MWST reduzierter Satz", "AR_tax:AP_tax:IC_taxpart", False),
        _chart("3200", "Warenertrag", "AR_amount:IC_sale"),
        _chart("3210", "Buecherertrag", "AR_amount:IC_sale"),
        _chart("3400", "Dienstleistungsertrag", "AR_amount:IC_sale:IC_income"),
        _chart("3600", "Uebriger Ertrag", "AR_amount:IC_income"),
        _chart("3800", "Skonti", "AR_paid"),
        _chart("3801", "Rabatte und Preisnachlaesse", "AR_paid"),
        _chart("3900", "Skonti (Seed-Tabelle)", "AR_paid"),
        _chart("3901", "Rabatte (Seed-Tabelle)", "AR_paid"),
        _chart("5000", "Lohnaufwand", ""),
        _chart("5700", "Sozialversicherungsaufwand", ""),
        _chart("5720", "Berufliche Vorsorge", ""),
        _chart("2270", "Kontokorrent Sozialversicherungen", ""),
        _chart("2271", "Kontokorrent Vorsorgeeinrichtung", ""),
        _chart("2279", "Kontokorrent Quellensteuer", ""),
        _chart("1091", "Lohndurchlaufkonto", ""),
        _chart("6500", "Bueromaterial", "AP_amount:IC_expense"),
        _chart("6840", "Bankspesen (Seed-Tabelle)", "AR_paid:AP_paid"),
        _chart("6940", "Bankspesen", "AR_paid:AP_paid"),
    ]


def _part(number: str, description: str, income: str, price: str, unit: str = "", tax: str = "2201") -> dict[str, str]:
    return {
        "partnumber": number,
        "description": description,
        "income_accno": income,
        "expense_accno": "0",
        "unit": unit,
        "sellprice": price,
        "tax_accnos": tax,
    }


def seed_parts() -> dict[str, dict[str, str]]:
    parts = [
        _part("ART-1", "Beispiel Artikel 1", "3400", "99.0"),
        _part("SW-LIC", "Software-Lizenz Jahresabo", "3400", "480.0", "Stk"),
        _part("SUPPORT-H", "Support (Stunden)", "3400", "140.0", "h"),
        _part("VERSAND", "Versandpauschale", "3200", "12.5"),
        _part("BERATUNG", "Beratung", "3400", "162.15", "h"),
        _part("RABATT", "Rabatt", "3400", "0.0"),
        _part("AKONTO", "Akontozahlung", "2030", "0.0"),
        _part("BUCH", "Fachbuch", "3210", "48.0", "Stk", "2202"),
        {**_part("BUERO", "Bueromaterial", "0", "0.0", tax=""), "expense_accno": "6500"},
    ]
    return {p["partnumber"]: p for p in parts}


def seed_customers() -> dict[str, dict[str, str]]:
    base = [
        {"customernumber": "K-001", "name": "Muster AG", "firstname": "Hans", "lastname": "Muster",
         "address1": "Rössliweg 1", "city": "Tenna", "email": "hmuster@muster.ch", "typeofcontact": "company"},
        {"customernumber": "K-1001", "name": "Alpenblick Treuhand GmbH", "address1": "Bahnhofstrasse 12",
         "zipcode": "6003", "city": "Luzern", "country": "Schweiz", "terms": "30", "language_code": "de",
         "email": "rechnungen@alpenblick.example", "typeofcontact": "company"},
        {"customernumber": "K-2040", "name": "Bergbahnen Sonnenhalde AG", "address1": "Talstation 1",
         "zipcode": "3823", "city": "Wengen", "country": "Schweiz", "typeofcontact": "company"},
    ]  # fmt: skip
    return {c["customernumber"]: c for c in base}


@attrs.define
class SandboxState:
    """The books of one sandbox tenant (wire trees, money as Decimal where computed)."""

    customers: dict[str, dict[str, Any]] = attrs.field(factory=seed_customers)
    parts: dict[str, dict[str, Any]] = attrs.field(factory=seed_parts)
    charts: list[dict[str, str]] = attrs.field(factory=seed_charts)
    tax_rates: dict[str, Decimal] = attrs.field(factory=lambda: {"2201": Decimal("8.1"), "2202": Decimal("2.6")})
    invoices: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    payments: list[dict[str, Any]] = attrs.field(factory=list)
    processed: dict[str, dict[str, _dt.datetime]] = attrs.field(factory=dict)  # per api key
    vendors: dict[str, dict[str, Any]] = attrs.field(
        factory=lambda: {"L-66": {"vendornumber": "L-66", "name": "Papeterie Muster AG", "arap_accno": "2000"}}
    )
    payables: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    payable_payments: list[dict[str, Any]] = attrs.field(factory=list)
    belege: dict[int, dict[str, str]] = attrs.field(factory=dict)
    gl: list[dict[str, Any]] = attrs.field(factory=list)
    yearend: list[dict[str, Any]] = attrs.field(factory=list)
    ledger: list[dict[str, Any]] = attrs.field(factory=list)
    departments: list[dict[str, str]] = attrs.field(
        factory=lambda: [{"@id": "10319", "@name": "Entwicklung"}, {"@id": "10320", "@name": "Beratung"}]
    )
    projects: list[dict[str, str]] = attrs.field(
        factory=lambda: [{"@id": "10401", "@number": "PRJ-88", "@description": "Umbau Talstation"}]
    )
    ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(20000))

    def next_id(self) -> str:
        return str(next(self.ids))


@attrs.define
class _Tenant:
    api_key: str = attrs.field(repr=False)
    state: SandboxState


#: The books of the request being served (set by the middleware), so handlers read `self.state` unchanged.
_SERVING: contextvars.ContextVar[tuple[RmaSandbox, SandboxState] | None] = contextvars.ContextVar(
    "rma_sandbox_serving", default=None
)


class _Fail(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _dec(value: Any, field: str) -> Decimal:
    try:
        return Decimal(str(value).strip()) if value not in (None, "") else Decimal(0)
    except Exception:
        raise _Fail(400, f"Ungültiger Zahlenwert im Feld '{field}'.") from None


def _as_wire_text(tree: Any) -> Any:
    """Lenient input (JSON numbers and booleans) stored as the strings the server would echo."""
    if isinstance(tree, Mapping):
        return {k: _as_wire_text(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_as_wire_text(v) for v in tree]
    if isinstance(tree, bool):
        return "true" if tree else "false"
    if isinstance(tree, Decimal):
        return format_decimal(tree)
    if isinstance(tree, int):
        return str(tree)
    return "" if tree is None else tree


class RmaSandbox(common.SandboxServer):
    """The server. Configure with keyword arguments; `state` and `faults` may be changed while it runs."""

    backend = "runmyaccounts"
    faults: Faults

    def __init__(
        self,
        *,
        backend: str = "runmyaccounts",
        mandant: str = "demo",
        api_key: str = "sandbox-key",
        state: SandboxState | None = None,
        today: Callable[[], _dt.date] = _dt.date.today,
        empty_list_form: str = "null",  # "null" | "{}" | "empty_list" | "empty_body"
        single_as_object: bool = True,
        xml_when_no_accept: bool = True,
        languages: Iterable[str] = ("de", "fr", "it", "en"),
        language_error_status: int = 200,  # the docs' German language error arrives without an error status
        max_upload: int = BELEG_MAX_BYTES,
    ) -> None:
        if backend != self.backend:
            raise ConfigurationError(f"RmaSandbox serves 'runmyaccounts', not {backend!r}")
        super().__init__()
        self.mandant = mandant
        self.tenants: dict[str, _Tenant] = {mandant: _Tenant(api_key, state or SandboxState())}
        self.faults = Faults()
        self.today = today
        self.empty_list_form = empty_list_form
        self.single_as_object = single_as_object
        self.xml_when_no_accept = xml_when_no_accept
        self.languages = set(languages)
        self.language_error_status = language_error_status
        self.max_upload = max_upload
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request, for tests
        self._failing_reads: list[int] = []  # armed from `faults.fail_reads_after_commit` by a committed write
        self._reads_to_pass = 0
        self.app = self._build_app()

    # --- lifecycle and the common protocol -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on `host` (a free port by default); returns the base URL (the adapter's `base_url` setting)."""
        await self.serve(self.app, host, port)
        return self.base_url

    async def __aenter__(self) -> RmaSandbox:
        await self.start()
        return self

    @property
    def base_url(self) -> str:
        """The value for the adapter's `base_url` setting; empty before `start`."""
        return f"http://{self._host}:{self.port}/api/latest/clients/" if self.port else ""

    @property
    def api_key(self) -> str:
        """The API key of the default mandant (may be changed while the sandbox runs)."""
        return self.tenants[self.mandant].api_key

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.tenants[self.mandant].api_key = value

    @property
    def state(self) -> SandboxState:
        """The books of the mandant being served; outside a request, those of the default mandant."""
        serving = _SERVING.get()
        if serving is not None and serving[0] is self:
            return serving[1]
        return self.tenants[self.mandant].state

    @state.setter
    def state(self, value: SandboxState) -> None:
        self.tenants[self.mandant].state = value

    def connect_settings(self, tenant: str | None = None) -> dict[str, Any]:
        """`tenant` and `api_key` of a mandant (default: the sandbox's own) for `ab.connect("runmyaccounts", ...)`."""
        name = self.mandant if tenant is None else tenant
        if name not in self.tenants:
            raise ConfigurationError(f"no sandbox tenant {name!r}; tenants: {', '.join(sorted(self.tenants))}")
        return {"tenant": name, "api_key": self.tenants[name].api_key}

    def add_tenant(self, tenant: str) -> dict[str, Any]:
        """A mandant with its own books (seeded chart, parts and customers) and API key; returns its settings."""
        if not _TENANT_NAME.fullmatch(tenant):
            raise ConfigurationError(f"sandbox tenant {tenant!r} must be letters, digits, '-' or '_' (a URL segment)")
        self.tenants.setdefault(tenant, _Tenant(f"sandbox-key-{tenant}", SandboxState()))
        return self.connect_settings(tenant)

    def books(self, tenant: str | None = None) -> SandboxState:
        """The books of a mandant (default: the sandbox's own)."""
        return self.tenants[self.connect_settings(tenant)["tenant"]].state

    def seed(self, *, tenant: str | None = None, customers: int = 3, invoices: int = 5) -> None:
        """Add `customers` customers and `invoices` invoices (some paid, some overdue) to a mandant's books."""
        with self._serving(self.books(tenant)):
            _seed_books(self, customers, invoices)

    @contextlib.contextmanager
    def _serving(self, state: SandboxState) -> Iterator[None]:
        token = _SERVING.set((self, state))
        try:
            yield
        finally:
            _SERVING.reset(token)

    def fault_response(self, request: web.Request, rule: common.FaultRule) -> web.StreamResponse:
        message = "Zu viele Anfragen." if rule.status == 429 else "Interner Fehler, bitte später erneut versuchen."
        response = self._error(request, rule.status, message)
        response.headers.update(rule.headers)
        return response

    # --- app -------------------------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self.count_middleware, self._middleware, self.fault_middleware],
            client_max_size=self.max_upload + 1024 * 1024,
        )
        routes = [
            ("GET", "/customers", self.list_customers),
            ("POST", "/customers", self.upsert_customer),
            ("GET", "/customers/{number}", self.get_customer),
            ("GET", "/parts", self.list_parts),
            ("GET", "/invoices", self.list_invoices),
            ("POST", "/invoices", self.create_invoice),
            ("GET", "/invoices/payment_list", self.payment_list),
            ("POST", "/invoices/set_as_processed", self.set_as_processed),
            ("GET", "/invoices/{number}", self.get_invoice),
            ("GET", "/invoices/{number}/pdf", self.invoice_pdf),
            ("GET", "/invoices/{number}/html", self.invoice_html),
            ("GET", "/invoices/{number}/payments", self.invoice_payments),
            ("POST", "/invoices/{number}/payments", self.create_payment),
            ("GET", "/vendors", self.list_vendors),
            ("POST", "/vendors", self.upsert_vendor),
            ("GET", "/payables", self.list_payables),
            ("POST", "/payables", self.create_payable),
            ("GET", "/payables/{number}", self.get_payable),
            ("GET", "/payables/{number}/pdf", self.payable_pdf),
            ("GET", "/payables/{number}/payments", self.payable_payments),
            ("POST", "/payables/{number}/payments", self.create_payable_payment),
            ("GET", "/charts", self.list_charts),
            ("GET", "/charts/{accno}/transactions", self.chart_transactions),
            ("GET", "/gl/saldo", self.saldo_v1),
            ("GET", "/gl/v2/saldo", self.saldo_v2),
            ("POST", "/gl", self.post_gl),
            ("POST", "/gl/yearend", self.post_yearend),
            ("GET", "/departments", self.list_departments),
            ("GET", "/projects", self.list_projects),
            ("POST", "/belege", self.upload_beleg),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, PREFIX + path, handler)
        return app

    def _key(self, request: web.Request) -> str | None:
        key = request.query.get("api_key")
        if key:
            return key
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth[len("Bearer ") :]
        return request.headers.get("X-RMA-KEY")

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        key = self._key(request)
        tenant = self.tenants.get(request.match_info.get("mandant", ""))
        if key is None or tenant is None or not hmac.compare_digest(key, tenant.api_key):
            return self._error(request, 403, "Zugriff verweigert: API-Schlüssel oder Mandant ungültig.")
        if request.method == "GET" and self._failing_reads:
            if self._reads_to_pass > 0:
                self._reads_to_pass -= 1
            else:
                return self._error(request, self._failing_reads.pop(0), "Interner Fehler beim Lesen.")
        try:
            with self._serving(tenant.state):
                response = await handler(request)
        except _Fail as fail:
            return self._error(request, fail.status, fail.message)
        return response  # type: ignore[no-any-return]

    def _after_commit(self, request: web.Request) -> web.StreamResponse | None:
        """Fault injection once a write has been performed."""
        if self.faults.fail_reads_after_commit:
            self._failing_reads.extend(self.faults.fail_reads_after_commit)
            self._reads_to_pass = self.faults.reads_before_failing
            self.faults.fail_reads_after_commit.clear()
        if self.faults.garble_after_commit > 0:
            self.faults.garble_after_commit -= 1
            return web.Response(status=200, body=b'{"id": 2', content_type="application/json")
        if self.faults.fail_after_commit:
            status = self.faults.fail_after_commit.pop(0)
            return self._error(request, status, "Interner Fehler nach dem Speichern.")
        return None

    # --- rendering -------------------------------------------------------------------------------------------

    def _wants_json(self, request: web.Request) -> bool:
        accept = request.headers.get("Accept", "").lower()
        if "json" in accept:
            return True
        if "xml" in accept:
            return False
        return not self.xml_when_no_accept and not accept

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        if self._wants_json(request) or "json" in request.headers.get("Content-Type", ""):
            body = ('{ "error": ' + json_bytes(message).decode() + " }").encode()
            return web.Response(status=status, body=body, content_type="application/json")
        return web.Response(status=status, body=render_xml("error", message), content_type="application/xml")

    def _entity(self, request: web.Request, root: str, tree: Any, status: int = 200) -> web.Response:
        if self._wants_json(request):
            body = json_bytes(tree, single_as_object=self.single_as_object)
            return web.Response(status=status, body=body, content_type="application/json")
        return web.Response(status=status, body=render_xml(root, tree), content_type="application/xml")

    def _list(self, request: web.Request, root: str, item: str, values: list[Any], **attrs_: str) -> web.Response:
        tree: dict[str, Any] = {f"@{k}": v for k, v in attrs_.items()}
        tree[item] = values
        if self._wants_json(request):
            if not values and not attrs_:
                form = self.empty_list_form
                body = {"null": b"null", "{}": b"{}", "empty_list": b'{"' + item.encode() + b'": []}'}.get(form, b"")
                return web.Response(status=200, body=body, content_type="application/json")
            body_bytes = json_bytes(tree, single_as_object=self.single_as_object)
            return web.Response(status=200, body=body_bytes, content_type="application/json")
        return web.Response(status=200, body=render_xml(root, tree), content_type="application/xml")

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "").lower()
        if "json" in content_type:
            tree = parse_json(raw)
        elif "xml" in content_type:
            tree = parse_xml(raw)
        else:
            raise _Fail(415, "Content-Type muss application/json oder application/xml sein.")
        if not isinstance(tree, Mapping):
            raise _Fail(400, "Ungültiger Inhalt: ein Objekt wurde erwartet.")
        return dict(_as_wire_text(tree))

    # --- customers -------------------------------------------------------------------------------------------

    def _customer_out(self, tree: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(tree)
        out.setdefault("arap_accno", "1100")
        out.setdefault("payment_accno", "1020")
        out.setdefault("taxfree", "false")
        return out

    async def list_customers(self, request: web.Request) -> web.Response:
        values = [self._customer_out(c) for c in self.state.customers.values()]
        return self._list(request, "customers", "customer", values)

    async def get_customer(self, request: web.Request) -> web.Response:
        customer = self.state.customers.get(request.match_info["number"])
        if customer is None:
            raise _Fail(404, f"Kunde {request.match_info['number']} nicht gefunden.")
        return self._entity(request, "customer", self._customer_out(customer))

    def _store_customer(self, tree: dict[str, Any]) -> None:
        number = text(tree.get("customernumber"))
        if not number:
            raise _Fail(400, "Das Feld 'customernumber' fehlt.")
        if not text(tree.get("name")):
            raise _Fail(400, "Das Feld 'name' fehlt.")
        language = text(tree.get("language_code"))
        if language and language not in self.languages:
            raise _Fail(
                self.language_error_status, f"Die Sprache '{language}' ist unbekannt und muss erst konfiguriert werden"
            )
        existing = self.state.customers.get(number)
        stored = {k: v for k, v in tree.items() if k not in ("id", "contactId", "addressId")}
        stored["id"] = existing["id"] if existing and "id" in existing else self.state.next_id()
        stored.setdefault("created", format_date(self.today()))
        self.state.customers[number] = stored  # overwrite: "always send all customer data"

    async def upsert_customer(self, request: web.Request) -> web.StreamResponse:
        self._store_customer(await self._body(request))
        return self._after_commit(request) or web.Response(status=204)

    # --- parts, charts, departments, projects ----------------------------------------------------------------

    async def list_parts(self, request: web.Request) -> web.Response:
        return self._list(request, "parts", "part", list(self.state.parts.values()))

    async def list_charts(self, request: web.Request) -> web.Response:
        return self._list(request, "charts", "chart", list(self.state.charts))

    async def list_departments(self, request: web.Request) -> web.Response:
        return self._list(request, "departments", "department", list(self.state.departments))

    async def list_projects(self, request: web.Request) -> web.Response:
        return self._list(request, "projects", "project", list(self.state.projects))

    # --- invoices --------------------------------------------------------------------------------------------

    def _rate(self, tax_accnos: str) -> Decimal:
        return sum((self.state.tax_rates.get(a, Decimal(0)) for a in tax_accnos.split()), Decimal(0)) / 100

    def _totals(self, tree: Mapping[str, Any]) -> tuple[Decimal, Decimal, list[tuple[str, Decimal]]]:
        """(gross amount, net amount, ledger credit lines) of an invoice or payable."""
        included = text(tree.get("taxincluded")) == "true"
        net = tax = Decimal(0)
        credits: list[tuple[str, Decimal]] = []
        parts = nested(tree, "parts", "part")
        if parts:
            for part in parts:
                master = self.state.parts.get(text(part.get("partnumber")) or "", {})
                line = _dec(part.get("quantity", "1"), "quantity") * _dec(part.get("sellprice"), "sellprice")
                line -= line * _dec(part.get("discount"), "discount") / 100
                rate = self._rate(master.get("tax_accnos", ""))
                line_net = line / (1 + rate) if included else line
                line_tax = line - line_net if included else line * rate
                net += line_net
                tax += line_tax
                account = text(part.get("income_accno")) or master.get("income_accno") or "3400"
                if account == "0":
                    account = master.get("expense_accno") or "0"
                credits.append((account, line_net))
                tax_accounts = master.get("tax_accnos", "").split()
                if tax_accounts and line_tax:
                    credits.append((tax_accounts[0], line_tax))
        else:
            for entry in nested(tree, "incomeentries", "incomeentry"):
                amount = _dec(entry.get("amount"), "amount")
                net += amount
                credits.append((text(entry.get("income_accno")) or "", amount))
            for entry in nested(tree, "taxentries", "taxentry"):
                amount = _dec(entry.get("amount"), "amount")
                tax += amount
                credits.append((text(entry.get("tax_accno")) or "", amount))
            if included:
                net -= tax
        net = net.quantize(CENT, ROUND_HALF_UP)
        tax = tax.quantize(CENT, ROUND_HALF_UP)
        return net + tax, net, credits

    def _paid(self, number: str, payments: list[dict[str, Any]]) -> Decimal:
        return sum((_dec(p["amount_paid"], "amount_paid") for p in payments if p["invnumber"] == number), Decimal(0))

    def _status(self, amount: Decimal, paid: Decimal, due: _dt.date | None) -> str:
        if abs(amount - paid) < Decimal("0.005"):
            return "PAID"
        if due is not None and due < self.today():
            return "OVERDUE"
        return "OPEN"

    def _invoice_out(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        amount, net, _credits = self._totals(stored)
        paid = self._paid(stored["invnumber"], self.state.payments)
        out: dict[str, Any] = {
            "id": stored["id"],
            "invnumber": stored["invnumber"],
            "ordnumber": stored.get("ordnumber", ""),
            "status": self._status(amount, paid, parse_date(stored.get("duedate"))),
            "currency": stored.get("currency") or "CHF",
            "ar_accno": stored.get("ar_accno") or "1100",
            "transdate": format_date(parse_date(stored["transdate"]) or self.today()),
            "duedate": format_date(
                parse_date(stored.get("duedate")) or parse_date(stored["transdate"]) or self.today()
            ),
            "description": stored.get("description", ""),
            "notes": stored.get("notes", ""),
            "intnotes": stored.get("intnotes", ""),
            "taxincluded": stored.get("taxincluded") or "false",
            "department": (stored.get("department") or "").split("--")[0],
            "dcn": stored.get("dcn") or "",
            "amount": format_decimal(amount),
            "netamount": format_decimal(net),
            "paid": format_decimal(paid),
            "customer": self._customer_out(self.state.customers[stored["customernumber"]]),
        }
        parts = nested(stored, "parts", "part")
        if parts:
            out["parts"] = {"part": [self._part_out(p, stored) for p in parts]}
        else:
            out["incomeentries"] = {"incomeentry": nested(stored, "incomeentries", "incomeentry")}
            taxes = nested(stored, "taxentries", "taxentry")
            if taxes:
                out["taxentries"] = {"taxentry": taxes}
        return out

    def _part_out(self, part: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
        master = self.state.parts.get(text(part.get("partnumber")) or "", {})
        return {
            "income_accno": text(part.get("income_accno")) or master.get("income_accno", "0"),
            "expense_accno": master.get("expense_accno", "0"),
            "partnumber": part.get("partnumber", ""),
            "description": part.get("description") or master.get("description", ""),
            "unit": part.get("unit", ""),
            "quantity": format_decimal(_dec(part.get("quantity", "1"), "quantity")),
            "sellprice": format_decimal(_dec(part.get("sellprice"), "sellprice")),
            "discount": format_decimal(_dec(part.get("discount"), "discount")),
            "itemnote": part.get("itemnote", ""),
            "price_update": stored.get("created", ""),
        }

    async def list_invoices(self, request: web.Request) -> web.Response:
        query = request.query
        status = query.get("status")
        since, until = _query_date(query.get("from"), self.today), _query_date(query.get("to"), self.today)
        customer = query.get("customer_number")
        values = []
        for stored in self.state.invoices.values():
            out = self._invoice_out(stored)
            day = parse_date(out["transdate"])
            assert day is not None
            if status == "OPEN" and out["status"] not in ("OPEN", "OVERDUE"):
                continue  # OPEN includes OVERDUE (documented)
            if status in ("PAID", "OVERDUE") and out["status"] != status:
                continue
            if (since and day < since) or (until and day > until):
                continue
            if customer and stored["customernumber"] != customer:
                continue
            values.append(out)
        return self._list(request, "invoices", "invoice", values)

    def _invoice(self, number: str) -> dict[str, Any]:
        stored = self.state.invoices.get(number)
        if stored is None:
            raise _Fail(404, f"Rechnung {number} nicht gefunden.")
        return stored

    async def get_invoice(self, request: web.Request) -> web.Response:
        return self._entity(request, "invoice", self._invoice_out(self._invoice(request.match_info["number"])))

    async def create_invoice(self, request: web.Request) -> web.StreamResponse:
        self.store_invoice(await self._body(request))
        return self._after_commit(request) or web.Response(status=204)

    def store_invoice(self, tree: dict[str, Any]) -> None:
        """Validate and book one invoice in the books being served (the body of ``POST /invoices``)."""
        number = text(tree.get("invnumber"))
        if not number:
            raise _Fail(400, "Das Feld 'invnumber' fehlt.")
        if number in self.state.invoices:
            raise _Fail(400, f"Die Rechnungsnummer {number} existiert bereits.")
        if parse_date(tree.get("transdate")) is None:
            raise _Fail(400, "Das Feld 'transdate' fehlt oder ist ungültig.")
        language = text(tree.get("language_code"))
        if language and language not in self.languages:
            raise _Fail(
                self.language_error_status, f"Die Sprache '{language}' ist unbekannt und muss erst konfiguriert werden"
            )
        customer = tree.get("customer")
        if isinstance(customer, Mapping) and customer:
            self._store_customer(dict(customer))  # an embedded customer is created or overwritten
            tree["customernumber"] = customer["customernumber"]
        elif text(tree.get("customernumber")) not in self.state.customers:
            raise _Fail(400, f"Der Kunde {tree.get('customernumber')} existiert nicht.")
        parts = nested(tree, "parts", "part")
        entries = nested(tree, "incomeentries", "incomeentry")
        if not parts and not entries:
            raise _Fail(400, "Die Rechnung enthält weder Artikel noch Ertragsbuchungen.")
        for part in parts:
            if text(part.get("partnumber")) not in self.state.parts:
                raise _Fail(400, f"Der Artikel {part.get('partnumber')} existiert nicht.")
        stored = {k: v for k, v in tree.items() if k != "customer"}
        if parts:  # canonical stored form: lists, never the array-of-wrappers input
            stored["parts"] = {"part": parts}
        else:
            stored["incomeentries"] = {"incomeentry": entries}
            stored["taxentries"] = {"taxentry": nested(tree, "taxentries", "taxentry")}
        stored["id"] = self.state.next_id()
        stored["created"] = format_date(self.today())
        if not stored.get("dcn"):
            digits = "".join(ch for ch in number if ch.isdigit()) or stored["id"]
            stored["dcn"] = digits.rjust(26, "0") + "7"
        amount, _net, credits = self._totals(stored)
        self.state.invoices[number] = stored
        day = parse_date(stored["transdate"])
        self._book(day, number, stored.get("description", ""), "ar", [(stored.get("ar_accno") or "1100", -amount)])
        self._book(day, number, stored.get("description", ""), "ar", credits)

    async def invoice_pdf(self, request: web.Request) -> web.Response:
        stored = self._invoice(request.match_info["number"])
        form = request.query.get("formname", "invoice")
        body = minimal_pdf(f"{form} {stored['invnumber']} {self._invoice_out(stored)['amount']}")
        return web.Response(status=200, body=body, content_type="application/pdf")

    async def invoice_html(self, request: web.Request) -> web.Response:
        out = self._invoice_out(self._invoice(request.match_info["number"]))
        html = f"<html><body><h1>Rechnung {out['invnumber']}</h1><p>Total CHF {out['amount']}</p></body></html>"
        return web.Response(status=200, text=html, content_type="text/html")

    # --- payments --------------------------------------------------------------------------------------------

    def _payment_tree(self, number: str, tree: Mapping[str, Any]) -> dict[str, Any]:
        day = parse_date(tree.get("datepaid"))
        if day is None:
            raise _Fail(400, "Das Feld 'datepaid' fehlt oder ist ungültig.")
        amount = _dec(tree.get("amount_paid"), "amount_paid")
        if amount == 0:
            raise _Fail(400, "Der Betrag 'amount_paid' darf nicht 0 sein.")
        accno = text(tree.get("payment_accno")) or "1020"
        if accno not in {c["@accno"] for c in self.state.charts}:
            raise _Fail(400, f"Das Konto {accno} existiert nicht.")
        return {
            "id": self.state.next_id(),
            "invnumber": number,
            "datepaid": format_date(day),
            "amount_paid": format_decimal(amount),
            "source": tree.get("source", ""),
            "memo": tree.get("memo", ""),
            "payment_accno": accno,
            "currency": tree.get("currency") or "CHF",
            "exchangerate": tree.get("exchangerate") or "1.0",
        }

    async def create_payment(self, request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        stored = self._invoice(number)
        payment = self._payment_tree(number, await self._body(request))
        self.state.payments.append(payment)
        amount = Decimal(payment["amount_paid"])
        day = parse_date(payment["datepaid"])
        ar = stored.get("ar_accno") or "1100"
        self._book(day, number, payment["memo"], "ar", [(payment["payment_accno"], -amount), (ar, amount)])
        return self._after_commit(request) or self._entity(request, "payment", payment)

    async def invoice_payments(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        self._invoice(number)
        values = [p for p in self.state.payments if p["invnumber"] == number]
        return self._list(request, "payments", "payment", values)

    async def payment_list(self, request: web.Request) -> web.Response:
        key = self._key(request) or ""
        marks = self.state.processed.get(key, {})
        cutoff_text = request.query.get("processed")
        cutoff = _dt.datetime.strptime(cutoff_text, "%Y-%m-%dT%H:%M") if cutoff_text else None
        values = []
        for payment in self.state.payments:
            mark = marks.get(payment["id"])
            if mark is not None and (cutoff is None or mark >= cutoff):
                continue  # processed (after the cut-off)
            values.append({**payment, "flag": "NEW" if mark is None else "PROCESSED"})
        return self._list(request, "payments", "payment", values)

    async def set_as_processed(self, request: web.Request) -> web.StreamResponse:
        if "x-www-form-urlencoded" not in request.headers.get("Content-Type", ""):
            raise _Fail(415, "Content-Type muss application/x-www-form-urlencoded sein.")
        ids = [v for k, v in parse_qsl((await request.read()).decode()) if k == "id"]
        known = {p["id"] for p in self.state.payments}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise _Fail(400, f"Unbekannte Zahlungs-ID(s): {', '.join(unknown)}")
        marks = self.state.processed.setdefault(self._key(request) or "", {})
        now = _dt.datetime.now().replace(second=0, microsecond=0)
        for payment_id in ids:
            marks[payment_id] = now
        return self._after_commit(request) or web.Response(status=204)

    # --- vendors and payables --------------------------------------------------------------------------------

    async def list_vendors(self, request: web.Request) -> web.Response:
        values = list(self.state.vendors.values())
        search = request.query.get("query")
        if search:
            values = [v for v in values if search.lower() in str(v.get("name", "")).lower()]
        sort = request.query.get("sort", "vendornumber asc").split()
        field = {"id": "id", "name": "name", "score": "name"}.get(sort[0], "vendornumber")
        values.sort(key=lambda v: str(v.get(field, "")), reverse=len(sort) > 1 and sort[1] == "desc")
        return self._list(request, "vendors", "vendor", values)

    def _store_vendor(self, tree: dict[str, Any]) -> None:
        number = text(tree.get("vendornumber"))
        if not number or not text(tree.get("name")):
            raise _Fail(400, "Die Felder 'vendornumber' und 'name' sind Pflicht.")
        existing = self.state.vendors.get(number)
        tree["id"] = existing.get("id") if existing and existing.get("id") else self.state.next_id()
        self.state.vendors[number] = tree

    async def upsert_vendor(self, request: web.Request) -> web.StreamResponse:
        self._store_vendor(await self._body(request))
        return self._after_commit(request) or web.Response(status=204)

    def _payable_out(self, stored: Mapping[str, Any]) -> dict[str, Any]:
        amount, net, _credits = self._totals(stored)
        paid = self._paid(stored["invnumber"], self.state.payable_payments)
        return {
            **{k: v for k, v in stored.items() if k not in ("vendornumber", "parts")},
            "status": self._status(amount, paid, parse_date(stored.get("duedate"))),
            "amount": format_decimal(amount),
            "netamount": format_decimal(net),
            "paid": format_decimal(paid),
            "paymentAccno": self.state.vendors[stored["vendornumber"]].get("payment_accno", "1020"),
            "vendor": self.state.vendors[stored["vendornumber"]],
            "parts": {"part": nested(stored, "parts", "part")},
        }

    async def list_payables(self, request: web.Request) -> web.Response:
        since = _query_date(request.query.get("from"), self.today)
        until = _query_date(request.query.get("to"), self.today)
        status = request.query.get("status")
        values = []
        for stored in self.state.payables.values():
            out = self._payable_out(stored)
            day = parse_date(out["transdate"])
            assert day is not None
            if (since and day < since) or (until and day > until):
                continue
            if status and out["status"] != status and not (status == "OPEN" and out["status"] == "OVERDUE"):
                continue
            values.append(out)
        return self._list(request, "payables", "payable", values)

    def _payable(self, number: str) -> dict[str, Any]:
        stored = self.state.payables.get(number)
        if stored is None:
            raise _Fail(404, f"Kreditorenrechnung {number} nicht gefunden.")
        return stored

    async def get_payable(self, request: web.Request) -> web.Response:
        return self._entity(request, "payable", self._payable_out(self._payable(request.match_info["number"])))

    async def payable_pdf(self, request: web.Request) -> web.Response:
        stored = self._payable(request.match_info["number"])
        body = minimal_pdf(f"payable {stored['invnumber']}")
        return web.Response(status=200, body=body, content_type="application/pdf")

    async def create_payable(self, request: web.Request) -> web.StreamResponse:
        tree = await self._body(request)
        number = text(tree.get("invnumber"))
        if not number or parse_date(tree.get("transdate")) is None:
            raise _Fail(400, "Die Felder 'invnumber' und 'transdate' sind Pflicht.")
        if number in self.state.payables:
            raise _Fail(400, f"Die Kreditorenrechnung {number} existiert bereits.")
        vendor = tree.pop("vendor", None)
        if not isinstance(vendor, Mapping) or not vendor:
            raise _Fail(400, "Das Feld 'vendor' fehlt.")
        self._store_vendor(dict(vendor))
        parts = nested(tree, "parts", "part")
        if not parts:
            raise _Fail(400, "Die Kreditorenrechnung enthält keine Positionen.")
        tree.update(vendornumber=vendor["vendornumber"], parts={"part": parts}, id=self.state.next_id())
        self.state.payables[number] = tree
        return self._after_commit(request) or web.Response(status=204)

    async def payable_payments(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        self._payable(number)
        values = [p for p in self.state.payable_payments if p["invnumber"] == number]
        return self._list(request, "payments", "payment", values)

    async def create_payable_payment(self, request: web.Request) -> web.StreamResponse:
        number = request.match_info["number"]
        self._payable(number)
        payment = self._payment_tree(number, await self._body(request))
        self.state.payable_payments.append(payment)
        return self._after_commit(request) or self._entity(request, "payment", payment)

    # --- general ledger --------------------------------------------------------------------------------------

    def _book(self, day: _dt.date | None, reference: str, description: str, module: str, lines: Any) -> None:
        for accno, amount in lines:
            if amount == 0:
                continue
            self.state.ledger.append(
                {
                    "id": self.state.next_id(),
                    "accno": accno,
                    "transdate": day or self.today(),
                    "reference": reference,
                    "description": description,
                    "amount": Decimal(amount).quantize(CENT, ROUND_HALF_UP),
                    "module": module,
                }
            )

    def _matching(self, pattern: str, accno: str) -> bool:
        pattern = pattern.lower()
        if pattern == "x":
            return True
        return len(pattern) == len(accno) and all(p in ("x", a) for p, a in zip(pattern, accno, strict=True))

    async def chart_transactions(self, request: web.Request) -> web.Response:
        pattern = request.match_info["accno"]
        since = _query_date(request.query.get("from_date"), self.today)
        until = _query_date(request.query.get("to_date"), self.today) or self.today()
        values = []
        for line in self.state.ledger:
            if not self._matching(pattern, line["accno"]):
                continue
            if (since and line["transdate"] < since) or line["transdate"] > until:
                continue
            values.append(
                {
                    "id": line["id"],
                    "chart": {"@id": "0", "@accno": line["accno"], "@link": "", "@allow_gl": "false"},
                    "transdate": format_date(line["transdate"]),
                    "reference": line["reference"],
                    "description": line["description"],
                    "amount": format_decimal(line["amount"]),
                    "module": line["module"],
                    "source": "",
                    "memo": "",
                    "accno": line["accno"],
                }
            )
        return self._list(request, "transactions", "transaction", values, number_of_transaction=str(len(values)))

    def _balances(self, request: web.Request) -> list[tuple[str, str, Decimal]]:
        pattern = request.query.get("accno", "x")
        since = _query_date(request.query.get("from"), self.today)
        until = _query_date(request.query.get("to"), self.today)
        names = {c["@accno"]: c["@description"] for c in self.state.charts}
        totals: dict[str, Decimal] = {}
        for line in self.state.ledger:
            if not self._matching(pattern, line["accno"]):
                continue
            if (since and line["transdate"] < since) or (until and line["transdate"] > until):
                continue
            totals[line["accno"]] = totals.get(line["accno"], Decimal(0)) + line["amount"]
        out = []
        for accno in sorted(totals):
            natural = -totals[accno] if accno[:1] in "145678" else totals[accno]  # debit-natured accounts positive
            out.append((accno, names.get(accno, ""), natural))
        return out

    async def saldo_v1(self, request: web.Request) -> web.Response:
        rows = [{"column": [a, n, format_decimal(v)]} for a, n, v in self._balances(request)]
        return self._list(request, "table", "row", rows)

    async def saldo_v2(self, request: web.Request) -> web.Response:
        rows = [
            {"accountnumber": a, "accountname": n, "amount": str(v.quantize(Decimal("0.0001")))}
            for a, n, v in self._balances(request)
        ]
        return self._list(request, "table", "row", rows)

    def _gl_entry(self, tree: Mapping[str, Any]) -> dict[str, Any]:
        day = parse_date(tree.get("transdate"))
        if day is None:
            raise _Fail(400, "Das Feld 'transdate' fehlt oder ist ungültig.")
        lines = nested(tree, GL_LINES_WRAPPER, GL_LINE_ITEM)
        if len(lines) < 2:
            raise _Fail(400, "Eine Buchung braucht mindestens zwei Zeilen.")
        known = {c["@accno"] for c in self.state.charts}
        debit = credit = Decimal(0)
        booked = []
        for line in lines:
            accno = text(line.get("accno")) or ""
            if accno not in known:
                raise _Fail(400, f"Das Konto {accno} existiert nicht.")
            d, c = _dec(line.get("debit"), "debit"), _dec(line.get("credit"), "credit")
            debit += d
            credit += c
            booked.append((accno, c - d))  # SQL-Ledger sign: debit negative
        if debit != credit:
            raise _Fail(400, f"Soll ({debit}) und Haben ({credit}) sind nicht ausgeglichen.")
        entry = {"id": self.state.next_id(), **tree}
        self._book(day, text(tree.get("reference")) or entry["id"], text(tree.get("description")) or "", "gl", booked)
        return entry

    async def post_gl(self, request: web.Request) -> web.StreamResponse:
        entry = self._gl_entry(await self._body(request))
        self.state.gl.append(entry)
        return self._after_commit(request) or self._entity(request, "gl", {"id": entry["id"]})

    async def post_yearend(self, request: web.Request) -> web.StreamResponse:
        entry = self._gl_entry(await self._body(request))
        self.state.yearend.append(entry)
        return self._after_commit(request) or self._entity(request, "gl", {"id": entry["id"]})

    # --- belege ----------------------------------------------------------------------------------------------

    async def upload_beleg(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self.max_upload + 64 * 1024:
            raise _Fail(413, "Die Datei ist grösser als 25 MB.")
        if not request.content_type.startswith("multipart/"):
            raise _Fail(400, "multipart/form-data erwartet.")
        form = await request.post()
        upload = form.get(BELEG_FILE_FIELD)
        if not isinstance(upload, web.FileField):
            raise _Fail(400, f"Das Feld '{BELEG_FILE_FIELD}' fehlt.")
        content = upload.file.read()
        if len(content) > self.max_upload:
            raise _Fail(413, "Die Datei ist grösser als 25 MB.")
        if (upload.content_type or "").lower() not in BELEG_TYPES:
            raise _Fail(415, f"Der Dateityp {upload.content_type} wird nicht unterstützt (pdf, png, jpg, gif).")
        checksum = zlib.crc32(content)
        if checksum in self.state.belege:
            raise _Fail(409, "Dieses Dokument wurde bereits hochgeladen.")
        comment = form.get(BELEG_COMMENT_FIELD)
        beleg = {
            "id": self.state.next_id(),
            "comment": comment if isinstance(comment, str) else "",
            "checksum": str(checksum),
            "date_received": _dt.datetime.now().astimezone().isoformat(timespec="milliseconds"),
            "file_name": upload.filename,
        }
        self.state.belege[checksum] = beleg
        return self._after_commit(request) or self._entity(request, "beleg", beleg)


_SEED_NAMES = (
    ("Bäckerei Zürcher GmbH", "Limmatquai 14", "8001", "Zürich"),
    ("Schreinerei Holzer AG", "Industriestrasse 7", "3600", "Thun"),
    ("Café du Lac Sàrl", "Quai du Mont-Blanc 3", "1201", "Genève"),
    ("Velo Meier & Co.", "Bahnhofplatz 2", "4051", "Basel"),
    ("Treuhand Gerber AG", "Poststrasse 21", "9000", "St. Gallen"),
)
_SEED_PARTS = (("BERATUNG", "3.5"), ("SW-LIC", "1"), ("SUPPORT-H", "2"), ("VERSAND", "1"), ("BUCH", "2"))


def _seed_books(sandbox: RmaSandbox, customers: int, invoices: int) -> None:
    """Realistic customers and invoices in the books being served; numbers continue after the existing ones."""
    state = sandbox.state
    numbers = []
    for index in range(customers):
        name, street, zipcode, city = _SEED_NAMES[index % len(_SEED_NAMES)]
        number = _free_number(state.customers, "K-", 3001)
        state.customers[number] = {
            "customernumber": number, "name": name, "address1": street, "zipcode": zipcode, "city": city,
            "country": "Schweiz", "terms": "30", "language_code": "de", "typeofcontact": "company",
            "email": f"buchhaltung{index + 1}@example.ch", "id": state.next_id(),
            "created": format_date(sandbox.today()),
        }  # fmt: skip
        numbers.append(number)
    numbers = numbers or sorted(state.customers)
    today = sandbox.today()
    for index in range(invoices):
        number = _free_number(state.invoices, "RE-", 5001)
        day = today - _dt.timedelta(days=10 * (invoices - index))
        partnumber, quantity = _SEED_PARTS[index % len(_SEED_PARTS)]
        sandbox.store_invoice(
            {
                "invnumber": number, "customernumber": numbers[index % len(numbers)],
                "transdate": format_date(day), "duedate": format_date(day + _dt.timedelta(days=30)),
                "currency": "CHF", "description": f"Leistungen {day:%m.%Y}", "taxincluded": "false",
                "parts": {"part": [{"partnumber": partnumber, "quantity": quantity,
                                    "sellprice": state.parts[partnumber]["sellprice"]}]},
            }
        )  # fmt: skip
        if index % 3 == 0:  # every third invoice is paid in full
            amount, _net, _credits = sandbox._totals(state.invoices[number])
            state.payments.append(
                {"id": state.next_id(), "invnumber": number, "datepaid": format_date(day + _dt.timedelta(days=12)),
                 "amount_paid": format_decimal(amount), "source": "", "memo": "Zahlung", "payment_accno": "1020",
                 "currency": "CHF", "exchangerate": "1.0"}
            )  # fmt: skip
            paid_on = day + _dt.timedelta(days=12)
            sandbox._book(paid_on, number, "Zahlung", "ar", [("1020", -amount), ("1100", amount)])


def _free_number(taken: Mapping[str, Any], prefix: str, start: int) -> str:
    return next(f"{prefix}{n}" for n in itertools.count(start) if f"{prefix}{n}" not in taken)


def _query_date(value: str | None, today: Callable[[], _dt.date]) -> _dt.date | None:
    if not value:
        return None
    words = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if value in words:
        return today() + _dt.timedelta(days=words[value])
    day = parse_date(value)
    if day is None:
        raise _Fail(400, f"Ungültiges Datum: {value}")
    return day


def all_items(tree: Any, item: str) -> list[Any]:
    """Helper for tests reading sandbox answers."""
    return items(tree, item)


__all__ += ["all_items", "as_list"]
