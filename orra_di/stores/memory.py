"""A store in a dict: for tests and single-process tools that need no persistence."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session, utc_now
from orra_di.store import in_subtree, trim_start
from orra_di.stores._locks import KeyedLocks

__all__ = ["InMemoryStore"]


class InMemoryStore:
    """Sessions by key. Loads hand out copies, so callers never alias the stored lists."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._locks = KeyedLocks()

    async def load(self, namespace: Namespace) -> Session | None:
        stored = self._sessions.get(namespace.key)
        return None if stored is None else stored.snapshot()

    async def save(self, session: Session) -> None:
        self._sessions[session.namespace.key] = session.snapshot()

    async def append(
        self,
        namespace: Namespace,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        stored = self._sessions.get(namespace.key)
        if stored is None:
            stored = self._sessions[namespace.key] = Session(namespace=namespace)
        stored.messages.extend(messages)
        if metadata is not None:
            stored.metadata = copy.deepcopy(dict(metadata))
        stored.touch()

    async def delete(self, namespace: Namespace) -> bool:
        return self._sessions.pop(namespace.key, None) is not None

    async def delete_tree(self, namespace: Namespace) -> int:
        doomed = [k for k in self._sessions if in_subtree(k, namespace.key)]
        for key in doomed:
            del self._sessions[key]
        return len(doomed)

    async def list(self, prefix: Namespace | None = None) -> list[Namespace]:
        keys = sorted(self._sessions)
        if prefix is not None:
            keys = [k for k in keys if in_subtree(k, prefix.key)]
        return [self._sessions[k].namespace for k in keys]

    async def trim(self, namespace: Namespace, keep_last: int) -> int:
        stored = self._sessions.get(namespace.key)
        if stored is None:
            return 0
        start = trim_start(stored.messages, keep_last)
        if start:
            del stored.messages[:start]
            stored.updated_at = utc_now()
        return start

    async def prune(self, idle_for: float) -> int:
        cutoff = utc_now() - timedelta(seconds=idle_for)
        idle = [k for k, s in self._sessions.items() if s.updated_at < cutoff]
        for key in idle:
            del self._sessions[key]
        return len(idle)

    def lock(
        self, namespace: Namespace, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        return self._locks.hold(namespace.key, timeout)

    async def aclose(self) -> None:
        return None
