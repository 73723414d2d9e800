"""Auth strategies: api keys (query or header), bearer tokens, OAuth2 grants and logins, with single-flight refresh.

A strategy adds its credential to a request (`apply`) and, after a 401, may renew it once (`renew_after_401`).
Token-based strategies keep one `TokenSlot` per credential per event loop: however many requests find the token
expired or refused at once, exactly one renewal runs, and a rotated refresh token is saved to the caller's
`TokenStore` before the new access token is used.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ..errors import AuthenticationError, ConfigurationError, ResponseError

if TYPE_CHECKING:
    from .http import Transport

__all__ = [
    "ApiKeyHeader",
    "ApiKeyQuery",
    "AuthStrategy",
    "MemoryTokenStore",
    "NoAuth",
    "OAuth2Client",
    "Token",
    "TokenAuth",
    "TokenStore",
    "fingerprint",
]


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a credential (limiter and lock keys; never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@attrs.frozen(kw_only=True)
class Token:
    """An access token and what is needed to renew it. Secrets are kept out of the repr."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(default=None, repr=False)
    expires_at: _dt.datetime | None = None  # timezone-aware
    scope: str | None = None
    extra: Mapping[str, str] = attrs.field(factory=dict, repr=False)  # backend-specific (e.g. a company id)

    def expires_within(self, margin: _dt.timedelta, now: _dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at - margin <= now


@runtime_checkable
class TokenStore(Protocol):
    """Caller-owned persistence for tokens, keyed per credential (e.g. per tenant)."""

    async def load(self, key: str) -> Token | None: ...

    async def save(self, key: str, token: Token) -> None: ...


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
    """The current token of one credential and the lock that makes its renewal single-flight."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.token: Token | None = None
        self.loaded = False
        #: What this process last read from or wrote to the store: a different stored token was written by
        #: someone else (another process renewed), the same one is ours (perhaps older than `token`).
        self.stored: Token | None = None
        self.renewals = 0


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, TokenSlot]] = weakref.WeakKeyDictionary()


def _same_token(a: Token, b: Token | None) -> bool:
    return b is not None and a.access_token == b.access_token and a.refresh_token == b.refresh_token


def _slot(key: str) -> TokenSlot:
    per_loop = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    slot = per_loop.get(key)
    if slot is None:
        slot = per_loop[key] = TokenSlot()
    return slot


@attrs.define
class TokenAuth:
    """Bearer tokens with renewal: used for OAuth2 grants, logins and caller-provided tokens.

    `store_key` names the credential in the `TokenStore` and keys the single-flight lock; ledgers of one
    credential in one process share the token.
    """

    store_key: str
    obtain: Obtain | None = None
    refresh: Refresh | None = None
    store: TokenStore | None = None
    refresh_margin: _dt.timedelta = _dt.timedelta(seconds=60)
    header: str = "Authorization"
    scheme: str = "Bearer"
    clock: Callable[[], _dt.datetime] = _utcnow
    credential_id: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.obtain is None and self.refresh is None:
            raise ConfigurationError("TokenAuth needs a way to obtain or refresh a token")
        self.credential_id = self.store_key

    @classmethod
    def from_provider(cls, provider: Callable[[], Awaitable[str]], *, store_key: str) -> TokenAuth:
        """Bearer tokens from the caller's own async function (called again after a 401)."""

        async def obtain(_transport: Transport) -> Token:
            return Token(access_token=await provider())

        return cls(store_key=store_key, obtain=obtain)

    @property
    def renewals(self) -> int:
        """How many times the token of this credential was obtained or refreshed in this event loop."""
        return _slot(self.store_key).renewals

    async def token(self, transport: Transport) -> Token:
        slot = _slot(self.store_key)
        if not slot.loaded and self.store is not None:
            async with slot.lock:
                if not slot.loaded:
                    slot.stored = await self.store.load(self.store_key)
                    slot.token = slot.token or slot.stored
                    slot.loaded = True
        seen = slot.token
        if seen is not None and not seen.expires_within(self.refresh_margin, self.clock()):
            return seen
        async with slot.lock:
            current = slot.token
            if current is not None and not current.expires_within(self.refresh_margin, self.clock()):
                return current  # renewed by another caller while we waited
            return await self._renew(transport, slot, current)

    async def _renew(
        self, transport: Transport, slot: TokenSlot, current: Token | None, *, refused: bool = False
    ) -> Token:
        """Renew `current` (expired or missing; `refused` after a 401), under `slot.lock`."""
        if self.store is not None:
            # Another process sharing the store may have renewed (and rotated the single-use refresh token).
            stored = await self.store.load(self.store_key)
            if stored is not None and not _same_token(stored, slot.stored) and not _same_token(stored, current):
                slot.token, slot.stored, slot.loaded = stored, stored, True
                if not refused and not stored.expires_within(self.refresh_margin, self.clock()):
                    return stored
                current = stored  # renew with the freshest refresh token, never a spent one
        if current is not None and current.refresh_token and self.refresh is not None:
            try:
                new = await self.refresh(transport, current)
            except AuthenticationError:
                if self.obtain is None:
                    raise
                new = await self.obtain(transport)
        elif self.obtain is not None:
            new = await self.obtain(transport)
        else:
            raise AuthenticationError(
                "no usable token: a refresh token is needed (pass refresh_token= or a token_store holding one)",
                backend=transport.backend,
            )
        slot.renewals += 1
        try:
            if self.store is not None:
                await self.store.save(self.store_key, new)  # persist a rotated refresh token before using it
                slot.stored = new
        finally:
            # Even if saving failed, the old refresh token is spent: keep the new one rather than lose it.
            slot.token, slot.loaded = new, True
        return new

    async def apply(self, transport: Transport, headers: dict[str, str], params: dict[str, str]) -> object:
        token = await self.token(transport)
        transport.redactor.add(token.access_token, token.refresh_token)
        headers[self.header] = f"{self.scheme} {token.access_token}" if self.scheme else token.access_token
        return token

    async def renew_after_401(self, transport: Transport, used: object) -> bool:
        slot = _slot(self.store_key)
        async with slot.lock:
            if slot.token is used or slot.token is None:
                await self._renew(transport, slot, slot.token, refused=True)
        return True

    def secrets(self) -> tuple[str, ...]:
        return ()  # tokens are handed to the transport's redactor as they are used (see `apply`)


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
