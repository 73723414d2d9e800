"""Push a workload to a sandbox and print the report's counts: run by the crash tests, killed with ``kill -9``.

``python _pusher.py BACKEND SETTINGS_JSON JOURNAL SIZE`` — runmyaccounts: SIZE invoices with SIZE/10 customers;
multiregnskab: SIZE registrations with an attachment each.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import workload  # the script's own folder is first on sys.path

import accounting_bridge as ab


def _items(backend: str, size: int) -> list[Any]:
    if backend == "runmyaccounts":
        return workload.invoices_with_customers(size, size // 10)
    return workload.registrations(size)


async def main(backend: str, settings: dict[str, Any], journal: str, size: int) -> None:
    if backend == "runmyaccounts":  # POST first: a resend of a number that landed is seen by the sandbox
        settings = {**settings, "invoice_write_first": True}
    async with ab.connect(backend, write_settle_delay=0.05, **settings) as ledger:
        report = await ab.push(ledger, _items(backend, size), journal=journal)
    print(json.dumps(dict(report.counts)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
