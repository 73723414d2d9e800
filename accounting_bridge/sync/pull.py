"""`ab.pull`: what changed in a ledger since a feed's checkpoint, delivered at least once and without a gap.

    async with ab.pull(ledger, "payments", journal="sync.sqlite3", feed="acme-payments") as changes:
        async for payment in changes:
            ...                      # the checkpoint moves when the block exits cleanly, or on `await changes.ack()`

An exception (or a cancel) leaves the block without acknowledging: the items handed out since the last ack come
again from the next pull. How each backend finds its changes is in `feeds`.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ..errors import ConfigurationError, FieldError, UnsupportedOperation, ValidationError
from ..ledger import Ledger
from ..models import BankTransaction, Invoice, Payment
from .feeds import KINDS, DateWindowFeed, Feed, NativePaymentFeed, native_payments
from .journal import Journal, open_journal

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["DEFAULT_OVERLAP", "ChangeFeed", "pull"]

T = TypeVar("T")
JournalSpec = Journal | str | os.PathLike[str]

#: How far a date-window feed re-reads behind the newest date it has seen: items back-dated by less are caught.
DEFAULT_OVERLAP = _dt.timedelta(days=31)


class ChangeFeed(Generic[T]):
    """One pull: ``async with`` it, iterate it (each ``async for`` is one pass over the changes), `ack()` at will."""

    def __init__(self, ledger: Ledger, kind: str, source: Feed, *, journal: JournalSpec, feed: str) -> None:
        self.ledger, self.kind, self.feed = ledger, kind, feed
        self._source = source
        self._journal_spec = journal
        self._journal: Journal | None = None
        self._owns_journal = not isinstance(journal, Journal)
        self._passes: list[AsyncGenerator[Any, None]] = []

    def __repr__(self) -> str:
        return f"<ChangeFeed {self.feed!r}: {self.kind} of {self.ledger.backend!r}, {self.mode}>"

    @property
    def mode(self) -> str:
        """ "native" (the backend's own change feed) or "window" (date windows with overlap and de-duplication)."""
        return self._source.mode

    async def __aenter__(self) -> ChangeFeed[T]:
        if self._journal is not None:
            raise ConfigurationError(f"feed {self.feed!r}: this pull is already open (one `async with` per pull)")
        journal = open_journal(self._journal_spec)
        await journal.open()  # a journal the caller passed in may be open already: opening it again does nothing
        try:
            self._source.load(await journal.checkpoint(self.feed))
        except BaseException:
            if self._owns_journal:
                await journal.close()
            raise
        self._journal = journal
        return self

    def __aiter__(self) -> AsyncIterator[T]:
        if self._journal is None:
            raise ConfigurationError("use `async with ab.pull(...) as changes:` before iterating the changes")
        scan = self._source.scan()
        self._passes.append(scan)
        return scan

    async def ack(self) -> None:
        """Move the checkpoint over everything handed out so far (and mark it on a native feed)."""
        if self._journal is None:
            raise ConfigurationError("ack() belongs inside `async with ab.pull(...) as changes:`")
        text = await self._source.acknowledge()
        await self._journal.save_checkpoint(self.feed, text)
        self._source.saved()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            for scan in self._passes:
                await scan.aclose()  # a pass the consumer left early: what it handed out stays handed out
            self._passes.clear()
            if exc_type is None:
                await self.ack()
        finally:
            journal, self._journal = self._journal, None
            if self._owns_journal and journal is not None:
                await journal.close()


@overload
def pull(
    ledger: Ledger,
    kind: Literal["invoices"],
    *,
    journal: JournalSpec,
    feed: str,
    since: _dt.date | None = None,
    native: bool | None = None,
    overlap: _dt.timedelta = DEFAULT_OVERLAP,
    account: str | None = None,
    today: Callable[[], _dt.date] = _dt.date.today,
) -> ChangeFeed[Invoice]: ...
@overload
def pull(
    ledger: Ledger,
    kind: Literal["payments"],
    *,
    journal: JournalSpec,
    feed: str,
    since: _dt.date | None = None,
    native: bool | None = None,
    overlap: _dt.timedelta = DEFAULT_OVERLAP,
    account: str | None = None,
    today: Callable[[], _dt.date] = _dt.date.today,
) -> ChangeFeed[Payment]: ...
@overload
def pull(
    ledger: Ledger,
    kind: Literal["bank_transactions"],
    *,
    journal: JournalSpec,
    feed: str,
    since: _dt.date | None = None,
    native: bool | None = None,
    overlap: _dt.timedelta = DEFAULT_OVERLAP,
    account: str | None = None,
    today: Callable[[], _dt.date] = _dt.date.today,
) -> ChangeFeed[BankTransaction]: ...
@overload
def pull(
    ledger: Ledger,
    kind: str,
    *,
    journal: JournalSpec,
    feed: str,
    since: _dt.date | None = None,
    native: bool | None = None,
    overlap: _dt.timedelta = DEFAULT_OVERLAP,
    account: str | None = None,
    today: Callable[[], _dt.date] = _dt.date.today,
) -> ChangeFeed[Any]: ...
def pull(
    ledger: Ledger,
    kind: str,
    *,
    journal: JournalSpec,
    feed: str,
    since: _dt.date | None = None,
    native: bool | None = None,
    overlap: _dt.timedelta = DEFAULT_OVERLAP,
    account: str | None = None,
    today: Callable[[], _dt.date] = _dt.date.today,
) -> ChangeFeed[Any]:
    """The changes of `kind` ("invoices", "payments", "bank_transactions") in `ledger` since `feed`'s checkpoint
    in `journal` (a `Journal`, a SQLite file path or a ``postgresql://`` URL).

    `since`: ignore items dated before it (and start the first pull there). `native`: use the backend's own change
    feed (None: where it has one; True: require it; False: date windows). `overlap`: how far date windows re-read
    behind the newest date seen. `account`: the bank account of a "bank_transactions" feed. `today`: the clock of
    the date windows (tests). Checked before any I/O: `ValidationError` naming the argument, `UnsupportedOperation`
    for a kind the backend cannot list.
    """
    _check(ledger, kind, feed, since, overlap, account)
    ledger.require(KINDS[kind].capability)
    source = _source(ledger, kind, feed=feed, since=since, native=native, overlap=overlap, account=account, today=today)
    return ChangeFeed(ledger, kind, source, journal=journal, feed=feed)


def _check(ledger: Ledger, kind: str, feed: str, since: Any, overlap: Any, account: str | None) -> None:
    errors: list[FieldError] = []
    if not isinstance(ledger, Ledger):
        errors.append(FieldError("ledger", f"must be a Ledger, not {type(ledger).__name__}"))
    if kind not in KINDS:
        errors.append(FieldError("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}"))
    if not isinstance(feed, str) or not feed.strip():
        errors.append(FieldError("feed", "must be a non-empty name"))
    if since is not None and (isinstance(since, _dt.datetime) or not isinstance(since, _dt.date)):
        errors.append(FieldError("since", f"must be a datetime.date, not {type(since).__name__}"))
    if not isinstance(overlap, _dt.timedelta) or overlap < _dt.timedelta(0):
        errors.append(FieldError("overlap", "must be a datetime.timedelta >= 0"))
    if account is not None and kind != "bank_transactions":
        errors.append(FieldError("account", "applies to bank_transactions only"))
    if errors:
        raise ValidationError(errors)


def _source(
    ledger: Ledger,
    kind: str,
    *,
    feed: str,
    since: _dt.date | None,
    native: bool | None,
    overlap: _dt.timedelta,
    account: str | None,
    today: Callable[[], _dt.date],
) -> Feed:
    payments = native_payments(ledger) if kind == "payments" else None
    if native is True and payments is None:
        raise UnsupportedOperation(
            f"pull {kind} (native change feed)", backend=ledger.backend, reason="use native=None or False"
        )
    if payments is not None and native is not False:
        return NativePaymentFeed(ledger, payments, feed=feed, since=since)
    return DateWindowFeed(ledger, KINDS[kind], feed=feed, since=since, overlap=overlap, account=account, today=today)
