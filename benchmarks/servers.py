"""The benchmark's servers, in their own process (so their work never counts as the client's): the sandboxes the
figures read from and write to, and a line protocol on stdin/stdout to ask them for their request counters.

    python benchmarks/servers.py [--quick]     # prints one JSON line {"servers": {...}}, then answers commands

A command is one JSON line ``{"op": "count", "server": NAME, "method": ..., "path": ...}`` (requests served) or
``{"op": "rate_limited", "server": NAME}`` (429s sent); the answer is one JSON line ``{"value": N}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from accounting_bridge.sandbox import create

#: invoices listed by the decoding figures; invoices iterated by the memory figure
LIST_INVOICES = 5000
ITERATE_INVOICES = {"quick": 30_000, "full": 100_000}
TENANTS = 200


def _grow_rma(sandbox: Any, total: int) -> None:
    """`total` invoices: seeded ones cloned under new numbers (the sandbox's own seeding is quadratic)."""
    sandbox.seed(customers=50, invoices=min(total, 300))
    invoices = sandbox.state.invoices
    templates = list(invoices.values())
    for index in range(total - len(invoices)):
        number = f"B-{index:06d}"
        invoices[number] = {**templates[index % len(templates)], "invnumber": number, "id": str(9_000_000 + index)}


def _grow_smallinvoice(sandbox: Any, total: int) -> None:
    sandbox.seed(customers=50, invoices=min(total, 300))
    invoices = sandbox.books().invoices
    templates = list(invoices.values())
    for index in range(total - len(invoices)):
        ident = 9_000_000 + index
        invoices[ident] = {**templates[index % len(templates)], "id": ident, "number": f"B-{index:06d}"}


async def _start(backend: str, **options: Any) -> Any:
    sandbox = create(backend, **options)
    await sandbox.start()
    return sandbox


def _describe(sandbox: Any, **extra: Any) -> dict[str, Any]:
    return {"backend": sandbox.backend, "base_url": sandbox.base_url, "settings": sandbox.connect_settings(), **extra}


async def serve(quick: bool) -> None:
    rma = await _start("runmyaccounts")
    _grow_rma(rma, LIST_INVOICES)
    tenants = await _start("runmyaccounts")
    tenant_settings = [tenants.add_tenant(f"t{index:03d}") for index in range(TENANTS)]
    si_read = await _start("smallinvoice", quota=10**9)
    _grow_smallinvoice(si_read, LIST_INVOICES)
    si_iterate = await _start("smallinvoice", quota=10**9)
    _grow_smallinvoice(si_iterate, ITERATE_INVOICES["quick" if quick else "full"])
    si_write = await _start("smallinvoice", quota=10**9)
    si_write.seed(customers=50, invoices=0)
    si_write.faults.latency = 0.020
    si_rate = await _start("smallinvoice", quota=100, window=1.0)
    si_rate.seed(customers=5, invoices=5)
    servers = {
        "rma": rma, "tenants": tenants, "si_read": si_read, "si_iterate": si_iterate, "si_write": si_write,
        "si_rate": si_rate,
    }  # fmt: skip
    described = {name: _describe(sandbox) for name, sandbox in servers.items()}
    described["tenants"]["tenants"] = tenant_settings
    print(json.dumps({"servers": described}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        sandbox = servers[command["server"]]
        if command["op"] == "count":
            value = sandbox.request_count(method=command.get("method"), path=command.get("path"))
        elif command["op"] == "rate_limited":
            value = sandbox.rate_limited
        elif command["op"] == "clear_invoices":  # back to the seeded books (contacts stay)
            books = sandbox.books()
            books.invoices.clear()
            books.payments.clear()
            value = None
        else:
            value = None
        print(json.dumps({"value": value}), flush=True)
    for sandbox in servers.values():
        await sandbox.stop()


if __name__ == "__main__":
    asyncio.run(serve("--quick" in sys.argv[1:]))
