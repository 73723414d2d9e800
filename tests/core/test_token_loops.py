"""Token slots are per event loop and never keep a closed loop (or its tokens) alive."""

from __future__ import annotations

import asyncio
import gc
import itertools
import weakref

from accounting_bridge.transport import MemoryTokenStore, Token, TokenAuth, Transport, TransportConfig
from accounting_bridge.transport import auth as auth_module


class SlowStore(MemoryTokenStore):
    """Suspends on every load and save, so that concurrent callers really wait for each other."""

    async def load(self, key: str) -> Token | None:
        await asyncio.sleep(0)
        return await super().load(key)

    async def save(self, key: str, token: Token) -> None:
        await asyncio.sleep(0)
        await super().save(key, token)


def make_auth() -> tuple[TokenAuth, Transport]:
    counter = itertools.count(1)

    async def obtain(_transport: Transport) -> Token:
        await asyncio.sleep(0)
        return Token(access_token=f"loop-access-token-{next(counter)}")

    auth = TokenAuth(store_key="loops", obtain=obtain, store=SlowStore())
    return auth, Transport(TransportConfig(backend="loops", base_url="http://127.0.0.1:9"), auth=auth)


def test_closed_event_loops_are_freed() -> None:
    auth, transport = make_auth()  # created outside any loop, used in many
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def use() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        # contended: every caller waits for the one renewal (a lock or future would bind the loop)
        tokens = await asyncio.gather(*(auth.token(transport) for _ in range(5)))
        assert len({t.access_token for t in tokens}) == 1
        await auth.renew_after_401(transport, tokens[0])

    for _ in range(50):
        asyncio.run(use())
    gc.collect()
    alive = [ref for ref in loops if ref() is not None]
    assert alive == []


def test_a_closed_loop_still_referenced_elsewhere_holds_nothing_and_its_token_lives_on() -> None:
    auth, transport = make_auth()
    kept = asyncio.new_event_loop()  # the caller keeps a reference to it
    try:
        first = kept.run_until_complete(auth.token(transport))
        assert kept not in auth_module._SLOTS  # no renewal in flight: nothing of the loop is held
    finally:
        kept.close()
    assert asyncio.run(auth.token(transport)) is first  # the token is the process's, not the closed loop's
    assert auth.renewals == 1
