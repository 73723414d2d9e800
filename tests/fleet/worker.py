"""One worker process of the fleet tests: connects to the smallinvoice sandbox with `shared_state`, prints "ready",
then for every line read on stdin (a JSON phase: {"requests": n, "concurrency": c}) sends n GET requests, c at a
time, and prints one JSON line with the outcome. Ends at EOF.

Usage: python worker.py BASE_URL SETTINGS_JSON
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import accounting_bridge as ab

PATH = "auth/owner"


class _CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _phase(ledger: Any, requests: int, concurrency: int) -> dict[str, Any]:
    statuses: list[int] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            try:
                statuses.append((await ledger.raw("GET", PATH)).status)
            except ab.AccountingError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(requests)))
    return {"ok": statuses.count(200), "statuses": sorted(set(statuses)), "errors": errors,
            "elapsed": time.monotonic() - started}  # fmt: skip


async def main(base_url: str, settings: dict[str, Any]) -> None:
    warnings = _CountWarnings()
    logging.getLogger("accounting_bridge").addHandler(warnings)
    loop = asyncio.get_running_loop()
    async with ab.connect("smallinvoice", base_url=base_url, **settings) as ledger:
        print("ready", flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            phase = json.loads(line)
            result = await _phase(ledger, phase["requests"], phase["concurrency"])
            result["warnings"] = warnings.count
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
