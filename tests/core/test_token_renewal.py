"""A rotated refresh token is never lost: not when the loop ends mid-renewal, not when a save fails, not between
event loops or threads; renewals are single-flight across loops, and failed attempts leave nothing behind."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
from collections.abc import Iterator

import aiohttp
import attrs
import pytest

from accounting_bridge.errors import AuthenticationError, ConfigurationError
from accounting_bridge.transport import MemoryTokenStore, Token, TokenAuth, Transport, TransportConfig
from accounting_bridge.transport import auth as auth_module

KEY = "renewal-test"
BINDING = "b-renewal-test"


@pytest.fixture(autouse=True)
def no_tokens_of_earlier_tests() -> Iterator[None]:
    with auth_module._REGISTRY_LOCK:
        auth_module._TOKENS.clear()
    yield
    with auth_module._REGISTRY_LOCK:
        auth_module._TOKENS.clear()


class RotatingServer:
    """Single-use refresh tokens: each refresh spends the one presented and issues the next."""

    def __init__(self) -> None:
        self.valid = {"refresh-1-secretvalue"}
        self.issued = 1
        self.calls = 0
        self.lock = threading.Lock()

    async def refresh(self, _transport: Transport, token: Token) -> Token:
        return self.rotate(token)

    def rotate(self, token: Token) -> Token:
        with self.lock:
            self.calls += 1
            if token.refresh_token not in self.valid:
                raise AuthenticationError("invalid_grant", backend="test")
            self.valid.discard(token.refresh_token)
            self.issued += 1
            self.valid.add(f"refresh-{self.issued}-secretvalue")
            return Token(
                access_token=f"access-{self.issued}-secretvalue", refresh_token=f"refresh-{self.issued}-secretvalue"
            )


def stored_start() -> MemoryTokenStore:
    return MemoryTokenStore({KEY: Token(access_token="", refresh_token="refresh-1-secretvalue", binding=BINDING)})


def transport_for(auth: TokenAuth, **kwargs: object) -> Transport:
    config = TransportConfig(backend="renewal-test", base_url="http://127.0.0.1:9")
    return Transport(config, auth=auth, **kwargs)  # type: ignore[arg-type]


class StallingStore(MemoryTokenStore):
    """The first save never ends by itself (it is cut off by the loop's end); later saves succeed."""

    def __init__(self, initial: dict[str, Token]) -> None:
        super().__init__(initial)
        self.save_started = asyncio.Event()
        self.attempts = 0

    async def save(self, key: str, token: Token) -> None:
        self.attempts += 1
        if self.attempts == 1:
            self.save_started.set()
            await asyncio.Event().wait()
        await super().save(key, token)


def test_the_end_of_asyncio_run_does_not_cut_off_the_save_of_a_rotated_token() -> None:
    server = RotatingServer()
    store = StallingStore(dict(stored_start().tokens))
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, binding=BINDING)

    async def main() -> None:
        store.save_started = asyncio.Event()
        asyncio.get_running_loop().create_task(auth.token(transport_for(auth)))
        await store.save_started.wait()  # the server rotated; the save is under way when the run ends

    asyncio.run(main())  # its shutdown cancels the renewal
    assert store.tokens[KEY].refresh_token == "refresh-2-secretvalue"
    assert server.valid == {"refresh-2-secretvalue"}


def test_a_renewal_left_behind_by_a_closed_loop_is_saved_by_the_next_loop() -> None:
    server = RotatingServer()
    store = StallingStore(dict(stored_start().tokens))
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, binding=BINDING)
    unraisable: list[BaseException | None] = []
    loop = asyncio.new_event_loop()

    async def start() -> None:
        store.save_started = asyncio.Event()
        asyncio.get_running_loop().create_task(auth.token(transport_for(auth)))
        await store.save_started.wait()

    previous_hook = sys.unraisablehook
    sys.unraisablehook = lambda info: unraisable.append(info.exc_value)
    try:
        loop.set_exception_handler(lambda _loop, _context: None)  # "Task was destroyed but it is pending"
        loop.run_until_complete(start())
        loop.close()  # without cancelling the renewal: it never ends
        del loop
        gc.collect()
        token = asyncio.run(auth.token(transport_for(auth)))
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    assert token.refresh_token == "refresh-2-secretvalue"
    assert store.tokens[KEY].refresh_token == "refresh-2-secretvalue"  # saved before it was used
    assert server.calls == 1
    assert not [exc for exc in unraisable if isinstance(exc, RuntimeError)]


class FlakyStore(MemoryTokenStore):
    def __init__(self, initial: dict[str, Token], failures: int) -> None:
        super().__init__(initial)
        self.failures = failures

    async def save(self, key: str, token: Token) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database unavailable")
        await super().save(key, token)


async def test_a_failed_save_is_retried_by_later_calls_until_it_succeeds() -> None:
    server = RotatingServer()
    store = FlakyStore(dict(stored_start().tokens), failures=2)
    auth = TokenAuth(store_key=KEY, refresh=server.refresh, store=store, binding=BINDING)
    transport = transport_for(auth)
    with pytest.raises(OSError, match="database unavailable"):
        await auth.token(transport)  # the call that saw the failure hears of it
    assert (await auth.token(transport)).refresh_token == "refresh-2-secretvalue"  # the retry fails: kept
    assert store.saves == 0
    await asyncio.gather(*(auth.token(transport) for _ in range(3)))  # single-flight: one more save
    assert store.saves == 1
    assert store.tokens[KEY].refresh_token == "refresh-2-secretvalue"
    await auth.token(transport)
    assert store.saves == 1  # saved: nothing more to do
    assert server.calls == 1


def test_without_a_store_the_rotated_token_outlives_the_loop_that_obtained_it() -> None:
    server = RotatingServer()
    once = ["refresh-1-secretvalue"]

    async def obtain(_transport: Transport) -> Token:  # the configured refresh token: usable once
        if not once:
            raise AuthenticationError("no refresh token", backend="test")
        return server.rotate(Token(access_token="", refresh_token=once.pop()))

    auth = TokenAuth(store_key=KEY, obtain=obtain, refresh=server.refresh, binding=BINDING)
    transport = transport_for(auth)
    first = asyncio.run(auth.token(transport))
    second = asyncio.run(auth.token(transport))
    assert second is first
    asyncio.run(auth.renew_after_401(transport, second))  # refreshed with the token of the first loop
    assert server.calls == 2


def test_renewal_is_single_flight_across_threads() -> None:
    server = RotatingServer()
    started, joined, release = threading.Event(), threading.Event(), threading.Event()

    async def slow_refresh(transport: Transport, token: Token) -> Token:
        started.set()
        await asyncio.to_thread(release.wait)
        return await server.refresh(transport, token)

    auth = TokenAuth(store_key=KEY, refresh=slow_refresh, store=stored_start(), binding=BINDING)
    transport = transport_for(auth)
    results: dict[str, object] = {}

    def first() -> None:
        results["first"] = asyncio.run(auth.token(transport)).refresh_token

    async def join() -> str | None:
        task = asyncio.get_running_loop().create_task(auth.token(transport))
        for _ in range(5):
            await asyncio.sleep(0)  # loop steps: the task waits for the other thread's renewal
        joined.set()
        return (await task).refresh_token

    def second() -> None:
        try:
            results["second"] = asyncio.run(join())
        except Exception as exc:
            results["second"] = exc

    one = threading.Thread(target=first)
    one.start()
    assert started.wait(5)
    two = threading.Thread(target=second)
    two.start()
    assert joined.wait(5)
    release.set()
    one.join(5)
    two.join(5)
    assert results == {"first": "refresh-2-secretvalue", "second": "refresh-2-secretvalue"}
    assert server.calls == 1


async def test_a_waiter_renews_on_its_own_transport_when_the_renewing_ledger_was_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def gave_up_waiting(_self: TokenAuth, _transport: Transport, timeout: float = 5.0) -> None:
        return None  # as when closing waited its 5 s for the renewal in vain

    monkeypatch.setattr(TokenAuth, "settle", gave_up_waiting)
    release = asyncio.Event()
    calls: list[Transport] = []

    async def obtain(transport: Transport) -> Token:
        calls.append(transport)
        if len(calls) == 1:
            await release.wait()
        transport.session  # noqa: B018 - what sending does first: "this ledger is closed"
        return Token(access_token=f"access-{len(calls)}-secretvalue")

    auth = TokenAuth(store_key=KEY, obtain=obtain, binding=BINDING)
    async with aiohttp.ClientSession() as session:
        closing, staying = transport_for(auth, session=session), transport_for(auth, session=session)
        first = asyncio.create_task(auth.token(closing))
        await asyncio.sleep(0)  # a loop step: the renewal runs on `closing`
        waiter = asyncio.create_task(auth.token(staying))
        await asyncio.sleep(0)
        await closing.aclose()
        release.set()
        assert (await waiter).access_token == "access-2-secretvalue"
        with pytest.raises(ConfigurationError, match="closed"):
            await first  # the caller of the closed ledger still hears of it
    assert calls == [closing, staying]


async def test_failed_attempts_leave_no_token_slots_behind() -> None:
    async def refused(transport: Transport) -> Token:
        raise AuthenticationError("invalid_client", backend="test")

    for attempt in range(50):  # e.g. guesses of a client secret: each binding its own slot
        auth = TokenAuth(store_key=KEY, obtain=refused, binding=f"guess-{attempt}")
        with pytest.raises(AuthenticationError):
            await auth.token(transport_for(auth))
    assert not [key for key in auth_module._TOKENS if key.startswith(KEY)]
    assert asyncio.get_running_loop() not in auth_module._SLOTS


def test_a_waiter_in_another_thread_renews_itself_when_the_renewing_loop_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One ledger (one transport) used by two threads: the loop that runs the renewal ends under it; the waiter in
    the other thread gets a token of its own renewal, never the private `_RenewalAbandoned`."""
    first_entered, first_thread_ready, second_joined = threading.Event(), threading.Event(), threading.Event()
    obtained: list[str] = []

    async def obtain(_transport: Transport) -> Token:
        obtained.append(threading.current_thread().name)
        if len(obtained) == 1:
            first_entered.set()
            await asyncio.get_running_loop().create_future()  # answered never: its loop ends first
        return Token(access_token="second-secretvalue", binding=BINDING)

    auth = TokenAuth(store_key=KEY, obtain=obtain, binding=BINDING)
    transport = transport_for(auth)
    original = TokenAuth._join_or_start

    def spying(self: TokenAuth, *args: object, **kwargs: object) -> object:
        joined = original(self, *args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "second":
            second_joined.set()
        return joined

    monkeypatch.setattr(TokenAuth, "_join_or_start", spying)
    outcome: list[object] = []

    def first() -> None:
        async def main() -> None:
            asyncio.get_running_loop().create_task(auth.token(transport))
            await asyncio.to_thread(first_entered.wait, 10)
            first_thread_ready.set()
            await asyncio.to_thread(second_joined.wait, 10)  # then this asyncio.run ends, cancelling the renewal

        asyncio.run(main())

    def second() -> None:
        first_thread_ready.wait(10)

        async def main() -> None:
            try:
                outcome.append(await auth.token(transport))
            except BaseException as exc:  # the test reports what escaped
                outcome.append(exc)

        asyncio.run(main())

    threads = [threading.Thread(target=first, name="first"), threading.Thread(target=second, name="second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(outcome) == 1 and isinstance(outcome[0], Token), outcome
    assert outcome[0].access_token == "second-secretvalue"
    assert obtained == ["first", "second"]


async def test_dropped_ledgers_leave_no_tokens_behind() -> None:
    """A ledger made per request (its own token provider) must not leave its tokens in memory for good."""
    for number in range(50):

        async def provider(number: int = number) -> str:
            return f"access-{number}-secretvalue"

        auth = TokenAuth.from_provider(provider, store_key=f"{KEY}-dropped")
        assert (await auth.token(transport_for(auth))).access_token == f"access-{number}-secretvalue"
    del auth, provider
    gc.collect()
    assert not [key for key in auth_module._TOKENS if key.startswith(f"{KEY}-dropped")]


@attrs.define  # eq=True: instances are not hashable, as many users' stores are not
class UnhashableStore(MemoryTokenStore):
    def __init__(self) -> None:
        MemoryTokenStore.__init__(self)


def test_ledgers_sharing_an_unhashable_store_share_one_slot() -> None:
    store = UnhashableStore()
    with pytest.raises(TypeError):
        hash(store)
    first, second = (TokenAuth(store_key=KEY, refresh=RotatingServer().refresh, store=store) for _ in range(2))
    assert first._slot_key == second._slot_key  # one single-flight renewal for both, never two spending one token
    other = TokenAuth(store_key=KEY, refresh=RotatingServer().refresh, store=UnhashableStore())
    assert other._slot_key != first._slot_key
