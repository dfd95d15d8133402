"""Waiting for decisions through a backend's notifications, one subscription per store.

PostgreSQL ``LISTEN`` needs a connection of its own for as long as it listens,
and a store's pool is small: a connection per waiting run would starve the
session writes (and the lease renewals) of the runs that wait. So the waiters
of one approval store share one subscription, held by one of them (the
leader) at a time. The leader dispatches every notification to the waiter of
that request; when its own request is decided it leaves, and another waiter
takes over. Every waiter also reads its record again every ``poll`` seconds,
so a notification lost while the subscription was being set up or changing
hands delays an answer by at most that much; it never loses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import anyio

from orra_di.approvals.model import ApprovalRecord

__all__ = ["SharedSubscription", "Subscription"]


class Subscription(Protocol):
    async def next(self, seconds: float) -> list[str]:
        """Request ids notified within ``seconds`` (empty if none)."""
        ...


Check = Callable[[], Awaitable[ApprovalRecord | None]]
"""The record once decided, else None."""


class SharedSubscription:
    """The waiters of one store and the subscription one of them holds for all."""

    def __init__(self, subscribe: Callable[[], AbstractAsyncContextManager[Subscription]]) -> None:
        self._subscribe = subscribe
        self._events: dict[str, anyio.Event] = {}
        self._leading = False

    async def wait(self, request_id: str, check: Check, poll: float) -> ApprovalRecord:
        while True:
            event = self._events.setdefault(request_id, anyio.Event())
            if not self._leading:
                return await self._lead(check, poll)
            record = await check()
            if record is not None:
                return record
            with anyio.move_on_after(poll):
                await event.wait()

    async def _lead(self, check: Check, poll: float) -> ApprovalRecord:
        self._leading = True  # claimed before the first await: no second leader
        try:
            async with self._subscribe() as subscription:
                self._wake_all()  # nothing is missed from here on: the others check again
                while True:
                    record = await check()
                    if record is not None:
                        return record
                    for request_id in await subscription.next(poll):
                        self._wake(request_id)
        finally:
            self._leading = False
            self._wake_all()  # one of the others takes over

    def _wake(self, request_id: str) -> None:
        event = self._events.pop(request_id, None)
        if event is not None:
            event.set()

    def _wake_all(self) -> None:
        events, self._events = self._events, {}
        for event in events.values():
            event.set()
