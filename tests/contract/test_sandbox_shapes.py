"""The sandboxes answer the objects' full shapes as the specs describe them (issue 13 items 4 and 5)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from functools import cache
from typing import Any

from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab
from accounting_bridge import jsoncodec

from .oracle import spec_path
from .recorder import Recorder


@cache
def schemas(name: str) -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(spec_path(name).read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    return dict(spec["components"]["schemas"])


def missing(item: dict[str, Any], schema: str, spec: str = "smallinvoice-openapi-2.0.0.third-party.yaml") -> set[str]:
    return set(schemas(spec)[schema].get("required", ())) - set(item)


def test_smallinvoice_objects_carry_every_key_the_api_returns() -> None:
    sandbox = SmallInvoiceSandbox()
    sandbox.seed(customers=2, invoices=3)
    books = sandbox.books()
    for contact in books.contacts.values():
        assert not missing(contact, "ContactGET")
        assert not missing(contact["main_address"], "ContactAddressGET")
    for invoice in books.invoices.values():
        assert not missing(invoice, "DocumentInvoiceStandardGET")
        for position in invoice["positions"]:
            assert not missing(position, "DocumentInvoicePositionGET")
        for payment in books.payments[invoice["id"]]:
            assert not missing(payment, "DocumentInvoicePaymentGET")
    for account in books.bank_accounts.values():
        assert not missing(account, "ConfigurationBankAccountGET")
    for isr in books.isrs.values():
        assert not missing(isr, "ReceivablesConfigurationIsrGET")


async def test_smallinvoice_invoice_texts_are_complete() -> None:
    async with SmallInvoiceSandbox() as sandbox:
        sandbox.seed(customers=1, invoices=0)
        (contact,) = sandbox.books().contacts.values()
        async with ab.connect("smallinvoice", base_url=sandbox.base_url, **sandbox.connect_settings()) as ledger:
            line = ab.InvoiceLine(description="Beratung", unit_price=Decimal(100))
            await ledger.invoices.create(
                ab.Invoice(number="R-1", customer_number=contact["number"], issue_date=dt.date(2024, 5, 1),
                           title="Rechnung", lines=[line])
            )  # fmt: skip
        (stored,) = sandbox.books().invoices.values()
        assert stored["texts"] and not missing(stored["texts"][0], "DocumentInvoiceTextGET")


async def test_multiregnskab_archive_file_has_only_the_fields_of_archive_file() -> None:
    declared = set(schemas("multiregnskab-public-client-api-v1.yaml")["ArchiveFile"]["properties"])
    sandbox, recorder = MultiRegnskabSandbox(), Recorder()
    recorder.attach(sandbox)
    async with (
        sandbox,
        ab.connect(
            "multiregnskab", base_url=sandbox.public_url, username=sandbox.username, password=sandbox.password
        ) as ledger,
    ):
        ref = await ledger.documents.upload(ab.Document(filename="a.pdf", content=b"%PDF-1.4 x"))
        await ledger.documents.get(ref.id)
    (answer,) = [e for e in recorder.exchanges if e.method == "GET" and e.path.endswith("/archiveFile")]
    fields = set(jsoncodec.loads(answer.response_body))
    assert fields <= declared, fields - declared
