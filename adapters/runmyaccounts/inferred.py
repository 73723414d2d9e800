"""Everything about Run my Accounts that is INFERRED, not documented — in one place, so it is easy to correct.

Tag [I] in `shared/backends/runmyaccounts.md`. Each choice is a module constant or a small pure function; the
adapter settings can override the ones that matter per tenant.

1. `POST gl` / `POST gl/yearend` bodies: no documentation exists. The shape follows SQL-Ledger's GL transaction
   (Run my Accounts is built on SQL-Ledger; `ledger123/runmyaccounts` `api/gl.json`): a header with `reference`,
   `transdate`, `description`, `curr`, `notes`, `department` and lines with `accno`, `debit`, `credit` (one of them
   zero), `memo`, `source`, `projectnumber`, `taxamount`, rendered in the same mapped XML/JSON notation as the
   documented entities. Root/list element names below are guesses.
2. Which chart account is a *bank* account (payments must not be posted to one): the chart carries no type flag
   we know of; SQL-Ledger marks payment accounts with the link `AR_paid`, which the transfer account 1090 has too.
   Rule: an explicit `bank_accounts` setting wins; otherwise an account is a bank account when its link contains
   `AR_paid` and its number is in the Swiss SME chart's liquid-funds range 1000-1089 (cash, postal, bank) —
   1090 (transfer / clearing) and above are not.
3. Listing *all* payments: `payment_list?processed=<ts>` returns "payments not processed after <ts>"; with a
   timestamp far in the future that is every payment (the neutral `payments.list()` uses this).
4. The root element of the receipt-upload answer (`beleg`) and the payable-payment answer (`payment`).
5. The `module` of ledger lines booked by `POST gl` / `gl/yearend` is ``gl`` (documented values: ar, ap, gl —
   which entries produce which is inferred). The look-up that resolves a lost GL answer only counts lines of
   this module whose reference is the registration's, so an invoice or payment with the same reference that
   day cannot make a lost GL entry look booked.
6. A second `POST invoices` with an `invnumber` that exists is refused (400 + ``{"error": ...}``, as the sandbox
   does), never booked twice — the brief tags this [I]: no documentation states it. Until a real tenant confirms
   it, `create_invoice` looks the number up before writing (`INVOICE_WRITE_FIRST = False`, two GETs and one POST
   per new invoice). The setting ``invoice_write_first=True`` trusts the refusal: the POST goes first and the
   number is looked up only after a refusal or an ambiguous failure (one GET and one POST per new invoice; the
   GET is the read-back, as `POST invoices` answers 204 without the stored invoice). An invoice that embeds its
   customer may then overwrite that customer before the refusal, if RMA processes the customer first.

GL posting line amounts go out as given: amounts finer than a cent are refused earlier by the adapter's
`validate()` (`lines[i].amount`), never rounded here.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Collection
from decimal import Decimal
from typing import Any

from accounting_bridge.models import Registration

from .records import Chart
from .wire import format_date, format_decimal

__all__ = [
    "BELEG_ROOT",
    "GL_LINES_WRAPPER",
    "GL_LINE_ITEM",
    "GL_MODULE",
    "GL_ROOT",
    "INVOICE_WRITE_FIRST",
    "PAYMENT_LIST_ALL",
    "YEAREND_ROOT",
    "encode_gl",
    "is_bank_account",
]

GL_ROOT = "gl"
YEAREND_ROOT = "gl"
GL_LINES_WRAPPER = "lines"
GL_LINE_ITEM = "line"
GL_MODULE = "gl"
BELEG_ROOT = "beleg"
PAYMENT_LIST_ALL = "9999-12-31T23:59"
#: Rule 6: trust RMA to refuse a duplicate `invnumber` and write first (the default of `invoice_write_first`).
INVOICE_WRITE_FIRST = False
BANK_RANGE = (1000, 1089)


def encode_gl(registration: Registration, *, department: str | None = None) -> dict[str, Any]:
    """[I] A GL journal entry in SQL-Ledger form: neutral + amounts are debits, - amounts credits."""
    lines = []
    for line in registration.lines:
        debit = line.amount if line.amount > 0 else Decimal(0)
        credit = -line.amount if line.amount < 0 else Decimal(0)
        entry: dict[str, Any] = {
            "accno": line.account,
            "debit": format_decimal(debit),
            "credit": format_decimal(credit),
            "memo": line.text or "",
            "source": registration.reference or "",
        }
        if line.vat_code:
            entry["taxaccno"] = line.vat_code
        lines.append(entry)
    return {
        "reference": registration.reference or "",
        "transdate": format_date(registration.date),
        "description": registration.description,
        "curr": registration.currency or "CHF",
        "notes": "",
        "department": department or "",
        GL_LINES_WRAPPER: {GL_LINE_ITEM: lines},
    }


def is_bank_account(chart: Chart | None, accno: str, *, bank_accounts: Collection[str] | None = None) -> bool:
    """[I] Whether payments must not be booked to `accno` (see rule 2 of the module doc)."""
    if bank_accounts is not None:
        return accno in bank_accounts
    if chart is None or "AR_paid" not in chart.link:
        return False
    try:
        number = int(accno)
    except ValueError:
        return False
    return BANK_RANGE[0] <= number <= BANK_RANGE[1]


def payment_list_all_timestamp(_today: _dt.date | None = None) -> str:
    return PAYMENT_LIST_ALL
