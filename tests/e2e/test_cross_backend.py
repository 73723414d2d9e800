"""One neutral scenario against every adapter (issue 15): customer, invoice with the status rule, payment,
registration with a reference, listing. Each backend runs over real sockets against its sandbox (`memory` in
process) and must show the same observable results; a step is left out only where `ledger.capabilities` excludes
it, and then the ledger must refuse it before any I/O.

What differs per backend is only chart data a user passes anyway (an income account, a product, posting accounts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import attrs
import pytest

import accounting_bridge as ab
from accounting_bridge import sandbox as sandboxes
from accounting_bridge.ledger import Capability
from accounting_bridge.testing import FakeSleep, minimal_pdf

DAY = dt.date(2026, 11, 20)
PDF = minimal_pdf("Payslip November 2026")
OPEN, DRAFT = ab.InvoiceStatus.OPEN, ab.InvoiceStatus.DRAFT


@attrs.frozen
class Target:
    """A backend as the scenario sees it: the adapter, extra settings, and the chart data of its books."""

    backend: str
    settings: dict[str, Any] = attrs.field(factory=dict)
    line: dict[str, Any] = attrs.field(factory=dict)  # what an invoice line needs besides the neutral fields
    accounts: tuple[str, str] = ("5000", "1090")  # debit, credit of the registration
    tax_account: str | None = None  # where the backend takes an invoice's tax lines

    @property
    def finds_registrations(self) -> bool:
        """Whether the backend can find a journal entry by reference (Multi-Regnskab's APIs cannot)."""
        return not self.backend.startswith("multiregnskab")


TARGETS = {
    "memory": Target("memory", tax_account="2200"),
    "runmyaccounts-json": Target("runmyaccounts", {"wire_format": "json"}, {"account": "3400"}, tax_account="2201"),
    "runmyaccounts-xml": Target("runmyaccounts", {"wire_format": "xml"}, {"account": "3400"}, tax_account="2201"),
    "smallinvoice": Target("smallinvoice"),
    "multiregnskab": Target("multiregnskab", line={"item_number": "P2345"}, accounts=("2210", "8270")),
    "multiregnskab-s2s": Target("multiregnskab-s2s", accounts=("2210", "8270")),
}


@pytest.fixture(params=list(TARGETS))
async def target(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Target, ab.Ledger, Any]]:
    target: Target = TARGETS[request.param]
    if target.backend == "memory":
        async with ab.connect("memory") as ledger:
            yield target, ledger, None
        return
    async with sandboxes.create(target.backend) as sandbox:
        settings = {**sandbox.connect_settings(), **target.settings, "base_url": sandbox.base_url}
        async with ab.connect(target.backend, **settings) as ledger:
            ledger.adapter.transport.sleep = FakeSleep()  # type: ignore[attr-defined]
            yield target, ledger, sandbox


def customer() -> ab.Customer:
    address = ab.Address(street="Bahnhofstrasse 1", postcode="8001", city="Zürich", country="CH")
    return ab.Customer(number="K-900", name="Muster AG", address=address)


def invoice(target: Target, number: str, status: ab.InvoiceStatus | None = None) -> ab.Invoice:
    line = ab.InvoiceLine(description="Beratung", quantity=Decimal("2"), unit_price=Decimal("150.00"), **target.line)
    return ab.Invoice(number=number, customer_number="K-900", issue_date=DAY, due_date=DAY + dt.timedelta(days=3650),
                      lines=[line], status=status)  # fmt: skip


def registration(target: Target, amount: str = "800.00") -> ab.Registration:
    debit, credit = target.accounts
    return ab.Registration(
        date=DAY,
        description="Lohn November",
        lines=[ab.PostingLine(account=debit, amount=Decimal(amount)),
               ab.PostingLine(account=credit, amount=-Decimal(amount))],
        attachments=[ab.Document(filename="lohn-2026-11.pdf", content=PDF, content_type="application/pdf")],
        reference="payroll-2026-11",
    )  # fmt: skip


def requests(sandbox: Any) -> int:
    return 0 if sandbox is None else int(sandbox.request_count())


async def test_customer(target: tuple[Target, ab.Ledger, Any]) -> None:
    _target, ledger, _sandbox = target
    stored = await ledger.customers.upsert(customer())
    assert (stored.number, stored.name) == ("K-900", "Muster AG")
    assert (await ledger.customers.get("K-900")).name == "Muster AG"
    assert "K-900" in [c.number async for c in ledger.customers.list()]


async def test_invoice_status_rule(target: tuple[Target, ab.Ledger, Any]) -> None:
    spec, ledger, sandbox = target
    await ledger.customers.upsert(customer())
    before = requests(sandbox)
    with pytest.raises(ab.ValidationError) as info:  # every backend, before any I/O
        await ledger.invoices.create(invoice(spec, "R-900", ab.InvoiceStatus.PAID))
    assert info.value.fields == ("status",)
    for status in (None, OPEN, DRAFT):
        asked = Capability.INVOICES_CREATE_DRAFT if status is DRAFT else Capability.INVOICES_CREATE
        if not ledger.supports(asked):
            with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.invoices\.create\(\)"):
                await ledger.invoices.create(invoice(spec, "R-900", status))
    assert requests(sandbox) == before  # all refused before any request
    created = {}
    for number, status in (("R-901", None), ("R-902", OPEN), ("R-903", DRAFT)):
        asked = Capability.INVOICES_CREATE_DRAFT if status is DRAFT else Capability.INVOICES_CREATE
        if ledger.supports(asked):
            made = await ledger.invoices.create(invoice(spec, number, status))
            assert made.status is (DRAFT if status is DRAFT else OPEN), number
            assert made.total in (None, Decimal("300.00")) and made.net_total in (None, Decimal("300.00"))
            created[number] = made.status
    if not ledger.supports(Capability.INVOICES_LIST):
        return
    open_numbers = {i.number async for i in ledger.invoices.list(status=OPEN)}
    drafts = {i.number async for i in ledger.invoices.list(status=DRAFT)}
    assert open_numbers == {n for n, s in created.items() if s is OPEN}
    assert drafts == {n for n, s in created.items() if s is DRAFT}
    for number, status in created.items():
        got = await ledger.invoices.get(number)
        assert (got.status, got.total, str(got.total)) == (status, Decimal("300.00"), "300.00")
        assert [i.number async for i in ledger.invoices.list(customer_number="K-900") if i.number == number] == [number]


async def test_payment(target: tuple[Target, ab.Ledger, Any]) -> None:
    spec, ledger, _sandbox = target
    if not ledger.supports(Capability.PAYMENTS_CREATE):
        with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.payments\.create\(\)"):
            await ledger.payments.create(ab.Payment(invoice_number="R-910", date=DAY, amount=Decimal("100.00")))
        return
    await ledger.customers.upsert(customer())
    await ledger.invoices.create(invoice(spec, "R-910"))
    paid = await ledger.payments.create(ab.Payment(invoice_number="R-910", date=DAY, amount=Decimal("100.00")))
    assert (paid.invoice_number, paid.amount) == ("R-910", Decimal("100.00"))
    got = await ledger.invoices.get("R-910")
    assert (got.status, str(got.paid_amount)) == (ab.InvoiceStatus.PARTIALLY_PAID, "100.00")
    payments = [p async for p in ledger.payments.list(invoice_number="R-910")]
    assert [(str(p.amount), p.date) for p in payments] == [("100.00", DAY)]  # the currency's scale everywhere
    await ledger.payments.create(ab.Payment(invoice_number="R-910", date=DAY, amount=Decimal("200.00")))
    assert (await ledger.invoices.get("R-910")).status is ab.InvoiceStatus.PAID


async def test_registration_with_reference(target: tuple[Target, ab.Ledger, Any]) -> None:
    spec, ledger, sandbox = target
    if not ledger.supports(Capability.REGISTRATIONS_SUBMIT):
        with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.registrations\.submit\(\)"):
            await ledger.registrations.submit(registration(spec))
        return
    first = await ledger.registrations.submit(registration(spec))
    assert first.reference == "payroll-2026-11"
    assert ledger.supports(Capability.REGISTRATION_LOOKUP) is spec.finds_registrations
    if not ledger.supports(Capability.REGISTRATION_LOOKUP):
        # Multi-Regnskab cannot look a registration up: the README says so, the sync journal is the answer
        with pytest.raises(ab.UnsupportedOperation, match=r"ledger\.registrations\.find\(\)"):
            await ledger.registrations.find("payroll-2026-11")
        return
    found = await ledger.registrations.find("payroll-2026-11", date=DAY)
    assert found is not None and found.reference == "payroll-2026-11"
    assert await ledger.registrations.find("payroll-2026-10", date=DAY) is None
    again = await ledger.registrations.submit(registration(spec))  # same reference, same content: the same entry
    assert again.reference == "payroll-2026-11"
    with pytest.raises(ab.Conflict, match=r"(journal entry|registration) 'payroll-2026-11'"):
        await ledger.registrations.submit(registration(spec, amount="900.00"))  # same reference, other content
    assert entries_booked(ledger, sandbox) == 1


def entries_booked(ledger: ab.Ledger, sandbox: Any) -> int:
    """Journal entries (and receipts) the backend holds: read from the store, as no neutral call counts them."""
    if sandbox is None:
        return len(ledger.adapter.store.registrations)  # type: ignore[attr-defined]
    books = sandbox.books()
    assert len(books.belege) == 1  # the payslip was not uploaded a second time
    return len(books.gl)


async def test_concurrent_submits_of_one_reference_book_one_entry(target: tuple[Target, ab.Ledger, Any]) -> None:
    spec, ledger, sandbox = target
    if not ledger.supports(Capability.REGISTRATIONS_SUBMIT):
        assert spec.backend == "smallinvoice"
        return
    same = await asyncio.gather(*(ledger.registrations.submit(registration(spec)) for _ in range(3)))
    assert {ref.reference for ref in same} == {"payroll-2026-11"}
    if not ledger.supports(Capability.REGISTRATION_LOOKUP):  # the README's warning: each submit books an entry
        assert len(sandbox.company(sandbox.connect_settings()["company"]).registrations) == 3
        return
    assert entries_booked(ledger, sandbox) == 1
    other = await asyncio.gather(
        ledger.registrations.submit(registration(spec)),
        ledger.registrations.submit(registration(spec, amount="900.00")),
        return_exceptions=True,
    )
    assert isinstance(other[0], ab.RegistrationRef) and isinstance(other[1], ab.Conflict)
    assert entries_booked(ledger, sandbox) == 1


async def test_concurrent_creates_of_one_number_make_one_invoice(target: tuple[Target, ab.Ledger, Any]) -> None:
    spec, ledger, _sandbox = target
    if not ledger.supports(Capability.INVOICES_GET):  # no look-up by number: creates cannot be idempotent
        assert spec.backend.startswith("multiregnskab")
        return
    await ledger.customers.upsert(customer())
    made = await asyncio.gather(*(ledger.invoices.create(invoice(spec, "R-920")) for _ in range(3)))
    assert {(i.number, i.total) for i in made} == {("R-920", Decimal("300.00"))}
    priced = attrs.evolve(invoice(spec, "R-920"), lines=[attrs.evolve(invoice(spec, "R-920").lines[0], quantity=3)])
    with pytest.raises(ab.Conflict, match="R-920"):
        await ledger.invoices.create(priced)
    assert [i.number async for i in ledger.invoices.list() if i.number == "R-920"] == ["R-920"]


async def test_bank_transactions_are_signed_money_in_positive_in_the_currency_scale(
    target: tuple[Target, ab.Ledger, Any],
) -> None:
    spec, ledger, sandbox = target
    today = dt.date.today()
    if ledger.supports(Capability.BANK_TRANSACTIONS_SUBMIT):  # memory, multiregnskab-s2s
        account = "1020" if sandbox is None else str(next(iter(sandbox.company(sandbox.connect_settings()["company"]).bank_accounts)))
        sent = [ab.BankTransaction(account=account, date=today, amount=Decimal(amount), text="Bank")
                for amount in ("1250", "-80.5")]  # fmt: skip
        stored = await ledger.bank_transactions.submit(sent)
        assert [str(t.amount) for t in stored] == ["1250.00", "-80.50"]
    elif spec.backend == "runmyaccounts":  # the booked lines of the bank account: a debit is money in
        lines = [ab.PostingLine(account="1020", amount=Decimal("1250")), ab.PostingLine(account="3400", amount=Decimal(-1250))]
        await ledger.registrations.submit(ab.Registration(date=today, description="Einzahlung", lines=lines))
    if not ledger.supports(Capability.BANK_TRANSACTIONS_LIST):
        assert spec.backend in ("smallinvoice", "multiregnskab-s2s")
        return
    listed = [t async for t in ledger.bank_transactions.list(account="1020" if spec.backend != "multiregnskab" else None,
                                                              since=today - dt.timedelta(days=30), until=today)]  # fmt: skip
    amounts = [str(t.amount) for t in listed]
    assert amounts and all(re.fullmatch(r"-?\d+\.\d\d", a) for a in amounts), amounts
    if spec.backend in ("memory", "runmyaccounts"):
        assert "1250.00" in amounts
    else:  # the sandbox's seeded postings: an incoming payment and a fee
        assert {"12500.00", "-197.00"} <= set(amounts)


# --- the currency's scale (issue 15 item 4) ---------------------------------------------------------------------

SCALED = re.compile(r"-?\d+\.\d\d")  # CHF, DKK: two decimals, no more, no fewer
AT_LEAST_SCALED = re.compile(r"-?\d+\.\d{2,}")  # a unit price is a price: finer digits are allowed


def unscaled_amounts(item: Any, *, prices: bool = True) -> dict[str, str]:
    """The neutral amounts of a decoded item that are not at the currency's scale (all sandboxes keep CHF or DKK
    books). Money — totals, tax lines, payments, bank transactions — has exactly two decimals; a line's unit price
    is a price and has at least two."""
    money: dict[str, Decimal | None] = {}
    unit_prices: dict[str, Decimal] = {}
    if isinstance(item, ab.Invoice):
        money = {name: getattr(item, name) for name in ("total", "net_total", "tax_total", "paid_amount")}
        money.update({f"tax_lines[{i}].amount": t.amount for i, t in enumerate(item.tax_lines)})
        if prices:
            unit_prices = {f"lines[{i}].unit_price": line.unit_price for i, line in enumerate(item.lines)}
    elif isinstance(item, ab.Payment | ab.BankTransaction):
        money = {"amount": item.amount}
    wrong = {name: str(v) for name, v in money.items() if v is not None and not SCALED.fullmatch(str(v))}
    wrong.update({name: str(v) for name, v in unit_prices.items() if not AT_LEAST_SCALED.fullmatch(str(v))})
    return wrong


async def test_every_decoded_amount_has_the_currency_scale(target: tuple[Target, ab.Ledger, Any]) -> None:
    """Amounts sent without decimals (``150``, ``100``, ``24``) come back at the currency's scale from every backend:
    on create, get, list, payments and bank transactions."""
    spec, ledger, sandbox = target
    await ledger.customers.upsert(customer())
    line = ab.InvoiceLine(description="Beratung", quantity=Decimal(2), unit_price=Decimal(150), **spec.line)
    taxes = [ab.TaxLine(account=spec.tax_account, amount=Decimal(24))] if spec.tax_account else []
    status = None if ledger.supports(Capability.INVOICES_CREATE) else DRAFT
    asked = ab.Invoice(number="R-930", customer_number="K-900", issue_date=DAY, due_date=DAY + dt.timedelta(days=3650),
                       lines=[line], tax_lines=taxes, status=status)  # fmt: skip
    wrong: dict[str, str] = {}
    decoded: list[Any] = []
    if ledger.supports(Capability.INVOICES_CREATE) or ledger.supports(Capability.INVOICES_CREATE_DRAFT):
        made = await ledger.invoices.create(asked)
        assert made.total in (None, Decimal(300) + sum(t.amount for t in taxes))
        echoed = spec.backend.startswith("multiregnskab")  # its create answers an id: the lines are those sent
        wrong.update({f"create {n}": v for n, v in unscaled_amounts(made, prices=not echoed).items()})
    if ledger.supports(Capability.INVOICES_GET):
        decoded.append(got := await ledger.invoices.get("R-930"))
        assert (got.net_total, got.tax_total) in ((Decimal(300), sum(t.amount for t in taxes)), (None, None))
        assert sum(got_line.net_amount for got_line in got.lines) == 300  # Run my Accounts: one income entry
        decoded += [i async for i in ledger.invoices.list() if i.number == "R-930"]
    if ledger.supports(Capability.PAYMENTS_CREATE):
        decoded.append(await ledger.payments.create(ab.Payment(invoice_number="R-930", date=DAY, amount=Decimal(100))))
        decoded.append(paid := await ledger.invoices.get("R-930"))
        assert paid.paid_amount == 100
        decoded += [p async for p in ledger.payments.list(invoice_number="R-930")]
    if ledger.supports(Capability.BANK_TRANSACTIONS_SUBMIT):  # memory, multiregnskab-s2s
        account = "1020" if sandbox is None else str(next(iter(sandbox.company(sandbox.connect_settings()["company"]).bank_accounts)))  # fmt: skip
        sent = ab.BankTransaction(account=account, date=DAY, amount=Decimal(80), text="Bank")
        decoded += await ledger.bank_transactions.submit([sent])
    if ledger.supports(Capability.BANK_TRANSACTIONS_LIST):
        if spec.backend == "multiregnskab":  # as Multi-Regnskab may write them: no decimals, or a JSON number
            company = sandbox.company(sandbox.connect_settings()["company"])
            postings = next(iter(company.bank_postings.values()))
            postings += [{"xid": 9001 + n, "bankDate": DAY.isoformat(), "bankText": "Ind", "bankAmount": amount}
                         for n, amount in enumerate(("1250", 80))]  # fmt: skip
        account = None if spec.backend == "multiregnskab" else "1020"
        decoded += [t async for t in ledger.bank_transactions.list(account=account, since=DAY, until=DAY)]
    assert decoded
    for index, item in enumerate(decoded):
        wrong.update({f"{index}: {type(item).__name__} {n}": v for n, v in unscaled_amounts(item).items()})
    assert wrong == {}
