"""Per kind: check an item before I/O, send it, and look it up by its business key after an interrupted send."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import NotFound
from ..ledger import Capability, Ledger
from ..models import Customer, Document, Invoice, InvoiceStatus, Payment, Registration
from ..settings import CommonSettings
from ..transport.retry import RetryPolicy
from .items import Prepared

__all__ = ["Found", "check", "look_up", "send", "settle_time", "sleeper"]


class Found(enum.Enum):
    PRESENT = "present"
    ABSENT = "absent"
    RESEND = "resend"  # an upsert: sending it again has the same effect as once
    NO_LOOKUP = "no_lookup"  # the backend cannot tell: a human must


def settle_time(ledger: Ledger) -> float:
    """Seconds the backend may still be working on a write after it was sent: as long as the transport lets an
    ambiguous write settle before it believes a look-up that finds nothing."""
    transport = getattr(ledger.adapter, "transport", None)
    policy = getattr(getattr(transport, "config", None), "retry", None)
    if not isinstance(policy, RetryPolicy):
        settings = getattr(ledger.adapter, "settings", None)
        policy = settings.retry_policy() if isinstance(settings, CommonSettings) else RetryPolicy()
    return policy.settle_delay * max(policy.settle_checks - 1, 1)


def sleeper(ledger: Ledger) -> Callable[[float], Awaitable[None]]:
    """The transport's sleep (a test's `FakeSleep`), else asyncio's."""
    sleep = getattr(getattr(ledger.adapter, "transport", None), "sleep", None)
    return sleep if callable(sleep) else asyncio.sleep


def _send_capability(model: Any) -> Capability:
    if isinstance(model, Customer):
        return Capability.CUSTOMERS_UPSERT
    if isinstance(model, Invoice):
        draft = model.status is InvoiceStatus.DRAFT
        return Capability.INVOICES_CREATE_DRAFT if draft else Capability.INVOICES_CREATE
    if isinstance(model, Payment):
        return Capability.PAYMENTS_CREATE
    if isinstance(model, Registration):
        return Capability.REGISTRATIONS_SUBMIT
    return Capability.DOCUMENTS_UPLOAD


def check(ledger: Ledger, item: Prepared) -> None:
    """Raise what sending would raise before any I/O (`UnsupportedOperation`, the adapter's `ValidationError`)."""
    ledger.require(_send_capability(item.model))
    ledger.adapter.validate(item.model)


async def send(ledger: Ledger, item: Prepared) -> str | None:
    """Send the item; the backend's id of what it now holds."""
    model = item.model
    if isinstance(model, Customer):
        return (await ledger.customers.upsert(model)).id
    if isinstance(model, Invoice):
        return (await ledger.invoices.create(model)).id
    if isinstance(model, Payment):
        return (await ledger.payments.create(model)).id
    if isinstance(model, Registration):
        return (await ledger.registrations.submit(model)).id
    assert isinstance(model, Document)
    return (await ledger.documents.upload(model)).id


async def look_up(ledger: Ledger, item: Prepared) -> tuple[Found, str | None]:
    """Whether the backend holds the item (and its id). Customers are upserts, the same record sent again has the
    same effect: they report RESEND so they are simply sent again (a found one may hold older content)."""
    model = item.model
    if isinstance(model, Customer):
        return Found.RESEND, None
    if isinstance(model, Invoice):
        if not ledger.supports(Capability.INVOICES_GET):
            return Found.NO_LOOKUP, None
        try:
            found = await ledger.invoices.get(model.number)
        except NotFound:
            return Found.ABSENT, None
        if found.status is InvoiceStatus.DRAFT and model.status is not InvoiceStatus.DRAFT:
            # created but not yet issued (smallinvoice: its second request, change-status, failed or the run died
            # between the two): sending it again finds the draft by its number and opens it, never a second one
            return Found.RESEND, None
        return Found.PRESENT, found.id
    if isinstance(model, Payment):
        return await _look_up_payment(ledger, model)
    if isinstance(model, Registration):
        if not ledger.supports(Capability.REGISTRATION_LOOKUP) or model.reference is None:
            return Found.NO_LOOKUP, None
        ref = await ledger.registrations.find(model.reference, date=model.date)
        return (Found.ABSENT, None) if ref is None else (Found.PRESENT, ref.id)
    assert isinstance(model, Document)
    if not ledger.supports(Capability.DOCUMENTS_LIST):
        return Found.NO_LOOKUP, None
    async for document in ledger.documents.list():
        if document.filename == model.filename:
            return Found.PRESENT, document.id
    return Found.ABSENT, None


async def _look_up_payment(ledger: Ledger, payment: Payment) -> tuple[Found, str | None]:
    if not ledger.supports(Capability.PAYMENTS_LIST):
        return Found.NO_LOOKUP, None
    async for booked in ledger.payments.list(invoice_number=payment.invoice_number):
        if _same_payment(booked, payment):
            return Found.PRESENT, booked.id
    return Found.ABSENT, None


def _same_payment(booked: Payment, payment: Payment) -> bool:
    if payment.reference:
        return booked.reference == payment.reference
    return (booked.date, booked.amount, booked.kind) == (payment.date, payment.amount, payment.kind)
