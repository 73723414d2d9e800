"""`accounting-bridge pull PROFILE KIND`: what is new since the feed's checkpoint; the checkpoint moves only after
everything was written out (so an interrupted pull hands the same items out again: at least once, no gap)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..sync import pull
from .asyncrun import run_async
from .exits import CliError, ExitCode
from .ledgers import open_ledger
from .list_command import COLUMNS, cell, print_json_array
from .push_command import journal_spec

if TYPE_CHECKING:
    from ..ledger import Ledger
    from .app import Context

__all__ = ["run"]


def run(ctx: Context) -> int:
    if ctx.args.account and ctx.args.kind != "bank_transactions":
        raise CliError("--account applies to bank_transactions only", ExitCode.USAGE)
    ledger = open_ledger(ctx)
    return run_async(_pull(ctx, ledger, journal_spec(ctx.args.journal)))


async def _pull(ctx: Context, ledger: Ledger, journal: str) -> int:
    kind = ctx.args.kind
    feed_name = ctx.args.feed or f"{ctx.args.profile}-{kind}"
    options: dict[str, Any] = {"since": ctx.args.since, "account": ctx.args.account}
    async with ledger, pull(ledger, kind, journal=journal, feed=feed_name, **options) as feed:
        if ctx.args.json:
            await print_json_array(ctx, aiter(feed))
        else:
            rows = [[cell(item, path) for path in COLUMNS[kind]] async for item in feed]
            ctx.out.table(f"new {kind} of {ctx.args.profile} (feed {feed_name}): {len(rows)}", COLUMNS[kind], rows)
    return 0
