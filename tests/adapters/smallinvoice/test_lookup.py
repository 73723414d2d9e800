"""Look-ups by number must not trust the server-side `filter` (undocumented syntax, [3P] "doesn't work properly").

The sandbox's `filter_mode` makes the list endpoints ignore the filter ("ignore") or misapply it as a prefix match
("prefix": K-1 also finds K-10). With either, get / upsert / create and the write look-up after a lost response
must still find exactly the asked number, or nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

ADDRESS = ab.Address(street="Weg 1", postcode="3000", city="Bern", country="CH")
MODES = ["ignore", "prefix"]


@pytest.fixture
async def fast(connect: Callable[..., ab.Ledger]) -> AsyncIterator[ab.Ledger]:
    async def fake_sleep(_seconds: float) -> None:
        return None

    async with connect() as ledger:
        ledger.adapter.transport.sleep = fake_sleep  # type: ignore[attr-defined]
        yield ledger


def customer(number: str, name: str) -> ab.Customer:
    return ab.Customer(number=number, name=name, address=ADDRESS)


def invoice(number: str, price: str = "100.00", customer_number: str = "K-10") -> ab.Invoice:
    return ab.Invoice(
        number=number,
        customer_number=customer_number,
        issue_date=dt.date(2024, 5, 1),
        lines=[ab.InvoiceLine(description="Arbeit", unit_price=Decimal(price), tax_rate=Decimal("8.1"))],
    )


def contacts_by_number(sandbox: SmallInvoiceSandbox) -> dict[str, str]:
    return {str(c["number"]): str(c["name"]) for c in sandbox.contacts.values()}


def invoice_numbers(sandbox: SmallInvoiceSandbox) -> list[str]:
    return sorted(str(i["number"]) for i in sandbox.invoices.values())


async def test_sandbox_filter_modes(sandbox: SmallInvoiceSandbox, fast: ab.Ledger) -> None:
    for number in ("K-10", "K-1", "X-1"):
        await fast.customers.upsert(customer(number, number))
    query = {"filter": '{"number":"K-1"}'}

    async def listed() -> list[str]:
        response = await fast.raw("GET", "/contacts", params=query)
        return [str(i["number"]) for i in response.json()["items"]]

    assert await listed() == ["K-1"]
    sandbox.filter_mode = "prefix"
    assert await listed() == ["K-10", "K-1"]
    sandbox.filter_mode = "ignore"
    assert await listed() == ["K-10", "K-1", "X-1"]


@pytest.mark.parametrize("mode", MODES)
async def test_customers_get_and_upsert_with_an_unreliable_filter(
    sandbox: SmallInvoiceSandbox, fast: ab.Ledger, mode: str
) -> None:
    await fast.customers.upsert(customer("K-10", "Zehn AG"))
    sandbox.filter_mode = mode
    with pytest.raises(ab.NotFound):
        await fast.customers.get("K-1")  # not K-10
    created = await fast.customers.upsert(customer("K-1", "Eins AG"))  # a new contact, K-10 is not overwritten
    assert (created.number, created.name) == ("K-1", "Eins AG")
    assert contacts_by_number(sandbox) == {"K-10": "Zehn AG", "K-1": "Eins AG"}
    assert (await fast.customers.get("K-1")).name == "Eins AG"
    assert (await fast.customers.get("K-10")).name == "Zehn AG"
    updated = await fast.customers.upsert(customer("K-1", "Eins GmbH"))  # an update of K-1 only
    assert (updated.number, updated.name) == ("K-1", "Eins GmbH")
    assert contacts_by_number(sandbox) == {"K-10": "Zehn AG", "K-1": "Eins GmbH"}


@pytest.mark.parametrize("mode", MODES)
async def test_customer_write_lookup_with_an_unreliable_filter(
    sandbox: SmallInvoiceSandbox, fast: ab.Ledger, mode: str
) -> None:
    await fast.customers.upsert(customer("K-10", "Zehn AG"))
    sandbox.filter_mode = mode
    # lost before it was performed: the look-up must say "absent" (not see K-10), the POST is sent again
    sandbox.drop_next(path="/v2/contacts", method="POST")
    created = await fast.customers.upsert(customer("K-1", "Eins AG"))
    assert (created.number, created.name) == ("K-1", "Eins AG")
    assert contacts_by_number(sandbox) == {"K-10": "Zehn AG", "K-1": "Eins AG"}
    # lost after it was performed: the look-up finds K-2 itself, no duplicate, the right contact comes back
    sandbox.drop_next(path="/v2/contacts", method="POST", after_commit=True)
    second = await fast.customers.upsert(customer("K-2", "Zwei AG"))
    assert (second.number, second.name) == ("K-2", "Zwei AG")
    assert contacts_by_number(sandbox) == {"K-10": "Zehn AG", "K-1": "Eins AG", "K-2": "Zwei AG"}


@pytest.mark.parametrize("mode", MODES)
async def test_invoices_get_create_and_write_lookup_with_an_unreliable_filter(
    sandbox: SmallInvoiceSandbox, fast: ab.Ledger, mode: str
) -> None:
    await fast.customers.upsert(customer("K-10", "Zehn AG"))
    await fast.invoices.create(invoice("R-10", "999.00"))
    sandbox.filter_mode = mode
    with pytest.raises(ab.NotFound):
        await fast.invoices.get("R-1")
    created = await fast.invoices.create(invoice("R-1"))  # not a Conflict with R-10
    assert created.number == "R-1" and created.lines[0].unit_price == Decimal("100.00")
    got = await fast.invoices.get("R-1")
    assert got.number == "R-1" and got.id == created.id
    assert (await fast.invoices.get("R-10")).lines[0].unit_price == Decimal("999.00")
    assert (await fast.invoices.create(invoice("R-1"))).id == created.id  # a resend is still recognised
    with pytest.raises(ab.Conflict):
        await fast.invoices.create(invoice("R-1", "5.00"))
    # lost before it was performed: absent (R-10 / R-1 do not count), sent again, one R-2
    sandbox.drop_next(path="/v2/receivables/invoices", method="POST")
    assert (await fast.invoices.create(invoice("R-2"))).number == "R-2"
    # lost after it was performed: the look-up finds R-3 itself and returns it
    sandbox.drop_next(path="/v2/receivables/invoices", method="POST", after_commit=True)
    third = await fast.invoices.create(invoice("R-3", "30.00"))
    assert third.number == "R-3" and third.lines[0].unit_price == Decimal("30.00")
    assert invoice_numbers(sandbox) == ["R-1", "R-10", "R-2", "R-3"]
    # payments and per-customer lists go through the same look-ups
    await fast.payments.create(ab.Payment(invoice_number="R-1", date=dt.date(2024, 6, 1), amount=Decimal("5")))
    [r1_id] = [i["id"] for i in sandbox.invoices.values() if i["number"] == "R-1"]
    assert [p["amount"] for p in sandbox.payments[r1_id]] == [Decimal("5")]
    await fast.customers.upsert(customer("K-1", "Eins AG"))
    assert [i.number async for i in fast.invoices.list(customer_number="K-1")] == []


async def test_a_honoured_filter_costs_one_request_per_lookup(sandbox: SmallInvoiceSandbox, fast: ab.Ledger) -> None:
    for number in ("K-10", "K-1", "K-2"):
        await fast.customers.upsert(customer(number, number))
    before = len(sandbox.request_log)
    assert (await fast.customers.get("K-1")).number == "K-1"
    with pytest.raises(ab.NotFound):
        await fast.customers.get("K-3")
    assert len(sandbox.request_log) - before == 2


async def test_an_ignored_filter_falls_back_to_a_bounded_scan(
    sandbox: SmallInvoiceSandbox, connect: Callable[..., ab.Ledger]
) -> None:
    async def fake_sleep(_seconds: float) -> None:
        return None

    def posts() -> int:
        return sum(1 for m, p, _s, _r in sandbox.request_log if m == "POST" and p == "/v2/contacts")

    async with connect(lookup_scan_limit=5) as ledger:
        ledger.adapter.transport.sleep = fake_sleep  # type: ignore[attr-defined]
        for index in range(5):
            await ledger.customers.upsert(customer(f"K-{index}", f"Kunde {index}"))
        sandbox.filter_mode = "ignore"
        before = len(sandbox.request_log)
        with pytest.raises(ab.NotFound):
            await ledger.customers.get("K-9")  # the whole list fits in the bound: absent for sure
        assert len(sandbox.request_log) - before == 2  # the filtered answer (holding other numbers) + one scan page
        before = len(sandbox.request_log)
        assert (await ledger.customers.get("K-4")).name == "Kunde 4"
        assert len(sandbox.request_log) - before == 1  # the filter is known to be ignored: straight to the scan
        assert "?filter=" not in sandbox.request_log[-1][1]
        # the answer to a create is lost after it landed, and the list has now outgrown the bound: the look-up
        # cannot tell, so the outcome is unknown (no resend, no guess)
        posts_before = posts()
        sandbox.drop_next(path="/v2/contacts", method="POST", after_commit=True)
        with pytest.raises(ab.WriteOutcomeUnknown) as unknown:
            await ledger.customers.upsert(customer("K-5", "Kunde 5"))
        assert unknown.value.reference == "K-5"
        assert posts() == posts_before + 1
        assert list(contacts_by_number(sandbox)).count("K-5") == 1
        # beyond the bound nothing is guessed: neither "not found" nor another contact
        with pytest.raises(ab.ResponseError) as info:
            await ledger.customers.get("K-9")
        assert "lookup_scan_limit" in str(info.value)
        assert (await ledger.customers.get("K-0")).name == "Kunde 0"  # found within the bound


async def test_a_number_starting_like_a_comparator_is_never_sent_as_a_filter(
    sandbox: SmallInvoiceSandbox, fast: ab.Ledger
) -> None:
    await fast.customers.upsert(customer(">10", "Groesser"))
    await fast.customers.upsert(customer("10", "Zehn"))
    before = len(sandbox.request_log)
    assert (await fast.customers.get(">10")).name == "Groesser"
    assert (await fast.customers.get("10")).name == "Zehn"
    paths = [entry[1] for entry in sandbox.request_log[before:]]
    assert len(paths) == 2
    assert "filter" not in paths[0] and "filter" in paths[1]


async def test_lookup_scan_limit_setting_is_checked(connect: Callable[..., ab.Ledger]) -> None:
    async with connect(lookup_scan_limit=10) as ledger:
        assert ledger.adapter.settings.lookup_scan_limit == 10  # type: ignore[attr-defined]
    for bad in (0, -1, True, "100"):
        with pytest.raises(ab.ConfigurationError) as info:
            connect(lookup_scan_limit=bad)
        assert "lookup_scan_limit" in str(info.value)
