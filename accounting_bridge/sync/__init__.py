"""Sync for platforms: journaled exactly-once push, checkpointed pull, a pool of many tenants' ledgers."""

from .journal import Claim, Decision, ItemKey, Journal, JournalRow, JournalState, open_journal
from .pool import LedgerPool
from .profiles import load_profiles
from .pull import ChangeFeed, pull
from .push import push
from .report import ItemOutcome, SyncReport
from .sqlite import SqliteJournal

__all__ = [
    "ChangeFeed",
    "Claim",
    "Decision",
    "ItemKey",
    "ItemOutcome",
    "Journal",
    "JournalRow",
    "JournalState",
    "LedgerPool",
    "SqliteJournal",
    "SyncReport",
    "load_profiles",
    "open_journal",
    "pull",
    "push",
]
