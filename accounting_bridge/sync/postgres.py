"""`PostgresJournal`: the journal of a fleet, in PostgreSQL (psycopg 3, async; extra `postgres`).

Same contract as `SqliteJournal` (the one contract test suite runs against both). `claim` reads the item's row
with ``SELECT ... FOR UPDATE`` inside a transaction (a missing row is inserted with ``ON CONFLICT DO NOTHING`` first),
so two workers claiming one item are serialised by the row lock: one sends, the other finds it busy, done or to be
resolved. A run's owner token is live while this journal's connection holds a session advisory lock named after
it: a worker that dies (or loses its connection) releases it at once, and its rows become claimable (sent ones by
look-up, never resent blindly). The tables live in their own schema (`schema`, default ``accounting_bridge``).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError, FieldError, ValidationError
from .journal import Claim, Decision, ItemKey, JournalRow, JournalState, ResolveOutcome
from .journal_rows import COLUMNS, IN_PROGRESS, key_values, listing_filter, row_from, state_of

if TYPE_CHECKING:
    from psycopg import AsyncConnection, AsyncCursor

__all__ = ["SCHEMA_VERSION", "PostgresJournal"]

T = TypeVar("T")

#: Each step takes the schema from the version before it to its own number; never edit a released step.
_MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE {schema}.items (
                ledger TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                content_hash TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT, backend_id TEXT, updated_at TIMESTAMPTZ NOT NULL, owner TEXT,
                PRIMARY KEY (ledger, kind, key)
            )""",
            "CREATE TABLE {schema}.checkpoints (feed TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "updated_at TIMESTAMPTZ NOT NULL)",
            "CREATE INDEX items_by_state ON {schema}.items (state, ledger, kind)",
        ),
    ),
)
SCHEMA_VERSION = _MIGRATIONS[-1][0]

_INSERT = (
    f"INSERT INTO {{schema}}.items ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, 0, NULL, NULL, %s, %s) "  # noqa: S608
    "ON CONFLICT DO NOTHING"
)
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: Namespace of the advisory lock that serialises migrations (any constant bigint).
_MIGRATION_LOCK = 0x61625F6A6F75726E


def _run_key(owner: str) -> int:
    """The advisory lock (a signed bigint) that keeps `owner` live."""
    return int.from_bytes(hashlib.sha256(owner.encode()).digest()[:8], "big", signed=True)


def _lock_ids(key: int) -> tuple[int, int]:
    """How `pg_locks` shows a bigint advisory lock: (classid, objid) = its high and low 32 bits."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _url_secrets(url: str) -> list[str]:
    """The URL's password (as written and decoded) and secret query values, parsed leniently (a malformed URL too):
    what an error text must never show."""
    rest = url.split("://", 1)[-1]
    userinfo = rest.split("/", 1)[0].split("?", 1)[0].rpartition("@")[0]
    found = [userinfo.partition(":")[2]]
    query = rest.partition("?")[2]
    found += [value for name, value in parse_qsl(query, keep_blank_values=True) if "pass" in name or "key" in name]
    found += [part.partition("=")[2] for part in query.split("&") if "pass" in part.partition("=")[0]]
    found += [unquote(value) for value in found]
    return sorted({value for value in found if value}, key=len, reverse=True)


class PostgresJournal:
    """``PostgresJournal("postgresql://user@host/db")`` (or ``journal="postgresql://..."``): one journal for many
    workers on many machines. Needs the extra `postgres` (psycopg 3)."""

    def __init__(self, url: str, *, schema: str = "accounting_bridge") -> None:
        if not isinstance(url, str) or not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError("PostgresJournal needs a postgresql:// URL")
        if not isinstance(schema, str) or _SCHEMA_NAME.fullmatch(schema) is None:
            raise ConfigurationError("PostgresJournal: schema must be a lower-case SQL name (a-z, 0-9, _)")
        self._url = url
        self.schema = schema
        self._connection: AsyncConnection[tuple[Any, ...]] | None = None
        self._lock: asyncio.Lock | None = None
        self._runs: set[str] = set()

    def __repr__(self) -> str:
        try:
            parts = urlsplit(self._url)
            shown = f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
        except ValueError:
            shown = f"{self._url.split('://', 1)[0]}://?"  # not even a URL: nothing of it is shown
        return f"PostgresJournal(<{shown}>, schema={self.schema!r})"

    def _sql(self, text: str) -> str:
        return text.replace("{schema}", self.schema)

    # --- lifecycle --------------------------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect and create / migrate the schema; opening an open journal does nothing."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._connection is not None:
                return
            try:
                import psycopg
            except ImportError:
                raise ConfigurationError(
                    "the PostgreSQL journal needs psycopg: pip install 'accounting-bridge[postgres]'"
                ) from None
            try:
                connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
            except psycopg.Error as exc:
                raise self._error(exc) from None
            try:
                await self._migrate(connection)
            except BaseException:
                await connection.close()
                raise
            self._connection = connection

    async def close(self) -> None:
        """Disconnect: the session's advisory locks go with it, so the runs this object began end."""
        connection, self._connection = self._connection, None
        self._runs.clear()
        if connection is not None:
            await connection.close()

    async def __aenter__(self) -> PostgresJournal:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _error(self, exc: BaseException) -> ConfigurationError:
        # psycopg names the host and database; a URL libpq cannot parse may be quoted, password included
        text = str(exc).strip()
        for secret in _url_secrets(self._url):
            text = text.replace(secret, "***")
        return ConfigurationError(f"journal {self!r}: {type(exc).__name__}: {text[:300]}")

    async def _migrate(self, connection: AsyncConnection[tuple[Any, ...]]) -> None:
        import psycopg

        try:
            async with connection.transaction():
                cursor = connection.cursor()
                await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                await cursor.execute(self._sql("CREATE SCHEMA IF NOT EXISTS {schema}"))
                await cursor.execute(self._sql("CREATE TABLE IF NOT EXISTS {schema}.schema_version (version INTEGER)"))
                await cursor.execute(self._sql("SELECT version FROM {schema}.schema_version"))
                found = await cursor.fetchone()
                version = 0 if found is None else int(found[0])
                if version > SCHEMA_VERSION:
                    raise ConfigurationError(
                        f"journal {self!r} has schema version {version}; this accounting_bridge knows up to "
                        f"{SCHEMA_VERSION}: upgrade accounting_bridge"
                    )
                for step, statements in _MIGRATIONS:
                    if step > version:
                        for statement in statements:
                            await cursor.execute(self._sql(statement))
                record = "INSERT INTO {schema}.schema_version VALUES (%s)" if found is None else (
                    "UPDATE {schema}.schema_version SET version = %s"
                )
                await cursor.execute(self._sql(record), (SCHEMA_VERSION,))
        except psycopg.Error as exc:
            raise self._error(exc) from None

    async def _call(self, work: Callable[[AsyncCursor[tuple[Any, ...]]], Awaitable[T]]) -> T:
        """Run `work` in one transaction on the journal's connection (one at a time)."""
        import psycopg

        await self.open()
        assert self._lock is not None
        async with self._lock:
            connection = self._connection
            if connection is None:
                raise ConfigurationError(f"journal {self!r} is closed")
            try:
                async with connection.transaction():
                    return await work(connection.cursor())
            except psycopg.Error as exc:
                raise self._error(exc) from None

    # --- runs -------------------------------------------------------------------------------------------------
    async def begin_run(self) -> str:
        owner = uuid.uuid4().hex

        async def work(c: AsyncCursor[tuple[Any, ...]]) -> None:
            await c.execute("SELECT pg_advisory_lock(%s)", (_run_key(owner),))  # session level: outlives the xact

        await self._call(work)
        self._runs.add(owner)
        return owner

    async def end_run(self, owner: str) -> None:
        async def work(c: AsyncCursor[tuple[Any, ...]]) -> None:
            await c.execute(self._sql("UPDATE {schema}.items SET owner = NULL WHERE owner = %s"), (owner,))
            if owner in self._runs:
                await c.execute("SELECT pg_advisory_unlock(%s)", (_run_key(owner),))

        try:
            await self._call(work)
        finally:
            self._runs.discard(owner)

    async def _alive(self, c: AsyncCursor[tuple[Any, ...]], owner: str) -> bool:
        if owner in self._runs:
            return True
        classid, objid = _lock_ids(_run_key(owner))
        await c.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
            "AND classid = %s AND objid = %s AND granted)",
            (classid, objid),
        )
        found = await c.fetchone()
        return bool(found and found[0])

    # --- push -------------------------------------------------------------------------------------------------
    async def claim(self, owner: str, item: ItemKey, content_hash: str) -> Claim:
        async def work(c: AsyncCursor[tuple[Any, ...]]) -> Claim:
            return await self._claim(c, owner, item, content_hash)

        return await self._call(work)

    async def _claim(self, c: AsyncCursor[tuple[Any, ...]], owner: str, item: ItemKey, content_hash: str) -> Claim:
        await c.execute(
            self._sql(_INSERT),
            (*key_values(item), content_hash, JournalState.PENDING.value, _now(), owner),
        )  # fmt: skip
        if c.rowcount == 1:
            return Claim(Decision.SEND, await self._select(c, item))
        found = await self._select(c, item, lock=True)
        assert found is not None
        if found.owner is not None and (found.owner == owner or await self._alive(c, found.owner)):
            return Claim(Decision.BUSY, found)
        state, same = found.state, found.content_hash == content_hash
        if state is JournalState.DONE:
            return Claim(Decision.SKIP if same else Decision.CONFLICT, found)
        if state is JournalState.CONFLICT or (state in (JournalState.SENT, JournalState.UNKNOWN) and not same):
            return Claim(Decision.CONFLICT, found)
        if state in (JournalState.SENT, JournalState.UNKNOWN):  # `updated_at` stays: when it may have been sent
            await c.execute(
                self._sql("UPDATE {schema}.items SET owner = %s WHERE ledger = %s AND kind = %s AND key = %s"),
                (owner, *key_values(item)),
            )
            return Claim(Decision.RESOLVE, await self._select(c, item))
        await c.execute(  # pending (never sent) or failed (did not land): send, with this content
            self._sql("UPDATE {schema}.items SET owner = %s, state = %s, content_hash = %s, updated_at = %s "
                      "WHERE ledger = %s AND kind = %s AND key = %s"),
            (owner, JournalState.PENDING.value, content_hash, _now(), *key_values(item)),
        )  # fmt: skip
        return Claim(Decision.SEND, await self._select(c, item))

    async def _select(self, c: AsyncCursor[tuple[Any, ...]], item: ItemKey, *, lock: bool = False) -> JournalRow | None:
        query = f"SELECT {COLUMNS} FROM {{schema}}.items WHERE ledger = %s AND kind = %s AND key = %s"  # noqa: S608
        await c.execute(self._sql(query + (" FOR UPDATE" if lock else "")), key_values(item))
        found = await c.fetchone()
        return None if found is None else row_from(found)

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

        async def work(c: AsyncCursor[tuple[Any, ...]]) -> bool:
            await c.execute(
                self._sql(
                    "UPDATE {schema}.items SET state = %(state)s, "
                    "attempts = attempts + (CASE WHEN %(state)s = 'sent' THEN 1 ELSE 0 END), "
                    "backend_id = COALESCE(%(backend_id)s, backend_id), "
                    "last_error = CASE WHEN %(done)s THEN NULL WHEN %(error)s::text IS NULL THEN last_error "
                    "ELSE %(error)s END, updated_at = %(now)s, "
                    "owner = CASE WHEN %(keep)s THEN owner ELSE NULL END "
                    "WHERE ledger = %(ledger)s AND kind = %(kind)s AND key = %(key)s AND owner = %(owner)s"
                ),
                {
                    "state": state.value,
                    "backend_id": backend_id,
                    "done": state is JournalState.DONE,
                    "error": error,
                    "now": _now(),
                    "keep": keeps_owner,
                    "ledger": item.ledger,
                    "kind": item.kind,
                    "key": item.key,
                    "owner": owner,
                },
            )
            return c.rowcount == 1

        return await self._call(work)

    async def resolve(self, item: ItemKey | JournalRow, outcome: ResolveOutcome) -> JournalRow:
        key = item.item_key if isinstance(item, JournalRow) else item
        if outcome not in ("done", "absent"):
            raise ValidationError(FieldError("outcome", f"must be 'done' or 'absent', not {outcome!r}"))
        state = JournalState.DONE if outcome == "done" else JournalState.PENDING

        async def work(c: AsyncCursor[tuple[Any, ...]]) -> JournalRow:
            found = await self._select(c, key, lock=True)
            if found is None:
                raise ValidationError(FieldError("key", f"no journal row for {key}"))
            if found.owner is not None and await self._alive(c, found.owner):
                raise ConfigurationError(f"journal row {key} is being worked on by a live push; resolve it later")
            await c.execute(  # absent: no backend id any more (what the next push sends gets its own)
                self._sql("UPDATE {schema}.items SET state = %s, owner = NULL, last_error = NULL, updated_at = %s, "
                          "backend_id = CASE WHEN %s THEN backend_id END "
                          "WHERE ledger = %s AND kind = %s AND key = %s"),
                (state.value, _now(), outcome == "done", *key_values(key)),
            )  # fmt: skip
            updated = await self._select(c, key)
            assert updated is not None
            return updated

        return await self._call(work)

    async def rows(
        self,
        state: JournalState | str | None = None,
        ledger: str | None = None,
        kind: str | None = None,
    ) -> list[JournalRow]:
        where, values = listing_filter(state, ledger, kind, placeholder="%s")
        query = self._sql(f"SELECT {COLUMNS} FROM {{schema}}.items{where} ORDER BY ledger, kind, key")  # noqa: S608

        async def work(c: AsyncCursor[tuple[Any, ...]]) -> list[JournalRow]:
            await c.execute(query, values)
            return [row_from(found) for found in await c.fetchall()]

        return await self._call(work)

    async def row(self, item: ItemKey) -> JournalRow | None:
        async def work(c: AsyncCursor[tuple[Any, ...]]) -> JournalRow | None:
            return await self._select(c, item)

        return await self._call(work)

    # --- pull -------------------------------------------------------------------------------------------------
    async def checkpoint(self, feed: str) -> str | None:
        async def work(c: AsyncCursor[tuple[Any, ...]]) -> str | None:
            await c.execute(self._sql("SELECT value FROM {schema}.checkpoints WHERE feed = %s"), (feed,))
            found = await c.fetchone()
            return None if found is None else str(found[0])

        return await self._call(work)

    async def save_checkpoint(self, feed: str, value: str) -> None:
        if not isinstance(value, str):
            raise ValidationError(FieldError("value", f"a checkpoint is text, not {type(value).__name__}"))

        async def work(c: AsyncCursor[tuple[Any, ...]]) -> None:
            await c.execute(
                self._sql("INSERT INTO {schema}.checkpoints (feed, value, updated_at) VALUES (%s, %s, %s) "
                          "ON CONFLICT (feed) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"),
                (feed, value, _now()),
            )  # fmt: skip

        await self._call(work)
