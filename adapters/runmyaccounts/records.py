"""Typed records for the Run my Accounts resources that have no neutral model (parts, charts, vendors, payables,
trial balances, account transactions, receipts, departments, projects), with their pure decoders and encoders."""

from __future__ import annotations

import datetime as _dt
import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import attrs

from accounting_bridge.models import InvoiceLine
from accounting_bridge.money import at_scale

from .wire import (
    _bad,
    _opt_decimal,
    _s,
    as_list,
    format_bool,
    format_date,
    format_decimal,
    items,
    nested,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    text,
)

__all__ = [
    "AccountTransaction",
    "Beleg",
    "Chart",
    "Department",
    "Part",
    "Payable",
    "Project",
    "SaldoRow",
    "Vendor",
]


def _raw() -> Any:
    return attrs.field(default=None, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class Part:
    number: str
    description: str | None = None
    income_account: str | None = None
    expense_account: str | None = None
    unit: str | None = None
    sellprice: Decimal | None = None
    tax_accounts: tuple[str, ...] = ()
    raw: Any = _raw()

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Part:
        number = text(tree.get("partnumber"))
        if not number:
            raise _bad("part without partnumber")
        return cls(
            number=number,
            description=text(tree.get("description")),
            income_account=text(tree.get("income_accno")),
            expense_account=text(tree.get("expense_accno")),
            unit=text(tree.get("unit")),
            sellprice=_opt_decimal(tree.get("sellprice"), "sellprice"),
            tax_accounts=tuple((text(tree.get("tax_accnos")) or "").split()),
            raw=dict(tree),
        )


@attrs.frozen(kw_only=True)
class Chart:
    """An account of the chart; `link` is SQL-Ledger's colon-separated usage list (AR, AR_paid, AR_tax, ...)."""

    accno: str
    description: str | None = None
    link: tuple[str, ...] = ()
    allow_gl: bool = False
    is_active: bool = True
    id: str | None = None
    raw: Any = _raw()

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Chart:
        accno = text(tree.get("@accno")) or text(tree.get("accno"))
        if not accno:
            raise _bad("chart entry without accno")
        link = text(tree.get("@link", tree.get("link"))) or ""
        return cls(
            accno=accno,
            description=text(tree.get("@description", tree.get("description"))),
            link=tuple(p for p in link.split(":") if p),
            allow_gl=parse_bool(tree.get("@allow_gl", tree.get("allow_gl")), "allow_gl"),
            is_active=parse_bool(tree.get("@is_active", tree.get("is_active", "true")), "is_active"),
            id=text(tree.get("@id", tree.get("id"))),
            raw=dict(tree),
        )


@attrs.frozen(kw_only=True)
class Vendor:
    number: str
    name: str
    email: str | None = None
    address1: str | None = None
    zipcode: str | None = None
    city: str | None = None
    country: str | None = None
    terms: int | None = None
    iban: str | None = None
    payables_account: str | None = None
    payment_account: str | None = None
    id: str | None = None
    raw: Any = _raw()

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Vendor:
        number = text(tree.get("vendornumber"))
        if not number:
            raise _bad("vendor without vendornumber")
        return cls(
            number=number,
            name=text(tree.get("name")) or number,
            email=text(tree.get("email")),
            address1=text(tree.get("address1")),
            zipcode=text(tree.get("zipcode")),
            city=text(tree.get("city")),
            country=text(tree.get("country")),
            terms=parse_int(tree.get("terms"), "terms"),
            iban=text(tree.get("bank_iban")),
            payables_account=text(tree.get("arap_accno")),
            payment_account=text(tree.get("payment_accno")),
            id=text(tree.get("id")),
            raw=dict(tree),
        )

    def to_tree(self) -> dict[str, Any]:
        tree: dict[str, Any] = {
            "vendornumber": self.number,
            "name": self.name,
            "email": _s(self.email),
            "address1": _s(self.address1),
            "zipcode": _s(self.zipcode),
            "city": _s(self.city),
            "country": _s(self.country),
            "bank_iban": _s(self.iban),
        }
        if self.terms is not None:
            tree["terms"] = str(self.terms)
        if self.payables_account:
            tree["arap_accno"] = self.payables_account
        if self.payment_account:
            tree["payment_accno"] = self.payment_account
        return tree


@attrs.frozen(kw_only=True)
class Payable:
    """A vendor invoice; `lines` use `account` for the expense account and `item_number` for the part."""

    number: str
    vendor: Vendor
    issue_date: _dt.date
    due_date: _dt.date | None = None
    lines: tuple[InvoiceLine, ...] = ()
    currency: str = "CHF"
    title: str | None = None
    prices_include_tax: bool = False
    order_number: str | None = None
    status: str | None = None
    amount: Decimal | None = None
    net_amount: Decimal | None = None
    paid: Decimal | None = None
    payment_account: str | None = None
    id: str | None = None
    raw: Any = _raw()

    def to_tree(self, *, ap_accno: str = "2000") -> dict[str, Any]:
        return {
            "invnumber": self.number,
            "ordnumber": _s(self.order_number),
            "status": "OPEN",
            "currency": self.currency,
            "ap_accno": ap_accno,
            "transdate": format_date(self.issue_date),
            "duedate": format_date(self.due_date or self.issue_date),
            "description": _s(self.title),
            "notes": "",
            "intnotes": "",
            "taxincluded": format_bool(self.prices_include_tax),
            "department": "",
            "vendor": self.vendor.to_tree(),
            "parts": {
                "part": [
                    {
                        "partnumber": line.item_number,
                        "description": line.description,
                        "quantity": format_decimal(line.quantity),
                        "sellprice": format_decimal(line.unit_price),
                        "discount": format_decimal(line.discount_percent or Decimal(0)),
                        **({"expense_accno": line.account} if line.account else {}),
                    }
                    for line in self.lines
                ]
            },
        }

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Payable:
        number = text(tree.get("invnumber"))
        issue = parse_date(tree.get("transdate"), "transdate")
        if not number or issue is None:
            raise _bad("payable without invnumber or transdate")
        vendor_tree = tree.get("vendor")
        vendor = (
            Vendor.from_tree(vendor_tree)
            if isinstance(vendor_tree, Mapping) and vendor_tree
            else Vendor(number=text(tree.get("vendornumber")) or "?", name="?")
        )
        lines = []
        for index, part in enumerate(nested(tree, "parts", "part")):
            lines.append(
                InvoiceLine(
                    description=text(part.get("description")) or text(part.get("partnumber")) or "-",
                    unit_price=parse_decimal(part.get("sellprice", "0"), f"parts[{index}].sellprice"),
                    quantity=parse_decimal(part.get("quantity", "1"), f"parts[{index}].quantity"),
                    item_number=text(part.get("partnumber")),
                    account=text(part.get("expense_accno")),
                )
            )
        for entry in nested(tree, "expenseentries", "expenseentry"):
            lines.append(
                InvoiceLine(
                    description=text(entry.get("description")) or f"Konto {text(entry.get('expense_accno'))}",
                    unit_price=parse_decimal(entry.get("amount"), "expenseentry.amount"),
                    account=text(entry.get("expense_accno")),
                )
            )
        return cls(
            number=number,
            vendor=vendor,
            issue_date=issue,
            due_date=parse_date(tree.get("duedate"), "duedate"),
            lines=tuple(lines),
            currency=text(tree.get("currency")) or "CHF",
            title=text(tree.get("description")),
            prices_include_tax=parse_bool(tree.get("taxincluded"), "taxincluded"),
            order_number=text(tree.get("ordnumber")),
            status=text(tree.get("status")),
            amount=_opt_decimal(tree.get("amount"), "amount"),
            net_amount=_opt_decimal(tree.get("netamount"), "netamount"),
            paid=_opt_decimal(tree.get("paid"), "paid"),
            payment_account=text(tree.get("paymentAccno")),  # camelCase on the wire
            id=text(tree.get("id")),
            raw=dict(tree),
        )


@attrs.frozen(kw_only=True)
class SaldoRow:
    accno: str
    name: str | None
    amount: Decimal

    @classmethod
    def from_v2(cls, tree: Mapping[str, Any]) -> SaldoRow:
        return cls(
            accno=text(tree.get("accountnumber")) or "",
            name=text(tree.get("accountname")),
            amount=parse_decimal(tree.get("amount"), "amount"),
        )

    @classmethod
    def from_v1(cls, tree: Mapping[str, Any]) -> SaldoRow:
        columns = as_list(tree.get("column")) if isinstance(tree, Mapping) else []
        if len(columns) < 3:
            raise _bad("saldo v1 row needs three columns (accno, name, amount)")
        return cls(accno=str(columns[0]), name=text(columns[1]), amount=parse_decimal(columns[2], "amount"))


def saldo_rows(tree: Any, *, version: int) -> list[SaldoRow]:
    rows = items(tree, "row")
    return [SaldoRow.from_v2(r) if version == 2 else SaldoRow.from_v1(r) for r in rows]


@attrs.frozen(kw_only=True)
class AccountTransaction:
    """One ledger line of `/charts/{accno}/transactions`. `amount` follows the neutral sign of `PostingLine`
    (debit > 0, credit < 0: RMA's SQL-Ledger sign is flipped) in whole cents (``"-72500.0"`` → ``72500.00``).
    The wire value is in ``raw["amount"]``."""

    accno: str
    date: _dt.date
    amount: Decimal
    reference: str | None = None
    description: str | None = None
    module: str | None = None
    source: str | None = None
    memo: str | None = None
    id: str | None = None
    raw: Any = _raw()

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> AccountTransaction:
        chart = tree.get("chart")
        accno = text(tree.get("accno")) or (text(chart.get("@accno")) if isinstance(chart, Mapping) else None)
        date = parse_date(tree.get("transdate"), "transdate")
        if not accno or date is None:
            raise _bad("account transaction without accno or transdate")
        return cls(
            accno=accno,
            date=date,
            amount=ledger_amount(parse_decimal(tree.get("amount"), "amount")),
            reference=text(tree.get("reference")),
            description=text(tree.get("description")),
            module=text(tree.get("module")),
            source=text(tree.get("source")),
            memo=text(tree.get("memo")),
            id=text(tree.get("id")),
            raw=dict(tree),
        )


def ledger_amount(sql_ledger_amount: Decimal) -> Decimal:
    """SQL-Ledger's signed amount (debit < 0) as a neutral one (debit > 0) at the currency's scale (cents).
    An amount finer than a cent (never booked by RMA) keeps its digits rather than being rounded."""
    return at_scale(Decimal(0) - sql_ledger_amount)  # not -x: no Decimal('-0')


def account_transactions(tree: Any) -> list[AccountTransaction]:
    return [AccountTransaction.from_tree(t) for t in items(tree, "transaction")]


@attrs.frozen(kw_only=True)
class Beleg:
    """The answer to a receipt upload (`POST /belege`); `checksum` is the CRC32 of the file.

    `already_uploaded` is True when the upload was resent after its first answer was lost and RMA answered the
    resend with its duplicate 409: the receipt is stored, but RMA has no receipt listing to read its id from, so
    `id` is then ``"crc32:<checksum>"`` — the CRC32 of the content (decimal), the key RMA deduplicates by — and
    not an id assigned by RMA.
    """

    id: str
    file_name: str | None = None
    comment: str | None = None
    checksum: str | None = None
    date_received: _dt.date | None = None
    already_uploaded: bool = False
    raw: Any = _raw()

    @classmethod
    def already_stored(cls, *, file_name: str, content: bytes, comment: str | None) -> Beleg:
        """A receipt our own earlier attempt stored (RMA refused the resend as a duplicate; see the class doc)."""
        checksum = str(zlib.crc32(content))
        raw = {"already_uploaded": True, "checksum": checksum, "file_name": file_name, "status": 409}
        return cls(id=f"crc32:{checksum}", file_name=file_name, comment=comment, checksum=checksum,
                   already_uploaded=True, raw=raw)  # fmt: skip

    @classmethod
    def stored_unread(cls, *, file_name: str, content: bytes, comment: str | None) -> Beleg:
        """A receipt RMA accepted (2xx) with an answer that could not be read: stored, known by its CRC32."""
        checksum = str(zlib.crc32(content))
        raw = {"answer_unreadable": True, "checksum": checksum, "file_name": file_name}
        return cls(id=f"crc32:{checksum}", file_name=file_name, comment=comment, checksum=checksum, raw=raw)

    @classmethod
    def from_tree(cls, tree: Any) -> Beleg:
        if isinstance(tree, Mapping) and len(tree) == 1 and isinstance(next(iter(tree.values())), Mapping):
            tree = next(iter(tree.values()))  # a JSON peer that kept the (undocumented) root
        if not isinstance(tree, Mapping) or not text(tree.get("id")):
            raise _bad("receipt upload answer without id")
        return cls(
            id=text(tree.get("id")) or "",
            file_name=text(tree.get("file_name")),
            comment=text(tree.get("comment")),
            checksum=text(tree.get("checksum")),
            date_received=parse_date(tree.get("date_received"), "date_received"),
            raw=dict(tree),
        )


@attrs.frozen(kw_only=True)
class Department:
    id: str
    name: str

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Department:
        return cls(id=text(tree.get("@id")) or "", name=text(tree.get("@name")) or "")


@attrs.frozen(kw_only=True)
class Project:
    id: str
    number: str
    description: str | None = None

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any]) -> Project:
        return cls(
            id=text(tree.get("@id")) or "",
            number=text(tree.get("@number")) or "",
            description=text(tree.get("@description")),
        )


def decode_list(tree: Any, item: str, cls: Any) -> list[Any]:
    return [cls.from_tree(entry) for entry in items(tree, item)]


def first(values: Sequence[Any]) -> Any:
    return values[0] if values else None
