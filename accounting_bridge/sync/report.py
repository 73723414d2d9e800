"""`SyncReport` and `ItemOutcome`: what a push did, item by item, with counts; convertible to JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import AccountingError, ValidationError
from .journal import JournalState

__all__ = ["OUTCOMES", "ItemOutcome", "SyncReport", "error_dict"]

#: every outcome an item can have; `SyncReport.counts` has exactly these keys
OUTCOMES = ("created", "already_present", "skipped", "failed", "unknown", "conflict")


def error_dict(error: AccountingError) -> dict[str, Any]:
    """A typed error as plain data: its class, its (secret-free) text and, for input errors, the fields."""
    data: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ValidationError):
        data["fields"] = [{"path": e.path, "message": e.message} for e in error.errors]
    return data


@attrs.frozen(kw_only=True)
class ItemOutcome:
    """One item of the push: `index` in the items given, `outcome` one of `OUTCOMES`, `state` its journal row's
    state (None when no row was written: bad input), `error` a typed error (None when it went well)."""

    index: int
    kind: str | None
    key: str | None
    outcome: str
    state: JournalState | None = None
    backend_id: str | None = None
    error: AccountingError | None = attrs.field(default=None, eq=False)
    detail: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "key": self.key,
            "outcome": self.outcome,
            "state": None if self.state is None else self.state.value,
            "backend_id": self.backend_id,
            "error": None if self.error is None else error_dict(self.error),
            "detail": self.detail,
        }


@attrs.frozen(kw_only=True)
class SyncReport:
    """`counts` maps every one of `OUTCOMES` to a number; `outcomes` are in the order of the items given."""

    ledger: str
    outcomes: tuple[ItemOutcome, ...]

    @property
    def counts(self) -> Mapping[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for outcome in self.outcomes:
            counts[outcome.outcome] += 1
        return MappingProxyType(counts)

    @property
    def ok(self) -> bool:
        """Nothing failed, nothing unknown, no conflict."""
        return all(o.outcome in ("created", "already_present", "skipped") for o in self.outcomes)

    def by_outcome(self, outcome: str) -> list[ItemOutcome]:
        return [o for o in self.outcomes if o.outcome == outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "counts": dict(self.counts),
            "ok": self.ok,
            "items": [o.to_dict() for o in self.outcomes],
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)
