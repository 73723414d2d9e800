"""`accounting-bridge` command line: `demo` runs the neutral round trip."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from .demo import round_trip
from .errors import AccountingError
from .registry import connect

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accounting-bridge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a neutral round trip (customer, invoice, payment, registration)")
    demo.add_argument("--backend", default="memory", help="adapter to run against (default: memory)")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_demo(args.backend))
    except AccountingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


async def _demo(backend: str) -> None:
    async with connect(backend) as ledger:
        await round_trip(ledger)
