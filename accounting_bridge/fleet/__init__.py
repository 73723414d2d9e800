"""Shared state for a fleet of workers: a Redis URL (`shared_state=`) holds each credential's rate-limit budget,
tokens and renewal lock. Nothing here imports redis until a ledger with `shared_state` first talks to it."""

from .redis_state import SharedState

__all__ = ["SharedState"]
