"""One lease-renewal thread per store, renewing every lease the store holds at once.

A task per run cost each run a task group, a task, an event and a cancel
scope, and each renewal a statement per session. Here a store keeps one
daemon thread while it holds leases: every ``every`` seconds it renews all of
them through one call of ``renew`` (one statement), then sleeps again; after a
whole period with no lease held it ends, and the next lease starts it anew.

A lease is renewed only while the event loop of the run holding it is alive:
before each renewal the thread runs a no-op on that loop and waits for it. A
loop that is stuck (a blocking call in a coroutine, a deadlock) or stopped
(SIGSTOP stops every thread anyway) therefore lets its leases lapse, as the
per-run task did, so another process can take the session over and fencing
refuses the stalled holder's writes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

import anyio.from_thread
import anyio.lowlevel
from anyio.lowlevel import EventLoopToken

from orra_di.errors import StoreError

__all__ = ["LeaseRenewer"]

_log = logging.getLogger("orra_di.stores")

L = TypeVar("L", bound=Hashable)


class LeaseRenewer(Generic[L]):
    """Renews a store's leases every ``every`` seconds, all in one call of ``renew``.

    ``renew`` runs in the renewal thread with the leases of live event loops
    and returns those it could not renew because another run took them over
    (each is logged once and forgotten); a :class:`StoreError` from it is
    logged and the renewal retried at the next period.
    """

    def __init__(
        self, renew: Callable[[Sequence[L]], Sequence[L]], every: float, name: str
    ) -> None:
        self._renew = renew
        self._every = every
        self._name = name
        self._leases: dict[L, EventLoopToken] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        # anyio's token for a loop costs a backend lookup (about 10 µs): one per loop.
        self._tokens: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, EventLoopToken] = (
            weakref.WeakKeyDictionary()
        )

    def add(self, lease: L) -> None:
        """Renew ``lease`` from now on, while the calling event loop is alive."""
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:  # another anyio backend
            loop = None
        with self._cond:
            token = None if loop is None else self._tokens.get(loop)
            if token is None:
                token = anyio.lowlevel.current_token()
                if loop is not None:
                    self._tokens[loop] = token
            self._leases[lease] = token
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._main, name=self._name, daemon=True)
                self._thread.start()

    def discard(self, lease: L) -> None:
        """Stop renewing ``lease`` (released, or about to be)."""
        with self._cond:
            self._leases.pop(lease, None)

    def close(self) -> None:
        """Stop the thread (it may be waiting on a stuck loop: not waited for past a period)."""
        with self._cond:
            self._closed = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._every)

    def _main(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed, timeout=self._every)
                if self._closed or not self._leases:
                    self._thread = None
                    return
                held = dict(self._leases)
            alive = {token: _alive(token) for token in set(held.values())}
            live = [lease for lease, token in held.items() if alive[token]]
            if not live:
                continue
            try:
                lapsed = self._renew(live)
            except StoreError as exc:
                _log.warning("%s; retrying at the next renewal", exc)
                continue
            with self._cond:
                for lease in lapsed:
                    if self._leases.pop(lease, None) is not None:
                        _log.warning("the lock on %s lapsed and was taken over", lease)


def _noop() -> None:
    return None


def _alive(token: EventLoopToken) -> bool:
    """Whether the loop runs callbacks (waits while it is busy; False once it is closed)."""
    try:
        anyio.from_thread.run_sync(_noop, token=token)
    except RuntimeError:  # the loop is closed
        return False
    return True
