"""`accounting-bridge list PROFILE KIND [--since --until --status] [--json]`: what a ledger holds, streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..converter import to_dict
from ..models import InvoiceStatus
from .asyncrun import run_async
from .exits import CliError, ExitCode
from .ledgers import open_ledger

if TYPE_CHECKING:
    from ..ledger import Ledger
    from .app import Context

__all__ = ["COLUMNS", "cell", "print_json_array", "run"]

#: The columns of the table per kind (attribute paths of the neutral model).
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("number", "name", "email", "address.city", "id"),
    "invoices": ("number", "customer_number", "issue_date", "due_date", "total", "currency", "status"),
    "payments": ("invoice_number", "date", "amount", "currency", "kind", "reference"),
    "bank_transactions": ("account", "date", "amount", "currency", "text", "counterparty"),
    "documents": ("id", "filename"),
}
#: The filters each kind takes.
FILTERS: dict[str, frozenset[str]] = {
    "customers": frozenset(),
    "invoices": frozenset({"since", "until", "status"}),
    "payments": frozenset({"since", "until"}),
    "bank_transactions": frozenset({"since", "until"}),
    "documents": frozenset(),
}


def run(ctx: Context) -> int:
    kind = ctx.args.kind
    filters = {name: getattr(ctx.args, name) for name in ("since", "until", "status") if getattr(ctx.args, name)}
    refused = sorted(set(filters) - FILTERS[kind])
    if refused:
        raise CliError(f"{kind} cannot be filtered by --{', --'.join(refused)}", ExitCode.USAGE)
    if "since" in filters and "until" in filters and filters["until"] < filters["since"]:
        raise CliError(f"--until {filters['until']} is before --since {filters['since']}", ExitCode.USAGE)
    if "status" in filters:
        filters["status"] = InvoiceStatus(filters["status"])
    ledger = open_ledger(ctx)
    return run_async(_list(ctx, ledger, kind, filters))


async def _list(ctx: Context, ledger: Ledger, kind: str, filters: dict[str, Any]) -> int:
    async with ledger:
        items = _items(ledger, kind, filters)
        if ctx.args.json:
            await print_json_array(ctx, items)
        else:
            rows = [[cell(item, path) for path in COLUMNS[kind]] async for item in items]
            ctx.out.table(f"{kind} of {ctx.args.profile} ({len(rows)})", COLUMNS[kind], rows)
    return 0


def _items(ledger: Ledger, kind: str, filters: dict[str, Any]) -> AsyncIterator[Any]:
    group = getattr(ledger, kind)
    iterator: AsyncIterator[Any] = group.list(**filters)
    return iterator


async def print_json_array(ctx: Context, items: AsyncIterator[Any]) -> None:
    """One JSON array, written item by item (memory stays flat however long the list)."""
    separator = "["
    async for item in items:
        ctx.out.raw(separator + "\n  " + json.dumps(to_dict(item), ensure_ascii=False))
        separator = ","
    ctx.out.raw("[]\n" if separator == "[" else "\n]\n")


def cell(item: Any, path: str) -> str:
    value = item
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return ""
    return str(getattr(value, "value", value))
