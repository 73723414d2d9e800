"""The `shared_state` URL: parsing, key names (hashes, never secrets) and one redis.asyncio client per event loop.

``redis://[:password@]host:port/db`` (or ``rediss://``, ``unix://``). Three query parameters are ours and are taken
out before the URL reaches redis-py: ``key_prefix`` (default ``accounting-bridge``), ``lock_ttl`` (seconds a renewal
lock lives without being extended by its live holder, default 15) and ``lock_wait`` (seconds a renewal waits for
another process's lock at most, default 120). Messages never show the URL (it may carry a password).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from ..errors import ConfigurationError
from ..loop_end import close_at_loop_end

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["SCHEMES", "SharedState", "shared_errors", "with_shared_tokens"]

SCHEMES = ("redis", "rediss", "unix")
#: Connection timeouts of the shared-state client: a Redis that is gone must not stall requests (they fall back).
CONNECT_TIMEOUT = 1.0
SOCKET_TIMEOUT = 2.0
#: Connections per event loop and URL; more concurrent commands queue for one. The queue has no deadline of its
#: own: every command holding a connection ends within `SOCKET_TIMEOUT`, and a queue that is merely long (a starved
#: process) must not read as "Redis unreachable" (that would fall back to local limits and overspend the budget).
MAX_CONNECTIONS = 16


def _seconds(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400:
        raise ConfigurationError(f"setting 'shared_state': query parameter {name} must be seconds > 0")
    return value


@attrs.frozen
class SharedState:
    """Where a fleet's shared state lives. Build it with `SharedState.parse(url)`."""

    url: str = attrs.field(repr=False)  # for redis-py, without our own query parameters
    key_prefix: str = "accounting-bridge"
    lock_ttl: float = 15.0
    lock_wait: float = 120.0

    @classmethod
    def parse(cls, url: object) -> SharedState:
        if not isinstance(url, str):
            raise ConfigurationError(f"setting 'shared_state' must be a redis:// URL, not {type(url).__name__}")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ConfigurationError("setting 'shared_state' is not a valid URL") from None
        if parts.scheme.lower() not in SCHEMES:
            shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
            raise ConfigurationError(
                f"setting 'shared_state' must be a redis://, rediss:// or unix:// URL, not {shown}"
            )
        if parts.scheme.lower() != "unix" and not parts.hostname:
            raise ConfigurationError("setting 'shared_state' must name a host (redis://host:port/db)")
        ours: dict[str, Any] = {}
        rest: list[tuple[str, str]] = []
        for name, value in parse_qsl(parts.query, keep_blank_values=True):
            if name == "key_prefix":
                if not value or not value.isprintable() or len(value) > 100:
                    raise ConfigurationError("setting 'shared_state': key_prefix must be 1..100 printable characters")
                ours[name] = value
            elif name in ("lock_ttl", "lock_wait"):
                ours[name] = _seconds(name, value)
            else:
                rest.append((name, value))
        plain = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
        return cls(plain, **ours)

    def key(self, kind: str, *parts: str) -> str:
        """A Redis key for `parts` (e.g. backend and credential name): a hash of them, never them in clear."""
        digest = hashlib.sha256("\x1f".join(("accounting-bridge shared v1", kind, *parts)).encode()).hexdigest()
        return f"{self.key_prefix}:{kind}:{digest[:32]}"

    def client(self) -> Redis:
        """The redis.asyncio client of this URL on the running event loop (closed when that loop ends)."""
        return _client_for(asyncio.get_running_loop(), self.url)


def shared_errors() -> tuple[type[BaseException], ...]:
    """What a Redis that is unreachable (or refuses) raises: the caller falls back or reports it."""
    from redis.exceptions import RedisError

    return (RedisError, OSError, asyncio.TimeoutError)


_LOCK = threading.Lock()
#: Per event loop and URL: the client and the parked generator that closes it when the loop ends. The generator
#: must be held here: the loop only keeps a weak reference, and a collected one would close the client at once.
_CLIENTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[Redis, AsyncGenerator[None, None]]]
] = weakref.WeakKeyDictionary()


def _client_for(loop: asyncio.AbstractEventLoop, url: str) -> Redis:
    with _LOCK:
        per_loop = _CLIENTS.setdefault(loop, {})
        found = per_loop.get(url)
        if found is not None:
            return found[0]
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=None,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            decode_responses=True,
        )
        client = Redis.from_pool(pool)
        per_loop[url] = (client, close_at_loop_end(client.aclose))  # the loop's end closes its connections
    return client


def with_shared_tokens(settings: Any, *, backend: str) -> Any:
    """`settings` (with `shared_state` set) whose `token_store` is the fleet's (`RedisTokenStore`).

    A `token_store` of the caller's own as well is refused: the fleet's renewal lock and its tokens must live
    together, or two processes could renew one credential at once.
    """
    if settings.token_store is not None:
        raise ConfigurationError(
            "pass either token_store or shared_state, not both: shared_state keeps the tokens (and the renewal "
            "lock) in Redis",
            backend=backend,
        )
    from .redis_tokens import RedisTokenStore

    return attrs.evolve(settings, token_store=RedisTokenStore(settings.shared_state))
