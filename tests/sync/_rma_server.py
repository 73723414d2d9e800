"""A Run my Accounts sandbox in its own process, for the push crash tests.

Prints its base URL on the first line of stdout, then serves until stdin closes. ``--drop-percent P`` drops the
connection after P % of the committed writes (seeded). ``GET /__debug/stats`` (no key) answers with what the books
hold and how often a create was refused because the invoice existed already (a resend).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from typing import Any

from accounting_bridge.adapters.runmyaccounts.sandbox import RmaSandbox
from aiohttp import web


def _instrument(sandbox: RmaSandbox, drop_percent: float, seed: int) -> None:
    rng = random.Random(seed)
    stats = {"duplicate_creates": 0, "dropped": 0}

    @web.middleware
    async def instrument(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/__debug/stats":
            return web.json_response(
                {**stats, "invoices": sorted(sandbox.state.invoices), "customers": sorted(sandbox.state.customers)}
            )
        response: web.StreamResponse = await handler(request)
        if request.method != "POST":
            return response
        if request.path.endswith("/invoices") and response.status == 400:
            if "existiert bereits" in (getattr(response, "text", None) or ""):
                stats["duplicate_creates"] += 1
        elif response.status < 300 and rng.random() < drop_percent / 100:
            stats["dropped"] += 1
            if request.transport is not None:
                request.transport.close()  # committed, the answer never arrives
        return response

    sandbox.app.middlewares.insert(0, instrument)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drop-percent", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sandbox = RmaSandbox()
    _instrument(sandbox, args.drop_percent, args.seed)
    base_url = await sandbox.start("127.0.0.1", 0)
    print(json.dumps({"base_url": base_url, **sandbox.connect_settings()}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await sandbox.stop()


if __name__ == "__main__":
    asyncio.run(main())
