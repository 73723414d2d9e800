"""Outcomes of writes that landed (customers, deletions) and the completeness of the create-once customer
comparison — end to end over real sockets against the sandbox, with its fault switches (FakeSleep makes retries
instant), for both adapters where both have the operation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox

import accounting_bridge as ab

from .conftest import Connector

PDF = b"%PDF-1.4\n% write outcomes\n%%EOF\n"
#: more failures than the transport makes attempts (1 + max_retries)
ALL_ATTEMPTS = 8
APIS = ["public", "s2s"]


def customer(number: str = "K-100", **changes: Any) -> ab.Customer:
    base = ab.Customer(
        number=number,
        name="Kunde ApS",
        email="faktura@kunde.dk",
        phone="+45 12 34 56 78",
        address=ab.Address(street="Bygaden 1", street2="2. sal", postcode="8000", city="Aarhus C", country="DK"),
        vat_number="12345678",
        payment_terms_days=14,
        contact_name="Mette Hansen",
    )
    return attrs.evolve(base, **changes)


def doc(name: str = "bilag.pdf") -> ab.Document:
    return ab.Document(filename=name, content=PDF, content_type="application/pdf")


def ledger_for(connect: Connector, api: str) -> ab.Ledger:
    return connect.public() if api == "public" else connect.s2s()


# --- #8.7: a customer create that landed is success or WriteOutcomeUnknown ----------------------------------------


@pytest.mark.parametrize("api", APIS)
async def test_customer_confirmed_by_lookup_whose_read_back_fails_is_unknown(
    connect: Connector, sandbox: MultiRegnskabSandbox, api: str
) -> None:
    async with ledger_for(connect, api) as ledger:
        sandbox.faults.add("POST", "/customers", api=api, drop="after")
        # GETs of the customer list: the pre-check and the transport's lookup pass, every read-back attempt fails
        sandbox.faults.add("GET", "/customers/", api=api, status=500, skip=2, times=ALL_ATTEMPTS)
        with pytest.raises(ab.WriteOutcomeUnknown) as info:
            await ledger.customers.upsert(customer())
        assert info.value.reference == "K-100"
        assert [c["customerNumber"] for c in sandbox.company(1002).customers.values()] == ["K-100"]


@pytest.mark.parametrize("api", APIS)
async def test_customer_with_unreadable_answer_is_read_back(
    connect: Connector, sandbox: MultiRegnskabSandbox, api: str
) -> None:
    async with ledger_for(connect, api) as ledger:
        sandbox.faults.add("POST", "/customers", api=api, malformed=True)
        created = await ledger.customers.upsert(customer())
        (stored,) = sandbox.company(1002).customers.values()
        assert created.id == str(stored["xid"])


# --- #14.11 (adapter side): a deletion whose answer was lost ------------------------------------------------------


async def test_delete_whose_answer_was_lost_is_success_not_not_found(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox
) -> None:
    ref = await ledger.documents.upload(doc())
    assert ref.id is not None
    sandbox.faults.add("DELETE", "/archiveFile", drop="after")  # deleted, then the connection is cut
    await ledger.documents.delete(ref.id)
    assert int(ref.id) not in sandbox.company(1002).files
    assert len(sandbox.calls_to("DELETE", "/archiveFile")) == 2  # resent once, answered 404: the goal state holds
    with pytest.raises(ab.NotFound):  # a deletion of something absent from the start stays NotFound
        await ledger.documents.delete(ref.id)


@pytest.mark.parametrize("api", APIS)
async def test_cleanup_delete_whose_answer_was_lost_is_not_reported_as_failed(
    connect: Connector, sandbox: MultiRegnskabSandbox, api: str, caplog: pytest.LogCaptureFixture
) -> None:
    registration = ab.Registration(
        date=sandbox.today(), description="Taxi", reference="ref-del",
        lines=[ab.PostingLine(account="5820", amount=-100), ab.PostingLine(account="3620", amount=100)],
        attachments=[doc()],
    )  # fmt: skip
    async with ledger_for(connect, api) as ledger:
        files_before = set(sandbox.company(1002).files)
        sandbox.faults.add("POST", "/suggestedRegistrations", api=api, status=400)
        sandbox.faults.add("DELETE", "/archiveFile", api=api, drop="after")
        with caplog.at_level(logging.WARNING, logger="accounting_bridge"), pytest.raises(ab.Unprocessable):
            await ledger.registrations.submit(registration)
        assert set(sandbox.company(1002).files) == files_before  # the upload was deleted
        assert "could not delete" not in caplog.text


# --- #8.9: create-once customers compare everything that was sent -------------------------------------------------

CHANGES: dict[str, Callable[[ab.Customer], ab.Customer]] = {
    "name": lambda c: attrs.evolve(c, name="Kunde A/S"),
    "street": lambda c: attrs.evolve(c, address=attrs.evolve(c.address, street="Bygaden 2")),
    "street2": lambda c: attrs.evolve(c, address=attrs.evolve(c.address, street2="3. sal")),
    "postcode": lambda c: attrs.evolve(c, address=attrs.evolve(c.address, postcode="8200")),
    "country": lambda c: attrs.evolve(c, address=attrs.evolve(c.address, country="SE")),
    "email": lambda c: attrs.evolve(c, email="bogholderi@kunde.dk"),
    "phone": lambda c: attrs.evolve(c, phone="+45 87 65 43 21"),
    "vat number": lambda c: attrs.evolve(c, vat_number="87654321"),
    "payment terms": lambda c: attrs.evolve(c, payment_terms_days=30),
    "contact": lambda c: attrs.evolve(c, contact_name="Jens Hansen"),
    "currency": lambda c: attrs.evolve(c, currency="EUR"),
    "language": lambda c: attrs.evolve(c, language="en"),
    "private person": lambda c: attrs.evolve(c, kind=ab.CustomerKind.PERSON),
}


@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
async def test_same_number_other_content_is_conflict(
    ledger: ab.Ledger, sandbox: MultiRegnskabSandbox, change: Callable[[ab.Customer], ab.Customer]
) -> None:
    await ledger.customers.upsert(customer())
    with pytest.raises(ab.Conflict):
        await ledger.customers.upsert(change(customer()))
    assert len(sandbox.calls_to("POST", "/customers")) == 1


@pytest.mark.parametrize("api", APIS)
async def test_identical_customer_returns_the_stored_one_without_a_second_write(
    connect: Connector, sandbox: MultiRegnskabSandbox, api: str
) -> None:
    async with ledger_for(connect, api) as ledger:
        created = await ledger.customers.upsert(customer())
        again = await ledger.customers.upsert(customer())
        assert again.id == created.id and again.name == "Kunde ApS"
        assert len(sandbox.calls_to("POST", "/customers")) == 1
