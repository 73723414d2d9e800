"""Auth strategies: api keys (query or header), bearer tokens, OAuth2 grants and logins, with single-flight refresh.

A strategy adds its credential to a request (`apply`) and, after a 401, may renew it once (`renew_after_401`).
Token-based strategies keep one `TokenSlot` per credential in the process, shared by every event loop and thread:
however many requests (in however many loops) find the token expired or refused at once, one renewal runs, in its
own task (a caller that is cancelled or times out stops waiting, the renewal completes), and a rotated refresh
token is saved to the caller's `TokenStore` before the new access token is used. A save cut off by the end of the
loop is finished first; a failed save is retried by later callers. Tokens are bound to the secret they were
obtained with (`credential_binding`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as _dt
import functools
import hashlib
import secrets as _secrets
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ..errors import AuthenticationError, ConfigurationError, ResponseError, TransportError

if TYPE_CHECKING:
    from .http import Transport

__all__ = [
    "ApiKeyHeader",
    "ApiKeyQuery",
    "AuthStrategy",
    "FleetTokenStore",
    "MemoryTokenStore",
    "NoAuth",
    "OAuth2Client",
    "StaleRenewal",
    "Token",
    "TokenAuth",
    "TokenStore",
    "credential_binding",
    "fingerprint",
]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a credential (limiter and lock keys; never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def credential_binding(*parts: str) -> str:
    """A fingerprint of a credential's secret(s) and where they are used (e.g. client id + secret + host).

    It is saved with every token (a `TokenStore` sees it in clear), so it is a slow, salted hash: a password
    cannot be found from it by guessing quickly. Computed once per distinct credential in a process.
    """
    material = "\x1f".join(("accounting-bridge token binding v1", *parts)).encode()
    return _slow_fingerprint(hashlib.sha256(material).digest())


@functools.lru_cache(maxsize=1024)
def _slow_fingerprint(digest: bytes) -> str:
    return "b1:" + hashlib.pbkdf2_hmac("sha256", digest, b"accounting-bridge/token-binding", 50_000).hex()[:32]


#: Guards the module's registries: event loops in several threads may create their entries at once.
_REGISTRY_LOCK = threading.Lock()
_TAGS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


_ID_TAGS: dict[int, str] = {}


def _object_tag(obj: object) -> str:
    """A random name for an object, the same for as long as it lives (never reused like `id`)."""
    try:
        with _REGISTRY_LOCK:
            tag = _TAGS.get(obj)
            if tag is None:
                tag = _TAGS[obj] = _secrets.token_hex(8)
            return tag
    except TypeError:  # not hashable (an attrs or dataclass store with eq=True): named by id while it lives
        pass
    with _REGISTRY_LOCK:
        tag = _ID_TAGS.get(id(obj))
        if tag is None:
            try:
                weakref.finalize(obj, _ID_TAGS.pop, id(obj), None)  # its id may be reused after it is gone
            except TypeError:  # not weakly referenceable either: never shared
                return _secrets.token_hex(8)
            tag = _ID_TAGS[id(obj)] = _secrets.token_hex(8)
        return tag


@attrs.frozen(kw_only=True)
class Token:
    """An access token and what is needed to renew it. Secrets are kept out of the repr."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expires_at: _dt.datetime | None = None  # timezone-aware
    scope: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, repr=False)  # backend-specific (e.g. a company id)
    #: The `credential_binding` of the credential this token was obtained with (None: unbound, e.g. saved before
    #: bindings existed). Saved with the token; a ledger of another binding never uses its access token.
    binding: str | None = None

    def expires_within(self, margin: _dt.timedelta, now: _dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now


@runtime_checkable
class TokenStore(Protocol):
    """Caller-owned persistence for tokens, keyed per credential (e.g. per tenant)."""

    async def load(self, key: str) -> Token | None: ...

    async def save(self, key: str, token: Token) -> None: ...


@runtime_checkable
class FleetTokenStore(Protocol):
    """A `TokenStore` shared by several processes that also runs their renewals one at a time (e.g.
    `accounting_bridge.fleet.redis_tokens.RedisTokenStore`, chosen by the `shared_state` setting).

    `renewal(key)` waits for the fleet-wide lock of `key` (it has an expiry, so a crashed holder's lock lapses, and
    a fencing token) and yields the store to use while holding it: its `save` raises `StaleRenewal`, writing
    nothing, once a newer holder has taken the lock and saved.
    """

    async def load(self, key: str) -> Token | None: ...

    async def save(self, key: str, token: Token) -> None: ...

    def renewal(self, key: str) -> AbstractAsyncContextManager[TokenStore]: ...


class StaleRenewal(Exception):
    """A save under a renewal lock that a newer holder took over (this holder stalled past the lock's expiry)."""


class MemoryTokenStore:
    """A `TokenStore` in a dict: for tests and single-process services."""

    def __init__(self, initial: Mapping[str, Token] | None = None) -> None:
        self.tokens: dict[str, Token] = dict(initial or {})
        self.saves = 0

    def __repr__(self) -> str:
        return f"MemoryTokenStore(<{len(self.tokens)} tokens>)"

    async def load(self, key: str) -> Token | None:
        return self.tokens.get(key)

    async def save(self, key: str, token: Token) -> None:
        self.saves += 1
        self.tokens[key] = token


class AuthStrategy(Protocol):
    #: A non-secret name of the credential: keys the rate limiter and the refresh lock.
    credential_id: str

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        """Add the credential; returns what was used, to hand back to `renew_after_401`."""
        ...

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        """Renew the credential that was refused; True if a new attempt may succeed."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Every secret value this strategy knows, for redaction."""
        ...


@attrs.define
class NoAuth:
    credential_id: str = "anonymous"

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        return None

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return ()


@attrs.define
class ApiKeyQuery:
    """The key as a query parameter (Run my Accounts: `?api_key=`)."""

    key: str = attrs.field(repr=False)
    param: str = "api_key"
    credential_id: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.credential_id = fingerprint(self.key)

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        params[self.param] = self.key
        return None

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self.key,)


@attrs.define
class ApiKeyHeader:
    """The key in a header, e.g. `Authorization: Bearer <key>` (prefix "Bearer ") or `X-Api-Key: <key>`."""

    key: str = attrs.field(repr=False)
    header: str = "Authorization"
    prefix: str = "Bearer "
    credential_id: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.credential_id = fingerprint(self.key)

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        headers[self.header] = self.prefix + self.key
        return None

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self.key,)


#: Gets a brand-new token from the primary credentials (client credentials, user name + password, a provider).
Obtain = Callable[["Transport"], Awaitable[Token]]
#: Renews a token with its refresh token.
Refresh = Callable[["Transport", Token], Awaitable[Token]]


class TokenSlot:
    """The current token of one credential in this process, shared by every event loop and thread using it.

    Holds no asyncio object (a loop that ends leaves nothing behind here); the renewal in flight is known by a
    thread-safe `_Renewal`, its task only to the loop running it (`_SLOTS`).
    """

    def __init__(self) -> None:
        self.token: Token | None = None
        self.loaded = False
        #: What this process last read from or wrote to the store: a different stored token was written by
        #: someone else (another process renewed), the same one is ours (perhaps older than `token`).
        self.stored: Token | None = None
        #: A token obtained but not saved yet (the save failed or was cut off): saved before it is used again.
        self.unsaved: Token | None = None
        self.renewals = 0
        #: The renewal in flight (store look-up, token request, save), shared by every caller in every loop.
        self.renewal: _Renewal | None = None

    def empty(self) -> bool:
        return self.token is None and self.unsaved is None and self.renewal is None


@attrs.define(eq=False)
class _Renewal:
    """A renewal in flight: its outcome for callers in any loop, the loop running it and the transport it uses."""

    outcome: concurrent.futures.Future[Token]
    loop: weakref.ref[asyncio.AbstractEventLoop]
    transport: Transport

    def stalled(self) -> bool:
        """Its loop is gone, closed or stopped: the renewal cannot end, nobody should wait for it."""
        loop = self.loop()
        return loop is None or loop.is_closed() or not loop.is_running()


class _RenewalAbandoned(Exception):
    """The renewal was cancelled in its own loop (that loop is ending): callers in other loops renew themselves."""


#: The token of every credential (slot key) in this process, for as long as a `TokenAuth` of it lives (each holds
#: its slot): ledgers made and dropped per request leave nothing behind. Guarded by `_REGISTRY_LOCK`.
_TOKENS: weakref.WeakValueDictionary[str, TokenSlot] = weakref.WeakValueDictionary()
#: Per event loop, the task of each renewal running in it (by slot key): gone when it ends.
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Task[Token]]] = (
    weakref.WeakKeyDictionary()
)


def _same_token(a: Token | None, b: Token | None) -> bool:
    return a is not None and b is not None and a.access_token == b.access_token and a.refresh_token == b.refresh_token


def _existing_slot(key: str) -> TokenSlot | None:
    with _REGISTRY_LOCK:
        return _TOKENS.get(key)


def _loop_tasks(loop: asyncio.AbstractEventLoop) -> dict[str, asyncio.Task[Token]]:
    """Call with `_REGISTRY_LOCK` held."""
    per_loop = _SLOTS.get(loop)
    if per_loop is None:
        _forget_closed_loops()
        per_loop = _SLOTS[loop] = {}
    return per_loop


def _forget_closed_loops() -> None:
    """Drop the entries of loops that are closed but still referenced elsewhere (their tasks can never end)."""
    for loop in [loop for loop in list(_SLOTS.keys()) if loop.is_closed()]:
        _SLOTS.pop(loop, None)


def _pass_on(outcome: concurrent.futures.Future[Token], task: asyncio.Task[Token]) -> None:
    """Hand a renewal's outcome to the callers of every loop (and collect it: no 'never retrieved' warning)."""
    if outcome.done():
        return
    if task.cancelled():
        outcome.set_exception(_RenewalAbandoned())
    elif (error := task.exception()) is not None:
        outcome.set_exception(error)
    else:
        outcome.set_result(task.result())


@attrs.define
class TokenAuth:
    """Bearer tokens with renewal: used for OAuth2 grants, logins and caller-provided tokens.

    `store_key` names the credential in the `TokenStore`. `binding` (see `credential_binding`) fingerprints the
    secret the tokens are obtained with: a token is only used by a `TokenAuth` of the same binding, in process and
    from the store. A stored token of another binding (or of none, saved before bindings existed) only lends its
    refresh token, and only when `refresh_proves_secret` (the refresh request itself presents the secret, as the
    OAuth2 refresh grant with a client secret does); otherwise a new token is obtained.
    Ledgers of one credential and binding in one process share the token and its single-flight renewal, in every
    event loop and thread.
    """

    store_key: str
    obtain: Obtain | None = None
    refresh: Refresh | None = None
    store: TokenStore | None = None
    refresh_margin: _dt.timedelta = _dt.timedelta(seconds=60)
    header: str = "Authorization"
    scheme: str = "Bearer"
    clock: Callable[[], _dt.datetime] = _utcnow
    binding: str | None = None
    refresh_proves_secret: bool = False
    credential_id: str = attrs.field(init=False)
    _slot_key: str = attrs.field(init=False, repr=False)
    #: Keeps this credential's process-wide slot alive while this `TokenAuth` lives (`_TOKENS` holds it weakly).
    _held_slot: TokenSlot | None = attrs.field(init=False, default=None, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.obtain is None and self.refresh is None:
            raise ConfigurationError("TokenAuth needs a way to obtain or refresh a token")
        self.credential_id = self.store_key
        self._slot_key = f"{self.store_key}#{self._sharing_scope()}"

    def _sharing_scope(self) -> str:
        """Who shares this credential's token in process: the same binding; without one, whatever it was given."""
        if self.binding is not None:
            return self.binding
        if self.store is not None:
            return "store:" + _object_tag(self.store)  # no secret of its own: the store is the credential
        source = self.obtain or self.refresh
        return "source:" + _object_tag(getattr(source, "__self__", source))  # e.g. the same OAuth2Client

    @classmethod
    def from_provider(
        cls, provider: Callable[[], Awaitable[str]], *, store_key: str, binding: str | None = None
    ) -> TokenAuth:
        """Bearer tokens from the caller's own async function (called again after a 401).

        The tokens are bound to `binding`, by default to this provider: another provider never sees them.
        """

        async def obtain(_transport: Transport) -> Token:
            return Token(access_token=await provider())

        return cls(store_key=store_key, obtain=obtain, binding=binding or "provider:" + _object_tag(provider))

    @property
    def renewals(self) -> int:
        """How many times the token of this credential was obtained or refreshed in this process."""
        slot = _existing_slot(self._slot_key)
        return slot.renewals if slot is not None else 0

    def usable(self, token: Token | None) -> bool:
        """True if `token` may be sent by this credential now: ours, with an access token, not about to expire."""
        return (
            token is not None
            and bool(token.access_token)
            and token.binding == self.binding
            and not token.expires_within(self.refresh_margin, self.clock())
        )

    async def token(self, transport: Transport) -> Token:
        slot = _existing_slot(self._slot_key)
        if slot is not None and slot.unsaved is None and (slot.loaded or self.store is None):
            self._held_slot = slot
            current = slot.token
            if self.usable(current):
                assert current is not None
                return current
        return await self._shared_renewal(transport, refused=None)

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        token = await self.token(transport)
        transport.redactor.rotate(self._slot_key, token.access_token, token.refresh_token)
        headers[self.header] = f"{self.scheme} {token.access_token}" if self.scheme else token.access_token
        return token

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        for _ in range(3):  # a renewal already in flight may end before it saw the refusal: then one of our own
            slot = _existing_slot(self._slot_key)
            current = slot.token if slot is not None else None
            if current is not None and current is not used:
                break
            await self._shared_renewal(transport, refused=current)
        return True

    def secrets(self) -> tuple[str, ...]:
        return ()  # tokens are handed to the transport's redactor as they are used (see `apply`)

    async def settle(self, transport: Transport, timeout: float = 5.0) -> None:
        """Let the renewal that `transport` runs in this loop end (at most `timeout` seconds), so that closing
        the transport's session does not cut off a token request the server may already have answered by
        rotating the refresh token. Its outcome is for its callers: nothing is raised here."""
        loop = asyncio.get_running_loop()
        with _REGISTRY_LOCK:
            slot = _TOKENS.get(self._slot_key)
            task = _SLOTS.get(loop, {}).get(self._slot_key)
            ours = slot is not None and slot.renewal is not None and slot.renewal.transport is transport
        if task is not None and ours:
            await asyncio.wait({task}, timeout=timeout)

    # --- the single-flight renewal ------------------------------------------------------------------------------

    async def _shared_renewal(self, transport: Transport, *, refused: Token | None) -> Token:
        """Join the renewal in flight (in any loop), or start one. It runs in its own task: a caller that is
        cancelled (or times out) stops waiting, but the token request and the save of a rotated refresh token
        complete."""
        for attempt in range(3):
            renewal, task = self._join_or_start(transport, refused)
            try:
                if task is not None:
                    return await asyncio.shield(task)
                return await asyncio.shield(asyncio.wrap_future(renewal.outcome))
            except _RenewalAbandoned:
                # The loop running it ended (another thread's `asyncio.run`, even on this same ledger): no answer
                # for a caller whose loop still runs; it renews itself.
                if attempt == 2:
                    raise TransportError(
                        "the token renewal was abandoned three times: the event loops running it ended",
                        backend=transport.backend,
                    ) from None
            except ConfigurationError:
                if attempt == 2 or not self._renewed_on_closed_ledger(transport, renewal):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _renewed_on_closed_ledger(transport: Transport, renewal: _Renewal) -> bool:
        """A renewal that another, since closed ledger ran is no answer for a caller whose own ledger is open:
        it renews on its own transport."""
        return renewal.transport is not transport and bool(getattr(renewal.transport, "_closed", False))

    def _join_or_start(
        self, transport: Transport, refused: Token | None
    ) -> tuple[_Renewal, asyncio.Task[Token] | None]:
        """The renewal to wait for and, when it runs in this loop, its task."""
        loop = asyncio.get_running_loop()
        with _REGISTRY_LOCK:
            slot = _TOKENS.get(self._slot_key)
            if slot is None:
                slot = _TOKENS[self._slot_key] = TokenSlot()
            self._held_slot = slot
            renewal = slot.renewal
            if renewal is not None and not renewal.outcome.done():
                if renewal.loop() is loop:
                    return renewal, _loop_tasks(loop)[self._slot_key]
                if not renewal.stalled():
                    return renewal, None
            renewal = slot.renewal = _Renewal(concurrent.futures.Future(), weakref.ref(loop), transport)
            task = loop.create_task(self._renew(transport, slot, refused))
            _loop_tasks(loop)[self._slot_key] = task
        task.add_done_callback(functools.partial(self._renewal_ended, slot, renewal))
        return renewal, task

    def _renewal_ended(self, slot: TokenSlot, renewal: _Renewal, task: asyncio.Task[Token]) -> None:
        """Forget the renewal (nothing keeps its loop), drop a slot left with nothing, tell the other loops."""
        loop = renewal.loop()
        with _REGISTRY_LOCK:
            per_loop = _SLOTS.get(loop) if loop is not None else None
            if loop is not None and per_loop is not None and per_loop.get(self._slot_key) is task:
                del per_loop[self._slot_key]
                if not per_loop:
                    del _SLOTS[loop]  # a loop with no renewal in flight is not held here at all
            if slot.renewal is renewal:
                slot.renewal = None
            if slot.empty() and _TOKENS.get(self._slot_key) is slot:
                del _TOKENS[self._slot_key]  # e.g. a wrong secret: its attempts leave nothing behind
        _pass_on(renewal.outcome, task)

    async def _renew(self, transport: Transport, slot: TokenSlot, refused: Token | None) -> Token:
        """The renewal; with a `FleetTokenStore`, under its fleet-wide lock (one renewal across processes)."""
        store = self.store
        if not isinstance(store, FleetTokenStore):
            return await self._renew_with(store, transport, slot, refused, fleet=False)
        async with store.renewal(self.store_key) as fenced:
            try:
                return await self._renew_with(fenced, transport, slot, refused, fleet=True)
            except StaleRenewal:
                # A newer holder took the lock while this one stalled: its token wins, ours is never saved or used.
                slot.token = slot.unsaved = None
                slot.loaded = False
                raise TransportError(
                    "another process took over this credential's token renewal (this one stalled past the "
                    "renewal lock's expiry): retry",
                    backend=transport.backend,
                ) from None

    async def _renew_with(
        self, store: TokenStore | None, transport: Transport, slot: TokenSlot, refused: Token | None, *, fleet: bool
    ) -> Token:
        """Save a token left unsaved, look at the store (another process may have renewed), then renew unless a
        usable token is left and none was `refused` (after a 401 we renew, with the freshest refresh token: never
        a spent one). In a fleet, a usable stored token other than the refused one was renewed by another process
        while we waited for the lock: it is used as it is."""
        if slot.unsaved is not None:
            with contextlib.suppress(Exception):  # the caller whose renewal failed to save heard of it
                await self._save(slot, slot.unsaved, store)
        current = slot.token
        if store is not None:
            current = self._adopt(slot, await store.load(self.store_key), current)
        slot.loaded = True
        fresh = refused is None or (fleet and current is not None and not _same_token(current, refused))
        if fresh and self.usable(current):
            assert current is not None
            slot.token = current
            return current
        if current is not None:
            transport.redactor.rotate(self._slot_key, current.access_token, current.refresh_token)
        new = self._as_issued(await self._fetch(transport, current))
        transport.redactor.rotate(self._slot_key, new.access_token, new.refresh_token)
        slot.renewals += 1
        # The old refresh token is spent: the new one is kept in process at once, and saved before it is used.
        slot.token, slot.loaded = new, True
        if store is not None:
            slot.unsaved = new
            await self._save(slot, new, store)
        return new

    async def _save(self, slot: TokenSlot, token: Token, store: TokenStore | None) -> None:
        """Persist a (rotated) token. A failure leaves it in `slot.unsaved`, to be saved again by the next caller;
        a cancellation (the loop is ending) is honoured only once the save is done."""
        assert store is not None
        interrupted = False
        while True:
            try:
                await store.save(self.store_key, token)
                break
            except asyncio.CancelledError:
                if interrupted:
                    raise
                interrupted = True
        slot.stored = token
        if slot.unsaved is token:
            slot.unsaved = None
        if interrupted:
            raise asyncio.CancelledError

    def _adopt(self, slot: TokenSlot, stored: Token | None, current: Token | None) -> Token | None:
        """The token to go on with, given what the store holds now."""
        if stored is None:
            return current
        if stored.binding != self.binding:
            slot.stored = stored
            if current is not None:
                return current  # ours wins over a token obtained with another secret
            if self.refresh_proves_secret and stored.refresh_token:
                return Token(access_token="", refresh_token=stored.refresh_token, binding=self.binding)
            return None  # nothing of it may be used: obtain afresh
        if not slot.loaded:
            slot.stored = stored
            return current or stored
        if not _same_token(stored, slot.stored) and not _same_token(stored, current):
            slot.stored = stored  # someone else renewed (and rotated the single-use refresh token)
            return stored
        return current

    async def _fetch(self, transport: Transport, current: Token | None) -> Token:
        if current is not None and current.refresh_token and self.refresh is not None:
            try:
                return await self.refresh(transport, current)
            except AuthenticationError:
                if self.obtain is None:
                    raise
        if self.obtain is not None:
            return await self.obtain(transport)
        raise AuthenticationError(
            "no usable token: a refresh token is needed (pass refresh_token= or a token_store holding one)",
            backend=transport.backend,
        )

    def _as_issued(self, token: Token) -> Token:
        """Bind a fresh token to our credential; an expiry already past (or within the margin) at issue is not
        believed (clock or zone skew): the token is then renewed after a 401 instead of before every request."""
        expires_at = token.expires_at
        if expires_at is not None and token.expires_within(self.refresh_margin, self.clock()):
            expires_at = None
        if token.binding == self.binding and expires_at == token.expires_at:
            return token
        return attrs.evolve(token, binding=self.binding, expires_at=expires_at)


@attrs.define
class OAuth2Client:
    """RFC 6749 token requests (client credentials and refresh token grants) through the transport.

    `body` is "json" or "form": some backends take the token request as JSON.
    """

    token_url: str
    client_id: str
    client_secret: str = attrs.field(repr=False)
    scopes: tuple[str, ...] = ()
    body: str = "form"
    clock: Callable[[], _dt.datetime] = _utcnow

    def secrets(self) -> tuple[str, ...]:
        return (self.client_secret,)

    async def client_credentials(self, transport: Transport) -> Token:
        fields = {"grant_type": "client_credentials", "client_id": self.client_id, "client_secret": self.client_secret}
        if self.scopes:
            fields["scope"] = " ".join(self.scopes)
        return await self._request(transport, fields)

    async def refresh_token(self, transport: Transport, token: Token) -> Token:
        assert token.refresh_token is not None
        fields = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": token.refresh_token,
        }
        return await self._request(transport, fields)

    async def _request(self, transport: Transport, fields: dict[str, str]) -> Token:
        from .http import Request

        if self.body == "json":
            request = Request("POST", self.token_url, json=fields, authenticate=False, idempotent=True)
        else:
            request = Request("POST", self.token_url, form=fields, authenticate=False, idempotent=True)
        try:
            response = await transport.send(request)
        except AuthenticationError as exc:
            raise self._refused(exc, fields["grant_type"]) from None
        except Exception as exc:
            if getattr(exc, "status", None) == 400:
                raise self._refused(exc, fields["grant_type"]) from None
            raise
        return token_from_response(response.json(), clock=self.clock, backend=transport.backend)

    @staticmethod
    def _refused(exc: Any, grant: str) -> AuthenticationError:
        detail = getattr(exc, "detail", None)
        code = detail.get("error") if isinstance(detail, Mapping) else None
        text = f"the token request ({grant}) was refused"
        if code == "invalid_grant" or (isinstance(detail, Mapping) and "invalid_grant" in str(detail)):
            text = (
                "the refresh token was refused (invalid_grant): it was already used or revoked. Refresh tokens are "
                "single use; give every process the same TokenStore so a rotated token is never lost"
                if grant == "refresh_token"
                else "the credentials were refused (invalid_grant)"
            )
        elif code == "invalid_client":
            text = (
                f"the client credentials were refused (invalid_client) in the token request ({grant}): check the "
                "client id and secret"
            )
        return AuthenticationError(
            text,
            backend=getattr(exc, "backend", None),
            status=getattr(exc, "status", None),
            request_id=getattr(exc, "request_id", None),
            detail=detail,
        )


def token_from_response(
    data: Any, *, clock: Callable[[], _dt.datetime] = _utcnow, backend: str | None = None
) -> Token:
    """Read a standard OAuth2 token response (`access_token`, `refresh_token`, `expires_in`)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("access_token"), str):
        raise ResponseError("token response without an access_token", backend=backend)
    expires_in = data.get("expires_in")
    expires_at = None
    if expires_in is not None:
        try:
            expires_at = clock() + _dt.timedelta(seconds=int(expires_in))
        except (TypeError, ValueError):
            raise ResponseError("token response with an unreadable expires_in", backend=backend) from None
    refresh = data.get("refresh_token")
    return Token(
        access_token=data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) else None,
        expires_at=expires_at,
        scope=data.get("scope") if isinstance(data.get("scope"), str) else None,
    )
