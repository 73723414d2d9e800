"""What every figure shares: the server process, the context a round runs in, rows, and medians of rounds.

A *figure* measures one or more *rows* per round — each row either a pair (ours, baseline) whose ratio is the
figure, or a plain value (a count, megabytes). Rounds interleave every figure (and alternate which side of a pair
goes first), so load from other processes on the machine touches both sides of a ratio alike.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import attrs

HERE = Path(__file__).resolve().parent


class ServerProcess:
    """`servers.py` in a child process: its servers' addresses and settings, and their request counters."""

    def __init__(self, quick: bool) -> None:
        args = [sys.executable, str(HERE / "servers.py"), *(["--quick"] if quick else [])]
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # noqa: S603
        self.servers: dict[str, Any] = self._read()["servers"]

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the benchmark servers stopped (exit code {self._process.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ask(self, op: str, server: str, **options: Any) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps({"op": op, "server": server, **options}) + "\n")
        self._process.stdin.flush()
        return self._read()["value"]

    def count(self, server: str, **options: Any) -> int:
        value: int = self.ask("count", server, **options)
        return value

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()


@attrs.define
class Context:
    quick: bool
    servers: ServerProcess
    session: aiohttp.ClientSession
    round: int = 0

    def server(self, name: str) -> dict[str, Any]:
        server: dict[str, Any] = self.servers.servers[name]
        return server

    def connect_kwargs(self, name: str, **extra: Any) -> dict[str, Any]:
        """`ab.connect` keyword arguments for a server, on the shared session (as the baselines use it)."""
        server = self.server(name)
        return {"base_url": server["base_url"], "session": self.session, **server["settings"], **extra}

    def first(self, ours: Callable[[], Awaitable[float]], baseline: Callable[[], Awaitable[float]]) -> Any:
        """Both sides of a pair, in an order that alternates from round to round."""
        return (ours, baseline) if self.round % 2 == 0 else (baseline, ours)


async def pair(ctx: Context, ours: Callable[[], Awaitable[float]], baseline: Callable[[], Awaitable[float]]) -> Any:
    """(ours, baseline) seconds, run in the round's order."""
    times: dict[Any, float] = {}
    for side in ctx.first(ours, baseline):
        times[side] = await side()
    return times[ours], times[baseline]


@attrs.frozen
class Row:
    """One line of the results table. `ratio` rows hold (ours, baseline) seconds; others a value in `unit`."""

    name: str
    target: str
    meets: Callable[[float], bool]
    ratio: bool = True
    unit: str = "×"
    decimals: int = 2
    #: What the profile below the table shows when the row misses its target (the known remaining cost).
    why: str = ""


class Figure(Protocol):
    rows: list[Row]

    async def setup(self, ctx: Context) -> None: ...

    async def round(self, ctx: Context) -> dict[str, Any]:
        """One round: row name -> (ours, baseline) seconds, or a value."""
        ...

    async def profile(self, ctx: Context) -> None:
        """Our side once (profiled when a row misses its target)."""
        ...


@attrs.define
class Summary:
    row: Row
    values: list[float] = attrs.field(factory=list)
    ours: list[float] = attrs.field(factory=list)
    baseline: list[float] = attrs.field(factory=list)

    def add(self, sample: Any) -> None:
        if self.row.ratio:
            ours, baseline = sample
            self.ours.append(ours)
            self.baseline.append(baseline)
            self.values.append(ours / baseline)
        else:
            self.values.append(float(sample))

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def met(self) -> bool:
        return self.row.meets(self.median)

    def shown(self, value: float) -> str:
        return f"{value:.{self.row.decimals}f}{self.row.unit}"
