"""The in-process half of the single-writer lock, shared by every store.

A session is held while its key is in ``KeyedLocks._queues``; the queue holds
the events of the runs waiting for it, first come first served. Releasing hands
the session straight to the first waiter (the key stays held), so no newcomer
can overtake a waiter. An uncontended hold is a dict insert and a dict delete:
no ``anyio.Lock`` is built (which looks up the async backend), no cancel scope
opened, no generator-based context manager run; this is on every run's path.
"""

from __future__ import annotations

from collections import deque
from types import TracebackType

import anyio

from orra_di.errors import SessionBusyError

__all__ = ["KeyedLocks"]


class KeyedLocks:
    """One FIFO lock per session key, existing only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[anyio.Event]] = {}

    def hold(self, key: str, wait: float | None) -> _Hold:
        """``async with locks.hold(key, wait)``: wait at most ``wait`` seconds (None:
        forever, 0: not at all), else :class:`SessionBusyError`."""
        return _Hold(self, key, wait)

    def locked(self, key: str) -> bool:
        return key in self._queues

    def _release(self, key: str) -> None:
        queue = self._queues[key]
        if queue:
            queue.popleft().set()  # the first waiter now holds it
        else:
            del self._queues[key]


class _Hold:
    __slots__ = ("_key", "_locks", "_wait")

    def __init__(self, locks: KeyedLocks, key: str, wait: float | None) -> None:
        self._locks, self._key, self._wait = locks, key, wait

    async def __aenter__(self) -> None:
        queues, key, wait = self._locks._queues, self._key, self._wait
        queue = queues.get(key)
        if queue is None:
            queues[key] = deque()  # the common case: free, so it is ours
            return
        if wait is not None and wait <= 0:
            raise SessionBusyError(key)
        handed = anyio.Event()
        queue.append(handed)
        try:
            with anyio.move_on_after(wait):
                await handed.wait()
        except BaseException:
            self._give_up(handed)
            raise
        if not handed.is_set():
            self._give_up(handed)
            raise SessionBusyError(key, wait)

    def _give_up(self, handed: anyio.Event) -> None:
        """Leave the queue; if the session was handed over meanwhile, pass it on."""
        if handed.is_set():
            self._locks._release(self._key)
        else:
            self._locks._queues[self._key].remove(handed)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._locks._release(self._key)
