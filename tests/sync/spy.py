"""Wraps a memory ledger's adapter methods to record calls, inject failures and stop at deterministic moments."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import accounting_bridge as ab

Hook = Callable[[str, Any], Awaitable[None]]

#: adapter method → the business key of its argument
KEYS: dict[str, Callable[[Any], str]] = {
    "upsert_customer": lambda c: c.number,
    "create_invoice": lambda i: i.number,
    "create_payment": lambda p: f"{p.invoice_number}/{p.reference}",
    "submit_registration": lambda r: r.reference,
    "upload_document": lambda d: d.filename,
}


class Spy:
    """`calls` lists (method, key) in the order calls started; `before` / `after` hooks run around the real
    call (`after` once it landed: raising or blocking there is an answer lost after the write)."""

    def __init__(self, ledger: ab.Ledger) -> None:
        self.ledger = ledger
        self.calls: list[tuple[str, str]] = []
        self.before: dict[str, Hook] = {}
        self.after: dict[str, Hook] = {}
        adapter = ledger.adapter
        for name, key_of in KEYS.items():
            setattr(adapter, name, self._wrap(name, getattr(adapter, name), key_of))

    def _wrap(self, name: str, real: Callable[[Any], Awaitable[Any]], key_of: Callable[[Any], str]) -> Any:
        async def call(item: Any) -> Any:
            key = key_of(item)
            self.calls.append((name, key))
            if name in self.before:
                await self.before[name](key, item)
            result = await real(item)
            if name in self.after:
                await self.after[name](key, item)
            return result

        return call

    def count(self, name: str) -> Counter[str]:
        return Counter(key for method, key in self.calls if method == name)

    def first(self, name: str) -> int:
        return next(i for i, (method, _) in enumerate(self.calls) if method == name)

    def last(self, name: str) -> int:
        return max(i for i, (method, _) in enumerate(self.calls) if method == name)


async def block_forever(_key: str, _item: Any) -> None:
    await asyncio.Event().wait()
