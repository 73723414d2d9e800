"""Running a command's coroutine: one event loop per command."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_async"]

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run to the end. Ctrl-C cancels the coroutine (so `finally` blocks and journals settle) and then raises
    KeyboardInterrupt, which `main` turns into exit code 130."""
    return asyncio.run(coroutine)
