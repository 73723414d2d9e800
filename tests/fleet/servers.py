"""Real Redis and PostgreSQL servers for the fleet tests, on free 127.0.0.1 ports in temporary folders.

`.ci/run` starts both and exports their URLs (`REDIS_ENV`, `POSTGRES_ENV`); without them a test session starts its
own. A server that cannot start is a skip outside CI and a failure when the environment variable CI is set.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REDIS_ENV = "AB_TEST_REDIS_URL"
POSTGRES_ENV = "AB_TEST_POSTGRES_URL"


class ServerUnavailable(Exception):
    """The server's program is missing or it did not come up."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.05)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class RedisServer:
    """A redis-server of our own (no persistence): `stop()` and `start()` again on the same port."""

    def __init__(self, folder: Path) -> None:
        program = shutil.which("redis-server")
        if program is None:
            raise ServerUnavailable("redis-server is not installed (apt-get install -y redis-server)")
        self.program, self.folder, self.port = program, folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [self.program, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                   "--dir", str(self.folder), "--loglevel", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        wait_until(lambda: _accepts(self.port), "redis-server")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class PostgresServer:
    """A PostgreSQL cluster of our own (initdb + pg_ctl, as the `postgres` user when we are root)."""

    def __init__(self) -> None:
        if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
            raise ServerUnavailable("PostgreSQL (initdb, pg_ctl) is not installed")
        self.folder = Path(tempfile.mkdtemp(prefix="ab-pg-"))
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise ServerUnavailable(f"{command[0]} failed: {done.stderr.decode(errors='replace')[-300:]}")

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        data = str(self.folder / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", data, "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        return self

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def unavailable(what: str, exc: BaseException) -> None:
    """Skip outside CI; fail when CI is set (the servers must be there)."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} could not start and CI is set: {exc}")
    pytest.skip(f"{what} could not start: {exc}")


@contextmanager
def own_redis(folder: Path) -> Iterator[RedisServer]:
    """A redis-server only this test uses (it may stop and restart it)."""
    try:
        server = RedisServer(folder).start()
    except (ServerUnavailable, OSError) as exc:
        unavailable("redis-server", exc)
        raise
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def redis_url(folder: Path) -> Iterator[str]:
    given = os.environ.get(REDIS_ENV)
    if given:
        yield given
        return
    with own_redis(folder) as server:
        yield server.url


#: The PostgreSQL server this test process started, and how many session fixtures use it (tests/sync and
#: tests/fleet each have one: one server serves both).
_POSTGRES: list[tuple[PostgresServer, int]] = []


@contextmanager
def postgres_url() -> Iterator[str]:
    given = os.environ.get(POSTGRES_ENV)
    if given:
        yield given
        return
    if not _POSTGRES:
        try:
            _POSTGRES.append((PostgresServer().start(), 0))
        except (ServerUnavailable, OSError) as exc:
            unavailable("PostgreSQL", exc)
            raise
    server, users = _POSTGRES[0]
    _POSTGRES[0] = (server, users + 1)
    try:
        yield server.url
    finally:
        server, users = _POSTGRES[0]
        if users == 1:
            _POSTGRES.clear()
            server.stop()
        else:
            _POSTGRES[0] = (server, users - 1)
