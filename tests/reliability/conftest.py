"""Fixtures of the hostile-server tests: the server, one gzip bomb per session, and a leak guard."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from .hostile import GzipBomb, HostileServer, build_gzip_bomb


@pytest.fixture(scope="session")
def gzip_bomb() -> GzipBomb:
    """~1 MB of gzip that inflates to 1 GiB (built in well under a second)."""
    return build_gzip_bomb()


@pytest.fixture
async def hostile_server() -> AsyncIterator[HostileServer]:
    server = HostileServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture(autouse=True)
async def no_leaks() -> AsyncIterator[None]:
    """Fail a test that leaves an unclosed session, connection or transport behind: a gc pass after the server
    is gone makes aiohttp report them to the loop's exception handler and asyncio warn (ResourceWarning)."""
    loop = asyncio.get_running_loop()
    reported: list[str] = []
    previous = loop.get_exception_handler()

    def record(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(str(context.get("message")))

    loop.set_exception_handler(record)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()
            loop.set_exception_handler(previous)
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    for other in caught:  # hand every other warning back to pytest's own capture
        if not issubclass(other.category, ResourceWarning):
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    assert reported == []
    assert leaked == []
