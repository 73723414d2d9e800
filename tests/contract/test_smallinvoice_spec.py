"""smallinvoice: every operation the adapter implements, against its sandbox, checked against the OpenAPI document.

Every request the adapter sends and every answer the sandbox gives is recorded on the sandbox's socket and
validated with openapi-core; each difference must be a named erratum in `errata/smallinvoice.toml`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest
from accounting_bridge.adapters.smallinvoice import SmallInvoiceAdapter
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

from .coverage import assert_all_validated, counting_calls, operations
from .oracle import Oracle, load_errata, unexplained, unused
from .recorder import Recorder

SPEC = "smallinvoice-openapi-2.0.0.third-party.yaml"
ADDRESS = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[SmallInvoiceSandbox, Recorder]]:
    sandbox = SmallInvoiceSandbox()
    recorder = Recorder()
    recorder.attach(sandbox)
    async with sandbox:
        yield sandbox, recorder


def _invoice(number: str, **changes: object) -> ab.Invoice:
    values: dict[str, object] = {
        "customer_number": "K-1",
        "issue_date": dt.date(2024, 5, 1),
        "due_date": dt.date(2024, 5, 31),
        "title": "Rechnung",
        "notes": "Danke",
        "internal_notes": "intern",
        "lines": [
            ab.InvoiceLine(
                description="Beratung", note="Mai", quantity=Decimal("2.5"), unit_price=Decimal("120.10"),
                tax_rate=Decimal("8.1"), unit="hour", discount_percent=Decimal("5"), item_number="B-1",
            ),
            ab.InvoiceLine(description="Material", unit_price=Decimal("0.05"), tax_rate=Decimal("8.1")),
        ],
    }  # fmt: skip
    values.update(changes)
    return ab.Invoice(number=number, **values)  # type: ignore[arg-type]


async def drive_every_operation(sandbox: SmallInvoiceSandbox) -> None:
    """Each neutral operation and each adapter extra at least once (also the look-up and read-back paths)."""
    async with ab.connect("smallinvoice", base_url=sandbox.base_url, **sandbox.connect_settings()) as ledger:
        adapter = ledger.adapter
        assert isinstance(adapter, SmallInvoiceAdapter)
        customer = ab.Customer(
            number="K-1", name="Muster AG", email="info@muster.ch", phone="+41 31 000 00 00", address=ADDRESS,
            currency="CHF", language="de", vat_number="CHE-123.456.789", payment_terms_days=20,
        )  # fmt: skip
        await ledger.customers.upsert(customer)
        moved = ab.Address(street="Neuweg 2", postcode="3000", city="Bern", country="CH")
        await ledger.customers.upsert(attrs.evolve(customer, address=moved, email="neu@muster.ch"))
        person = ab.Customer(number="K-2", name="Hans Muster", kind=ab.CustomerKind.PERSON, address=ADDRESS)
        async with ab.connect(
            "smallinvoice", base_url=sandbox.base_url, person_gender="M", **sandbox.connect_settings()
        ) as other:
            await other.customers.upsert(person)
        assert (await ledger.customers.get("K-1")).address == moved
        assert len([c async for c in ledger.customers.list()]) == 2
        await ledger.invoices.create(_invoice("R-1"))
        await ledger.invoices.create(_invoice("R-1"))  # a resend of the same invoice: refused (422), looked up
        sandbox.drop_next(path="/receivables/invoices", method="POST", after_commit=True)
        await ledger.invoices.create(_invoice("R-3"))  # the answer is lost: the look-up decides (filter + scan)
        await ledger.invoices.create(
            _invoice("R-2", customer=person, customer_number="K-2", status=ab.InvoiceStatus.DRAFT)
        )
        await ledger.invoices.get("R-1")
        assert [i.number async for i in ledger.invoices.list(status=ab.InvoiceStatus.OPEN)] == ["R-1", "R-3"]
        assert len([i async for i in ledger.invoices.list(customer_number="K-1", since=dt.date(2024, 1, 1))]) == 2
        assert (await ledger.invoices.pdf("R-1")).startswith(b"%PDF")
        await ledger.payments.create(
            ab.Payment(invoice_number="R-1", date=dt.date(2024, 5, 10), amount=Decimal("100.00"), memo="Teil")
        )
        assert len([p async for p in ledger.payments.list(invoice_number="R-1")]) == 1
        assert len([p async for p in ledger.payments.list()]) == 1
        await adapter.send_invoice_by_email(
            "R-1", recipients=["info@muster.ch", ("buha@muster.ch", "Buchhaltung")], subject="Rechnung", body="Hallo",
            sender="CO", receipt=False,
        )  # fmt: skip
        await adapter.change_invoice_status("R-2", ab.InvoiceStatus.OPEN, at=dt.datetime(2024, 5, 2, 9, 30))
        r2 = await ledger.invoices.get("R-2")
        assert (await adapter.get_invoice_by_id(r2.id or "")).number == "R-2"
        assert (await adapter.get_customer_by_id((await ledger.customers.get("K-1")).id or "")).number == "K-1"
        assert (await ledger.invoices.cancel("R-2")).status is ab.InvoiceStatus.CANCELLED
        await adapter.delete_invoice("R-2")
        await adapter.units()
        await adapter.bank_accounts()
        await adapter.isrs()
        await adapter.owner()
        await ledger.raw("GET", "/catalog/configuration/units/7")
    client_id = sandbox.connect_settings()["client_id"]
    async with ab.connect(
        "smallinvoice",
        base_url=sandbox.base_url,
        refresh_token=sandbox.issue_refresh_token(client_id),
        **sandbox.connect_settings(),
    ) as authorized:  # the refresh-token grant (a token from the authorization-code grant)
        await authorized.customers.get("K-2")


#: Every spec operation the drive reaches (an adapter change that stops calling one, or calls a new one, shows).
OPERATIONS = {
    "POST /auth/access-tokens", "GET /auth/owner", "GET /contacts", "POST /contacts", "GET /contacts/{contactId}",
    "PUT /contacts/{contactId}", "PUT /contacts/{contactId}/addresses/{addressId}", "GET /receivables/invoices",
    "POST /receivables/invoices", "GET /receivables/invoices/{invoiceId}", "DELETE /receivables/invoices/{invoiceIds}",
    "GET /receivables/invoices/{invoiceId}/pdf", "PATCH /receivables/invoices/{invoiceId}/change-status",
    "PATCH /receivables/invoices/{invoiceId}/send-by-email", "GET /receivables/invoices/{invoiceId}/payments",
    "POST /receivables/invoices/{invoiceId}/payments", "GET /catalog/configuration/units",
    "GET /catalog/configuration/units/{unitId}", "GET /configuration/bank-accounts",
    "GET /receivables/configuration/isrs",
}  # fmt: skip


async def test_every_exchange_matches_the_spec_or_a_named_erratum(
    recorded: tuple[SmallInvoiceSandbox, Recorder],
) -> None:
    sandbox, recorder = recorded
    with counting_calls(SmallInvoiceAdapter) as calls:
        await drive_every_operation(sandbox)
    assert set(calls) == operations(SmallInvoiceAdapter), "adapter operations the drive does not call"
    assert any(b'"refresh_token"' in e.request_body for e in recorder.exchanges if e.path.endswith("/access-tokens"))
    errata = load_errata("smallinvoice")
    oracle = Oracle(
        SPEC, errata, server_url="https://api.smallinvoice.com/v2", prefix="/v2",
        strict_responses=True,  # a key the spec does not document is a sandbox invention the adapter may rely on
    )  # fmt: skip
    findings = list(oracle.findings(recorder.exchanges))
    assert_all_validated(oracle, recorder.exchanges, sandbox.request_count(), OPERATIONS)
    left, used = unexplained(oracle, findings, errata)
    assert not left, "differences from the spec that no erratum explains:\n" + "\n".join(sorted(set(map(str, left))))
    assert not unused(errata, used), f"errata (or their fields) no exchange needs: {unused(errata, used)}"
