"""`accounting-bridge push PROFILE KIND FILE`: send a file of neutral models through `ab.push` and its journal.

Malformed records are reported by line and field and never sent; the others go. Exit code: 69 when the backend
cannot be reached or refuses the credentials, else 2 when something is unknown or in conflict (look before
rerunning), else 1 when something failed, else 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from ..sync import push
from ..sync.report import OUTCOMES, ItemOutcome, error_dict
from .asyncrun import run_async
from .exits import UNAVAILABLE, ExitCode
from .inputs import Malformed, Record, read_records
from .ledgers import open_ledger, probe
from .paths import default_journal

if TYPE_CHECKING:
    from ..ledger import Ledger
    from .app import Context

__all__ = ["Row", "exit_code", "journal_spec", "run"]

UNSETTLED = ("unknown", "conflict")
MAX_PROBLEM_ROWS = 50


@attrs.frozen(kw_only=True)
class Row:
    """One record of the file and what became of it."""

    line: int
    kind: str | None
    key: str | None
    outcome: str
    state: str | None = None
    backend_id: str | None = None
    error: dict[str, Any] | None = None
    detail: str | None = None
    unavailable: bool = False  # its error says the backend cannot be reached or refused the credentials

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self, filter=lambda attribute, _value: attribute.name != "unavailable")

    @property
    def why(self) -> str:
        return str((self.error or {}).get("message") or self.detail or "")


def run(ctx: Context) -> int:
    records = read_records(ctx.args.file, ctx.args.kind)  # an unreadable file: exit 64 before any connection
    ledger = open_ledger(ctx)
    journal = journal_spec(ctx.args.journal)
    rows = run_async(_push(ctx, ledger, records, journal))
    code = exit_code(rows)
    _report(ctx, rows, journal, code)
    return code


def journal_spec(given: str | None) -> str:
    """The --journal given, or the default file in the user's data folder (its folder made on first use)."""
    if given:
        return given
    path = default_journal()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a journal holds business data
    return str(path)


async def _push(ctx: Context, ledger: Ledger, records: list[Record | Malformed], journal: str) -> list[Row]:
    sent = [record for record in records if isinstance(record, Record)]
    rows: dict[int, Row] = {r.line: _malformed_row(r, ctx.args.kind) for r in records if isinstance(r, Malformed)}
    counts = dict.fromkeys(OUTCOMES, 0)
    counts["failed"] = len(rows)
    async with ledger:
        await probe(ledger)  # unreachable or refused: exit 69 before anything is claimed
        with ctx.out.progress(len(records), f"push {ctx.args.kind}") as update:

            def on_progress(outcome: ItemOutcome) -> None:
                counts[outcome.outcome] += 1
                update(sum(counts.values()), counts)

            report = await push(
                ledger, [r.model for r in sent], journal=journal, concurrency=ctx.args.concurrency,
                on_progress=on_progress,
            )
    lines = [record.line for record in sent]
    for outcome in report.outcomes:
        rows[lines[outcome.index]] = _outcome_row(outcome, lines, ctx)
    return [rows[line] for line in sorted(rows)]


def _malformed_row(record: Malformed, kind: str) -> Row:
    message = f"line {record.line}: {record.problem}"
    return Row(line=record.line, kind=kind, key=None, outcome="failed",
               error={"type": "ValidationError", "message": message})


def _outcome_row(outcome: ItemOutcome, lines: list[int], ctx: Context) -> Row:
    error = None
    if outcome.error is not None:
        error = error_dict(outcome.error)
        error["message"] = _as_lines(ctx.redactor.text(error["message"]), lines)
    detail = None if outcome.detail is None else _as_lines(outcome.detail, lines)
    return Row(
        line=lines[outcome.index], kind=outcome.kind, key=outcome.key, outcome=outcome.outcome,
        state=None if outcome.state is None else outcome.state.value,
        backend_id=outcome.backend_id, error=error, detail=detail,
        unavailable=isinstance(outcome.error, UNAVAILABLE),
    )


_ITEM = re.compile(r"\bitem (\d+)\b")


def _as_lines(text: str, lines: list[int]) -> str:
    """push names other items by their position in what it was given; the file's reader knows them by line."""
    return _ITEM.sub(lambda m: f"line {lines[int(m.group(1))]}" if int(m.group(1)) < len(lines) else m.group(0), text)


def exit_code(rows: list[Row]) -> ExitCode:
    outcomes = {row.outcome for row in rows}
    if any(row.unavailable for row in rows):
        return ExitCode.UNAVAILABLE
    if outcomes & set(UNSETTLED):
        return ExitCode.UNSETTLED
    if "failed" in outcomes:
        return ExitCode.FAILED
    return ExitCode.OK


def _counts(rows: list[Row]) -> dict[str, int]:
    counts = dict.fromkeys(OUTCOMES, 0)
    for row in rows:
        counts[row.outcome] += 1
    return counts


def _report(ctx: Context, rows: list[Row], journal: str, code: ExitCode) -> None:
    counts = _counts(rows)
    if ctx.args.json:
        ctx.out.json({
            "profile": ctx.args.profile, "kind": ctx.args.kind, "file": ctx.args.file, "journal": _shown(journal),
            "counts": counts, "ok": code == ExitCode.OK, "exit_code": int(code), "items": [r.to_dict() for r in rows],
        })
    else:
        _summary(ctx, rows, counts)
    if code != ExitCode.OK:
        _explain(ctx, rows, counts, code)


def _summary(ctx: Context, rows: list[Row], counts: Mapping[str, int]) -> None:
    title = f"push {ctx.args.kind} to {ctx.args.profile}: {len(rows)} records"
    ctx.out.table(title, ["outcome", "count"], [[name.replace("_", " "), n] for name, n in counts.items()])
    problems = [row for row in rows if row.outcome in ("failed", *UNSETTLED)]
    if problems:
        shown = [[row.line, row.key, row.outcome, row.why] for row in problems[:MAX_PROBLEM_ROWS]]
        more = len(problems) - len(shown)
        title = "Not done" + (f" (first {len(shown)}; --json lists all {len(problems)})" if more else "")
        ctx.out.table(title, ["line", "key", "outcome", "why"], shown)


def _explain(ctx: Context, rows: list[Row], counts: Mapping[str, int], code: ExitCode) -> None:
    """The one line on stderr a script's log shows."""
    if code == ExitCode.UNAVAILABLE:
        first = next(row for row in rows if row.unavailable)
        text = f"the backend cannot be reached or refused the credentials: {first.why}"
    elif code == ExitCode.UNSETTLED:
        text = (f"{counts['unknown']} unknown, {counts['conflict']} in conflict: check them in the backend before "
                "pushing again (the journal keeps them from being resent)")
    else:
        text = f"{counts['failed']} of {len(rows)} records failed (nothing landed for them): fix them and push again"
    ctx.out.err.print(f"accounting-bridge: {' '.join(text.split())}", markup=False, soft_wrap=True)


def _shown(journal: str) -> str:
    """The journal as it may be shown: a database URL without its password."""
    if "://" not in journal:
        return str(Path(journal))
    parts = urlsplit(journal)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"

