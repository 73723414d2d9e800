"""A cancelled caller never gets a limiter ticket, whatever loop step the cancel lands on (#14.2).

On Python 3.10/3.11 `wait_for(shield(future))` swallows a cancel that arrives in the loop turn in which the future
completes: the cancelled task carries on, takes a ticket and sends its request. These tests step the event loop
one callback round at a time (`asyncio.sleep(0)`) and inject the cancel at every step of the wake-up chain, so
they are deterministic and cover every await of `acquire`.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable

from accounting_bridge.transport.ratelimit import RateLimiter, RateLimitWaitTooLong, SlotWaitTimeout, Ticket

WINDOW = {"X-Rate-Limit-Remaining": "10", "X-Rate-Limit-Reset": "60"}
#: Enough loop steps to cover the whole wake-up chain of any implementation (the shield chain needs about four).
STEPS = 10


async def steps(count: int) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


class Sender:
    """Sibling "POST" tasks shaped like `Transport._send_once`: take a ticket, open a connection (one loop step),
    send, release the ticket whatever happens."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self.sent: list[int] = []

    async def post(self, number: int) -> None:
        ticket = await self.limiter.acquire(max_wait=30)
        answered = False
        try:
            await asyncio.sleep(0)  # connecting
            self.sent.append(number)  # from here on the request counts as sent
            answered = True
        finally:
            self.limiter.release(ticket, WINDOW if answered else None, 201)


async def cancel_after(release_step: int, cancel_step: int, waiters: int = 3) -> None:
    """Probe out, `waiters` queued behind it; the probe's answer comes at `release_step`, the cancel at
    `cancel_step` (both counted in loop steps from the moment the waiters were created)."""
    limiter = RateLimiter()
    probe = await limiter.acquire()
    sender = Sender(limiter)
    tasks = [asyncio.ensure_future(sender.post(n)) for n in range(waiters)]
    accepted: list[asyncio.Task[None] | asyncio.Future[None]] = []
    for step in range(max(release_step, cancel_step) + 1):
        if step == release_step:
            limiter.release(probe, WINDOW, 200)
        if step == cancel_step:
            accepted = [task for task in tasks if task.cancel()]
        await asyncio.sleep(0)
    await asyncio.gather(*tasks, return_exceptions=True)
    where = f"release at step {release_step}, cancel at step {cancel_step}"
    for task in accepted:
        assert task.cancelled(), f"a cancel was accepted but the task went on ({where})"
    assert len(sender.sent) == waiters - len(accepted), where
    assert limiter.in_flight == 0, where  # every ticket taken was given back
    # the limiter is not stuck: a fresh caller gets a ticket at once
    ticket = await asyncio.wait_for(limiter.acquire(max_wait=0), timeout=1)
    limiter.release(ticket, None)


async def test_a_cancel_in_any_loop_step_around_the_wake_up_is_never_swallowed() -> None:
    for release_step in range(3):
        for cancel_step in range(release_step, release_step + STEPS):
            await cancel_after(release_step, cancel_step)


async def test_a_cancel_before_the_waiters_ran_or_while_they_wait() -> None:
    for cancel_step in range(3):
        await cancel_after(release_step=5, cancel_step=cancel_step)


async def run_like_a_task_group(coroutines: list[Callable[[], Awaitable[None]]]) -> list[BaseException | None]:
    """What `asyncio.TaskGroup` does (also on 3.10): the first child that fails cancels its siblings."""
    tasks = [asyncio.ensure_future(make()) for make in coroutines]

    def cancel_siblings(done: asyncio.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            for task in tasks:
                task.cancel()

    for task in tasks:
        task.add_done_callback(cancel_siblings)
    await asyncio.gather(*tasks, return_exceptions=True)
    return [None if not task.cancelled() and task.exception() is None else _outcome(task) for task in tasks]


def _outcome(task: asyncio.Future[None]) -> BaseException:
    if task.cancelled():
        return asyncio.CancelledError()
    error = task.exception()
    assert error is not None
    return error


class NotFound(Exception):
    pass


class ProbeGet:
    """The first request of the group: it becomes the limiter's probe and its answer, a 404, fails the group."""

    def __init__(self, limiter: RateLimiter, *, answer_after: int) -> None:
        self.limiter, self.answer_after = limiter, answer_after
        self.sent = False

    async def get(self) -> None:
        ticket = await self.limiter.acquire(max_wait=30)
        self.sent = True
        await steps(self.answer_after + 1)
        self.limiter.release(ticket, WINDOW, 404)
        raise NotFound


async def test_siblings_of_a_failed_probe_in_a_task_group_send_nothing() -> None:
    """The issue's reproduction: a probe GET answers 404, the sibling POSTs queued behind it are cancelled by the
    task group in the same turn as the limiter wakes them; none of them may be sent."""
    for answer_step in range(STEPS):
        limiter = RateLimiter()
        sender = Sender(limiter)
        probe = ProbeGet(limiter, answer_after=answer_step)
        posts = [functools.partial(sender.post, n) for n in range(3)]
        outcomes = await run_like_a_task_group([probe.get, *posts])
        assert probe.sent
        assert isinstance(outcomes[0], NotFound)
        assert sender.sent == [], f"siblings were sent although cancelled (answer at step {answer_step})"
        assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes[1:])
        assert limiter.in_flight == 0


class Owner:
    """Stands in for a `Transport` registering its cap (held weakly)."""


async def test_a_ticket_is_never_handed_out_to_a_cancelled_acquire() -> None:
    """Cancel `acquire` itself at each of its awaits (queued for a concurrency slot, behind the probe, for a
    reset): nothing stays taken and the next caller gets the slot."""
    owner = Owner()
    limiter = RateLimiter()
    limiter.set_cap(owner, 1)
    probe = await limiter.acquire()
    for blocker in ("probe", "slot"):
        waiting: asyncio.Future[Ticket] = asyncio.ensure_future(limiter.acquire(max_wait=30))
        await steps(2)
        assert not waiting.done(), blocker
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled()
        assert limiter.in_flight == 1
    limiter.release(probe, {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "5"}, 200)
    waiting = asyncio.ensure_future(limiter.acquire(max_wait=30))  # waits for the reset
    await steps(2)
    assert not waiting.done()
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    assert limiter.in_flight == 0
    assert limiter.remaining == 0  # the cancelled waiter took no budget


async def test_a_woken_waiter_cancelled_before_it_ran_hands_its_wake_up_on() -> None:
    """Only as many waiters are woken as can go; one of them cancelled in the same turn must not strand a slot."""
    limiter = RateLimiter(max_concurrency=1)
    learner = await limiter.acquire()
    limiter.release(learner, {}, 200)  # no rate-limit headers: only the cap limits
    held = await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire(max_wait=30))
    second = asyncio.ensure_future(limiter.acquire(max_wait=30))
    await steps(1)
    limiter.release(held, None)  # wakes `first` only
    assert limiter.waiting == 1
    assert first.cancel()
    ticket = await asyncio.wait_for(second, timeout=1)
    assert first.cancelled()
    limiter.release(ticket, None)
    assert limiter.in_flight == 0


ANSWERS: list[dict[str, str] | None] = [
    None,
    {},
    {"X-Rate-Limit-Remaining": "3", "X-Rate-Limit-Reset": "0"},
    {"X-Rate-Limit-Remaining": "5", "X-Rate-Limit-Reset": "60"},
    {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "0"},
]


class Interleaving:
    """One seeded run: calls that may wait (up to 5 s: a one-minute reset is given up at once) or not at all,
    answers of every kind, cancels, changing caps."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.limiter = RateLimiter()
        self.limiter.fallback_reset = 0.0  # no real-time waits in this test
        self.owner = Owner()
        self.out: list[Ticket] = []
        self.granted = 0

    async def call(self, hold: int, max_wait: float) -> None:
        ticket = await self.limiter.acquire(max_wait=max_wait)
        self.out.append(ticket)
        self.granted += 1
        cap = self.limiter.max_concurrency
        assert cap is None or len(self.out) <= cap, f"seed {self.seed}: more tickets out than the cap"
        assert sum(t.probe for t in self.out) <= 1, f"seed {self.seed}: two probes out"
        try:
            await steps(hold)
        finally:
            self.out.remove(ticket)
            self.limiter.release(ticket, self.rng.choice(ANSWERS), self.rng.choice([200, 200, 429]))

    async def run(self) -> None:
        rng, limiter = self.rng, self.limiter
        limiter.set_cap(self.owner, rng.choice([None, 1, 2, 3]))
        tasks = [asyncio.ensure_future(self.call(rng.randrange(4), rng.choice([0.0, 5.0]))) for _ in range(12)]
        accepted: list[asyncio.Future[None]] = []
        while not all(task.done() for task in tasks):
            if rng.random() < 0.2:
                victim = rng.choice(tasks)
                if victim.cancel():
                    accepted.append(victim)
            if rng.random() < 0.1:
                limiter.set_cap(self.owner, rng.choice([None, 1, 2, 3]))
            await asyncio.sleep(0)
        for task in tasks:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, (RateLimitWaitTooLong, SlotWaitTimeout)):
                raise AssertionError(f"seed {self.seed}: a call failed") from error
        for cancelled in accepted:
            assert cancelled.cancelled(), f"seed {self.seed}: a cancel was accepted but the call went on"
        assert self.out == [] and limiter.in_flight == 0 and limiter.waiting == 0, f"seed {self.seed}"


async def test_random_interleavings_of_cancels_answers_and_caps_keep_every_invariant() -> None:
    """Seeded, so every run is the same: never more tickets out than the cap, never two probes, never a ticket for
    a call whose cancel was accepted, and nothing left taken or parked at the end."""
    granted = 0
    for seed in range(40):
        run = Interleaving(seed)
        await run.run()
        granted += run.granted
    assert granted > 100  # the runs did hand out tickets, not only cancel
