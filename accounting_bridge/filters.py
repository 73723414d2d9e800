"""Client-side filters for backends (and the memory adapter) that cannot filter server-side."""

from __future__ import annotations

import datetime as _dt

from .models import Invoice, InvoiceStatus

__all__ = ["in_window", "invoice_matches"]


def in_window(day: _dt.date | None, since: _dt.date | None, until: _dt.date | None) -> bool:
    """Whether `day` lies in the inclusive window; an open end does not restrict, an unknown day only passes an
    unrestricted window."""
    if since is None and until is None:
        return True
    if day is None:
        return False
    return (since is None or day >= since) and (until is None or day <= until)


def invoice_matches(
    invoice: Invoice,
    *,
    status: InvoiceStatus | None = None,
    since: _dt.date | None = None,
    until: _dt.date | None = None,
    customer_number: str | None = None,
) -> bool:
    """The neutral `invoices.list` filters: status, issue-date window, customer."""
    if status is not None and invoice.status is not status:
        return False
    if customer_number is not None and invoice.customer_key != customer_number:
        return False
    return in_window(invoice.issue_date, since, until)
