"""`LedgerPool`: many tenants' ledgers opened lazily from profiles, over one bounded aiohttp session.

Every ledger of the pool uses the pool's `aiohttp.ClientSession` (one connector: at most `limit` connections, at
most `limit_per_host` to one host) and holds a request slot, overall and per backend (and per ledger when capped),
for each attempt of a request (see `limits`). Rate limiters and token renewal stay per (backend, credential),
process-wide as for any ledger: two profiles with the same credential share them. ``async with`` closes every
ledger the pool opened, then the session when the pool made it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp

from .. import registry
from ..errors import ConfigurationError
from ..ledger import Ledger
from ..settings import did_you_mean
from ..transport.http import Transport
from .limits import PoolGate, Slots
from .profiles import Profile, ProfilesSource, read_profiles

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["LedgerPool"]

#: Default connection limits of the session the pool opens (aiohttp's own default `limit` is 100 too).
DEFAULT_LIMIT = 100
DEFAULT_LIMIT_PER_HOST = 32


class LedgerPool:
    """``async with ab.LedgerPool(profiles="profiles.toml") as pool: ledger = await pool.get("acme")``.

    `profiles`: a mapping ``{name: {"backend": ..., **settings}}`` or the path of a TOML profiles file (see
    `profiles`). `session`: a caller's session to use instead of the pool's own (the caller closes it; its
    connector's limits then bound the caps). `max_concurrency` (default: `limit`) caps the requests in flight over
    the whole pool, `max_concurrency_per_backend` (default: `limit_per_host`) those to one backend and
    `max_concurrency_per_ledger` (default: no cap of its own) those of one tenant. A slot is held per attempt, only
    while the request is on the wire: a call that backs off or waits for its rate limit holds none. `shared_state`
    is passed to every profile that does not set its own.
    """

    def __init__(
        self,
        profiles: ProfilesSource,
        *,
        session: aiohttp.ClientSession | None = None,
        limit: int = DEFAULT_LIMIT,
        limit_per_host: int = DEFAULT_LIMIT_PER_HOST,
        max_concurrency: int | None = None,
        max_concurrency_per_backend: int | None = None,
        max_concurrency_per_ledger: int | None = None,
        shared_state: str | None = None,
    ) -> None:
        self._profiles: dict[str, Profile] = read_profiles(profiles)
        if session is not None:
            limit, limit_per_host = _connector_limits(session)
        _check_limits(limit, limit_per_host)
        self._limit, self._limit_per_host = limit, limit_per_host
        connections = "the connection limit"
        self._max_concurrency = _cap("max_concurrency", max_concurrency, limit, above=connections)
        self._max_per_backend = _cap(
            "max_concurrency_per_backend", max_concurrency_per_backend, limit_per_host or limit, above=connections
        )
        self._max_per_ledger = (
            None
            if max_concurrency_per_ledger is None
            else _cap(
                "max_concurrency_per_ledger",
                max_concurrency_per_ledger,
                self._max_per_backend,
                above="max_concurrency_per_backend",
            )
        )
        self._shared_state = shared_state
        self._session = session
        self._owns_session = session is None
        self._ledgers: dict[str, Ledger] = {}
        self._opening: dict[str, asyncio.Future[Ledger]] = {}
        self._overall = Slots(self._max_concurrency)
        self._per_backend: dict[str, Slots] = {}
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<LedgerPool profiles={len(self._profiles)} open={len(self._ledgers)}>"

    def names(self) -> list[str]:
        """The profile names, sorted."""
        return sorted(self._profiles)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session every ledger of the pool uses (None until the first `get` when the pool opens its own)."""
        return self._session

    @property
    def opened(self) -> list[str]:
        """The names of the profiles opened so far."""
        return list(self._ledgers)

    async def get(self, name: str) -> Ledger:
        """The ledger of profile `name`, opened on first use: concurrent first calls share one opening."""
        if self._closed:
            raise ConfigurationError("this LedgerPool is closed")
        ledger = self._ledgers.get(name)
        if ledger is not None:
            return ledger
        opening = self._opening.get(name)
        if opening is None:
            opening = self._opening[name] = asyncio.ensure_future(self._open(name, self._profile(name)))
            opening.add_done_callback(_retrieve)
        # A caller that is cancelled stops waiting; the opening goes on for the others (and for the pool's close).
        return await asyncio.shield(opening)

    def _profile(self, name: str) -> Profile:
        profile = self._profiles.get(name)
        if profile is None:
            names = self.names()
            listed = ", ".join(names[:10]) + (f", … ({len(names)} in all)" if len(names) > 10 else "")
            hint = did_you_mean(name, names) or f"; profiles: {listed or '(none)'}"
            raise ConfigurationError(f"no profile named {name!r}{hint}")
        return profile

    async def _open(self, name: str, profile: Profile) -> Ledger:
        try:
            settings = profile.resolve()
            if self._shared_state is not None:
                settings.setdefault("shared_state", self._shared_state)
            settings["session"] = self._session_for_ledgers()
            # Off the event loop: building a ledger hashes its credential (a deliberately slow hash, some ms), and
            # a platform opening hundreds of tenants must not stall the requests of those already open.
            ledger = await asyncio.to_thread(_connect, profile, settings)
            if self._closed:
                await ledger.aclose()
                raise ConfigurationError("this LedgerPool was closed while the ledger was being opened")
            transport = getattr(ledger.adapter, "transport", None)
            if isinstance(transport, Transport):
                transport.gate = PoolGate(self._slots_for(ledger.backend))
            self._ledgers[name] = ledger
            return ledger
        finally:
            del self._opening[name]

    def _session_for_ledgers(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit_per_host)
            session = aiohttp.ClientSession(connector=connector)
            # As on the sessions the transport opens itself: aiohttp must not resend a request on its own, or the
            # transport cannot know that an earlier transmission of a write may have been performed.
            session._retry_connection = False
            self._session = session
        return self._session

    def _slots_for(self, backend: str) -> list[Slots]:
        """A new ledger's slots, narrowest first (its own, if capped, wait holding none of the shared ones)."""
        shared = self._per_backend.get(backend)
        if shared is None:
            shared = self._per_backend[backend] = Slots(self._max_per_backend)
        own = [] if self._max_per_ledger is None else [Slots(self._max_per_ledger)]
        return [*own, shared, self._overall]

    async def aclose(self) -> None:
        """Close every ledger the pool opened, then its own session (a caller's session stays open). A cancelled
        caller stops waiting, but the closing goes on to its end; calling it again waits for that same closing."""
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
            self._closing.add_done_callback(_retrieve)
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        await asyncio.gather(*self._opening.values(), return_exceptions=True)  # they close what they open now
        ledgers, self._ledgers = list(self._ledgers.values()), {}
        outcomes = await asyncio.gather(*(ledger.aclose() for ledger in ledgers), return_exceptions=True)
        if self._owns_session and self._session is not None:
            await self._session.close()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def __aenter__(self) -> LedgerPool:
        if self._closed:
            raise ConfigurationError("this LedgerPool is closed")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _connect(profile: Profile, settings: dict[str, Any]) -> Ledger:
    try:
        return registry.connect(profile.backend, **settings)  # looked up now: a test may route it
    except ConfigurationError as exc:
        where = f"{profile.origin}: " if profile.origin else ""
        raise ConfigurationError(f"{where}profile {profile.name!r}: {exc.message}", backend=exc.backend) from None


def _retrieve(work: asyncio.Future[Any]) -> None:
    """Collect an opening's (or the closing's) outcome, so one whose callers were all cancelled logs no "never
    retrieved" error."""
    if not work.cancelled():
        work.exception()


def _connector_limits(session: aiohttp.ClientSession) -> tuple[int, int]:
    connector = session.connector
    if connector is None:
        return DEFAULT_LIMIT, DEFAULT_LIMIT_PER_HOST
    return connector.limit, connector.limit_per_host


def _check_limits(limit: int, limit_per_host: int) -> None:
    for name, value in (("limit", limit), ("limit_per_host", limit_per_host)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigurationError(f"LedgerPool: {name} must be a whole number >= 0 (0: no limit)")


def _cap(name: str, value: int | None, bound: int, *, above: str) -> int:
    """A concurrency cap: `value`, at most `bound` (named `above`; 0: unbounded); by default `bound`."""
    if value is None:
        return bound or DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"LedgerPool: {name} must be a whole number >= 1")
    if bound and value > bound:
        why = " (a request would wait for a connection inside its own timeout)" if "connection" in above else ""
        raise ConfigurationError(f"LedgerPool: {name}={value} exceeds {above} {bound}{why}; raise it or lower the cap")
    return value
