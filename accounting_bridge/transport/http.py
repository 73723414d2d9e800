"""The one transport: session ownership, timeouts, retries, write safety, rate limits, auth and logging.

Adapters describe a `Request` and get a `Response`; they never sleep, retry or read rate-limit headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import re
import sys
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import aiohttp
import attrs
import yarl
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .. import jsoncodec
from ..errors import (
    AccountingError,
    BackendError,
    ConfigurationError,
    DeadlineExceeded,
    FieldError,
    RateLimited,
    ResponseError,
    TransportError,
    Unprocessable,
    WriteOutcomeUnknown,
    error_for_status,
)
from ..loop_end import close_at_loop_end
from .auth import ApiKeyHeader, ApiKeyQuery, AuthStrategy, NoAuth
from .ratelimit import RateLimiter, RateLimitWaitTooLong, SlotWaitTimeout, Ticket, existing_limiter, limiter_for
from .redact import Redactor
from .retry import (
    NOT_PERFORMED_STATUSES,
    RETRYABLE_STATUSES,
    SETTLED_STATUSES,
    WRITE_SAFE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "AttemptGate",
    "ErrorInfo",
    "FilePart",
    "Request",
    "Response",
    "Transport",
    "TransportConfig",
    "check_http_url",
]

logger = logging.getLogger("accounting_bridge")

Sleep = Callable[[float], Awaitable[None]]
#: Looks the object of an ambiguous write up by its business key: True if it exists (the write landed).
Lookup = Callable[[], Awaitable[bool]]
_T = TypeVar("_T")


class AttemptGate(Protocol):
    """Concurrency caps beyond the credential's (a `LedgerPool`'s): taken for each attempt after the rate limiter
    let it go, given back when its answer is read, so backoffs, rate-limit waits, token renewal and look-ups hold
    none. `acquire` is True once taken, False when `max_wait` ran out (nothing taken); a cancel leaves nothing
    taken."""

    async def acquire(self, max_wait: float) -> bool: ...
    def release(self) -> None: ...


@attrs.frozen(kw_only=True)
class FilePart:
    """One file of a multipart body (rebuilt for every attempt: aiohttp form data cannot be sent twice)."""

    field: str
    filename: str
    content: bytes = attrs.field(repr=lambda c: f"<{len(c)} bytes>")
    content_type: str = "application/octet-stream"


@attrs.frozen
class Request:
    """What an adapter wants sent. `path` is joined to the base URL unless it is absolute.

    `idempotent` overrides the method's default (GET/HEAD/OPTIONS/PUT/DELETE may be repeated, POST/PATCH not).
    `reference` is the business key named in `WriteOutcomeUnknown`.
    `conflict_means_landed`: the backend refuses a duplicate with 409 (it deduplicates), so a write may be resent,
    and a 409 on a resend after an ambiguous failure means the earlier attempt landed (`confirmed_by_lookup`).
    """

    method: str
    path: str
    params: Mapping[str, str] = attrs.field(factory=dict, kw_only=True)
    headers: Mapping[str, str] = attrs.field(factory=dict, kw_only=True, repr=False)  # may carry tokens
    json: Any = attrs.field(default=None, kw_only=True, repr=False)  # may carry passwords, refresh tokens
    body: bytes | str | None = attrs.field(default=None, kw_only=True, repr=False)
    form: Mapping[str, str] | None = attrs.field(default=None, kw_only=True, repr=False)
    files: tuple[FilePart, ...] = attrs.field(default=(), kw_only=True)
    idempotent: bool | None = attrs.field(default=None, kw_only=True)
    reference: str | None = attrs.field(default=None, kw_only=True)
    authenticate: bool = attrs.field(default=True, kw_only=True)
    raise_for_status: bool = attrs.field(default=True, kw_only=True)
    conflict_means_landed: bool = attrs.field(default=False, kw_only=True)


@attrs.frozen(kw_only=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    request_id: str | None = None
    #: True when the write's own response was lost and a lookup proved that the write landed.
    confirmed_by_lookup: bool = False
    backend: str | None = None

    @classmethod
    def confirmed(cls, backend: str | None) -> Response:
        empty = CIMultiDictProxy(CIMultiDict[str]())
        return cls(status=0, headers=empty, body=b"", confirmed_by_lookup=True, backend=backend)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON with Decimal numbers; `ResponseError` when it is not JSON."""
        try:
            return jsoncodec.loads(self.body)
        except ValueError as exc:
            raise ResponseError(
                f"response body is not valid JSON ({exc.__class__.__name__} at position {getattr(exc, 'pos', '?')})",
                backend=self.backend,
                status=self.status,
                request_id=self.request_id,
            ) from None


@attrs.frozen
class ErrorInfo:
    """What an adapter read out of an error response."""

    message: str
    detail: Any = None
    fields: tuple[FieldError, ...] = ()


def default_error_info(response: Response) -> ErrorInfo:
    detail: Any = None
    message = ""
    try:
        detail = response.json()
    except ResponseError:
        message = response.text().strip()  # shortened only after redaction (a cut secret is still a secret)
    if isinstance(detail, Mapping):
        for key in ("message", "error_description", "error", "detail", "title"):
            value = detail.get(key)
            if isinstance(value, str) and value:
                message = value
                break
    return ErrorInfo(message or f"HTTP {response.status}", detail)


#: Default `max_response_bytes`: 64 MiB, counted after decompression.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024

_ABSOLUTE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def check_http_url(url: str, *, what: str, backend: str | None = None) -> None:
    """`ConfigurationError` unless `url` is an http:// or https:// URL with a host (aiohttp refuses the rest).

    The message names the scheme only: a URL may carry a secret.
    """
    try:
        parsed = yarl.URL(url)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} is not a valid URL", backend=backend) from None
    if parsed.scheme.lower() not in ("http", "https"):
        shown = f"{parsed.scheme}://" if parsed.scheme else "no scheme"
        raise ConfigurationError(f"{what} must be an http:// or https:// URL, not {shown}", backend=backend)
    if not parsed.host:
        raise ConfigurationError(f"{what} must name a host (http(s)://host/...)", backend=backend)


@attrs.frozen(kw_only=True)
class TransportConfig:
    backend: str
    base_url: str
    timeout: float = 60.0  # per attempt
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    max_concurrency: int | None = None
    #: A redis:// URL: the rate-limit budget of the credential is the fleet's, kept there (see `limiter_for`).
    shared_state: str | None = attrs.field(default=None, repr=False)
    #: Larger response bodies (after decompression) are refused with `ResponseError` instead of being read.
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    request_id_headers: tuple[str, ...] = ("X-Request-Id", "X-Correlation-Id")
    user_agent: str = "accounting-bridge/0.1"
    default_headers: Mapping[str, str] = attrs.field(factory=dict)


class _Retryable(Exception):
    """An attempt failed in a way that is safe to repeat; carries the error to raise if no attempt is left
    (and the response, which a caller that does not raise for a status gets instead)."""

    def __init__(self, error: AccountingError, wait: float | None = None, response: Response | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait
        self.response = response


class _Wait(wait_base):
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = exc.wait if isinstance(exc, _Retryable) else None
        return self.policy.wait(retry_state.attempt_number, hint)


class _PastDeadline(stop_base):
    """Stop when the next wait would end past the overall deadline (on the transport's clock)."""

    def __init__(self, clock: Callable[[], float], deadline_at: float) -> None:
        self.clock = clock
        self.deadline_at = deadline_at

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.clock() + (retry_state.upcoming_sleep or 0.0) >= self.deadline_at


class Transport:
    """Sends `Request`s for one ledger.

    Sessions and event loops: without a `session`, the transport opens its own aiohttp session on each event loop
    that uses it and closes it when that loop ends (`asyncio.run` and `asyncio.Runner` close unfinished async
    generators before closing the loop; see `_close_with_loop`), so one ledger may serve several `asyncio.run`
    calls, one after the other or at once in several threads. A caller's `session` is used as it is: closed, or
    bound to another loop, is a `ConfigurationError` that says what to do.
    """

    def __init__(
        self,
        config: TransportConfig,
        *,
        auth: AuthStrategy | None = None,
        session: aiohttp.ClientSession | None = None,
        error_info: Callable[[Response], ErrorInfo] = default_error_info,
        secrets: tuple[str, ...] = (),
        sleep: Sleep | None = None,
    ) -> None:
        check_http_url(config.base_url, what="base_url", backend=config.backend)
        self.config = config
        self.auth: AuthStrategy = auth or NoAuth()
        self.redactor = Redactor((*self.auth.secrets(), *secrets))
        self._session = session  # the caller's
        self._owns_session = session is None
        # One session per event loop (two threads may each run a loop that uses this ledger at the same time).
        self._owned: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OwnedSession] = weakref.WeakKeyDictionary()
        self._owned_lock = threading.Lock()
        self._error_info = error_info
        self.sleep: Sleep = sleep or asyncio.sleep
        self.clock: Callable[[], float] = time.monotonic  # measures the overall deadline; tests may fake both
        self._closed = False
        self.attempts = 0  # attempts sent over the lifetime of this transport (for tests and diagnostics)
        self.gate: AttemptGate | None = None  # set by whoever caps this transport's attempts further (a pool)

    def __repr__(self) -> str:
        return f"Transport(backend={self.backend!r}, base_url={self.redactor.url(self.config.base_url)!r})"

    @property
    def backend(self) -> str:
        return self.config.backend

    @property
    def limiter(self) -> RateLimiter:
        """The credential's limiter on the running loop, with this transport's `max_concurrency` registered."""
        limiter = limiter_for(self.backend, self.auth.credential_id, shared_state=self.config.shared_state)
        limiter.set_cap(self, self.config.max_concurrency)
        return limiter

    # --- the session of the running event loop -------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session to use on the running event loop."""
        if self._closed:
            raise ConfigurationError("this ledger is closed", backend=self.backend)
        loop = asyncio.get_running_loop()
        if not self._owns_session:
            return self._caller_session(loop)
        with self._owned_lock:
            self._drop_sessions_of_closed_loops()
            owned = self._owned.get(loop)
            if owned is None or owned.session.closed:
                if owned is not None:
                    owned.retire()
                owned = self._owned[loop] = _OwnedSession.open(self.config)
            return owned.session

    def _caller_session(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        session = self._session
        assert session is not None
        if session.closed:
            raise ConfigurationError(
                "the aiohttp session passed as session= is closed: keep it open as long as the ledger is used, "
                "or leave session= out and the ledger opens (and closes) its own",
                backend=self.backend,
            )
        if session._loop is not loop:
            raise ConfigurationError(
                "the aiohttp session passed as session= belongs to another event loop (it was created under "
                "another asyncio.run() or thread): create it inside the event loop that uses the ledger, or leave "
                "session= out and the ledger opens one per event loop",
                backend=self.backend,
            )
        return session

    def _drop_sessions_of_closed_loops(self) -> None:
        """Forget the sessions of closed loops (a session holds its loop: the entry would keep the loop alive).
        Sessions of loops that are still open, running in another thread or not, are left to those loops."""
        for loop, owned in list(self._owned.items()):
            if loop.is_closed():
                del self._owned[loop]
                owned.retire()

    async def aclose(self) -> None:
        """Close the ledger: this loop's session now; the sessions of other open loops (other threads) close
        when their loops end, so requests in flight there are not cut off."""
        settle = getattr(self.auth, "settle", None)
        if settle is not None and not self._closed:
            # Whoever owns the session, closing it under a token request the server has answered by rotating the
            # refresh token would lose that token: let this transport's renewal end first.
            await settle(self)
        self._closed = True
        limiter = existing_limiter(self.backend, self.auth.credential_id, shared_state=self.config.shared_state)
        if limiter is not None:
            limiter.drop_cap(self)
        if not self._owns_session:
            return
        with self._owned_lock:
            owned = self._owned.pop(asyncio.get_running_loop(), None)
            self._drop_sessions_of_closed_loops()
        if owned is not None:
            await owned.closer.aclose()  # closes the session

    # --- URLs --------------------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        if _ABSOLUTE_URL.match(path):
            check_http_url(path, what="an absolute request path", backend=self.backend)
            return path
        return self.config.base_url.rstrip("/") + "/" + path.lstrip("/")

    def is_foreign(self, path: str) -> bool:
        """Whether `path` is an absolute URL of another origin (scheme, host, port) than `base_url`."""
        if not _ABSOLUTE_URL.match(path):
            return False
        check_http_url(path, what="an absolute request path", backend=self.backend)
        return _origin(path) != _origin(self.config.base_url)

    # --- the retry loop ----------------------------------------------------------------------------------------

    async def send(self, request: Request, *, lookup: Lookup | None = None) -> Response:
        """Send with retries. A non-idempotent write is repeated only when it cannot duplicate: the failure
        proves it was not performed, or `lookup` confirms the object is absent. If `lookup` finds it, the write
        landed and a `Response` with `confirmed_by_lookup=True` is returned; if nothing can tell,
        `WriteOutcomeUnknown` is raised.

        The policy's `deadline` bounds the whole call: every attempt (connect, headers, body), the auth step, the
        wait for a limiter slot, every sleep and every lookup get at most the time left. Running out of it is
        `DeadlineExceeded`, or `WriteOutcomeUnknown` for a write that may already have been performed.
        With `raise_for_status=False` the final response is returned whatever its status (after the same
        retries and 401 renewal).
        """
        if request.authenticate and self.is_foreign(request.path):
            raise ConfigurationError(
                f"{request.method}: an absolute URL of another origin than base_url would receive the ledger's "
                "credential; only unauthenticated requests (authenticate=False) may go to other origins",
                backend=self.backend,
            )
        policy = self.config.retry
        state = _CallState(deadline_at=self.clock() + policy.deadline)
        try:
            try:
                return await self._attempt(request, state, lookup)  # most calls end here, without tenacity's set-up
            except _Retryable as exc:
                first = exc
            return await self._retries(request, state, lookup, first)
        except _Retryable as exc:
            if request.conflict_means_landed and state.ambiguous:
                raise WriteOutcomeUnknown(
                    f"{request.method} {self._path_for_message(request)} may have been performed by an attempt "
                    f"whose answer was lost, and no later attempt could tell ({exc.error})",
                    backend=self.backend,
                    reference=request.reference,
                    request_id=getattr(exc.error, "request_id", None),
                ) from None
            if exc.response is None and state.number <= policy.max_retries:
                # Attempts were left: the deadline stopped the retries (no time for the next wait and attempt).
                out = _OutOfTime(waiting_for=f"time for another attempt after: {exc.error}", maybe_sent=False)
                raise self._out_of_time_error(request, state, out) from None
            if exc.response is not None and not request.raise_for_status:
                return exc.response
            raise exc.error from None
        except _OutOfTime as exc:
            raise self._out_of_time_error(request, state, exc) from None
        except _TooLarge as exc:
            if state.ambiguous and _proves_earlier_attempt_landed(request, exc.status):
                confirmed = Response.confirmed(self.backend)  # the status alone decides: the body does not matter
                return attrs.evolve(confirmed, status=exc.status, request_id=exc.request_id)
            raise self._too_large_error(request, state, exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _retries(self, request: Request, state: _CallState, lookup: Lookup | None, first: _Retryable) -> Response:
        """After a first attempt that failed retryably: one tenacity loop whose first attempt replays that failure,
        so its waits, attempt numbers and stops are exactly those of a loop that had sent the first attempt itself
        (tenacity's set-up costs about 30 µs, a third of a small read's own work: only calls that retry pay it)."""
        policy = self.config.retry
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries + 1) | _PastDeadline(self.clock, state.deadline_at),
            wait=_Wait(policy),
            retry=retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            reraise=True,
        )
        replay: _Retryable | None = first
        async for attempt in retrying:
            with attempt:
                if replay is not None:
                    failure, replay = replay, None
                    raise failure
                return await self._attempt(request, state, lookup)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: Request, state: _CallState, lookup: Lookup | None) -> Response:
        state.number += 1
        try:
            response, used = await self._send_once(request, state)
        except _NotSent as exc:
            raise _Retryable(exc.error) from None
        except _Ambiguous as exc:
            return await self._after_ambiguous(request, state, exc.error, lookup, settled=False, hint=None)
        return await self._judge(request, state, lookup, response, used)

    async def _judge(
        self, request: Request, state: _CallState, lookup: Lookup | None, response: Response, used: object
    ) -> Response:
        """Decide an attempt that got an answer: return it, retry, or raise its error."""
        status = response.status
        if status < 400:
            return response
        if state.ambiguous and _proves_earlier_attempt_landed(request, status):
            logger.debug("%s %s: refused after a lost answer: the earlier attempt landed", self.backend,
                         request.method)  # fmt: skip
            return attrs.evolve(response, confirmed_by_lookup=True)
        error = self._error(response)
        if status == 401 and request.authenticate and not state.renewed:
            state.renewed = True
            renewal = self.auth.renew_after_401(self, used)
            if await self._within_deadline(renewal, state, "renewing the refused credential"):
                raise _Retryable(error, wait=0.0, response=response)
        hint = parse_retry_after(response.headers)
        if hint is not None and hint > self.config.retry.max_retry_after:
            hint = None
            if status == 429:
                return self._final(request, response, error)  # a long (e.g. daily) limit: the caller decides
        if status in WRITE_SAFE_STATUSES:
            raise _Retryable(error, wait=hint, response=response)  # refused before it was performed
        if status >= 500 and status not in NOT_PERFORMED_STATUSES:
            repeatable = RetryPolicy.may_repeat(request.method, request.idempotent)
            if repeatable and status not in RETRYABLE_STATUSES:
                return self._final(request, response, error)
            if not repeatable and not request.raise_for_status:
                return response  # the caller reads the status itself (`raw`): it is the one to look the write up
            return await self._after_ambiguous(
                request, state, error, lookup, settled=status in SETTLED_STATUSES, hint=hint, response=response
            )
        return self._final(request, response, error)

    @staticmethod
    def _final(request: Request, response: Response, error: BackendError) -> Response:
        if request.raise_for_status:
            raise error
        return response

    async def _after_ambiguous(
        self,
        request: Request,
        state: _CallState,
        error: AccountingError,
        lookup: Lookup | None,
        *,
        settled: bool,
        hint: float | None,
        response: Response | None = None,
    ) -> Response:
        """The attempt may or may not have been performed: resend what may be repeated, decide the rest."""
        if RetryPolicy.may_repeat(request.method, request.idempotent):
            state.ambiguous = True
            raise _Retryable(error, wait=hint, response=response)
        if request.conflict_means_landed:
            state.ambiguous = True
            policy = self.config.retry
            # The backend's duplicate check only sees a first attempt that has finished: let it settle.
            settle = 0.0 if settled else policy.settle_delay * max(policy.settle_checks - 1, 1)
            raise _Retryable(error, wait=max(hint or 0.0, settle), response=response)
        return await self._resolve_write(request, state, error, lookup, settled=settled)

    async def _resolve_write(
        self, request: Request, state: _CallState, error: AccountingError, lookup: Lookup | None, *, settled: bool
    ) -> Response:
        """Decide an ambiguous write: confirmed by the lookup, or absent (resend), or `WriteOutcomeUnknown`.

        When the backend may still be working on the request (`settled` False), absence is only believed after
        the lookup has been asked `settle_checks` times, `settle_delay` apart. Lookups and waits stay within the
        deadline; when it runs out first, the outcome is unknown.
        """
        if lookup is None:
            raise self._outcome_unknown(request, f"may or may not have been performed ({error})", error)
        policy = self.config.retry
        checks = 1 if settled else max(policy.settle_checks, 1)
        try:
            for check in range(checks):
                if check:
                    if self.clock() + policy.settle_delay >= state.deadline_at:
                        raise _OutOfTime(waiting_for="time to look the write up again", maybe_sent=False)
                    await self.sleep(policy.settle_delay)
                landed = await self._within_deadline(lookup(), state, "the lookup of the write")
                if landed:
                    break
        except AccountingError as exc:
            raise self._outcome_unknown(
                request, f"failed ambiguously ({error}) and the lookup that should tell failed too ({exc})", error
            ) from None
        except _OutOfTime as exc:
            raise self._outcome_unknown(
                request, f"failed ambiguously ({error}) and the deadline ran out waiting for {exc.waiting_for}", error
            ) from None
        if landed:
            logger.debug("%s %s: response lost, lookup confirms the write landed", self.backend, request.method)
            return Response.confirmed(self.backend)
        raise _Retryable(error)  # confirmed absent: resending cannot duplicate

    def _outcome_unknown(self, request: Request, what: str, error: AccountingError | None) -> WriteOutcomeUnknown:
        return WriteOutcomeUnknown(
            f"{request.method} {self._path_for_message(request)} {what}",
            backend=self.backend,
            reference=request.reference,
            request_id=getattr(error, "request_id", None),
        )

    def _out_of_time_error(self, request: Request, state: _CallState, exc: _OutOfTime) -> AccountingError:
        deadline = self.config.retry.deadline
        what = f"the call's deadline of {deadline:g} s ran out waiting for {exc.waiting_for}"
        repeatable = RetryPolicy.may_repeat(request.method, request.idempotent)
        if not repeatable and (exc.maybe_sent or state.ambiguous):
            return self._outcome_unknown(request, f"may or may not have been performed: {what}", None)
        return DeadlineExceeded(
            f"{request.method} {self._path_for_message(request)}: {what}", backend=self.backend, deadline=deadline
        )

    def _too_large_error(self, request: Request, state: _CallState, exc: _TooLarge) -> AccountingError:
        limit = self.config.max_response_bytes
        said = "declares" if exc.declared else "is"
        what = f"answered {exc.status} with a body that {said} larger than max_response_bytes={limit}"
        is_write = request.method.upper() not in _READ_METHODS
        earlier_may_have_landed = state.ambiguous and not RetryPolicy.may_repeat(request.method, request.idempotent)
        if is_write and (earlier_may_have_landed or not 400 <= exc.status < 500):
            # The write (or an earlier attempt of it) was or may have been performed; only this answer is unreadable.
            return WriteOutcomeUnknown(
                f"{request.method} {self._path_for_message(request)} {what}: it may have been performed",
                backend=self.backend,
                reference=request.reference,
                request_id=exc.request_id,
            )
        return ResponseError(
            f"{request.method} {self._path_for_message(request)} {what}",
            backend=self.backend,
            status=exc.status,
            request_id=exc.request_id,
        )

    async def _within_deadline(self, awaitable: Awaitable[_T], state: _CallState, waiting_for: str) -> _T:
        """Await `awaitable` for the time left before the deadline; `_OutOfTime` after that. Never swallows a
        cancel of the caller (which `wait_for` on Python 3.10/3.11 can)."""
        left = state.deadline_at - self.clock()
        if left <= 0:
            if isinstance(awaitable, Coroutine):
                awaitable.close()
            raise _OutOfTime(waiting_for=waiting_for, maybe_sent=False)
        if sys.version_info >= (3, 11):
            scope = asyncio.timeout(left)  # counts cancels (`uncancel`): only its own becomes TimeoutError
            try:
                async with scope:
                    return await awaitable
            except TimeoutError:
                if scope.expired():
                    raise _OutOfTime(waiting_for=waiting_for, maybe_sent=False) from None
                raise
        return await _within_by_task(awaitable, left, waiting_for)

    # --- one attempt -------------------------------------------------------------------------------------------

    async def _send_once(self, request: Request, state: _CallState) -> tuple[Response, object]:
        session = self.session  # a closed or foreign caller session fails here, before anything is taken
        url = self.url(request.path)
        headers: dict[str, str] = {"User-Agent": self.config.user_agent, **self.config.default_headers}
        headers.update(request.headers)
        params: dict[str, str] = dict(request.params)
        used: object = None
        if request.authenticate:
            used = await self._apply_credential(headers, params, state)
        shown_url = _ShownUrl(self.redactor, url, params)  # redacted text, built only when logged or raised
        limiter = self.limiter
        ticket = await self._acquire(limiter, state)
        answer: tuple[CIMultiDictProxy[str], int] | None = None
        capped = False
        gate, gated = self.gate, False
        started = time.perf_counter()
        try:
            if gate is not None:
                await self._enter(gate, state)
                gated = True
            timeout, capped = self._attempt_timeout(state)
            self.attempts += 1
            data = self._body(request, headers)
            async with session.request(
                request.method,
                url,
                params=params or None,
                headers=headers,
                data=data,
                timeout=timeout,
                allow_redirects=False,
            ) as raw:
                answer = (raw.headers, raw.status)
                body = await self._read_body(request, raw)
            response = Response(
                status=raw.status,
                headers=raw.headers,
                body=body,
                request_id=self._request_id(raw.headers),
                backend=self.backend,
            )
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise ConfigurationError(
                f"{request.method} {shown_url}: aiohttp refuses this URL ({exc.__class__.__name__})",
                backend=self.backend,
            ) from None
        except RuntimeError:
            if not session.closed:
                raise
            raise ConfigurationError(  # aiohttp's bare RuntimeError("Session is closed"), before anything is sent
                f"{request.method} {shown_url}: the aiohttp session was closed before this request could use it "
                "(the ledger was closed meanwhile, or the caller closed the session passed as session=)",
                backend=self.backend,
            ) from None
        except aiohttp.ClientConnectorError as exc:
            self._log(request, shown_url, state.number, started, None, None, exc)
            raise _NotSent(self._transport_error(request, shown_url, exc)) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._log(request, shown_url, state.number, started, None, None, exc)
            connecting = isinstance(exc, aiohttp.ConnectionTimeoutError)
            if capped and isinstance(exc, asyncio.TimeoutError):
                waiting_for = "the connection" if connecting else "the answer"
                raise _OutOfTime(waiting_for=waiting_for, maybe_sent=not connecting) from None
            if connecting:
                raise _NotSent(self._transport_error(request, shown_url, exc)) from None
            raise _Ambiguous(self._transport_error(request, shown_url, exc)) from None
        finally:
            if gated:
                assert gate is not None
                gate.release()
            limiter.release(ticket, *(answer or (None, None)))
        self._log(request, shown_url, state.number, started, response.status, response.request_id, None)
        return response, used

    async def _apply_credential(self, headers: dict[str, str], params: dict[str, str], state: _CallState) -> object:
        auth = self.auth
        if type(auth).apply not in _APPLY_AT_ONCE:
            return await self._within_deadline(auth.apply(self, headers, params), state, "the credential")
        # A static key is added without ever waiting: no timeout scope (a timer per request) can fire around it.
        if state.deadline_at - self.clock() <= 0:
            raise _OutOfTime(waiting_for="the credential", maybe_sent=False)
        return await auth.apply(self, headers, params)

    async def _enter(self, gate: AttemptGate, state: _CallState) -> None:
        left = state.deadline_at - self.clock()
        if left <= 0 or not await gate.acquire(left):
            raise _OutOfTime(waiting_for="a request slot of its pool (the pool's concurrency caps)", maybe_sent=False)

    async def _acquire(self, limiter: RateLimiter, state: _CallState) -> Ticket:
        left = state.deadline_at - self.clock()
        try:
            return await limiter.acquire(max_wait=max(min(self.config.retry.max_retry_after, left), 0.0))
        except RateLimitWaitTooLong as exc:
            raise RateLimited(
                f"the rate limit budget is spent and resets in {exc.wait:.0f} s (more than this call may wait)",
                backend=self.backend,
                retry_after=exc.wait,
            ) from None
        except SlotWaitTimeout:
            raise _OutOfTime(
                waiting_for="a request slot (max_concurrency, or the rate limiter's first request)", maybe_sent=False
            ) from None

    def _attempt_timeout(self, state: _CallState) -> tuple[aiohttp.ClientTimeout, bool]:
        """The attempt's timeout (connect, headers and body), and whether the deadline is what caps it."""
        left = state.deadline_at - self.clock()
        if left <= 0:
            raise _OutOfTime(waiting_for="time for another attempt", maybe_sent=False)
        return attempt_timeout(self.config.timeout, self.config.connect_timeout, left)

    async def _read_body(self, request: Request, raw: aiohttp.ClientResponse) -> bytes:
        """The whole body, at most `max_response_bytes` (counted as decompressed: what the stream yields)."""
        limit = self.config.max_response_bytes
        declared = raw.content_length
        if declared is not None and declared > limit and request.method.upper() != "HEAD":
            raw.close()
            raise _TooLarge(raw.status, self._request_id(raw.headers), declared=True)
        headers = raw.headers
        if declared is not None and "Content-Encoding" not in headers and "Transfer-Encoding" not in headers:
            return await raw.read()  # the parser stops at the declared length (≤ limit): no counting needed
        body = bytearray()
        async for chunk in raw.content.iter_any():
            if len(body) + len(chunk) > limit:
                raw.close()  # the rest is never read: the connection cannot be reused
                raise _TooLarge(raw.status, self._request_id(raw.headers), declared=False)
            body += chunk
        return bytes(body)

    def _body(self, request: Request, headers: dict[str, str]) -> Any:
        if request.files:
            form = aiohttp.FormData()
            for key, value in (request.form or {}).items():
                form.add_field(key, value)
            for part in request.files:
                form.add_field(part.field, part.content, filename=part.filename, content_type=part.content_type)
            return form
        if request.form is not None:
            return aiohttp.FormData(dict(request.form))
        if request.json is not None:
            headers.setdefault("Content-Type", "application/json")
            return jsoncodec.dumps(request.json).encode("utf-8")
        return request.body

    def _request_id(self, headers: Mapping[str, str]) -> str | None:
        for name in self.config.request_id_headers:
            value = headers.get(name)
            if value:
                return value
        return None

    def _error(self, response: Response) -> BackendError:
        info = self._error_info(response)
        cls = error_for_status(response.status)
        message = _shorten(self.redactor.text(info.message))
        kwargs: dict[str, Any] = {
            "backend": self.backend,
            "status": response.status,
            "request_id": response.request_id,
            "detail": self.redactor.data(info.detail),
        }
        if cls is Unprocessable:
            return Unprocessable(message, fields=info.fields, **kwargs)
        if cls is RateLimited:
            return RateLimited(message, retry_after=parse_retry_after(response.headers), **kwargs)
        return cls(message, **kwargs)

    def _transport_error(self, request: Request, shown_url: _ShownUrl, exc: BaseException) -> TransportError:
        reason = self.redactor.text(str(exc)) or exc.__class__.__name__
        return TransportError(
            f"{request.method} {shown_url} failed: {exc.__class__.__name__}: {reason}", backend=self.backend
        )

    def _path_for_message(self, request: Request) -> str:
        return self.redactor.url(self.url(request.path))

    def _log(
        self,
        request: Request,
        shown_url: _ShownUrl,
        number: int,
        started: float,
        status: int | None,
        request_id: str | None,
        exc: BaseException | None,
    ) -> None:
        if not logger.isEnabledFor(logging.DEBUG):
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        outcome = str(status) if exc is None else f"{exc.__class__.__name__}: {self.redactor.text(str(exc))}"
        logger.debug(
            "%s attempt %d: %s %s -> %s in %.0f ms request_id=%s",
            self.backend,
            number,
            request.method,
            str(shown_url),  # a plain string: log records must not carry the unredacted parts
            outcome,
            elapsed_ms,
            request_id or "-",
        )


@attrs.define
class _CallState:
    deadline_at: float
    number: int = 0
    renewed: bool = False
    ambiguous: bool = False  # an earlier attempt may have been performed


class _AttemptFailed(Exception):
    def __init__(self, error: TransportError) -> None:
        super().__init__(str(error))
        self.error = error


class _NotSent(_AttemptFailed):
    """The request never reached the backend (connection not established)."""


class _Ambiguous(_AttemptFailed):
    """The request may have reached the backend (dropped connection, timeout while waiting for the answer)."""


class _OutOfTime(Exception):
    """The deadline ran out. `maybe_sent`: the attempt in flight may have reached the backend."""

    def __init__(self, *, waiting_for: str, maybe_sent: bool) -> None:
        super().__init__(waiting_for)
        self.waiting_for = waiting_for
        self.maybe_sent = maybe_sent


class _TooLarge(Exception):
    """The response body is (or declares to be) larger than `max_response_bytes`."""

    def __init__(self, status: int, request_id: str | None, *, declared: bool) -> None:
        super().__init__(status)
        self.status = status
        self.request_id = request_id
        self.declared = declared


def _proves_earlier_attempt_landed(request: Request, status: int) -> bool:
    """After an attempt whose answer was lost, this refusal of the resend means the goal state holds: a
    deduplicating backend's 409, or a DELETE's 404 (the object is gone)."""
    if status == 409:
        return request.conflict_means_landed
    return status == 404 and request.method.upper() == "DELETE"


async def _within_by_task(awaitable: Awaitable[_T], seconds: float, waiting_for: str) -> _T:
    """Python 3.10 has no `asyncio.timeout`: run `awaitable` as a task and wait for it with `asyncio.wait`, which
    lets a cancel of the caller propagate (the task is cancelled with it)."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait((task,), timeout=seconds)
    except BaseException:
        _abandon(task)
        raise
    if not task.done():
        _abandon(task)
        raise _OutOfTime(waiting_for=waiting_for, maybe_sent=False)
    return task.result()


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel a task nobody waits for any more; its outcome is fetched so that it is never reported as lost."""
    task.cancel()
    task.add_done_callback(_fetch_outcome)


def _fetch_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = yarl.URL(url)
    return parsed.scheme.lower(), (parsed.host or "").lower(), parsed.port


#: An attempt that would end this close to the deadline (or past it) is capped by the deadline instead: its
#: timeout is then the deadline's, and running out of it is `DeadlineExceeded`, not a retryable timeout.
DEADLINE_SLACK = 0.05


#: `apply` methods that return without awaiting anything (the built-in static-key strategies; not subclasses
#: that override `apply`): the transport calls them without a deadline scope.
_APPLY_AT_ONCE = frozenset({NoAuth.apply, ApiKeyQuery.apply, ApiKeyHeader.apply})


def attempt_timeout(timeout: float, connect_timeout: float, left: float) -> tuple[aiohttp.ClientTimeout, bool]:
    """An attempt's aiohttp timeout with `left` seconds to the deadline, and whether the deadline caps it."""
    if left > timeout + DEADLINE_SLACK:
        return _uncapped_timeout(timeout, connect_timeout), False
    capped = aiohttp.ClientTimeout(total=left, sock_connect=min(connect_timeout, left), ceil_threshold=math.inf)
    return capped, True


@functools.lru_cache(maxsize=64)
def _uncapped_timeout(timeout: float, connect_timeout: float) -> aiohttp.ClientTimeout:
    """The timeout of an attempt far from the deadline: the same every time (it is frozen), so built once."""
    return aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout, ceil_threshold=math.inf)


def _session_timeout(config: TransportConfig) -> aiohttp.ClientTimeout:
    # aiohttp rounds timeouts from `ceil_threshold` (5 s by default) up to the next whole second: never here.
    return aiohttp.ClientTimeout(total=config.timeout, sock_connect=config.connect_timeout, ceil_threshold=math.inf)


class _OwnedSession:
    """A session the transport opened on one loop, and the async generator that closes it at that loop's end."""

    def __init__(self, session: aiohttp.ClientSession, closer: AsyncGenerator[None, None]) -> None:
        self.session = session
        self.closer = closer

    @classmethod
    def open(cls, config: TransportConfig) -> _OwnedSession:
        session = aiohttp.ClientSession(timeout=_session_timeout(config))
        # aiohttp resends GET/PUT/DELETE once by itself when the connection drops; then this transport cannot
        # see that an earlier transmission may have been performed (a lost DELETE answer would end in a 404
        # read as NotFound). Every transmission must be an attempt of ours.
        session._retry_connection = False
        async def close() -> None:
            if not session.closed:
                await session.close()

        return cls(session, close_at_loop_end(close))  # from now on the loop closes the session at its end

    def retire(self) -> None:
        """Forget a session that is closed, or whose loop is closed (nothing can close it on its loop any more:
        it is detached, without a warning), and finish its closer at once (no finalizer on a dead loop)."""
        if not self.session.closed:
            self.session.detach()
        with contextlib.suppress(StopIteration, RuntimeError):
            self.closer.aclose().send(None)


class _ShownUrl:
    """The request URL as it may be shown (secrets masked); formatted lazily, cached."""

    def __init__(self, redactor: Redactor, url: str, params: Mapping[str, str]) -> None:
        self._redactor, self._url, self._params = redactor, url, params
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._redactor.url(_with_query(self._url, self._params))
        return self._text


def _with_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _shorten(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
