"""Tokens of a fleet in Redis, and the fleet-wide renewal lock (a `FleetTokenStore`, see `transport/auth.py`).

Keys are hashes of the store key (`SharedState.key`), never a secret; the token itself is a secret stored as a
value (protect the Redis: password, `rediss://`). The lock of a credential is a key with an expiry (`lock_ttl`)
holding ``fence:owner``; the fence is a counter raised by every acquisition. While held, the live holder extends
the expiry every third of it, so only a holder that died (or froze) loses it; another process then takes it over
with a higher fence. A save under the lock is refused (`StaleRenewal`) when a newer fence was issued AND the stored
token changed since this holder read it: a stale holder never overwrites a newer token, yet a holder whose lock
merely lapsed, with nobody else renewing, still saves the rotated refresh token it alone holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator
from typing import Any

from ..errors import TransportError
from ..transport.auth import StaleRenewal, Token, TokenStore
from .redis_state import SharedState, shared_errors

__all__ = ["RedisTokenStore"]

#: KEYS: lock, fence counter. ARGV: owner, ttl ms. Returns {1, fence} or {0, ms the lock still lives}.
_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], fence .. ':' .. ARGV[1], 'PX', ARGV[2])
return {1, fence}
"""
#: KEYS: lock. ARGV: value, ttl ms. Extends the lock if it is still ours.
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
#: KEYS: lock. ARGV: value. Deletes the lock if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: KEYS: token hash, fence counter. ARGV: fence, version read, token. 1 saved, 0 refused (stale holder).
_FENCED_SAVE = """
local newest = tonumber(redis.call('GET', KEYS[2])) or 0
local version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
if newest ~= tonumber(ARGV[1]) and version ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[3], 'version', version + 1)
return 1
"""
#: KEYS: token hash. ARGV: token. Saved unconditionally (outside a renewal, e.g. a token seeded by the caller).
_SAVE = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version')) or 0
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'version', version + 1)
return 1
"""


def _dump(token: Token) -> str:
    return json.dumps(
        {
            "access_token": token.access_token,
            "refresh_token": token.refresh_token,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "scope": token.scope,
            "extra": dict(token.extra),
            "binding": token.binding,
        }
    )


def _load(text: str | None) -> Token | None:
    if not text:
        return None
    data: dict[str, Any] = json.loads(text)
    expires = data.get("expires_at")
    return Token(
        access_token=data["access_token"],
        refresh_token=data.get("refresh_token"),
        expires_at=_dt.datetime.fromisoformat(expires) if expires else None,
        scope=data.get("scope"),
        extra=data.get("extra") or {},
        binding=data.get("binding"),
    )


def _unreachable(exc: BaseException) -> TransportError:
    return TransportError(
        f"the shared token store (Redis, shared_state) is unreachable: {exc.__class__.__name__}", backend=None
    )


class RedisTokenStore:
    """`TokenStore` + fleet-wide renewal lock in Redis (`FleetTokenStore`). Made by `ab.connect(shared_state=...)`."""

    def __init__(self, state: SharedState | str) -> None:
        self.state = state if isinstance(state, SharedState) else SharedState.parse(state)
        #: Renewal locks this store acquired, and how often it found one held by another process (tests).
        self.locks_taken = 0
        self.locks_waited = 0

    def __repr__(self) -> str:
        return "RedisTokenStore(<shared_state>)"

    def _keys(self, key: str) -> tuple[str, str, str]:
        return self.state.key("token", key), self.state.key("lock", key), self.state.key("fence", key)

    async def load(self, key: str) -> Token | None:
        token, _ = await self._read(key)
        return token

    async def save(self, key: str, token: Token) -> None:
        await self._run(_SAVE, [self._keys(key)[0]], [_dump(token)])

    async def _read(self, key: str) -> tuple[Token | None, int]:
        try:
            text, version = await self.state.client().hmget(self._keys(key)[0], ["token", "version"])
        except shared_errors() as exc:
            raise _unreachable(exc) from None
        return _load(text if isinstance(text, str) else None), int(version or 0)

    async def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.state.client().eval(script, len(keys), *keys, *args)
        except shared_errors() as exc:
            raise _unreachable(exc) from None

    @contextlib.asynccontextmanager
    async def renewal(self, key: str) -> AsyncIterator[TokenStore]:
        """Hold the fleet-wide renewal lock of `key` (waiting `lock_wait` at most); yields the fenced store."""
        _, lock_key, fence_key = self._keys(key)
        owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        fence = await self._acquire(lock_key, fence_key, owner)
        value = f"{fence}:{owner}"
        keeper = asyncio.get_running_loop().create_task(self._keep(lock_key, value))
        try:
            yield _FencedStore(self, key, fence)
        finally:
            keeper.cancel()
            with contextlib.suppress(Exception):  # an unreachable Redis lets the lock lapse by itself
                await self._run(_RELEASE, [lock_key], [value])

    async def _acquire(self, lock_key: str, fence_key: str, owner: str) -> int:
        ttl_ms = int(self.state.lock_ttl * 1000)
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.state.lock_wait
        waited = False
        while True:
            taken, number = (int(part) for part in await self._run(_ACQUIRE, [lock_key, fence_key], [owner, ttl_ms]))
            if taken:
                self.locks_taken += 1
                return number
            if not waited:
                waited = True
                self.locks_waited += 1
            if loop.time() >= give_up_at:
                raise TransportError(
                    "another process has held this credential's token renewal lock longer than lock_wait", backend=None
                )
            # poll: the holder's renewal ends (or its lock lapses) within `number` ms
            await asyncio.sleep(min(max(number, 1) / 1000, 0.05) * random.uniform(0.5, 1.0))  # noqa: S311

    async def _keep(self, lock_key: str, value: str) -> None:
        """Extend the lock every third of its expiry while this holder lives."""
        ttl_ms = int(self.state.lock_ttl * 1000)
        while True:
            await asyncio.sleep(self.state.lock_ttl / 3)
            try:
                if not int(await self._run(_EXTEND, [lock_key], [value, ttl_ms])):
                    return  # lost (lapsed and taken over): the fenced save will tell
            except TransportError:
                continue


class _FencedStore:
    """The store as seen by one lock holder: `save` is refused (`StaleRenewal`) for a stale holder."""

    def __init__(self, store: RedisTokenStore, key: str, fence: int) -> None:
        self._store, self._key, self._fence = store, key, fence
        self._version = 0

    async def load(self, key: str) -> Token | None:
        token, self._version = await self._store._read(key)
        return token

    async def save(self, key: str, token: Token) -> None:
        token_key, _, fence_key = self._store._keys(key)
        saved = await self._store._run(_FENCED_SAVE, [token_key, fence_key], [self._fence, self._version, _dump(token)])
        if not int(saved):
            raise StaleRenewal("a newer holder of the renewal lock saved another token")
        self._version += 1
