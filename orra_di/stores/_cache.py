"""A bounded cache of loaded sessions, valid while their stored version is unchanged.

Loading a long session means reading and validating every message, yet most
loads follow this process's own writes. A store that can read a session's
version cheaply (a revision counter, a row id) keeps the parsed session here:
a load whose version matches is one small query plus a snapshot, whatever
the session's length. The version is opaque to the cache (compared with
``==``), so it fits any backend; it must change on every write and never
repeat for a key, even across delete and re-create.

Not thread-safe: the store calls it while holding its own lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from orra_di.message import Message
from orra_di.session import History, Session
from orra_di.store import in_subtree

__all__ = ["SessionCache"]


class SessionCache:
    """Least-recently-used sessions by key, each with the version it was read at.

    The cache owns the sessions it holds and only ever hands out snapshots,
    so a caller editing a loaded session cannot change the cached one.
    """

    def __init__(self, max_sessions: int = 1000) -> None:
        self._max = max_sessions
        self._entries: OrderedDict[str, tuple[object, Session]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def version(self, key: str) -> object | None:
        """The version ``key`` is cached at, or ``None``; does not count as a use."""
        entry = self._entries.get(key)
        return None if entry is None else entry[0]

    def get(self, key: str, version: object) -> Session | None:
        """A snapshot of the cached session if it is at ``version``; else ``None``."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != version:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1].snapshot()

    def put(self, key: str, version: object, session: Session) -> None:
        """Cache ``session`` (which the caller hands over and must not touch again)."""
        if self._max <= 0:
            return
        if not isinstance(session.messages, History):
            # Only ever appended to from here (``advance``), which lets what is
            # learnt from one snapshot carry over to the next (see History).
            session.messages = History(session.messages)
        self._entries[key] = (version, session)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def advance(
        self,
        key: str,
        old: object,
        new: object,
        messages: Sequence[Message],
        *,
        updated_at: datetime,
        metadata: dict[str, Any] | None,
    ) -> None:
        """Apply an append that moved ``key`` from version ``old`` to ``new``.

        If the cached copy is not at ``old`` (someone else wrote in between),
        it is dropped instead: the next load reads the store.
        """
        entry = self._entries.get(key)
        if entry is None:
            return
        if entry[0] != old:
            del self._entries[key]
            return
        session = entry[1]
        session.messages.extend(messages)
        session.updated_at = updated_at
        if metadata is not None:
            session.metadata = metadata
        self._entries[key] = (new, session)

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def discard_tree(self, prefix_key: str) -> None:
        """Drop ``prefix_key`` and every key below it."""
        for key in [k for k in self._entries if in_subtree(k, prefix_key)]:
            del self._entries[key]
