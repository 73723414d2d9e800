"""Benchmarks, each a ratio against a baseline measured in the same run (never absolute timings).

    nox -s bench            # writes benchmarks/results.md

1. JSON writing: `jsoncodec.dumps` (Decimal written exactly) vs stdlib `json.dumps(default=str)`.
2. Transport overhead: N GETs through `Transport.send` (limiter, auth, retries armed, logging) vs the same GETs
   with a bare aiohttp session, both against one local aiohttp server over real sockets.
3. Model construction + `to_dict` of a 50-line invoice vs building the same plain dict by hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pathlib
import sys
import time
from collections.abc import Callable
from decimal import Decimal

import aiohttp
from aiohttp import web

import accounting_bridge as ab
from accounting_bridge import jsoncodec
from accounting_bridge.transport import ApiKeyQuery, Request, Transport, TransportConfig

RESULTS = pathlib.Path(__file__).with_name("results.md")


def best_of(fn: Callable[[], object], repeat: int = 7, number: int = 200) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append(time.perf_counter() - start)
    return min(times) / number


def payload() -> dict[str, object]:
    return {
        "invoice": {
            "number": "R-1",
            "lines": [
                {"description": f"Line {i}", "quantity": Decimal("1.5"), "unit_price": Decimal("1234.5678")}
                for i in range(200)
            ],
        }
    }


def bench_json() -> tuple[str, float, float]:
    data = payload()
    ours = best_of(lambda: jsoncodec.dumps(data))
    base = best_of(lambda: json.dumps(data, default=str))
    return "JSON writing, 200 Decimal lines: jsoncodec.dumps vs json.dumps(default=str)", ours, base


def bench_models() -> tuple[str, float, float]:
    def build() -> object:
        return ab.to_dict(
            ab.Invoice(
                number="R-1",
                customer_number="K-1",
                issue_date=dt.date(2026, 11, 1),
                lines=[ab.InvoiceLine(description=f"L{i}", unit_price=Decimal("10.00")) for i in range(50)],
            )
        )

    def by_hand() -> object:
        return {
            "number": "R-1",
            "customer_number": "K-1",
            "issue_date": "2026-11-01",
            "lines": [{"description": f"L{i}", "unit_price": "10.00", "quantity": "1"} for i in range(50)],
        }

    name = "50-line invoice: validated model + to_dict vs a hand-built dict"
    return name, best_of(build, number=50), best_of(by_hand, number=50)


async def bench_transport(n: int = 300) -> tuple[str, float, float]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"ok": True}, headers={"X-Rate-Limit-Remaining": "100000", "X-Rate-Limit-Reset": "60"})

    app = web.Application()
    app.router.add_get("/x", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        transport = Transport(TransportConfig(backend="bench", base_url=base), auth=ApiKeyQuery("bench-key-123456"))
        async with aiohttp.ClientSession() as session:

            async def bare() -> None:
                async with session.get(f"{base}/x", params={"api_key": "bench-key-123456"}) as resp:
                    await resp.read()

            async def ours() -> None:
                await transport.send(Request("GET", "/x"))

            timings: dict[str, list[float]] = {"bare": [], "ours": []}
            for _ in range(5):
                for name, fn in (("bare", bare), ("ours", ours)):
                    start = time.perf_counter()
                    for _ in range(n):
                        await fn()
                    timings[name].append((time.perf_counter() - start) / n)
        await transport.aclose()
    finally:
        await runner.cleanup()
    return (
        f"{n} sequential GETs on 127.0.0.1: Transport.send vs bare aiohttp",
        min(timings["ours"]),
        min(timings["bare"]),
    )


def main() -> int:
    rows = [bench_json(), bench_models(), asyncio.run(bench_transport())]
    lines = [
        "# Benchmark results",
        "",
        f"Python {sys.version.split()[0]}; ratios are ours / baseline, measured in the same run (lower is better).",
        "",
        "| benchmark | ours (µs) | baseline (µs) | ratio |",
        "|---|---|---|---|",
    ]
    for name, ours, base in rows:
        lines.append(f"| {name} | {ours * 1e6:.1f} | {base * 1e6:.1f} | {ours / base:.2f} |")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
