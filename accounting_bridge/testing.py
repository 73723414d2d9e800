"""Helpers for tests and sandboxes: small stand-ins that real code paths can carry."""

from __future__ import annotations

from typing import Any

__all__ = ["FakeSleep", "drive", "minimal_pdf"]


class FakeSleep:
    """Records the delays asked for instead of sleeping, so retry tests take milliseconds.

    Install it as ``ledger.adapter.transport.sleep = FakeSleep()``; `clock` is a virtual clock that only these
    sleeps advance (``transport.clock = fake.clock`` makes the overall deadline follow it).
    """

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


async def drive(result: Any) -> None:
    """Run a ledger call to its end, whatever kind it is: await a coroutine, exhaust an async iterator (lists are
    lazy: their checks and requests happen only while iterating)."""
    if hasattr(result, "__aiter__"):
        async for _ in result:
            pass
    else:
        await result


def minimal_pdf(text: str) -> bytes:
    """A tiny, structurally valid one-page PDF whose body carries `text` as a comment (sandbox PDFs, payslips)."""
    safe = "".join(ch for ch in text if ch.isprintable() and ch not in "\\()")
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
        + f"% {safe}\n".encode()
        + b"trailer<</Root 1 0 R>>\n%%EOF\n"
    )
