"""`SqliteJournal`: the journal in one SQLite file (WAL), run by the standard library on a dedicated thread.

The thread owns the connection. Operations queue up and each batch the thread finds runs in one transaction (one
savepoint per operation), so many concurrent marks share one commit: durable before any request is sent
(``synchronous=FULL`` by default), yet not one disk flush per item. Runs are owned through lock files next to the
database (`runlock`): a run killed with ``kill -9`` is seen dead at once, never after a timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as _dt
import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from ..errors import ConfigurationError, FieldError, ValidationError
from .journal import Claim, Decision, ItemKey, JournalRow, JournalState, ResolveOutcome
from .journal_rows import COLUMNS, IN_PROGRESS, key_values, listing_filter, row_from, state_of
from .runlock import RunLock, is_held_elsewhere, remove_if_free

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]

T = TypeVar("T")

#: Each step takes the schema from the version before it to its own number; never edit a released step.
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE items (
                ledger TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                content_hash TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT, backend_id TEXT, updated_at TEXT NOT NULL, owner TEXT,
                PRIMARY KEY (ledger, kind, key)
            ) WITHOUT ROWID""",
            "CREATE TABLE checkpoints (feed TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)",
        ),
    ),
    (2, ("CREATE INDEX items_by_state ON items (state, ledger, kind)",)),
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_MAX_BATCH = 512


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat()


class _Operation:
    def __init__(self, work: Callable[[sqlite3.Connection], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.work = work
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()

    def settle(self, result: Any, error: BaseException | None) -> None:
        def deliver() -> None:
            if self.future.done():
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody waits for it
            self.loop.call_soon_threadsafe(deliver)


class SqliteJournal:
    """``SqliteJournal("sync.sqlite3")``: the default journal. ``durable=False`` trades safety against a power
    loss (not against a crash or ``kill -9``) for speed."""

    def __init__(self, path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.path = Path(path)
        self.durable = durable
        self._runs_dir = self.path.with_name(self.path.name + "-runs")
        self._runs: dict[str, RunLock] = {}
        self._queue: queue.SimpleQueue[_Operation | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opened: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    # --- lifecycle --------------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create or migrate the file and start the journal's thread; opening an open journal does nothing."""
        with self._lock:
            if self._thread is None:
                self._opened = concurrent.futures.Future()
                self._thread = threading.Thread(target=self._serve, name=f"journal {self.path.name}", daemon=True)
                self._thread.start()
            opened = self._opened
        await asyncio.wrap_future(opened)

    async def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        for owner in list(self._runs):
            self._release(owner)
        if thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(thread.join)

    async def __aenter__(self) -> SqliteJournal:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # --- the thread -------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:  # handed to the opener and to what queued meanwhile
            error = exc if isinstance(exc, ConfigurationError) else ConfigurationError(f"journal {self.path}: {exc}")
            with self._lock:
                self._thread = None
                self._opened.set_exception(error)
                self._fail_queued(error)
            return
        self._opened.set_result(None)
        try:
            while (first := self._queue.get()) is not None:
                batch = [first]
                while len(batch) < _MAX_BATCH:
                    try:
                        following = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if following is None:
                        self._queue.put(None)
                        break
                    batch.append(following)
                self._run_batch(connection, batch)
        finally:
            connection.close()

    def _fail_queued(self, error: BaseException) -> None:
        while True:
            try:
                operation = self._queue.get_nowait()
            except queue.Empty:
                return
            if operation is not None:
                operation.settle(None, error)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60.0)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            _migrate(connection, self.path)
        except BaseException:
            connection.close()
            raise
        return connection

    def _run_batch(self, connection: sqlite3.Connection, batch: list[_Operation]) -> None:
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for operation in batch:
                connection.execute("SAVEPOINT op")
                try:
                    outcomes.append((operation.work(connection), None))
                    connection.execute("RELEASE op")
                except Exception as exc:  # this operation's caller gets it
                    connection.execute("ROLLBACK TO op")
                    connection.execute("RELEASE op")
                    outcomes.append((None, self._typed(exc)))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = ConfigurationError(f"journal {self.path}: {exc}")
            outcomes = [(None, failure)] * len(batch)
        for operation, (result, error) in zip(batch, outcomes, strict=True):
            operation.settle(result, error)

    def _typed(self, exc: Exception) -> Exception:
        return ConfigurationError(f"journal {self.path}: {exc}") if isinstance(exc, sqlite3.Error) else exc

    async def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        await self.open()
        operation = _Operation(work, asyncio.get_running_loop())
        self._queue.put(operation)
        result: T = await operation.future
        return result

    # --- runs -------------------------------------------------------------------------------------------------
    def _lock_path(self, owner: str) -> Path:
        return self._runs_dir / f"{owner}.lock"

    def _alive(self, owner: str) -> bool:
        return owner in self._runs or is_held_elsewhere(self._lock_path(owner))

    def _release(self, owner: str) -> None:
        run = self._runs.pop(owner, None)
        if run is not None:
            run.release()

    async def begin_run(self) -> str:
        await self.open()
        owner = uuid.uuid4().hex
        run = RunLock(self._lock_path(owner))
        await asyncio.to_thread(self._start_run, run)
        self._runs[owner] = run
        return owner

    def _start_run(self, run: RunLock) -> None:
        """Take the run's lock; tidy the lock files of runs that died since (their rows stay claimable)."""
        run.acquire()
        for stale in self._runs_dir.glob("*.lock"):
            if stale != run.path and stale.stem not in self._runs:
                remove_if_free(stale)

    async def end_run(self, owner: str) -> None:
        """Rows the run still owns lose their owner (claimable at once); its lock file goes."""
        try:
            await self._call(lambda c: c.execute("UPDATE items SET owner = NULL WHERE owner = ?", (owner,)))
        finally:
            self._release(owner)

    # --- push -------------------------------------------------------------------------------------------------
    async def claim(self, owner: str, item: ItemKey, content_hash: str) -> Claim:
        return await self._call(lambda c: self._claim(c, owner, item, content_hash))

    def _claim(self, c: sqlite3.Connection, owner: str, item: ItemKey, content_hash: str) -> Claim:
        found = _select(c, item)
        if found is None:
            c.execute(
                f"INSERT INTO items ({COLUMNS}) VALUES (?, ?, ?, ?, ?, 0, NULL, NULL, ?, ?)",  # noqa: S608
                (item.ledger, item.kind, item.key, content_hash, JournalState.PENDING.value, _now(), owner),
            )
            return Claim(Decision.SEND, _select(c, item))
        if found.owner is not None:
            if found.owner == owner or self._alive(found.owner):
                return Claim(Decision.BUSY, found)
            remove_if_free(self._lock_path(found.owner))
        state, same = found.state, found.content_hash == content_hash
        if state is JournalState.DONE:
            return Claim(Decision.SKIP if same else Decision.CONFLICT, found)
        if state is JournalState.CONFLICT or (state in (JournalState.SENT, JournalState.UNKNOWN) and not same):
            return Claim(Decision.CONFLICT, found)
        if state in (JournalState.SENT, JournalState.UNKNOWN):  # `updated_at` stays: when it may have been sent
            c.execute(
                "UPDATE items SET owner = ? WHERE ledger = ? AND kind = ? AND key = ?", (owner, *key_values(item))
            )
            return Claim(Decision.RESOLVE, _select(c, item))
        c.execute(  # pending (never sent) or failed (did not land): send, with this content
            "UPDATE items SET owner = ?, state = ?, content_hash = ?, updated_at = ? "
            "WHERE ledger = ? AND kind = ? AND key = ?",
            (owner, JournalState.PENDING.value, content_hash, _now(), *key_values(item)),
        )
        return Claim(Decision.SEND, _select(c, item))

    async def mark(
        self,
        owner: str,
        item: ItemKey,
        state: JournalState,
        *,
        backend_id: str | None = None,
        error: str | None = None,
    ) -> bool:
        state = state_of(state)
        keeps_owner = state.value in IN_PROGRESS

        def work(c: sqlite3.Connection) -> bool:
            cursor = c.execute(
                "UPDATE items SET state = ?, attempts = attempts + (? = 'sent'), backend_id = COALESCE(?, backend_id), "
                "last_error = CASE WHEN ? THEN NULL WHEN ? IS NULL THEN last_error ELSE ? END, "
                "updated_at = ?, owner = CASE WHEN ? THEN owner ELSE NULL END "
                "WHERE ledger = ? AND kind = ? AND key = ? AND owner = ?",
                (
                    state.value,
                    state.value,
                    backend_id,
                    state is JournalState.DONE,
                    error,
                    error,
                    _now(),
                    keeps_owner,
                    *key_values(item),
                    owner,
                ),
            )
            return cursor.rowcount == 1

        return await self._call(work)

    async def resolve(self, item: ItemKey | JournalRow, outcome: ResolveOutcome) -> JournalRow:
        key = item.item_key if isinstance(item, JournalRow) else item
        if outcome not in ("done", "absent"):
            raise ValidationError(FieldError("outcome", f"must be 'done' or 'absent', not {outcome!r}"))
        state = JournalState.DONE if outcome == "done" else JournalState.PENDING

        def work(c: sqlite3.Connection) -> JournalRow:
            found = _select(c, key)
            if found is None:
                raise ValidationError(FieldError("key", f"no journal row for {key}"))
            if found.owner is not None and self._alive(found.owner):
                raise ConfigurationError(f"journal row {key} is being worked on by a live push; resolve it later")
            c.execute(  # absent: no backend id any more (what the next push sends gets its own)
                "UPDATE items SET state = ?, owner = NULL, last_error = NULL, updated_at = ?, "
                "backend_id = CASE WHEN ? THEN backend_id END WHERE ledger = ? AND kind = ? AND key = ?",
                (state.value, _now(), outcome == "done", *key_values(key)),
            )
            updated = _select(c, key)
            assert updated is not None
            return updated

        return await self._call(work)

    async def rows(
        self,
        state: JournalState | str | None = None,
        ledger: str | None = None,
        kind: str | None = None,
    ) -> list[JournalRow]:
        where, values = listing_filter(state, ledger, kind, placeholder="?")
        query = f"SELECT {COLUMNS} FROM items{where} ORDER BY ledger, kind, key"  # noqa: S608 - fixed columns
        return await self._call(lambda c: [row_from(r) for r in c.execute(query, values).fetchall()])

    async def row(self, item: ItemKey) -> JournalRow | None:
        return await self._call(lambda c: _select(c, item))

    # --- pull -------------------------------------------------------------------------------------------------
    async def checkpoint(self, feed: str) -> str | None:
        def work(c: sqlite3.Connection) -> str | None:
            found = c.execute("SELECT value FROM checkpoints WHERE feed = ?", (feed,)).fetchone()
            return None if found is None else str(found[0])

        return await self._call(work)

    async def save_checkpoint(self, feed: str, value: str) -> None:
        if not isinstance(value, str):
            raise ValidationError(FieldError("value", f"a checkpoint is text, not {type(value).__name__}"))
        await self._call(
            lambda c: c.execute(
                "INSERT INTO checkpoints (feed, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (feed) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (feed, value, _now()),
            )
        )


def _select(c: sqlite3.Connection, item: ItemKey) -> JournalRow | None:
    found = c.execute(
        f"SELECT {COLUMNS} FROM items WHERE ledger = ? AND kind = ? AND key = ?",  # noqa: S608 - fixed columns
        key_values(item),
    ).fetchone()
    return None if found is None else row_from(found)


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the file to `SCHEMA_VERSION`, one step at a time, each step in the same transaction as its number."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = connection.execute("SELECT version FROM schema_version").fetchone()
        version = 0 if found is None else int(found[0])
        if version > SCHEMA_VERSION:
            raise ConfigurationError(
                f"journal {path} has schema version {version}; this accounting_bridge knows up to {SCHEMA_VERSION}: "
                "upgrade accounting_bridge"
            )
        for step, statements in _MIGRATIONS:
            if step > version:
                for statement in statements:
                    connection.execute(statement)
        if found is None:
            connection.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        else:
            connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
