"""Proof that a contract test drives every operation an adapter implements and validates every exchange it caused."""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from accounting_bridge.ledger import AdapterBase

from .oracle import Oracle
from .recorder import Exchange


def operations(adapter_class: type[Any]) -> set[str]:
    """The adapter's public coroutine and async-generator methods: what it implements (the neutral ones it
    overrides and its own extras), not `AdapterBase`'s `UnsupportedOperation` defaults."""
    names = set()
    for klass in adapter_class.__mro__:
        if klass is AdapterBase or klass is object or issubclass(AdapterBase, klass):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and (inspect.iscoroutinefunction(value) or inspect.isasyncgenfunction(value)):
                names.add(name)
    return names


@contextmanager
def counting_calls(adapter_class: type[Any]) -> Iterator[Counter[str]]:
    """Counts the calls of each of `operations(adapter_class)` (however reached: ledger, extras, internally)."""
    calls: Counter[str] = Counter()
    with pytest.MonkeyPatch.context() as patch:
        for name in operations(adapter_class):
            patch.setattr(adapter_class, name, _counted(getattr(adapter_class, name), name, calls))
        yield calls


def _counted(method: Any, name: str, calls: Counter[str]) -> Any:
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def generator(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            async for item in method(*args, **kwargs):
                yield item

        return generator

    @functools.wraps(method)
    async def coroutine(*args: Any, **kwargs: Any) -> Any:
        calls[name] += 1
        return await method(*args, **kwargs)

    return coroutine


def assert_all_validated(oracle: Oracle, exchanges: list[Exchange], served: int, expected: set[str]) -> None:
    """Every exchange the sandbox served was recorded and validated, request and answer, and each operation in
    `expected` (spec templates, "GET /contacts") was among them: a recorder or oracle that silently checks
    nothing, or a drive that stops calling an operation, fails here."""
    assert served >= len(expected), f"the sandbox served {served} requests for {len(expected)} operations"
    assert len(exchanges) == served, f"recorded {len(exchanges)} of the {served} exchanges the sandbox served"
    for part in ("request", "response"):
        checked = sum(n for (_, p), n in oracle.checked.items() if p == part)
        assert checked == served, f"{checked} of {served} {part}s validated"
    seen = {operation for operation, _ in oracle.checked}
    assert seen == expected, f"not driven: {sorted(expected - seen)}; not expected: {sorted(seen - expected)}"
