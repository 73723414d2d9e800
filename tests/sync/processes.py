"""Subprocess helpers of the crash tests: a sandbox server, a pusher to kill, polling the journal with a deadline."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DEADLINE = 120.0  # seconds a poll may take on a loaded machine before the test fails


@contextlib.contextmanager
def server(script: str, *args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """A sandbox in its own process: yields the process and the settings it printed; stopped by closing stdin."""
    process = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(HERE / script), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"{script} did not start"
        yield process, json.loads(line)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when the server hangs
            process.kill()
            process.wait()


def ask(process: subprocess.Popen[str], command: str) -> Any:
    """A line-protocol question to a server started by `server` (MR: ``stats``)."""
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def http_stats(settings: dict[str, Any]) -> Any:
    base = settings["base_url"].split("/api/")[0]
    with urllib.request.urlopen(base + "/__debug/stats", timeout=DEADLINE) as answer:  # noqa: S310 - 127.0.0.1
        return json.load(answer)


def pusher(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(HERE / script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> dict[str, int]:
    out, err = process.communicate(timeout=DEADLINE)
    assert process.returncode == 0, err[-3000:]
    counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return counts


def journal_count(path: Path, where: str, *values: str) -> int:
    """Rows matching `where` (read while another process writes; 0 before the file has its schema)."""
    if not path.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=DEADLINE)) as connection:
            (count,) = connection.execute(f"SELECT count(*) FROM items WHERE {where}", values).fetchone()  # noqa: S608
    except sqlite3.OperationalError:  # the schema is being created
        return 0
    return int(count)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    """Poll `condition` until it holds; fail when `process` ended first or the deadline passed."""
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the pusher ended before {what}: {process.stderr.read() if process.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {DEADLINE} s")
        time.sleep(0.002)


def kill_9(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL on POSIX: no cleanup of any kind runs
    process.communicate(timeout=DEADLINE)
