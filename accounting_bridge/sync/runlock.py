"""Run liveness on one host: a lock file held while a run lives; the OS drops the lock when its process dies."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import IO

__all__ = ["RunLock", "is_held_elsewhere", "remove_if_free"]


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(handle: IO[bytes]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class RunLock:
    """The lock file of one run, held from `acquire` to `release` (or the death of the process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        """Locked under a temporary name, then renamed into place: no one ever sees the file unlocked (a sweep
        would take it for a dead run's)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        forming = self.path.with_suffix(".forming")
        handle = open(forming, "w+b")  # noqa: SIM115 - held open for the run's lifetime
        if not _try_lock(handle):
            handle.close()
            raise RuntimeError(f"run lock {forming.name} is already held")
        os.replace(forming, self.path)
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        with contextlib.suppress(OSError):
            _unlock(handle)
        handle.close()


def is_held_elsewhere(path: Path) -> bool:
    """True while another open file (another run, in this process or another) holds the lock at `path`."""
    try:
        handle = open(path, "r+b")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return False
    try:
        if not _try_lock(handle):
            return True
        with contextlib.suppress(OSError):
            _unlock(handle)
        return False
    finally:
        handle.close()


def remove_if_free(path: Path) -> None:
    """Tidy a lock file whose run died (its lock is free)."""
    if not is_held_elsewhere(path):
        with contextlib.suppress(OSError):
            os.unlink(path)
