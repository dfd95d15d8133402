"""A store in a dict: for tests and single-process tools that need no persistence.

The lock is the in-process lock alone, so it cannot lapse; like every store,
it still refuses a holder's write once the session it holds was deleted under
it (:func:`~orra_di.stores._codec.session_gone`), and ``prune`` passes over
held sessions.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from orra_di.errors import StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.session import History, Session, utc_now
from orra_di.store import check_keep_last, in_subtree, prune_cutoff, trim_start
from orra_di.stores._codec import Held, dump_metadata, not_a_message, session_gone
from orra_di.stores._locks import KeyedLocks

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """Sessions by key. Loads hand out copies, so callers never alias the stored lists."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._ids: dict[str, int] = {}  # key -> which session it is (new on each creation)
        self._new_id = itertools.count(1)
        self._locks = KeyedLocks()
        self._held: dict[str, Held] = {}

    async def load(self, namespace: NamespaceLike) -> Session | None:
        namespace = Namespace.coerce(namespace)
        stored = self._sessions.get(namespace.key)
        return None if stored is None else stored.snapshot()

    async def save(self, session: Session) -> None:
        key = session.namespace.key
        what = f"save session {key!r}"
        self._check(key, "save session")
        _check_messages(session.messages)
        metadata = _as_stored(session.metadata, what)
        stored = session.snapshot()
        stored.metadata = metadata
        self._sessions[key] = stored
        self._wrote(key)

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        namespace = Namespace.coerce(namespace)
        self._check(namespace.key, "append to session")
        messages = _check_messages(messages)
        if metadata is not None:  # checked before anything changes: one write or none
            metadata = _as_stored(metadata, f"append to session {namespace.key!r}")
        stored = self._sessions.get(namespace.key)
        if stored is None:
            stored = Session(namespace=namespace)
            stored.messages = History()  # only ever appended to (see History)
            self._sessions[namespace.key] = stored
        self._wrote(namespace.key)
        stored.messages.extend(messages)
        if metadata is not None:
            stored.metadata = dict(metadata)
        stored.touch()

    async def delete(self, namespace: NamespaceLike) -> bool:
        namespace = Namespace.coerce(namespace)
        self._ids.pop(namespace.key, None)
        return self._sessions.pop(namespace.key, None) is not None

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        namespace = Namespace.coerce(namespace)
        doomed = [k for k in self._sessions if in_subtree(k, namespace.key)]
        for key in doomed:
            del self._sessions[key], self._ids[key]
        return len(doomed)

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        prefix = None if prefix is None else Namespace.coerce(prefix)
        keys = sorted(self._sessions)
        if prefix is not None:
            keys = [k for k in keys if in_subtree(k, prefix.key)]
        return [self._sessions[k].namespace for k in keys]

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        namespace = Namespace.coerce(namespace)
        keep_last = check_keep_last(keep_last)
        self._check(namespace.key, "trim session")
        stored = self._sessions.get(namespace.key)
        if stored is None:
            return 0
        start = trim_start(stored.messages, keep_last)
        if start:
            # A new list: the stored one is only ever appended to, so the token
            # totals remembered for it stay true (see History).
            stored.messages = History(stored.messages[start:])
            stored.updated_at = utc_now()
        return start

    async def prune(self, idle_for: float) -> int:
        cutoff = prune_cutoff(idle_for)
        if cutoff is None:
            return 0
        idle = [
            k for k, s in self._sessions.items() if s.updated_at < cutoff and k not in self._held
        ]
        for key in idle:
            del self._sessions[key], self._ids[key]
        return len(idle)

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        namespace = Namespace.coerce(namespace)
        return _Hold(self, namespace.key, timeout)

    def _check(self, key: str, what: str) -> None:
        """Refuse a holder's write once the session its lock is on was deleted."""
        held = self._held.get(key)
        if held is not None and held.session is not None and self._ids.get(key) != held.session:
            raise session_gone(f"{what} {key!r}")

    def _wrote(self, key: str) -> None:
        """The session exists now (with a new id if it was created); a holder is on it."""
        session_id = self._ids.get(key)
        if session_id is None:
            session_id = self._ids[key] = next(self._new_id)
        held = self._held.get(key)
        if held is not None:
            held.session = session_id

    async def aclose(self) -> None:
        return None


def _check_messages(messages: Sequence[Message]) -> list[Message]:
    """``messages``, or the StoreError the other stores give for an item that is no Message.

    This store keeps objects instead of JSON, so without the check a string or a
    dict would be stored as a message and break every later load and run, while
    the same code fails clearly on SQLite or PostgreSQL.
    """
    listed = messages if isinstance(messages, list) else list(messages)
    for index, message in enumerate(listed):
        if not isinstance(message, Message):
            raise StoreError(not_a_message(index, message))
    return listed


def _as_stored(metadata: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Metadata as the other stores give it back: through JSON (a deep copy too).

    Metadata they refuse (a set, a datetime, NaN) is refused here alike, so a test
    on this store catches what would fail in production.
    """
    loaded: dict[str, Any] = json.loads(dump_metadata(metadata, what))
    return loaded


class _Hold:
    """``InMemoryStore.lock``: the in-process lock, and which session it holds.

    A class rather than an ``@asynccontextmanager`` generator: every run enters
    one, and this costs a fraction as much.
    """

    __slots__ = ("_hold", "_key", "_store")

    def __init__(self, store: InMemoryStore, key: str, wait: float | None) -> None:
        self._store, self._key = store, key
        self._hold = store._locks.hold(key, wait)

    async def __aenter__(self) -> None:
        await self._hold.__aenter__()
        store = self._store
        store._held[self._key] = Held("", store._ids.get(self._key))

    async def __aexit__(self, *exc: object) -> None:
        try:
            del self._store._held[self._key]
        finally:
            await self._hold.__aexit__(None, None, None)
