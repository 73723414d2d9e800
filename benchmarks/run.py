"""Benchmarks of issue 9: every figure against its baseline in the same run, written to benchmarks/RESULTS.md.

    nox -s bench                 # 5 interleaved rounds
    nox -s bench -- --quick      # 3 rounds, smaller long figures: under two minutes
    python benchmarks/run.py --quick --extra my_figures   # plus the figures of another module

The servers (sandboxes) run in a separate process (`servers.py`). Each round runs every figure once, ours and the
baseline back to back in alternating order; the table shows the median of the rounds' ratios and their range.
A row that misses its target is explained by a profile of our side, printed below the table.

Extra figures: any module named with ``--extra`` (importable name or a .py path) or found as
``benchmarks/extra_*.py`` with a function ``figures(quick: bool) -> list`` of objects like those in
``figures_*.py`` (``rows``, ``async setup(ctx)``, ``async round(ctx)``, ``async profile(ctx)``, optional
``async teardown()``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as _dt
import importlib
import importlib.util
import io
import os
import platform
import pstats
import sys
from pathlib import Path
from types import ModuleType

import aiohttp
from figures_ledgers import BuildInvoices, ConnectClose, Tenants
from figures_reading import IterateMemory, RmaList, SmallInvoicePages
from figures_writing import RateLimitedReads, SmallInvoiceCreates
from harness import HERE, Context, Figure, ServerProcess, Summary

RESULTS = HERE / "RESULTS.md"


def core_figures(quick: bool) -> list[Figure]:
    return [
        RmaList("json"), RmaList("xml"), SmallInvoicePages(), SmallInvoiceCreates(quick), RateLimitedReads(quick),
        IterateMemory(quick), Tenants(), ConnectClose(), BuildInvoices(),
    ]  # fmt: skip


def _module(spec: str) -> ModuleType:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        loader_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert loader_spec is not None
        assert loader_spec.loader is not None
        module = importlib.util.module_from_spec(loader_spec)
        loader_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def extra_figures(names: list[str], quick: bool) -> list[Figure]:
    found = [str(path) for path in sorted(HERE.glob("extra_*.py"))]
    figures: list[Figure] = []
    for name in [*found, *names]:
        figures.extend(_module(name).figures(quick))
    return figures


async def measure(figures: list[Figure], rounds: int, quick: bool) -> tuple[list[Summary], dict[str, str]]:
    servers = ServerProcess(quick)
    try:
        async with aiohttp.ClientSession() as session:
            ctx = Context(quick=quick, servers=servers, session=session)
            for figure in figures:
                await figure.setup(ctx)
            summaries = {row.name: Summary(row) for figure in figures for row in figure.rows}
            for index in range(rounds):
                ctx.round = index
                for figure in figures:
                    for name, sample in (await figure.round(ctx)).items():
                        summaries[name].add(sample)
                print(f"round {index + 1}/{rounds} done", file=sys.stderr)
            profiles = {}
            for figure in figures:
                if any(not summaries[row.name].met for row in figure.rows):
                    profiles[figure.rows[0].name] = await _profile(figure, ctx)
            for figure in figures:
                teardown = getattr(figure, "teardown", None)
                if teardown is not None:
                    await teardown()
                await _close(figure)
    finally:
        servers.close()
    return list(summaries.values()), profiles


async def _close(figure: Figure) -> None:
    for value in vars(figure).values():
        if hasattr(value, "aclose") and hasattr(value, "adapter"):  # a Ledger the figure opened
            await value.aclose()


async def _profile(figure: Figure, ctx: Context) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    await figure.profile(ctx)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(r"accounting_bridge|adapters|json|xmltodict|aiohttp/client\.py|transport", 16)
    lines = [line for line in out.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line.replace(str(Path.cwd()) + os.sep, "") for line in lines[start:])


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def render(summaries: list[Summary], profiles: dict[str, str], rounds: int, quick: bool) -> str:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results (issue 9)",
        "",
        f"- Date: {now}; mode: {'quick' if quick else 'full'}, {rounds} interleaved rounds",
        f"- Machine: {machine()}",
        "- Written by `nox -s bench` (`benchmarks/run.py`); servers ran in a separate process on 127.0.0.1.",
        "- Ratios are ours / baseline of the same round; the table shows the median of the rounds and their range.",
        "",
        "| figure | target | baseline (median) | ours (median) | result (median) | range | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        if s.row.ratio:
            base, ours = _seconds(_median(s.baseline)), _seconds(_median(s.ours))
        else:
            base, ours = "—", "—"
        spread = f"{s.shown(min(s.values))} – {s.shown(max(s.values))}"
        lines.append(
            f"| {s.row.name} | {s.row.target} | {base} | {ours} | {s.shown(s.median)} | {spread} | "
            f"{'yes' if s.met else '**no**'} |"
        )
    missed = [s for s in summaries if not s.met]
    if missed:
        lines += ["", "## Missed targets", ""]
        lines += [f"- {s.row.name}: {s.shown(s.median)} (target {s.row.target}). {s.row.why}".rstrip() for s in missed]
        lines += ["", "Profiles of our side (one run; SDK, parser and aiohttp client frames by cumulative time):"]
        for name, text in profiles.items():
            lines += ["", f"### {name}", "", "```text", text, "```"]
    return "\n".join(lines) + "\n"


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _seconds(value: float) -> str:
    return f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds and shorter long figures (under 2 minutes)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--extra", action="append", default=[], help="a module with more figures (repeatable)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the results (Markdown)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 5)
    figures = core_figures(args.quick) + extra_figures(args.extra, args.quick)
    summaries, profiles = asyncio.run(measure(figures, rounds, args.quick))
    text = render(summaries, profiles, rounds, args.quick)
    args.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
