"""The in-process half of the single-writer lock, shared by every store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from orra_di.errors import SessionBusyError

__all__ = ["KeyedLocks"]


class KeyedLocks:
    """One ``anyio.Lock`` per session key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str, wait: float | None) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (anyio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            if not lock.locked():
                lock.acquire_nowait()  # the common case, without a cancel scope
            elif wait is not None and wait <= 0:
                raise SessionBusyError(key)
            else:
                with anyio.move_on_after(wait) as scope:
                    await lock.acquire()
                if scope.cancelled_caught:
                    raise SessionBusyError(key, wait)
            try:
                yield
            finally:
                lock.release()
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
