"""Close a resource on its own event loop when that loop ends, without a task or a finalizer of our own.

`asyncio.run` and `asyncio.Runner` call `loop.shutdown_asyncgens()` before the loop closes, which closes every
unfinished async generator while the loop still runs. A generator parked at its `yield` therefore runs its
`finally` — here: awaits `close()` — on the right loop at its end.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["close_at_loop_end"]


def close_at_loop_end(close: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    """A parked generator that awaits `close()` when the running loop ends or when the generator is closed.
    The caller keeps a reference to it (an unreferenced generator would be collected and closed early)."""
    closer = _closer(close)
    _park(closer)
    return closer


async def _closer(close: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()


def _park(generator: AsyncGenerator[None, None]) -> None:
    """Run an async generator to its first `yield` without awaiting (its body does not suspend before it)."""
    step = generator.asend(None)
    try:
        step.send(None)
    except StopIteration:
        return
    raise AssertionError("the generator suspended before its first yield")  # pragma: no cover
