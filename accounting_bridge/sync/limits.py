"""Concurrency caps of a `LedgerPool`: request slots per ledger, per backend and overall, held per attempt.

A `PoolGate` is a ledger transport's `gate` (see `Transport`): the transport takes it for each attempt, after the
rate limiter has let the attempt go, and gives it back as soon as the attempt's answer is read. A call that backs
off before a retry, waits for its rate limit's reset, renews its token or looks a lost write up holds no slot
meanwhile, so it never keeps other tenants waiting, and a look-up made while deciding a call never waits for
a slot its own call holds. The pool keeps its caps at or below the connector's connection limits, so an attempt
never queues for a connection inside its own timeout (where a wait that ran out would look like a request that may
have been sent).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Sequence

from ..errors import ConfigurationError

__all__ = ["PoolGate", "SlotTimeout", "Slots"]


class SlotTimeout(Exception):
    """No slot became free within the time allowed."""


class Slots:
    """A first-come first-served counting semaphore. A cancelled (or timed-out) waiter never leaves a slot taken or
    a wake-up lost: a slot handed to a waiter that is cancelled before it ran is handed on. No asyncio object is
    kept while nobody waits."""

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"a concurrency cap must be a whole number >= 1, not {size!r}")
        self.size = size
        self.taken = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def __repr__(self) -> str:
        return f"Slots(size={self.size}, taken={self.taken}, waiting={len(self._waiters)})"

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, max_wait: float | None = None) -> None:
        """Take a slot, waiting `max_wait` seconds at most (`SlotTimeout`)."""
        if self.taken < self.size and not self._waiters:
            self.taken += 1
            return
        loop = asyncio.get_running_loop()
        handed: asyncio.Future[None] = loop.create_future()
        self._waiters.append(handed)
        timer = None if max_wait is None else loop.call_later(max_wait, _time_out, handed)
        try:
            await handed  # `release` hands its slot over: `taken` is unchanged
        except BaseException:
            if handed.done() and not handed.cancelled() and handed.exception() is None:
                self.release()  # the slot reached us as we were cancelled: pass it on
            elif handed in self._waiters:
                self._waiters.remove(handed)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def release(self) -> None:
        while self._waiters:
            handed = self._waiters.popleft()
            if not handed.done():
                handed.set_result(None)
                return
        self.taken -= 1


def _time_out(handed: asyncio.Future[None]) -> None:
    if not handed.done():
        handed.set_exception(SlotTimeout())


class PoolGate:
    """One slot of each of `slots` per attempt (taken in the order given, the same for every gate of a pool, so
    two attempts never wait for each other's slots)."""

    def __init__(self, slots: Sequence[Slots]) -> None:
        self.slots = tuple(slots)

    def __repr__(self) -> str:
        return f"PoolGate({', '.join(map(repr, self.slots))})"

    async def acquire(self, max_wait: float) -> bool:
        """Take every slot within `max_wait` seconds in all: True, or False with none taken. A cancel leaves none
        taken either."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + max_wait
        taken: list[Slots] = []
        try:
            for each in self.slots:
                await each.acquire(max(give_up_at - loop.time(), 0.0))
                taken.append(each)
        except BaseException as exc:
            for each in reversed(taken):
                each.release()
            if isinstance(exc, SlotTimeout):
                return False
            raise
        return True

    def release(self) -> None:
        for each in reversed(self.slots):
            each.release()
