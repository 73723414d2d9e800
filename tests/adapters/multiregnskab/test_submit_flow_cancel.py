"""Cancellation through `submit_with_attachments`: never a failed attachment, always a cancellation (#14)."""

from __future__ import annotations

import asyncio
import datetime as _dt
from collections.abc import Sequence
from decimal import Decimal

import pytest
from accounting_bridge.adapters.multiregnskab.submit_flow import submit_with_attachments

import accounting_bridge as ab
from accounting_bridge.transport.http import Response


def registration(attachments: int) -> ab.Registration:
    return ab.Registration(
        date=_dt.date(2026, 11, 30),
        description="Taxi",
        lines=[
            ab.PostingLine(account="5820", amount=Decimal("-100.00")),
            ab.PostingLine(account="3620", amount=Decimal("100.00")),
        ],
        attachments=[
            ab.Document(filename=f"bilag-{i}.pdf", content=b"%PDF-1.4 " + bytes([i])) for i in range(attachments)
        ],
        reference="ref-cancel",
    )


class Archive:
    """Scripted uploads: each file's upload either returns an xid, raises, or blocks until released."""

    def __init__(self, outcomes: dict[str, int | BaseException | None]) -> None:
        self.outcomes = outcomes  # None: block until cancelled
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self.deleted: list[int] = []
        self.submitted = False
        self.all_started = asyncio.Event()

    async def upload(self, document: ab.Document) -> int:
        self.started.append(document.filename)
        if len(self.started) == len(self.outcomes):
            self.all_started.set()
        await asyncio.sleep(0)  # every upload is in flight at once
        outcome = self.outcomes[document.filename]
        try:
            if outcome is None:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(document.filename)
            raise
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, int)
        return outcome

    async def submit(self, files: Sequence[int]) -> Response:
        self.submitted = True
        raise AssertionError("a registration must not be submitted after a cancelled upload")

    async def delete(self, xid: int) -> None:
        self.deleted.append(xid)

    async def run(self, attachments: int) -> tuple[int, list[int]]:
        return await submit_with_attachments(
            registration(attachments),
            upload=self.upload,
            submit=self.submit,
            read_xid=lambda response: 0,
            delete=self.delete,
            backend="multiregnskab",
        )


async def test_an_upload_that_ends_cancelled_cancels_the_registration() -> None:
    """One upload's task is cancelled (not the caller): the call ends cancelled, not as a failed attachment."""
    archive = Archive({"bilag-0.pdf": 11, "bilag-1.pdf": asyncio.CancelledError(), "bilag-2.pdf": 13})
    with pytest.raises(asyncio.CancelledError):
        await archive.run(3)
    assert not archive.submitted
    assert archive.deleted == [11, 13]  # the registration definitely was not submitted: no orphans


async def test_a_cancelled_upload_is_not_hidden_behind_another_uploads_error() -> None:
    failed = ab.Unprocessable("the archive refused the file", backend="multiregnskab")
    archive = Archive({"bilag-0.pdf": failed, "bilag-1.pdf": asyncio.CancelledError()})
    with pytest.raises(asyncio.CancelledError):
        await archive.run(2)
    assert not archive.submitted


async def test_a_cancelled_caller_cancels_every_pending_upload() -> None:
    archive = Archive({"bilag-0.pdf": 21, "bilag-1.pdf": None, "bilag-2.pdf": None})
    caller = asyncio.ensure_future(archive.run(3))
    await asyncio.wait_for(archive.all_started.wait(), timeout=1)
    await asyncio.sleep(0)  # let the first upload finish; the others block
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert caller.cancelled()
    assert sorted(archive.cancelled) == ["bilag-1.pdf", "bilag-2.pdf"]
    assert not archive.submitted
    assert archive.deleted == []  # nothing is awaited while the caller is being cancelled


async def test_a_plain_failure_is_still_reported_and_cleaned_up() -> None:
    """The cancellation rule does not change ordinary failures: the uploaded files are deleted, the error raised."""
    failed = ab.Unprocessable("the archive refused the file", backend="multiregnskab")
    archive = Archive({"bilag-0.pdf": 31, "bilag-1.pdf": failed})
    with pytest.raises(ab.Unprocessable):
        await archive.run(2)
    assert archive.deleted == [31]
    assert not archive.submitted
