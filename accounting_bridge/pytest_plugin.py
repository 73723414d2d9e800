"""pytest plugin (entry point ``pytest11``): our backends' sandboxes as fixtures, for testing your own integration.

    async def test_my_sync(ab_ledger, ab_sandbox):        # runs once per backend that has a sandbox
        ab_sandbox.faults.fail_next(503)
        await my_sync(ab_ledger)
        assert ab_sandbox.request_count("POST") == 2

    @pytest.mark.ab_backends("smallinvoice", "runmyaccounts")   # only these backends
    def test_something(ab_ledger): ...

    @pytest.mark.parametrize("ab_backend", ["smallinvoice"])     # or choose them yourself
    def test_other(ab_ledger_session): ...

Fixtures: `ab_backend` (the backend's name), `ab_sandbox` / `ab_ledger` (a fresh sandbox per test, and a ledger
connected to it), `ab_sandbox_session` / `ab_ledger_session` (one sandbox per backend for the whole session; its
books are shared by the tests that use it). Sandboxes serve on 127.0.0.1 from an event loop of their own in a
background thread, so the fixtures are plain (not async) and work with any event loop your tests use; read the
sandbox's state and set its `faults` from the test as you like. The ledger is made outside any loop: it opens its
own HTTP session in the loop that first uses it, and that session closes with the loop.

This module is imported by every pytest run once accounting-bridge is installed: it imports nothing heavy itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Coroutine

    from .ledger import Ledger
    from .sandbox import Sandbox

__all__ = [
    "ab_backend",
    "ab_ledger",
    "ab_ledger_session",
    "ab_sandbox",
    "ab_sandbox_session",
    "pytest_configure",
    "pytest_generate_tests",
]

BACKEND = "ab_backend"
MARKER = "ab_backends"
START_TIMEOUT = 30.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}(*names): run the test with the sandboxes of these backends only (default: all)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that uses the fixtures runs once per backend: those of its `ab_backends` marker, or all."""
    if BACKEND not in metafunc.fixturenames or _parametrized_by_user(metafunc):
        return
    marker = metafunc.definition.get_closest_marker(MARKER)
    names = list(marker.args) if marker is not None and marker.args else _all_backends()
    metafunc.parametrize(BACKEND, names, ids=names)


def _parametrized_by_user(metafunc: pytest.Metafunc) -> bool:
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if BACKEND in names:
            return True
    return False


def _all_backends() -> list[str]:
    from .sandbox import available_sandboxes

    return available_sandboxes()


@pytest.fixture
def ab_backend() -> str:
    """The backend under test (parametrized by the plugin: see the `ab_backends` marker)."""
    raise pytest.UsageError("ab_backend is parametrized by the accounting_bridge plugin")  # pragma: no cover


class _LoopThread:
    """An event loop running in a daemon thread: the sandboxes' home, whatever loop the tests run in."""

    def __init__(self) -> None:
        import asyncio

        self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="accounting-bridge-sandboxes", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(START_TIMEOUT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT)
        self.loop.close()


@pytest.fixture(scope="session")
def _ab_loop_thread() -> Iterator[_LoopThread]:
    thread = _LoopThread()
    yield thread
    thread.close()


def _serve(loop: _LoopThread, backend: str) -> Iterator[Sandbox]:
    from .sandbox import create

    sandbox = create(backend)
    loop.run(sandbox.start())
    try:
        yield sandbox
    finally:
        loop.run(sandbox.stop())


def _ledger(sandbox: Sandbox) -> Ledger:
    from .registry import connect

    return connect(sandbox.backend, base_url=sandbox.base_url, **sandbox.connect_settings())


@pytest.fixture
def ab_sandbox(_ab_loop_thread: _LoopThread, ab_backend: str) -> Iterator[Sandbox]:
    """A fresh sandbox of `ab_backend` for this test, serving on 127.0.0.1 (`.base_url`, `.faults`, its state)."""
    yield from _serve(_ab_loop_thread, ab_backend)


@pytest.fixture
def ab_ledger(ab_sandbox: Sandbox) -> Ledger:
    """A ledger connected to this test's `ab_sandbox`."""
    return _ledger(ab_sandbox)


class _SessionSandboxes:
    """One sandbox (and one ledger) per backend for the whole session, started when a test first asks for it.
    Kept here rather than in a session-scoped fixture that takes `ab_backend`, so that a test may parametrize
    `ab_backend` itself (a parameter is function-scoped unless said otherwise)."""

    def __init__(self, loop: _LoopThread) -> None:
        self._loop = loop
        self._sandboxes: dict[str, Sandbox] = {}
        self._ledgers: dict[str, Ledger] = {}

    def sandbox(self, backend: str) -> Sandbox:
        if backend not in self._sandboxes:
            from .sandbox import create

            sandbox = create(backend)
            self._loop.run(sandbox.start())
            self._sandboxes[backend] = sandbox
        return self._sandboxes[backend]

    def ledger(self, backend: str) -> Ledger:
        if backend not in self._ledgers:
            self._ledgers[backend] = _ledger(self.sandbox(backend))
        return self._ledgers[backend]

    def stop(self) -> None:
        for sandbox in self._sandboxes.values():
            self._loop.run(sandbox.stop())


@pytest.fixture(scope="session")
def _ab_session_sandboxes(_ab_loop_thread: _LoopThread) -> Iterator[_SessionSandboxes]:
    sandboxes = _SessionSandboxes(_ab_loop_thread)
    yield sandboxes
    sandboxes.stop()


@pytest.fixture
def ab_sandbox_session(_ab_session_sandboxes: _SessionSandboxes, ab_backend: str) -> Sandbox:
    """The session's sandbox of `ab_backend`: one per backend for the whole run (tests using it share its books)."""
    return _ab_session_sandboxes.sandbox(ab_backend)


@pytest.fixture
def ab_ledger_session(_ab_session_sandboxes: _SessionSandboxes, ab_backend: str) -> Ledger:
    """The session's ledger connected to the session's sandbox of `ab_backend`."""
    return _ab_session_sandboxes.ledger(ab_backend)
