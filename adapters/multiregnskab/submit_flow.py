"""Upload attachments, submit a registration, clean up after a definite failure.

Shared by both adapters because both APIs attach files the same way (upload first, then reference the returned
xids); the adapter hands in its own `upload`, `submit` and `delete` coroutines, so no transport, auth or path is
shared.

Cleanup rule: when the submission failed *definitely* (a 4xx, a request that provably never left), the files
uploaded for it are deleted so nothing is orphaned. When the outcome is *unknown* (connection dropped, 5xx or
timeout after the request was sent) they are kept: the registration may exist and reference them — a delete
would then either be refused (409, delete-protected) or, if the server is still processing the request, strip the
documentation from a registration that is about to be created. The `WriteOutcomeUnknown` names the kept files.
Cancellation is never a failure: a cancelled caller cancels the pending uploads and ends cancelled; an upload that
ends cancelled (the caller itself was not) gets the definite-failure cleanup, then the call ends cancelled too.
A 2xx answer whose body cannot be decoded counts as *unknown* too: the server stored the registration (with the
files), only its xid is lost — so the files are kept and the caller gets `WriteOutcomeUnknown`, never a plain error
that would invite a duplicating retry. The flow itself decodes the answer (`read_xid`) so no adapter can miss this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from accounting_bridge.errors import AccountingError, TransportError, WriteOutcomeUnknown
from accounting_bridge.models import Document, Registration
from accounting_bridge.transport.http import Response

from .answers import read_written

__all__ = ["submit_with_attachments"]

logger = logging.getLogger("accounting_bridge")


async def submit_with_attachments(
    registration: Registration,
    *,
    upload: Callable[[Document], Awaitable[int]],
    submit: Callable[[Sequence[int]], Awaitable[Response]],
    read_xid: Callable[[Response], int],
    delete: Callable[[int], Awaitable[None]] | None,
    backend: str,
) -> tuple[int, list[int]]:
    """Returns (registration xid, attachment xids).

    `upload` should raise `WriteOutcomeUnknown` when an upload's accepted answer is unreadable (see
    `answers.read_written`): that file may exist hidden, and the registration is then not submitted.
    """
    # Cancelling the caller cancels the pending uploads (gather does so) and raises CancelledError right here.
    results = await asyncio.gather(*(upload(doc) for doc in registration.attachments), return_exceptions=True)
    uploaded = [r for r in results if isinstance(r, int)]
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        await _cleanup(uploaded, delete, backend)
        # A cancelled upload is re-raised as cancellation: never reported as (or hidden behind) a failed attachment.
        cancelled = next((failure for failure in failures if not isinstance(failure, Exception)), None)
        if cancelled is not None:
            raise cancelled
        first = failures[0]
        if isinstance(first, WriteOutcomeUnknown):
            raise TransportError(
                "the registration was not submitted: an attachment upload failed ambiguously (a hidden, unattached "
                f"file may remain in the archive): {first.message}",
                backend=backend,
            ) from None
        raise first
    try:
        response = await submit(uploaded)
        # from here on the registration is stored: a decoding failure is an unknown outcome, not a failure
        xid = read_written(
            response, read_xid, what="suggested registration", backend=backend, reference=registration.reference
        )
    except WriteOutcomeUnknown as exc:
        if uploaded:
            message = exc.message.removesuffix(f" (reference {exc.reference!r})") if exc.reference else exc.message
            raise WriteOutcomeUnknown(
                f"{message}; the uploaded attachments (archive files {', '.join(map(str, uploaded))}) were kept "
                "because the registration may reference them",
                backend=exc.backend,
                reference=exc.reference,
                request_id=exc.request_id,
            ) from None
        raise
    except Exception:
        await _cleanup(uploaded, delete, backend)
        raise
    return xid, uploaded


async def _cleanup(xids: Sequence[int], delete: Callable[[int], Awaitable[None]] | None, backend: str) -> None:
    if not xids:
        return
    if delete is None:
        logger.warning("%s: no delete endpoint: uploaded archive files %s remain unattached", backend, list(xids))
        return
    for xid in xids:
        try:
            await delete(xid)
        except AccountingError as exc:
            logger.warning("%s: could not delete orphaned archive file %s: %s", backend, xid, exc)
