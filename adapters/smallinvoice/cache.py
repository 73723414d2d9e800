"""Per-ledger reference data: loaded once however many callers ask at the same time, kept for a bounded time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SingleFlightCache(Generic[V]):
    """`await cache.get(key, load)`: a fresh value, or one `load()` shared by every concurrent caller of `key`.

    Values live `ttl` seconds (None: for the cache's lifetime). A failed load is not kept: the next caller loads
    again. `forget(key)` drops a value the caller knows to be stale; `put(key, value)` stores one it just wrote.
    """

    def __init__(self, ttl: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._values: dict[Hashable, tuple[float, V]] = {}
        self._loading: dict[Hashable, asyncio.Future[V]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        while True:
            held = self.peek(key)
            if held is not None:
                return held
            flight = self._loading.get(key)
            if flight is None or flight.get_loop() is not asyncio.get_running_loop():
                return await self._load(key, load)
            # `wait` raises only this caller's own cancellation (never cancelling the shared flight); a flight
            # cancelled with its loader ends normally here, and the next turn loads again
            await asyncio.wait((flight,))
            if not flight.cancelled():
                return flight.result()

    async def _load(self, key: Hashable, load: Callable[[], Awaitable[V]]) -> V:
        flight: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = flight
        try:
            value = await load()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # marked retrieved: waiters get it, nobody else has to
            raise
        finally:
            if self._loading.get(key) is flight:
                del self._loading[key]
        self.put(key, value)
        flight.set_result(value)
        return value

    def peek(self, key: Hashable) -> V | None:
        """The fresh value of `key` without loading it, else None."""
        held = self._values.get(key)
        if held is not None and (self.ttl is None or self.clock() - held[0] < self.ttl):
            return held[1]
        return None

    def put(self, key: Hashable, value: V) -> None:
        self._values[key] = (self.clock(), value)

    def forget(self, key: Hashable) -> None:
        self._values.pop(key, None)
