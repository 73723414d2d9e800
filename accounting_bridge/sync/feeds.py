"""Change feeds behind `ab.pull`: a backend's native feed, or date windows with overlap and de-duplication.

A feed reads one pass of changes (`scan`) and remembers what it handed out; on an ack it `acknowledge`s that (on
the backend, for a native feed) and returns the checkpoint text to save (the journal stores it as it is).

**Native** (`NativePaymentFeed`: Run my Accounts ``payment_list`` + ``set_as_processed``): the backend keeps, per
api key, which payments were processed. A pass lists the unprocessed ones; an ack marks those handed out. The
checkpoint keeps no state of its own (only what the feed is), and it is saved after the marks, never before: a
process that dies between the two (or between two batches of marks) loses nothing and re-delivers only the unmarked.

**Date windows** (everything else): a pass lists the items dated from the checkpoint's `low` date on; an item whose
key and content fingerprint are already in the checkpoint is skipped, any other is handed out (new, or changed:
an invoice's status or paid amount). After a pass that ran to its end is acknowledged, `low` moves to the newest
date listed (at most today) minus `overlap`, but never past the oldest invoice not yet settled (paid or
cancelled), so a later payment of an old invoice is still seen. Keys dated from `low` on stay in the checkpoint, so
re-reading the overlap never hands an item out twice, and items sharing a date on the window's edge are told
apart by key, never by time. An item back-dated by more than `overlap` behind the newest one already read is
missed: raise `overlap` for a backend where that happens.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from .. import converter
from ..errors import ConfigurationError
from ..ledger import Capability, Ledger
from ..models import Invoice, InvoiceStatus, Payment

__all__ = ["KINDS", "DateWindowFeed", "Feed", "Kind", "NativePaymentFeed", "NativePayments", "native_payments"]

CHECKPOINT_VERSION = 1
#: `set_as_processed` marks at most this many payments per request (a form with one `id` field each).
MARK_BATCH = 200


@attrs.frozen
class Kind:
    """What `pull` needs to know of one kind of item."""

    name: str
    capability: Capability
    day: Callable[[Any], _dt.date | None]
    key: Callable[[Any], str]
    settled: Callable[[Any], bool]
    #: True for an item the backend gives no id: it is keyed by its content (see `_keyed`).
    anonymous: Callable[[Any], bool] = attrs.field(default=lambda _item: False)


def fingerprint(item: Any) -> str:
    """A short hash of everything the neutral model says (the backend's `raw` payload is not part of it)."""
    text = json.dumps(converter.to_dict(item), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _keyed(scope: str, item: Any) -> str:
    """`scope/id`, or a content hash for an item without an id (identical ones are told apart by `scan`, which
    numbers them in the order listed: two equal card payments of one day are two items)."""
    return f"{scope}/{item.id}" if item.id is not None else f"{scope}/#{fingerprint(item)}"


def _without_id(item: Any) -> bool:
    return item.id is None


def _always(_item: Any) -> bool:
    return True


def _invoice_settled(invoice: Invoice) -> bool:
    return invoice.status in (InvoiceStatus.PAID, InvoiceStatus.CANCELLED)


KINDS: dict[str, Kind] = {
    "invoices": Kind(
        "invoices", Capability.INVOICES_LIST, lambda i: i.issue_date, lambda i: str(i.number), _invoice_settled
    ),
    "payments": Kind(
        "payments",
        Capability.PAYMENTS_LIST,
        lambda p: p.date,
        lambda p: _keyed(p.invoice_number, p),
        _always,
        _without_id,
    ),
    "bank_transactions": Kind(
        "bank_transactions",
        Capability.BANK_TRANSACTIONS_LIST,
        lambda t: t.date,
        lambda t: _keyed(t.account, t),
        _always,
        _without_id,
    ),
}


class Feed(Protocol):
    """`load` the saved checkpoint; `scan` one pass; on an ack, `acknowledge` what was handed out (the backend's
    side, if any) and get the checkpoint text to save, then `saved()` once it is saved."""

    mode: str

    def load(self, text: str | None) -> None: ...
    def scan(self) -> AsyncGenerator[Any, None]: ...
    async def acknowledge(self) -> str: ...
    def saved(self) -> None: ...


def _header(mode: str, kind: str, backend: str) -> dict[str, Any]:
    return {"v": CHECKPOINT_VERSION, "mode": mode, "kind": kind, "backend": backend}


def _decode(feed: str, text: str | None, header: dict[str, Any]) -> dict[str, Any] | None:
    """The saved checkpoint of `feed` when it was written for the same mode, kind and backend."""
    if text is None:
        return None
    try:
        saved = json.loads(text)
    except ValueError:
        saved = None
    if not isinstance(saved, dict) or saved.get("v") != CHECKPOINT_VERSION:
        raise ConfigurationError(f"feed {feed!r}: the saved checkpoint is not one this version can read")
    for field in ("kind", "backend", "mode"):
        if saved.get(field) != header[field]:
            raise ConfigurationError(
                f"feed {feed!r} was read as {field} {saved.get(field)!r}, not {header[field]!r}: "
                "use one feed name per ledger and kind"
                + (" (native=True/False chooses the mode)" if field == "mode" else "")
            )
    return saved


# --- date windows -------------------------------------------------------------------------------------------------


@attrs.frozen
class _Seen:
    day: _dt.date | None
    mark: str  # the content fingerprint
    settled: bool

    def encode(self) -> list[Any]:
        return [self.day.isoformat() if self.day else None, self.mark, int(self.settled)]

    @classmethod
    def decode(cls, value: Any) -> _Seen:
        day, mark, settled = value
        return cls(_dt.date.fromisoformat(day) if day else None, str(mark), bool(settled))


class DateWindowFeed:
    mode = "window"

    def __init__(
        self,
        ledger: Ledger,
        kind: Kind,
        *,
        feed: str,
        since: _dt.date | None,
        overlap: _dt.timedelta,
        account: str | None,
        today: Callable[[], _dt.date],
    ) -> None:
        self._ledger, self._kind, self._feed = ledger, kind, feed
        self._since, self._overlap, self._account, self._today = since, overlap, account, today
        self._low: _dt.date | None = None
        self._seen: dict[str, _Seen] = {}
        self._handed: dict[str, _Seen] = {}  # handed out since the last ack
        self._completed = False  # a pass ran to its end since the last ack
        self._newest: _dt.date | None = None  # the newest date such a pass listed
        self._next: tuple[_dt.date | None, dict[str, _Seen]] | None = None  # acknowledged, not yet saved

    def _header(self) -> dict[str, Any]:
        return _header(self.mode, self._kind.name, self._ledger.backend)

    def load(self, text: str | None) -> None:
        self._handed, self._completed, self._newest, self._next = {}, False, None, None  # a new pull starts over
        saved = _decode(self._feed, text, self._header())
        if saved is None:
            self._low, self._seen = None, {}
            return
        try:
            self._low = _dt.date.fromisoformat(saved["low"]) if saved.get("low") else None
            self._seen = {str(key): _Seen.decode(value) for key, value in saved.get("seen", {}).items()}
        except (TypeError, ValueError, AttributeError):
            raise ConfigurationError(f"feed {self._feed!r}: the saved checkpoint is damaged") from None

    async def scan(self) -> AsyncGenerator[Any, None]:
        start = max((d for d in (self._low, self._since) if d is not None), default=None)
        newest: _dt.date | None = None
        copies: dict[str, int] = {}  # identical items without an id listed so far in this pass
        async for item in self._list(start):
            day = self._kind.day(item)
            if day is not None and start is not None and day < start:
                continue  # before the window (a backend that does not filter by date): read in an earlier one
            if day is not None and (newest is None or day > newest):
                newest = day
            key, seen = self._kind.key(item), _Seen(day, fingerprint(item), self._kind.settled(item))
            if self._kind.anonymous(item):
                copies[key] = copies.get(key, 0) + 1
                key += f"~{copies[key]}" if copies[key] > 1 else ""  # they share a date: all in a window, or none
            known = self._handed.get(key) or self._seen.get(key)
            if known is not None and known.mark == seen.mark:
                continue
            self._handed[key] = seen  # handed out as soon as the consumer has it
            yield item
        self._completed = True
        if newest is not None and (self._newest is None or newest > self._newest):
            self._newest = newest

    def _list(self, start: _dt.date | None) -> AsyncIterator[Any]:
        name = self._kind.name
        if name == "invoices":
            return self._ledger.invoices.list(since=start)
        if name == "payments":
            return self._ledger.payments.list(since=start)
        return self._ledger.bank_transactions.list(account=self._account, since=start)

    async def acknowledge(self) -> str:
        seen = {**self._seen, **self._handed}
        low = self._next_low(seen) if self._completed else self._low
        kept = {key: entry for key, entry in seen.items() if _keep(entry, low)}
        self._next = (low, kept)
        return json.dumps(
            {
                **self._header(),
                "low": low.isoformat() if low else None,
                "seen": {key: entry.encode() for key, entry in sorted(kept.items())},
            },
            separators=(",", ":"),
        )

    def saved(self) -> None:
        assert self._next is not None
        (self._low, self._seen), self._next = self._next, None
        self._handed, self._completed, self._newest = {}, False, None

    def _next_low(self, seen: dict[str, _Seen]) -> _dt.date | None:
        today = self._today()
        newest = today if self._newest is None else min(self._newest, today)
        low = newest - self._overlap
        if self._low is not None and self._low > low:
            low = self._low  # the window never moves back (except for an unsettled invoice, below)
        unsettled = [entry.day for entry in seen.values() if not entry.settled and entry.day is not None]
        return min([low, *unsettled])


def _keep(entry: _Seen, low: _dt.date | None) -> bool:
    return low is None or entry.day is None or entry.day >= low or not entry.settled


# --- native: Run my Accounts payment_list + set_as_processed ------------------------------------------------------


@runtime_checkable
class NativePayments(Protocol):
    """An adapter with a native payment feed: the backend remembers which payments were processed (per
    credential). Run my Accounts has it (``GET invoices/payment_list``, ``POST invoices/set_as_processed``)."""

    async def payment_list(self) -> list[Payment]: ...
    async def set_as_processed(self, payment_ids: Sequence[str]) -> None: ...


def native_payments(ledger: Ledger) -> NativePayments | None:
    adapter = ledger.adapter
    return adapter if isinstance(adapter, NativePayments) else None


class NativePaymentFeed:
    mode = "native"

    def __init__(self, ledger: Ledger, source: NativePayments, *, feed: str, since: _dt.date | None) -> None:
        self._ledger, self._source, self._feed, self._since = ledger, source, feed, since
        self._handed: dict[str, None] = {}  # payment ids handed out since the last ack, in order

    def _header(self) -> dict[str, Any]:
        return _header(self.mode, "payments", self._ledger.backend)

    def load(self, text: str | None) -> None:
        self._handed = {}  # a new pull starts over
        _decode(self._feed, text, self._header())

    async def scan(self) -> AsyncGenerator[Payment, None]:
        for payment in await self._source.payment_list():
            if self._since is not None and payment.date < self._since:
                continue  # left unprocessed: it stays out of this feed
            if payment.id is not None:
                if payment.id in self._handed:
                    continue
                self._handed[payment.id] = None
            yield payment

    async def acknowledge(self) -> str:
        ids = list(self._handed)
        for first in range(0, len(ids), MARK_BATCH):
            batch = ids[first : first + MARK_BATCH]
            await self._source.set_as_processed(batch)
            for payment_id in batch:
                del self._handed[payment_id]
        return json.dumps(self._header(), separators=(",", ":"))

    def saved(self) -> None:
        return None
