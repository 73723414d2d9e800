"""The one transport: session ownership, timeouts, retries, write safety, rate limits, auth and logging.

Adapters describe a `Request` and get a `Response`; they never sleep, retry or read rate-limit headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .. import jsoncodec
from ..errors import (
    AccountingError,
    BackendError,
    ConfigurationError,
    FieldError,
    RateLimited,
    ResponseError,
    TransportError,
    Unprocessable,
    WriteOutcomeUnknown,
    error_for_status,
)
from .auth import AuthStrategy, NoAuth
from .ratelimit import RateLimiter, RateLimitWaitTooLong, limiter_for
from .redact import Redactor
from .retry import (
    NOT_PERFORMED_STATUSES,
    RETRYABLE_STATUSES,
    SETTLED_STATUSES,
    WRITE_SAFE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

__all__ = ["ErrorInfo", "FilePart", "Request", "Response", "Transport", "TransportConfig"]

logger = logging.getLogger("accounting_bridge")

Sleep = Callable[[float], Awaitable[None]]
#: Looks the object of an ambiguous write up by its business key: True if it exists (the write landed).
Lookup = Callable[[], Awaitable[bool]]


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


@attrs.frozen(kw_only=True)
class TransportConfig:
    backend: str
    base_url: str
    timeout: float = 60.0  # per attempt
    connect_timeout: float = 10.0
    retry: RetryPolicy = RetryPolicy()
    max_concurrency: int | None = None
    request_id_headers: tuple[str, ...] = ("X-Request-Id", "X-Correlation-Id")
    user_agent: str = "accounting-bridge/0.1"
    default_headers: Mapping[str, str] = attrs.field(factory=dict)


class _Retryable(Exception):
    """An attempt failed in a way that is safe to repeat; carries the error to raise if no attempt is left."""

    def __init__(self, error: AccountingError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


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
    """Sends `Request`s for one ledger. Owns its aiohttp session unless one was passed in."""

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
        self.config = config
        self.auth: AuthStrategy = auth or NoAuth()
        self.redactor = Redactor((*self.auth.secrets(), *secrets))
        self._session = session
        self._owns_session = session is None
        self._error_info = error_info
        self.sleep: Sleep = sleep or asyncio.sleep
        self.clock: Callable[[], float] = time.monotonic  # measures the overall deadline; tests may fake both
        self._closed = False
        self.attempts = 0  # attempts sent over the lifetime of this transport (for tests and diagnostics)

    def __repr__(self) -> str:
        return f"Transport(backend={self.backend!r}, base_url={self.redactor.url(self.config.base_url)!r})"

    @property
    def backend(self) -> str:
        return self.config.backend

    @property
    def limiter(self) -> RateLimiter:
        return limiter_for(self.backend, self.auth.credential_id, max_concurrency=self.config.max_concurrency)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ConfigurationError("this ledger is closed", backend=self.backend)
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.timeout, sock_connect=self.config.connect_timeout),
            )
        return self._session

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.config.base_url.rstrip("/") + "/" + path.lstrip("/")

    # --- the retry loop ----------------------------------------------------------------------------------------

    async def send(self, request: Request, *, lookup: Lookup | None = None) -> Response:
        """Send with retries. A non-idempotent write is repeated only when it cannot duplicate: the failure
        proves it was not performed, or `lookup` confirms the object is absent. If `lookup` finds it, the write
        landed and a `Response` with `confirmed_by_lookup=True` is returned; if nothing can tell,
        `WriteOutcomeUnknown` is raised.
        """
        policy = self.config.retry
        state = _CallState(deadline_at=self.clock() + policy.deadline)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.max_retries + 1) | _PastDeadline(self.clock, state.deadline_at),
            wait=_Wait(policy),
            retry=retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._attempt(request, state, lookup)
        except _Retryable as exc:
            if request.conflict_means_landed and state.ambiguous:
                raise WriteOutcomeUnknown(
                    f"{request.method} {self._path_for_message(request)} may have been performed by an attempt "
                    f"whose answer was lost, and no later attempt could tell ({exc.error})",
                    backend=self.backend,
                    reference=request.reference,
                    request_id=getattr(exc.error, "request_id", None),
                ) from None
            raise exc.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: Request, state: _CallState, lookup: Lookup | None) -> Response:
        state.number += 1
        repeatable = RetryPolicy.may_repeat(request.method, request.idempotent)
        try:
            response, used = await self._send_once(request, state.number, state.deadline_at - self.clock())
        except _NotSent as exc:
            raise _Retryable(exc.error) from None
        except _Ambiguous as exc:
            return await self._after_ambiguous(request, state, exc.error, lookup, settled=False, hint=None)
        status = response.status
        if status < 400 or not request.raise_for_status:
            return response
        if status == 409 and request.conflict_means_landed and state.ambiguous:
            logger.debug("%s %s: duplicate refused after a lost answer: the earlier attempt landed", self.backend,
                         request.method)  # fmt: skip
            return Response.confirmed(self.backend)
        error = self._error(response)
        if status == 401 and request.authenticate and not state.renewed:
            state.renewed = True
            if await self.auth.renew_after_401(self, used):
                raise _Retryable(error, wait=0.0)
        hint = parse_retry_after(response.headers)
        if hint is not None and hint > self.config.retry.max_retry_after:
            hint = None
            if status == 429:
                raise error  # a long (e.g. daily) limit: waiting it out is the caller's decision
        if status in WRITE_SAFE_STATUSES:
            raise _Retryable(error, wait=hint)  # refused before it was performed: any request may be resent
        if status >= 500 and status not in NOT_PERFORMED_STATUSES:
            if repeatable and status not in RETRYABLE_STATUSES:
                raise error
            return await self._after_ambiguous(
                request, state, error, lookup, settled=status in SETTLED_STATUSES, hint=hint
            )
        raise error

    async def _after_ambiguous(
        self,
        request: Request,
        state: _CallState,
        error: AccountingError,
        lookup: Lookup | None,
        *,
        settled: bool,
        hint: float | None,
    ) -> Response:
        """The attempt may or may not have been performed: resend what may be repeated, decide the rest."""
        if RetryPolicy.may_repeat(request.method, request.idempotent):
            raise _Retryable(error, wait=hint)
        if request.conflict_means_landed:
            state.ambiguous = True
            policy = self.config.retry
            # The backend's duplicate check only sees a first attempt that has finished: let it settle.
            settle = 0.0 if settled else policy.settle_delay * max(policy.settle_checks - 1, 1)
            raise _Retryable(error, wait=max(hint or 0.0, settle))
        return await self._resolve_write(request, error, lookup, settled=settled)

    async def _resolve_write(
        self, request: Request, error: AccountingError, lookup: Lookup | None, *, settled: bool
    ) -> Response:
        """Decide an ambiguous write: confirmed by the lookup, or absent (resend), or `WriteOutcomeUnknown`.

        When the backend may still be working on the request (`settled` False), absence is only believed after
        the lookup has been asked `settle_checks` times, `settle_delay` apart.
        """
        request_id = getattr(error, "request_id", None)
        if lookup is None:
            raise WriteOutcomeUnknown(
                f"{request.method} {self._path_for_message(request)} may or may not have been performed ({error})",
                backend=self.backend,
                reference=request.reference,
                request_id=request_id,
            ) from None
        policy = self.config.retry
        checks = 1 if settled else max(policy.settle_checks, 1)
        try:
            for check in range(checks):
                if check:
                    await self.sleep(policy.settle_delay)
                landed = await lookup()
                if landed:
                    break
        except AccountingError as exc:
            raise WriteOutcomeUnknown(
                f"{request.method} {self._path_for_message(request)} failed ambiguously ({error}) and the lookup "
                f"that should tell failed too ({exc})",
                backend=self.backend,
                reference=request.reference,
                request_id=request_id,
            ) from None
        if landed:
            logger.debug("%s %s: response lost, lookup confirms the write landed", self.backend, request.method)
            return Response.confirmed(self.backend)
        raise _Retryable(error)  # confirmed absent: resending cannot duplicate

    # --- one attempt -------------------------------------------------------------------------------------------

    async def _send_once(self, request: Request, number: int, deadline_left: float) -> tuple[Response, object]:
        headers: dict[str, str] = {"User-Agent": self.config.user_agent, **self.config.default_headers}
        headers.update(request.headers)
        params: dict[str, str] = dict(request.params)
        used: object = None
        if request.authenticate:
            used = await self.auth.apply(self, headers, params)
        url = self.url(request.path)
        shown_url = _ShownUrl(self.redactor, url, params)  # redacted text, built only when logged or raised
        limiter = self.limiter
        try:
            ticket = await limiter.acquire(max_wait=min(self.config.retry.max_retry_after, deadline_left))
        except RateLimitWaitTooLong as exc:
            raise RateLimited(
                f"the rate limit budget is spent and resets in {exc.wait:.0f} s (more than this call may wait)",
                backend=self.backend,
                retry_after=exc.wait,
            ) from None
        released = False
        started = time.perf_counter()
        self.attempts += 1
        try:
            data = self._body(request, headers)
            async with self.session.request(
                request.method,
                url,
                params=params or None,
                headers=headers,
                data=data,
                timeout=aiohttp.ClientTimeout(total=self.config.timeout, sock_connect=self.config.connect_timeout),
                allow_redirects=False,
            ) as raw:
                body = await raw.read()
                response = Response(
                    status=raw.status,
                    headers=raw.headers,
                    body=body,
                    request_id=self._request_id(raw.headers),
                    backend=self.backend,
                )
            released = True
            limiter.release(ticket, response.headers, response.status)
        except aiohttp.ClientConnectorError as exc:
            self._log(request, shown_url, number, started, None, None, exc)
            raise _NotSent(self._transport_error(request, shown_url, exc)) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self._log(request, shown_url, number, started, None, None, exc)
            raise _Ambiguous(self._transport_error(request, shown_url, exc)) from None
        finally:
            if not released:
                limiter.release(ticket, None)
        self._log(request, shown_url, number, started, response.status, response.request_id, None)
        return response, used

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
