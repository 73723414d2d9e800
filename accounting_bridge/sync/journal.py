"""The journal protocol: what push records per item (and pull per feed) so a rerun sends nothing twice.

A row per item, keyed by (ledger key, kind, business key), holds the content hash, a `JournalState`, the number of
attempts (times it was marked `sent`), the last error (redacted), the backend's id and when it last changed. A push
*run* owns the rows it is working on: `begin_run()` gives an owner token that stays live until `end_run()` or until
the process (or, for a database journal, its connection) dies. `claim()` decides atomically — across processes
sharing one journal — what a run may do with an item:

==============================  ===========================================================================
row before                      decision (and row after)
==============================  ===========================================================================
none                            SEND (pending, owned by the caller)
pending, owner gone / none      SEND (pending, owned): it was never sent
failed                          SEND (pending, owned; new content allowed): it did not land
sent or unknown, owner gone     RESOLVE (same hash; owned; time kept): it may have landed — look it up
sent or unknown, other hash     CONFLICT (unchanged): what landed may be the other content
done, same hash                 SKIP (unchanged), no I/O
done, other hash                CONFLICT (unchanged): nothing is overwritten
conflict                        CONFLICT (unchanged) until a human `resolve`s it
pending/sent, owner live        BUSY (unchanged): another live run has it
==============================  ===========================================================================

A RESOLVE claim keeps `updated_at` (when the row was marked `sent` or `unknown`): push believes a look-up that finds
nothing only once the backend had the ledger's settle time to finish that write (see `push`).

`mark()` moves an owned row on (`sent` right before the request, then `done` / `unknown` / `failed` / `conflict`)
and is refused (returns False) when the caller no longer owns the row. `resolve(key, "done" | "absent")` settles a
row after a human checked the backend: `done` finishes it, `absent` makes it `pending` without owner so the next
push sends it again.
"""

from __future__ import annotations

import datetime as _dt
import enum
import os
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import attrs

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = [
    "Claim",
    "Decision",
    "ItemKey",
    "Journal",
    "JournalRow",
    "JournalState",
    "ResolveOutcome",
    "open_journal",
]


class JournalState(str, enum.Enum):
    PENDING = "pending"  # claimed, not sent yet
    SENT = "sent"  # the request may have gone out
    DONE = "done"  # the backend has it
    UNKNOWN = "unknown"  # it may or may not have landed; a look-up (next run) or a human decides
    FAILED = "failed"  # it did not land (refused, or never sent)
    CONFLICT = "conflict"  # the backend holds other content under the key


class Decision(str, enum.Enum):
    SEND = "send"
    RESOLVE = "resolve"
    SKIP = "skip"
    CONFLICT = "conflict"
    BUSY = "busy"


ResolveOutcome = Literal["done", "absent"]


@attrs.frozen
class ItemKey:
    """One item of one ledger: `kind` is "customer", "invoice", "payment", "registration" or "document"."""

    ledger: str
    kind: str
    key: str

    def __str__(self) -> str:
        return f"{self.ledger}/{self.kind}/{self.key}"


@attrs.frozen(kw_only=True)
class JournalRow:
    ledger: str
    kind: str
    key: str
    content_hash: str
    state: JournalState
    attempts: int = 0
    last_error: str | None = None
    backend_id: str | None = None
    updated_at: _dt.datetime | None = None
    owner: str | None = None

    @property
    def item_key(self) -> ItemKey:
        return ItemKey(self.ledger, self.kind, self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "kind": self.kind,
            "key": self.key,
            "content_hash": self.content_hash,
            "state": self.state.value,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "backend_id": self.backend_id,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@attrs.frozen
class Claim:
    """What `claim` decided, and the row as it is now (None only when nothing was ever recorded)."""

    decision: Decision
    row: JournalRow | None


@runtime_checkable
class Journal(Protocol):
    """The record of what was sent (push) and how far a feed was read (pull). All methods are safe to call from
    many tasks at once; claims are atomic across processes sharing the journal."""

    async def open(self) -> None:
        """Create / migrate the storage and connect; opening an open journal does nothing."""
        ...

    async def close(self) -> None:
        """Release every run this object began and disconnect."""
        ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    # --- push -------------------------------------------------------------------------------------------------
    async def begin_run(self) -> str:
        """A new owner token, live until `end_run(owner)` or the death of this process / connection."""
        ...

    async def end_run(self, owner: str) -> None:
        """The run is over: rows it still owns become claimable (sent ones by look-up)."""
        ...

    async def claim(self, owner: str, item: ItemKey, content_hash: str) -> Claim:
        """Decide atomically what `owner` may do with `item` (table in the module doc)."""
        ...

    async def mark(
        self,
        owner: str,
        item: ItemKey,
        state: JournalState,
        *,
        backend_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        """Move an owned row to `state` (keeping `backend_id` unless given); False when `owner` lost it.
        `error` must already be redacted; done clears it. Rows left done/failed/unknown/conflict lose their owner."""
        ...

    async def resolve(self, item: ItemKey | JournalRow, outcome: ResolveOutcome) -> JournalRow:
        """Settle a row a human checked: "done" or "absent" (sent again by the next push). A row a live run owns
        is refused with `ConfigurationError`; an unknown key with `ValidationError` naming `key`."""
        ...

    async def rows(
        self,
        state: JournalState | str | None = None,
        ledger: str | None = None,
        kind: str | None = None,
    ) -> list[JournalRow]:
        """Rows, optionally only those in `state` / of `ledger` / of `kind`, ordered by ledger, kind, key."""
        ...

    async def row(self, item: ItemKey) -> JournalRow | None: ...

    # --- pull -------------------------------------------------------------------------------------------------
    async def checkpoint(self, feed: str) -> str | None:
        """The feed's saved checkpoint (opaque text), None before the first save."""
        ...

    async def save_checkpoint(self, feed: str, value: str) -> None: ...


def open_journal(spec: Journal | str | os.PathLike[str]) -> Journal:
    """A `Journal` as given; a path → `SqliteJournal`; a ``postgresql://`` URL → `PostgresJournal` (extra
    `postgres`). The result is not opened yet: use ``async with`` or `await journal.open()`."""
    if isinstance(spec, str) and spec.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresJournal  # type: ignore[import-not-found,unused-ignore]

        journal: Journal = PostgresJournal(spec)
        return journal
    if isinstance(spec, (str, os.PathLike)):
        if isinstance(spec, str) and "://" in spec:
            raise ConfigurationError(
                "journal: a file path or a postgresql:// URL is expected, not a URL with another scheme"
            )
        from .sqlite import SqliteJournal

        return SqliteJournal(spec)
    if isinstance(spec, Journal):
        return spec
    raise ConfigurationError(
        f"journal: expected a Journal, a file path or a postgresql:// URL, not {type(spec).__name__}"
    )
