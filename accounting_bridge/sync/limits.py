"""Concurrency caps of a `LedgerPool`: request slots overall and per backend, taken around every request.

The cap sits around `Transport.send` of each ledger the pool opens (one call = one request with its retries and
look-ups). A call made while a slot is already held by the same task chain — a look-up that decides a lost write,
a token request — passes without taking a second one: with a cap of 1 it would otherwise wait for itself.
The wait for a slot is bounded by the ledger's `deadline` (then `DeadlineExceeded`: nothing was sent).
The pool keeps its caps at or below the connector's connection limits, so a request never queues for a connection
inside its own timeout (where a wait that ran out would look like a request that may have been sent).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from ..errors import ConfigurationError, DeadlineExceeded

__all__ = ["SlotTimeout", "Slots", "gate_transport", "holding"]

#: True while the current task chain holds pool slots (its nested calls then take none).
_HOLDING: contextvars.ContextVar[bool] = contextvars.ContextVar("accounting_bridge_pool_slots", default=False)


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


@contextlib.asynccontextmanager
async def holding(slots: Sequence[Slots], max_wait: float | None = None) -> AsyncIterator[None]:
    """Hold one slot of each of `slots` (taken in order, within `max_wait` seconds in all) for the block; nested use
    in the same task chain takes none."""
    if _HOLDING.get():
        yield
        return
    loop = asyncio.get_running_loop()
    give_up_at = None if max_wait is None else loop.time() + max_wait
    taken: list[Slots] = []
    try:
        for each in slots:
            await each.acquire(None if give_up_at is None else max(give_up_at - loop.time(), 0.0))
            taken.append(each)
        token = _HOLDING.set(True)
        try:
            yield
        finally:
            _HOLDING.reset(token)
    finally:
        for each in reversed(taken):
            each.release()


def gate_transport(transport: Any, slots: Sequence[Slots]) -> None:
    """Make every `transport.send` of one ledger hold `slots` while it runs, waiting at most its `deadline`."""
    send: Callable[..., Awaitable[Any]] = transport.send
    config = getattr(transport, "config", None)
    deadline: float | None = getattr(getattr(config, "retry", None), "deadline", None)

    @functools.wraps(send)
    async def gated(*args: Any, **kwargs: Any) -> Any:
        try:
            async with holding(slots, deadline):
                return await send(*args, **kwargs)
        except SlotTimeout:
            raise DeadlineExceeded(
                f"no request slot of the LedgerPool became free within the deadline ({deadline} s); nothing was sent",
                backend=getattr(transport, "backend", None),
                deadline=deadline,
            ) from None

    transport.send = gated
