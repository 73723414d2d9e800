"""`ab.push`: send many items to one ledger, journaled, so a rerun after a crash sends nothing twice and loses nothing.

Per item: claim its journal row (atomic across processes), mark it `sent` (durably) right before the request,
record the outcome after it. A row an interrupted run left `sent` is looked up by its business key before anything
is sent again; where the backend cannot look it up, it is reported `unknown` for a human and never resent.
Levels (customers, then invoices, then payments) run one after another, each level's items concurrently.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..errors import (
    AccountingError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    FieldError,
    NotFound,
    PermissionDenied,
    RateLimited,
    TransportError,
    Unprocessable,
    UnsupportedOperation,
    ValidationError,
    WriteOutcomeUnknown,
)
from ..ledger import Ledger
from ..models import Invoice, Payment
from . import actions
from .identity import ledger_key as _ledger_key
from .identity import redacted
from .items import KEY_FIELDS, KINDS, Prepared, Rejected, prepare
from .journal import Decision, ItemKey, Journal, JournalRow, JournalState, open_journal
from .report import ItemOutcome, SyncReport

__all__ = ["push"]

ProgressCallback = Callable[[ItemOutcome], "Awaitable[None] | None"]

#: errors that prove the write did not land (refused, or never sent): the next push may send it again
_DEFINITE = (
    ValidationError,
    UnsupportedOperation,
    ConfigurationError,
    AuthenticationError,
    PermissionDenied,
    NotFound,
    Unprocessable,
    RateLimited,
    TransportError,  # the transport turns a write that may have been sent into WriteOutcomeUnknown
)
_PUSHED = ("created", "already_present", "skipped")


async def push(
    ledger: Ledger,
    items: Iterable[Any],
    *,
    journal: Journal | str | os.PathLike[str],
    concurrency: int = 16,
    on_progress: ProgressCallback | None = None,
    ledger_key: str | None = None,
) -> SyncReport:
    """Send customers, invoices, payments, registrations and documents (models, or ``{"kind": ..., "data": ...}``
    mappings) to `ledger`, recording each in `journal` (a `Journal`, a SQLite file path or a ``postgresql://``
    URL; a `Journal` you pass is opened if needed and left open). `on_progress(outcome)` (sync or async) is called
    as each item is settled. `ledger_key` names the books in the journal (default: backend, address and
    tenant/company of the ledger). Bad input is a failed item with a typed error; the others go."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(FieldError("concurrency", f"must be a whole number >= 1, not {concurrency!r}"))
    key = _ledger_key(ledger, ledger_key)
    prepared, rejected = prepare(items)
    owned = not isinstance(journal, Journal)
    opened = open_journal(journal)
    run = _Run(ledger, opened, key, on_progress)
    try:
        await opened.open()
        for item in rejected:
            await run.settle(_rejected_outcome(item), keyed=False)  # the key's first occurrence decides for it
        await run.levels(await run.checked(prepared), concurrency)
    finally:
        if owned:
            await asyncio.shield(opened.close())
    return SyncReport(ledger=key, outcomes=tuple(sorted(run.outcomes.values(), key=lambda o: o.index)))


def _rejected_outcome(item: Rejected) -> ItemOutcome:
    if item.duplicate_of is not None:
        detail = f"the same item as item {item.duplicate_of}: sent once"
        return ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="skipped", detail=detail)
    return ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="failed", error=item.error)


class _Run:
    def __init__(self, ledger: Ledger, journal: Journal, key: str, on_progress: ProgressCallback | None) -> None:
        self.ledger = ledger
        self.journal = journal
        self.key = key
        self.on_progress = on_progress
        self.outcomes: dict[int, ItemOutcome] = {}
        self.settled: dict[tuple[str, str], str] = {}  # (kind, key) → outcome, for the dependency check
        self.elsewhere: set[tuple[str, str]] = set()  # held by another live run
        self.owner = ""

    async def settle(self, outcome: ItemOutcome, *, keyed: bool = True) -> None:
        self.outcomes[outcome.index] = outcome
        if keyed and outcome.kind is not None and outcome.key is not None:
            self.settled[(outcome.kind, outcome.key)] = outcome.outcome
        if self.on_progress is not None:
            result = self.on_progress(outcome)
            if inspect.isawaitable(result):
                await result

    async def checked(self, prepared: list[Prepared]) -> list[Prepared]:
        """The items that can be sent; the others (unsupported, refused by the adapter's rules) are settled."""
        ready = []
        for item in prepared:
            try:
                actions.check(self.ledger, item)
            except (ValidationError, UnsupportedOperation) as exc:
                failed = ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="failed", error=exc)
                await self.settle(failed)
                continue
            ready.append(item)
        return ready

    async def levels(self, prepared: list[Prepared], concurrency: int) -> None:
        self.owner = await self.journal.begin_run()
        try:
            for level in sorted({item.level for item in prepared}):
                await self._level([item for item in prepared if item.level == level], concurrency)
        finally:
            await asyncio.shield(self.journal.end_run(self.owner))

    async def _level(self, items: list[Prepared], concurrency: int) -> None:
        queue = iter(items)

        async def worker() -> None:
            for item in queue:
                await self.settle(await self._item(item))

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:  # one failed (on_progress raised) or the push was cancelled: stop the others first
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    # --- one item ---------------------------------------------------------------------------------------------
    def _outcome(self, item: Prepared, outcome: str, row: JournalRow | None, **extra: Any) -> ItemOutcome:
        return ItemOutcome(
            index=item.index,
            kind=item.kind,
            key=item.key,
            outcome=outcome,
            state=None if row is None else row.state,
            backend_id=None if row is None else row.backend_id,
            **extra,
        )

    async def _item(self, item: Prepared) -> ItemOutcome:
        blocked = self._blocked(item)
        if blocked is not None:
            return blocked
        target = ItemKey(self.key, item.kind, item.key)
        claim = await self.journal.claim(self.owner, target, item.content_hash)
        if claim.decision is Decision.SKIP:
            return self._outcome(item, "skipped", claim.row, detail="done before with the same content")
        if claim.decision is Decision.CONFLICT:
            return self._outcome(item, "conflict", claim.row, error=self._journal_conflict(item, claim.row))
        if claim.decision is Decision.BUSY:
            self.elsewhere.add((item.kind, item.key))
            detail = "another push that is still running holds it; push again later"
            return self._outcome(item, "unknown", claim.row, detail=detail)
        if claim.decision is Decision.RESOLVE:
            resolved = await self._resolve(item, target, claim.row)
            if resolved is not None:
                return resolved
        return await self._send(item, target)

    def _blocked(self, item: Prepared) -> ItemOutcome | None:
        """An invoice whose customer (a payment whose invoice) in this batch was not pushed is not sent: failed,
        or unknown when another live push holds that customer (invoice)."""
        model = item.model
        if isinstance(model, Invoice):
            needed, field = ("customer", model.customer_key), "customer_number"
        elif isinstance(model, Payment):
            needed, field = ("invoice", model.invoice_number), "invoice_number"
        else:
            return None
        outcome = self.settled.get(needed)
        if outcome is None or outcome in _PUSHED:
            return None
        what = f"{needed[0]} {needed[1]!r} of this batch"
        if needed in self.elsewhere:
            detail = f"{what} is being pushed by another run: not sent; push again later"
            return ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="unknown", detail=detail)
        problem = f"{what} was not pushed ({outcome}): not sent"
        error = ValidationError(FieldError(field, problem), model=KINDS[item.kind].__name__)
        return ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="failed", error=error)

    def _journal_conflict(self, item: Prepared, row: JournalRow | None) -> Conflict:
        state = row.state.value if row is not None else "?"
        return Conflict(
            f"{item.kind} {item.key!r}: the journal holds other content under this {KEY_FIELDS[item.kind]} "
            f"(row {state}); nothing was sent. Resolve it with journal.resolve(...) after checking the backend",
            backend=self.ledger.backend,
        )

    async def _resolve(self, item: Prepared, target: ItemKey, row: JournalRow | None) -> ItemOutcome | None:
        """A row an interrupted run left sent (or unknown): look it up. None: it is absent, send it."""
        try:
            found, backend_id = await actions.look_up(self.ledger, item)
            if found is actions.Found.ABSENT and (unsettled := self._unsettled(row)) > 0:
                await actions.sleeper(self.ledger)(unsettled)  # the backend may still be writing it: ask again
                found, backend_id = await actions.look_up(self.ledger, item)
        except AccountingError as exc:
            return await self._finish(item, target, JournalState.UNKNOWN, "unknown", error=exc)
        if found is actions.Found.PRESENT:
            return await self._finish(item, target, JournalState.DONE, "already_present", backend_id=backend_id)
        if found is actions.Found.NO_LOOKUP:
            error = WriteOutcomeUnknown(
                f"{item.kind} {item.key!r} may have been sent by an interrupted push and {self.ledger.backend} "
                "cannot look it up: check the backend, then journal.resolve(key, 'done' or 'absent')",
                backend=self.ledger.backend,
                reference=item.key,
            )
            return await self._finish(item, target, JournalState.UNKNOWN, "unknown", error=error)
        return None

    def _unsettled(self, row: JournalRow | None) -> float:
        """Seconds until a write marked at `row.updated_at` (by a run that may have died mid-request) has had the
        backend's settle time; unknown time: all of it."""
        settle = actions.settle_time(self.ledger)
        if row is None or row.updated_at is None:
            return settle
        marked = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=_dt.timezone.utc)
        age = (_dt.datetime.now(_dt.timezone.utc) - marked).total_seconds()
        return min(max(settle - age, 0.0), settle)

    async def _send(self, item: Prepared, target: ItemKey) -> ItemOutcome:
        if not await self.journal.mark(self.owner, target, JournalState.SENT):
            return self._lost(item)
        try:
            backend_id = await actions.send(self.ledger, item)
        except Conflict as exc:
            return await self._finish(item, target, JournalState.CONFLICT, "conflict", error=exc)
        except _DEFINITE as exc:
            return await self._finish(item, target, JournalState.FAILED, "failed", error=exc)
        except AccountingError as exc:  # WriteOutcomeUnknown, a 5xx or an unreadable answer: it may have landed
            return await self._finish(item, target, JournalState.UNKNOWN, "unknown", error=exc)
        except Exception as exc:  # a defect, after the request may have gone out: never resend blindly
            error = WriteOutcomeUnknown(
                f"{item.kind} {item.key!r}: {type(exc).__name__} while sending; it may have landed",
                backend=self.ledger.backend,
                reference=item.key,
            )
            return await self._finish(item, target, JournalState.UNKNOWN, "unknown", error=error)
        return await self._finish(item, target, JournalState.DONE, "created", backend_id=backend_id)

    async def _finish(
        self,
        item: Prepared,
        target: ItemKey,
        state: JournalState,
        outcome: str,
        *,
        backend_id: str | None = None,
        error: AccountingError | None = None,
    ) -> ItemOutcome:
        text = None if error is None else redacted(self.ledger, f"{type(error).__name__}: {error}")
        if not await self.journal.mark(self.owner, target, state, backend_id=backend_id, error=text):
            return self._lost(item)
        return ItemOutcome(
            index=item.index,
            kind=item.kind,
            key=item.key,
            outcome=outcome,
            state=state,
            backend_id=backend_id,
            error=error,
        )

    def _lost(self, item: Prepared) -> ItemOutcome:
        self.elsewhere.add((item.kind, item.key))
        detail = "another push took the journal row over meanwhile; push again to see its outcome"
        return ItemOutcome(index=item.index, kind=item.kind, key=item.key, outcome="unknown", detail=detail)
