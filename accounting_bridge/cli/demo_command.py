"""`accounting-bridge demo`: the round trip on every backend's sandbox, as a table, then the capability matrix."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..demo import OPERATIONS, Step, demo_backends, run_demo
from ..registry import load
from .asyncrun import run_async
from .capabilities_command import print_matrix

if TYPE_CHECKING:
    from .app import Context

__all__ = ["run"]

MARKS = {"ok": "ok", "skipped": "skipped", "failed": "FAILED"}


def run(ctx: Context) -> int:
    backends = ctx.args.backend or demo_backends()
    for name in backends:
        load(name)  # an unknown name is a usage error before anything starts
    ctx.out.line(f"Round trip on {', '.join(backends)}: each against its own sandbox on 127.0.0.1, in this process")
    started = time.perf_counter()
    results = run_async(run_demo(backends))
    elapsed = time.perf_counter() - started
    ctx.out.table(f"Round trip ({_ms(elapsed)} in all)", ["operation", *results], _rows(results))
    _print_notes(ctx, results)
    print_matrix(ctx.out, {name: load(name).capabilities for name in results})
    failed = any(step.outcome == "failed" for steps in results.values() for step in steps)
    return 1 if failed else 0


def _rows(results: dict[str, list[Step]]) -> list[list[str]]:
    by_backend = {name: {step.operation: step for step in steps} for name, steps in results.items()}
    rows = []
    for operation in OPERATIONS:
        cells = []
        for steps in by_backend.values():
            step = steps[operation]
            cells.append(MARKS[step.outcome] + ("" if step.outcome == "skipped" else f" {_ms(step.seconds)}"))
        rows.append([operation, *cells])
    return rows


def _ms(seconds: float) -> str:
    milliseconds = seconds * 1000
    return f"{milliseconds:.1f} ms" if milliseconds < 9.95 else f"{milliseconds:.0f} ms"


def _print_notes(ctx: Context, results: dict[str, list[Step]]) -> None:
    """Why a step was skipped (what the backend lacks) and what a failed one said."""
    for outcome, title in (("skipped", "Skipped"), ("failed", "FAILED")):
        notes = [
            f"  {backend} {step.operation}: {step.detail}"
            for backend, steps in results.items()
            for step in steps
            if step.outcome == outcome
        ]
        if notes:
            ctx.out.line(f"{title}:")
            for note in notes:
                ctx.out.line(note)
