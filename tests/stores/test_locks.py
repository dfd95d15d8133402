"""The in-process session lock every store uses: one holder, waiters served in order,
a waiter that gives up (timeout, cancellation) never strands the session."""

from __future__ import annotations

import anyio
import pytest

from orra_di.errors import SessionBusyError
from orra_di.stores._locks import KeyedLocks

pytestmark = pytest.mark.anyio


async def test_one_holder_and_waiters_in_arrival_order() -> None:
    locks = KeyedLocks()
    order: list[str] = []
    holding = 0

    async def run(name: str) -> None:
        nonlocal holding
        async with locks.hold("k", None):
            holding += 1
            assert holding == 1
            order.append(name)
            await anyio.sleep(0.001)
            holding -= 1

    async with anyio.create_task_group() as tg:
        for name in "abcde":
            tg.start_soon(run, name)
            await anyio.lowlevel.checkpoint()  # each queues before the next starts
    assert order == list("abcde")
    assert not locks.locked("k")


async def test_other_keys_are_not_held() -> None:
    locks = KeyedLocks()
    async with locks.hold("a", 0), locks.hold("b", 0):
        assert locks.locked("a") and locks.locked("b")
    assert not locks.locked("a") and not locks.locked("b")


async def test_no_wait_and_a_timeout_are_busy_errors() -> None:
    locks = KeyedLocks()
    async with locks.hold("k", None):
        with pytest.raises(SessionBusyError):
            async with locks.hold("k", 0):
                pass
        with pytest.raises(SessionBusyError):
            async with locks.hold("k", 0.01):
                pass
    async with locks.hold("k", 0):  # the waiter that timed out left the queue
        pass
    assert not locks.locked("k")


async def test_a_waiter_cancelled_at_the_hand_over_never_strands_the_session() -> None:
    locks = KeyedLocks()
    got: list[str] = []
    first = locks.hold("k", None)
    await first.__aenter__()

    async def wait(name: str) -> None:
        async with locks.hold("k", None):
            got.append(name)

    async with anyio.create_task_group() as tg:
        doomed = anyio.CancelScope()

        async def doomed_waiter() -> None:
            with doomed:
                await wait("doomed")

        tg.start_soon(doomed_waiter)
        await anyio.lowlevel.checkpoint()
        tg.start_soon(wait, "next")
        await anyio.lowlevel.checkpoint()
        await first.__aexit__(None, None, None)  # hands the session to "doomed"...
        doomed.cancel()  # ...which is cancelled before it runs (anyio may let it run first)
    assert got[-1] == "next"
    assert not locks.locked("k")


async def test_a_body_that_raises_releases_the_session() -> None:
    locks = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("k", None):
            raise RuntimeError("boom")
    assert not locks.locked("k")
