"""A fleet of worker processes (`worker.py`) driven from a test's event loop, which also runs the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

WORKER = str(Path(__file__).with_name("worker.py"))
#: Generous: on a loaded machine starting Python and importing aiohttp takes seconds (poll with deadline).
START_TIMEOUT = 60.0
PHASE_TIMEOUT = 60.0


class Fleet:
    """`async with Fleet(n, base_url, settings) as fleet:` starts n workers and waits until each is ready."""

    def __init__(self, size: int, base_url: str, settings: dict[str, Any]) -> None:
        self.size, self.base_url, self.settings = size, base_url, settings
        self.workers: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Fleet:
        arguments = [WORKER, self.base_url, json.dumps(self.settings)]
        for _ in range(self.size):
            self.workers.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    *arguments,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            )
        for worker in self.workers:
            line = await self._line(worker, START_TIMEOUT)
            assert line == "ready", line
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for worker in self.workers:
            if worker.returncode is None:
                assert worker.stdin is not None
                worker.stdin.close()
        for worker in self.workers:
            try:
                await asyncio.wait_for(worker.wait(), 15)
            except asyncio.TimeoutError:
                worker.kill()
                await worker.wait()

    @staticmethod
    async def _line(worker: asyncio.subprocess.Process, timeout: float) -> str:
        assert worker.stdout is not None and worker.stderr is not None
        line = await asyncio.wait_for(worker.stdout.readline(), timeout)
        if not line:
            error = await worker.stderr.read()
            raise AssertionError(f"worker {worker.pid} ended: {error.decode(errors='replace')[-2000:]}")
        return line.decode().strip()

    def start_phase(self, requests: int, concurrency: int) -> float:
        """Tell every worker to run a phase; returns when it was told (time.monotonic())."""
        order = (json.dumps({"requests": requests, "concurrency": concurrency}) + "\n").encode()
        for worker in self.workers:
            assert worker.stdin is not None
            worker.stdin.write(order)
        return time.monotonic()

    async def results(self, workers: list[asyncio.subprocess.Process] | None = None) -> list[dict[str, Any]]:
        return [json.loads(await self._line(w, PHASE_TIMEOUT)) for w in (workers or self.workers)]

    async def phase(self, requests: int, concurrency: int) -> tuple[list[dict[str, Any]], float]:
        """Run one phase on every worker: their results and the wall time it took (all started at once)."""
        started = self.start_phase(requests, concurrency)
        results = await self.results()
        return results, time.monotonic() - started

    def kill(self, pid: int) -> asyncio.subprocess.Process:
        worker = next(w for w in self.workers if w.pid == pid)
        os.kill(pid, signal.SIGKILL)
        return worker
