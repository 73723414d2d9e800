"""A Multi-Regnskab sandbox in its own process, for the push crash test of a kind without a look-up.

Prints the `ab.connect` settings as JSON on the first line of stdout. Each line ``stats`` on stdin is answered
with one JSON line: how many ``POST /suggestedRegistrations`` each registration reference (trace header) got, and
how many registrations the books hold. Ends when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from typing import Any

from accounting_bridge.adapters.multiregnskab.public_client import TRACE_HEADER
from accounting_bridge.adapters.multiregnskab.sandbox import MultiRegnskabSandbox


def _stats(sandbox: MultiRegnskabSandbox) -> dict[str, Any]:
    posts = Counter(
        call.headers.get(TRACE_HEADER, "")
        for call in sandbox.calls
        if call.method == "POST" and call.path.startswith("/suggestedRegistrations")
    )
    stored = sum(len(company.registrations) for company in sandbox.companies.values())
    return {"posts": dict(posts), "registrations": stored}


async def main() -> None:
    sandbox = MultiRegnskabSandbox()
    base_url = await sandbox.start("127.0.0.1", 0)
    print(json.dumps({"base_url": base_url, **sandbox.connect_settings()}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "stats":
            print(json.dumps(_stats(sandbox)), flush=True)
    await sandbox.stop()


if __name__ == "__main__":
    asyncio.run(main())
