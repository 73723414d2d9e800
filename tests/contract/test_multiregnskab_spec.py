"""Multi-Regnskab Public Client: every operation the adapter implements, against its sandbox, checked against the
vendor's OpenAPI document (v1.0.17); each difference must be a named erratum in `errata/multiregnskab.toml`."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from accounting_bridge.adapters.multiregnskab import MultiRegnskabAdapter
from accounting_bridge.adapters.multiregnskab.sandbox import PUBLIC_PREFIX, MultiRegnskabSandbox

import accounting_bridge as ab
from accounting_bridge.testing import FakeSleep

from .coverage import assert_all_validated, counting_calls, operations
from .oracle import Oracle, load_errata, unexplained, unused
from .recorder import Recorder

SPEC = "multiregnskab-public-client-api-v1.yaml"
PDF = b"%PDF-1.4 contract test"


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[MultiRegnskabSandbox, Recorder]]:
    sandbox = MultiRegnskabSandbox()
    recorder = Recorder()
    recorder.attach(sandbox)
    async with sandbox:
        yield sandbox, recorder


def _document(name: str, content: bytes = PDF) -> ab.Document:
    return ab.Document(filename=name, content=content, content_type="application/pdf", description=f"Bilag {name}")


async def drive_every_operation(sandbox: MultiRegnskabSandbox) -> None:
    """Each neutral operation and each adapter extra of the Public Client adapter at least once."""
    async with ab.connect(
        "multiregnskab", base_url=sandbox.public_url, username=sandbox.username, password=sandbox.password
    ) as ledger:
        adapter = ledger.adapter
        assert isinstance(adapter, MultiRegnskabAdapter)
        adapter.transport.sleep = FakeSleep()
        assert await ledger.companies()
        customer = ab.Customer(
            number="K-100", name="Kunde ApS", email="faktura@kunde.dk", vat_number="12345678", payment_terms_days=14,
            address=ab.Address(street="Bygaden 1", postcode="8000", city="Aarhus C", country="DK"),
        )  # fmt: skip
        await ledger.customers.upsert(customer)
        await ledger.customers.get("K-100")
        assert [c async for c in ledger.customers.list()]
        await ledger.invoices.create(
            ab.Invoice(
                number="F-1", customer_number="K-100", issue_date=dt.date(2026, 11, 30), status=ab.InvoiceStatus.DRAFT,
                lines=[ab.InvoiceLine(description="Abonnement", item_number="P2345", quantity=Decimal(3), unit_price=Decimal("33.95")),
                       ab.InvoiceLine(description="Timer", account="Salg af ydelser", quantity=Decimal("1.5"),
                                      unit_price=Decimal(1200), unit="HUR")],
            )
        )  # fmt: skip
        [t async for t in ledger.bank_transactions.list(since=dt.date(2026, 10, 1), until=dt.date(2026, 11, 30))]
        ref = await ledger.documents.upload(_document("bilag.pdf"))
        assert [d async for d in ledger.documents.list()]
        await ledger.documents.get(ref.id)
        await adapter.update_document(ref.id, date=dt.date(2026, 11, 30), friendly_filename="Bilag 1", comment="ok")
        await ledger.documents.delete(ref.id)
        await ledger.registrations.submit(
            ab.Registration(
                date=dt.date(2026, 11, 30), description="Taxi", reference="ref-1",
                lines=[ab.PostingLine(account="5820", amount=Decimal("-250.00")),
                       ab.PostingLine(account="3620", amount=Decimal("250.00"), vat_code="DKI25")],
                attachments=[_document("taxi.pdf", PDF + b"1")],
            )
        )  # fmt: skip
        await adapter.product_types()
        await adapter.products()
        await adapter.units_of_measure()
        await adapter.bank_accounts()
        await adapter.bank_balances()
        sandbox.faults.expire_tokens()  # the next call renews the access token: POST /refreshToken
        await adapter.user()
        assert (await ledger.raw("GET", "/unitsOfMeasure/EN")).status == 200
        await adapter.access_request()
        await adapter.logout()


#: Every spec operation the drive reaches (an adapter change that stops calling one, or calls a new one, shows).
OPERATIONS = {
    "POST /login", "POST /refreshToken", "DELETE /tokens", "GET /user", "POST /accessRequest", "GET /companies",
    "GET /customers/{companyXid}", "POST /customers", "POST /invoices", "GET /productTypes/{companyXid}",
    "GET /products/{companyXid}", "GET /unitsOfMeasure/{language}", "GET /bankAccounts/{companyXid}",
    "GET /bankBalances/{companyXid}", "GET /bankPostings/{companyXid}/{bankAccountXid}",
    "POST /filesForUseInRegistrations", "GET /archiveFiles", "GET /archiveFile",
    "PUT /archiveFile/{companyXid}/{archiveFileXid}", "DELETE /archiveFile/{companyXid}/{archiveFileXid}",
    "POST /suggestedRegistrations",
}  # fmt: skip


async def test_every_exchange_matches_the_spec_or_a_named_erratum(
    recorded: tuple[MultiRegnskabSandbox, Recorder],
) -> None:
    sandbox, recorder = recorded
    with counting_calls(MultiRegnskabAdapter) as calls:
        await drive_every_operation(sandbox)
    assert set(calls) == operations(MultiRegnskabAdapter), "adapter operations the drive does not call"
    errata = load_errata("multiregnskab")
    oracle = Oracle(
        SPEC, errata, server_url="https://www.multiregnskab.dk/open/clientapi/v1", prefix=PUBLIC_PREFIX,
        strict_responses=True,  # the vendor's own spec: an undocumented field in an answer is a sandbox invention
    )  # fmt: skip
    findings = list(oracle.findings(recorder.exchanges))
    assert_all_validated(oracle, recorder.exchanges, sandbox.request_count(), OPERATIONS)
    left, used = unexplained(oracle, findings, errata)
    assert not left, "differences from the spec that no erratum explains:\n" + "\n".join(sorted(set(map(str, left))))
    assert not unused(errata, used), f"errata (or their fields) no exchange needs: {unused(errata, used)}"
