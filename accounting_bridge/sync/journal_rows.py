"""What the SQL journals (SQLite, PostgreSQL) share: the row's columns, decoding a row, the state a caller names,
and the filter of `rows()`; each journal keeps its own driver, placeholders and locking."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from ..errors import FieldError, ValidationError
from .journal import ItemKey, JournalRow, JournalState

__all__ = ["COLUMNS", "IN_PROGRESS", "key_values", "listing_filter", "row_from", "state_of"]

COLUMNS = "ledger, kind, key, content_hash, state, attempts, last_error, backend_id, updated_at, owner"
#: States of a row some run is (or was, before it died) working on.
IN_PROGRESS = (JournalState.PENDING.value, JournalState.SENT.value)


def row_from(values: tuple[Any, ...]) -> JournalRow:
    """A row selected as `COLUMNS`; `updated_at` comes as an ISO text (SQLite) or a datetime (PostgreSQL)."""
    ledger, kind, key, content_hash, state, attempts, last_error, backend_id, updated_at, owner = values
    if isinstance(updated_at, str):
        updated_at = _dt.datetime.fromisoformat(updated_at)
    return JournalRow(
        ledger=ledger,
        kind=kind,
        key=key,
        content_hash=content_hash,
        state=JournalState(state),
        attempts=attempts,
        last_error=last_error,
        backend_id=backend_id,
        updated_at=updated_at,
        owner=owner,
    )


def state_of(value: JournalState | str) -> JournalState:
    """The state a caller named, or a `ValidationError` on `state` listing the valid ones."""
    try:
        return JournalState(value)
    except ValueError:
        choices = ", ".join(s.value for s in JournalState)
        raise ValidationError(FieldError("state", f"{value!r} is not one of: {choices}")) from None


def key_values(item: ItemKey) -> tuple[str, str, str]:
    """The values of ``ledger = ? AND kind = ? AND key = ?``."""
    return item.ledger, item.kind, item.key


def listing_filter(
    state: JournalState | str | None, ledger: str | None, kind: str | None, *, placeholder: str
) -> tuple[str, list[str]]:
    """The WHERE clause (empty when nothing is asked) and its values for `Journal.rows()`."""
    asked = (("state", state_of(state).value if state is not None else None), ("ledger", ledger), ("kind", kind))
    chosen = [(column, value) for column, value in asked if value is not None]
    clause = " AND ".join(f"{column} = {placeholder}" for column, _ in chosen)
    return (f" WHERE {clause}" if chosen else ""), [value for _, value in chosen]
