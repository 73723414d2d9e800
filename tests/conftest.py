"""Shared fixtures: an aioresponses mock that works on aiohttp >= 3.14, and a real local HTTP server."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses

from accounting_bridge.testing import FakeSleep
from accounting_bridge.transport import auth as auth_module


@pytest.fixture(autouse=True)
def _fresh_process_tokens() -> Iterator[None]:
    """Tokens are shared by every ledger of a credential in the process: each test starts as a new process."""
    auth_module._TOKENS.clear()
    yield
    auth_module._TOKENS.clear()


class ShimResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds ClientResponse without `stream_writer`, which aiohttp 3.14 (a security release)
    requires (pnuckowski/aioresponses#289). Inject a stand-in writer when the parameter exists. Remove this shim
    once aioresponses ships the fix (PR #288)."""

    _needs_writer = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self._needs_writer and "stream_writer" not in kwargs:
            kwargs["stream_writer"] = SimpleNamespace(output_size=0)
        super().__init__(*args, **kwargs)


class ShimmedAioresponses(aioresponses):  # type: ignore[misc]
    def add(self, url: Any, method: str = "GET", *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("response_class", ShimResponse)
        super().add(url, method, *args, **kwargs)


@pytest.fixture
def mock_http() -> Iterator[ShimmedAioresponses]:
    with ShimmedAioresponses() as mocked:
        yield mocked


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def local_server() -> AsyncIterator[Callable[[web.Application], Awaitable[str]]]:
    """Start aiohttp.web applications on 127.0.0.1 (real sockets); returns their base URL."""
    runners: list[web.AppRunner] = []

    async def start(app: web.Application) -> str:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()
