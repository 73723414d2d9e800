"""Run my Accounts has no machine-readable spec: every request the adapter sends to its sandbox is checked
structurally against the documented payloads in `runmyaccounts-examples/` (issue 13 item 5) — the same element
and field names, nested the same way, for each operation in both wire formats. A field no documented payload of
the operation has is a finding; operations without a documented request payload are listed in
`errata/runmyaccounts.toml` (so a new one cannot slip in unchecked)."""

from __future__ import annotations

import datetime as dt
import re
import sys
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest
from accounting_bridge.adapters.runmyaccounts import Payable, Vendor, wire
from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep, minimal_pdf

from .oracle import ERRATA
from .recorder import Exchange, Recorder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

EXAMPLES = Path(__file__).parents[1] / "adapters" / "runmyaccounts" / "fixtures" / "examples"
if not EXAMPLES.exists():  # pragma: no cover - the copy ships with the tests
    EXAMPLES = Path("/work/shared/backends/runmyaccounts-examples")
API_KEY = "rma-secret-key-4711"
DAY = dt.date(2024, 5, 2)

#: operation (method + path below /clients/{mandant}) → the documented request payloads of it
OPERATIONS: dict[str, str] = {
    "POST /invoices": r"0[1-9]_.*\.request\.(json|xml)",
    "POST /invoices/{number}/payments": r"1[0-2]_payment_.*\.request\.(json|xml)",
    "POST /invoices/set_as_processed": r"15_set_as_processed\.request\.http",
    "POST /customers": r"1[67]_customer_upsert\.request\.(json|xml)",
    "POST /belege": r"30_belege_upload\.request\.http",
    "POST /payables": r"33_payable_create\.request\.json",
}
#: An invoice may embed the full customer entity ("either embed a full <customer> ... always send all customer
#: data", backends/runmyaccounts.md §3 #6): its documented shape is the customer upsert's, under /customer.
NESTED: dict[str, tuple[str, str]] = {"POST /invoices": ("/customer", OPERATIONS["POST /customers"])}


def operation(exchange: Exchange) -> str:
    path = re.sub(r"^/api/latest/clients/[^/]+", "", exchange.path)
    path = re.sub(r"^/(invoices|payables)/(?!set_as_processed|payment_list)[^/]+", r"/\1/{number}", path)
    return f"{exchange.method} {path}"


def shape(tree: Any, prefix: str = "") -> Iterator[str]:
    """Every field path of a payload tree (lists flattened: one element or many have the same shape)."""
    if isinstance(tree, list):
        for item in tree:
            yield from shape(item, prefix)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}/{key}"
            yield path
            yield from shape(value, path)


def request_shape(content_type: str, body: bytes) -> set[str]:
    if "json" in content_type:
        return set(shape(wire.parse_json(body)))
    if "xml" in content_type:
        root, tree = wire.parse_xml_document(body)
        return {f"<{root}>", *shape(tree)}
    if "x-www-form-urlencoded" in content_type:
        return {f"/{name}" for name, _ in parse_qsl(body.decode(), keep_blank_values=True)}
    if "multipart/form-data" in content_type:
        return {f"/{name}" for name in re.findall(r'(?<![\w-])name="([^"]+)"', body.decode("latin-1"))}
    raise AssertionError(f"unexpected request content type {content_type!r}")


def documented_shape(name: str) -> set[str]:
    paths = documented(OPERATIONS[name])
    if name in NESTED:
        prefix, pattern = NESTED[name]
        paths |= {prefix + path for path in documented(pattern) if not path.startswith("<")}
    return paths


def documented(pattern: str) -> set[str]:
    paths: set[str] = set()
    for example in sorted(EXAMPLES.iterdir()):
        if not re.fullmatch(pattern, example.name):
            continue
        data = example.read_bytes()
        if example.suffix == ".http":
            head, _, body = data.partition(b"\n\n")
            kind = re.search(rb"Content-Type: ([^\r\n;]+)", head)
            paths |= request_shape(kind.group(1).decode() if kind else "", body)
        else:
            paths |= request_shape(example.suffix, data)
    assert paths, f"no documented payload matches {pattern!r}"
    return paths


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[RmaSandbox, Recorder]]:
    sandbox = RmaSandbox(mandant="demo", api_key=API_KEY, today=lambda: DAY)
    recorder = Recorder()
    recorder.attach(sandbox)
    async with sandbox:
        yield sandbox, recorder


async def drive_every_write(sandbox: RmaSandbox, wire_format: str) -> None:
    async with ab.connect(
        "runmyaccounts", tenant="demo", api_key=API_KEY, base_url=sandbox.base_url, wire_format=wire_format
    ) as ledger:
        adapter: Any = ledger.adapter
        adapter.transport.sleep = FakeSleep()
        suffix = wire_format.upper()
        await ledger.customers.upsert(
            ab.Customer(
                number=f"K-{suffix}", name="Muster AG", email="info@muster.ch", phone="031 000 00 00",
                address=ab.Address(street="Weg 1", postcode="3000", city="Bern", country="CH"), currency="CHF",
                payment_terms_days=30,
            )
        )  # fmt: skip
        await ledger.invoices.create(
            ab.Invoice(
                number=f"R-{suffix}", customer_number="K-1001", issue_date=DAY, due_date=DAY + dt.timedelta(days=30),
                lines=[ab.InvoiceLine(description="Schulung", unit_price=Decimal("1250.00"), account="3400")],
                tax_lines=[ab.TaxLine(account="2201", amount=Decimal("101.25"))], notes="Danke",
            )
        )  # fmt: skip
        await ledger.invoices.create(
            ab.Invoice(
                number=f"P-{suffix}", customer=ab.Customer(number=f"K-E-{suffix}", name="Eingebettet GmbH"),
                issue_date=DAY, due_date=DAY, lines=[ab.InvoiceLine(description="Lizenz", item_number="SW-LIC",
                                                      quantity=Decimal(2), unit_price=Decimal("480.0"))],
            )
        )  # fmt: skip
        paid = await ledger.payments.create(
            ab.Payment(invoice_number=f"R-{suffix}", date=DAY, amount=Decimal("1000.00"), reference="ZKB-1")
        )
        await adapter.set_as_processed([paid.id])
        pdf = minimal_pdf(f"beleg {wire_format}")
        await ledger.documents.upload(ab.Document(filename="beleg.pdf", content=pdf, content_type="application/pdf"))
        vendor = await adapter.upsert_vendor(Vendor(number=f"L-{suffix}", name="Druckerei Blatt AG", city="Bern"))
        await adapter.create_payable(
            Payable(
                number=f"L-2024-{suffix}", vendor=vendor, issue_date=DAY, due_date=DAY + dt.timedelta(days=30),
                lines=(ab.InvoiceLine(description="Toner", item_number="BUERO", unit_price=Decimal("259.40"),
                                      account="6500"),),
            )
        )  # fmt: skip
        salary = ab.Registration(
            date=DAY, description="Lohn Mai", reference=f"LOHN-{suffix}",
            lines=[ab.PostingLine(account="5000", amount=Decimal("5000.00")),
                   ab.PostingLine(account="1020", amount=Decimal("-5000.00"))],
        )  # fmt: skip
        await ledger.registrations.submit(salary)
        await adapter.submit_yearend(attrs.evolve(salary, reference=f"JA-{suffix}", description="Abschluss"))


async def test_every_request_has_a_documented_shape(recorded: tuple[RmaSandbox, Recorder]) -> None:
    sandbox, recorder = recorded
    for wire_format in ("json", "xml"):
        await drive_every_write(sandbox, wire_format)
    errata = tomllib.loads((ERRATA / "runmyaccounts.toml").read_text(encoding="utf-8"))
    unlisted = {entry["operation"] for entry in errata.values() if "field" not in entry}  # whole operations
    allowed = {(entry["operation"], entry["field"]) for entry in errata.values() if "field" in entry}
    problems: list[str] = []
    checked: set[str] = set()
    used: set[tuple[str, str]] = set()
    for exchange in recorder.exchanges:
        if not exchange.request_body or exchange.method == "GET":
            continue
        name = operation(exchange)
        if name in unlisted:
            used.add((name, ""))
            continue
        if name not in OPERATIONS:
            problems.append(f"{name}: no documented payload and not listed in errata/runmyaccounts.toml")
            continue
        checked.add(name)
        extra = request_shape(exchange.request_content_type, exchange.request_body) - documented_shape(name)
        used |= {(name, path) for path in extra if (name, path) in allowed}
        problems += [
            f"{name}: {path} is in no documented payload" for path in sorted(extra) if (name, path) not in allowed
        ]
    assert not problems, "\n".join(problems)
    assert checked == set(OPERATIONS), f"operations not driven: {set(OPERATIONS) - checked}"
    needed = {(name, "") for name in unlisted} | allowed
    assert used == needed, f"errata no request needs: {needed - used}"
