"""Issue 12's figure: 4 worker processes × 25 concurrent requests on ONE smallinvoice sandbox credential whose
window is 40 requests / 2 s, with the shared Redis limiter (``shared_state``) and with per-process limiters.

    python benchmarks/fleet.py [--redis redis://127.0.0.1:6379/0] [--requests 25]

Prints a Markdown table: 429s the sandbox answered, and throughput (successful requests per second) as a share
of the allowed rate. Without ``--redis`` (or ``AB_TEST_REDIS_URL``) a redis-server is started on a free port.
The workers are this script (``--worker``); `worker_phase` is what each runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from accounting_bridge.adapters.smallinvoice.sandbox import SmallInvoiceSandbox

import accounting_bridge as ab

WORKERS, QUOTA, WINDOW = 4, 40, 2.0


async def worker_phase(base_url: str, settings: dict[str, Any], requests: int) -> dict[str, Any]:
    """One worker: wait for "go" on stdin, send `requests` GETs at once, report what came back."""
    async with ab.connect("smallinvoice", base_url=base_url, **settings) as ledger:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        responses = await asyncio.gather(
            *(ledger.raw("GET", "auth/owner") for _ in range(requests)), return_exceptions=True
        )
    return {"ok": sum(1 for r in responses if not isinstance(r, BaseException) and r.status == 200)}


async def _fleet(settings: dict[str, Any], requests: int) -> dict[str, float]:
    async with SmallInvoiceSandbox(quota=QUOTA, window=WINDOW) as sandbox:
        command = [sys.executable, __file__, "--worker", sandbox.base_url, json.dumps(settings), str(requests)]
        workers = [
            await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
            for _ in range(WORKERS)
        ]
        for worker in workers:
            assert worker.stdout is not None
            assert (await worker.stdout.readline()).strip() == b"ready"
        started = time.monotonic()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
        results = []
        for worker in workers:
            assert worker.stdout is not None
            results.append(json.loads(await worker.stdout.readline()))
            await worker.wait()
        elapsed = time.monotonic() - started
        ok = sum(r["ok"] for r in results)
        return {"ok": ok, "sent": WORKERS * requests, "429s": sandbox.rate_limited, "seconds": elapsed,
                "share": ok / elapsed / (QUOTA / WINDOW)}  # fmt: skip


@contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is not installed: apt-get install -y redis-server, or pass --redis URL")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp()
    server = subprocess.Popen(  # noqa: S603
        [program, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(folder, ignore_errors=True)


async def figure(redis_url: str, requests: int = 25) -> list[tuple[str, dict[str, float]]]:
    """The two rows: shared Redis limiter, then per-process limiters (each worker its own budget)."""
    credential = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}
    shared = {**credential, "shared_state": f"{redis_url}?key_prefix=bench{secrets.token_hex(4)}"}
    return [("shared Redis limiter", await _fleet(shared, requests)),
            ("per-process limiters", await _fleet(credential, requests))]  # fmt: skip


def table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [
        f"{WORKERS} processes × {rows[0][1]['sent'] // WORKERS:.0f} concurrent requests, one credential, "
        f"{QUOTA} requests / {WINDOW:.0f} s window",
        "",
        "| limiter | succeeded | 429s received | seconds | throughput / allowed rate |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows:
        lines.append(f"| {name} | {row['ok']:.0f}/{row['sent']:.0f} | {row['429s']:.0f} | {row['seconds']:.1f} "
                     f"| {row['share']:.0%} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        base_url, settings, requests = sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(asyncio.run(worker_phase(base_url, settings, requests))), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("AB_TEST_REDIS_URL"))
    parser.add_argument("--requests", type=int, default=25)
    args = parser.parse_args()
    with _redis(args.redis) as url:
        print(table(asyncio.run(figure(url, args.requests))))


if __name__ == "__main__":
    main()
