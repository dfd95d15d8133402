"""The session store contract every backend implements.

orra's four operations (load, save, delete, list) plus what a runtime in a
real product needs:

- ``append`` adds a step without rewriting the history, so persisting one
  step costs the same at message 10 and at message 10,000;
- ``delete_tree`` erases a namespace and everything below it (GDPR erasure);
- ``lock`` is the single-writer mechanism: while a run holds it, no other run
  (in this process or, for shared stores, in another) writes the session;
- ``trim`` and ``prune`` are retention: keep the last N messages of a session,
  drop sessions idle for longer than a TTL.

Every method that takes a namespace takes a :class:`Namespace` or its key
(``store.load("acme:alice")``), turned into a ``Namespace`` at the method's
entry with :meth:`Namespace.coerce`, so a bad key is a ``NamespaceError``.

Listing is by whole segments: the prefix ``acme`` finds ``acme`` and
``acme:alice`` but never ``acmeother``. Results are sorted by key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from pydantic_core import PydanticSerializationError

from orra_di.errors import StoreError
from orra_di.message import Message, storable_json
from orra_di.namespace import SEPARATOR, Namespace, NamespaceLike
from orra_di.session import Session, utc_now

__all__ = [
    "SessionStore",
    "check_keep_last",
    "in_subtree",
    "prune_cutoff",
    "subtree_bounds",
    "trim_start",
]

MAX_KEEP_LAST = 2**53
"""More messages than any session holds; a larger ``keep_last`` is taken as this one, so
that every backend can compute with it (SQLite and PostgreSQL integers are 64-bit,
Lua's numbers are doubles) and it keeps everything on each."""


@runtime_checkable
class SessionStore(Protocol):
    async def load(self, namespace: NamespaceLike) -> Session | None:
        """The session, or ``None`` if there is none."""
        ...

    async def save(self, session: Session) -> None:
        """Write the whole session, replacing what is stored under its namespace."""
        ...

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``messages`` at the end (creating the session if needed).

        With ``metadata``, the session's metadata is replaced in the same write.
        """
        ...

    async def delete(self, namespace: NamespaceLike) -> bool:
        """Delete one session; ``True`` if it existed."""
        ...

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Delete the session at ``namespace`` and every one below; return how many."""
        ...

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        """Namespaces with a session, at or below ``prefix``, sorted by key."""
        ...

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session's single-writer lock.

        ``timeout=None`` waits as long as it takes, ``0`` refuses at once;
        when the wait runs out, :class:`~orra_di.errors.SessionBusyError`.
        """
        ...

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        """Keep only the newest ``keep_last`` messages of a session; return how many went.

        The cut moves forward past tool-result messages whose call it removed
        (see :func:`trim_start`), so the kept history is still valid for a
        provider. A missing session trims nothing. ``keep_last`` that is not a
        whole number >= 0 is a ValueError (:func:`check_keep_last`).
        """
        ...

    async def prune(self, idle_for: float) -> int:
        """Delete every session not written for ``idle_for`` seconds; return how many.

        A negative or NaN ``idle_for`` is a ValueError, an infinite one deletes
        nothing (:func:`prune_cutoff`).
        """
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


def in_subtree(key: str, prefix_key: str) -> bool:
    """True when ``key`` is ``prefix_key`` or lies below it (whole segments only)."""
    return key == prefix_key or key.startswith(prefix_key + SEPARATOR)


def subtree_bounds(prefix_key: str) -> tuple[str, str]:
    """``[low, high)`` such that descendants' keys sort inside it (for indexed range scans)."""
    return prefix_key + SEPARATOR, prefix_key + chr(ord(SEPARATOR) + 1)


def trim_start(messages: Sequence[Message], keep_last: int) -> int:
    """Index of the first message kept when keeping the newest ``keep_last``.

    Moves past leading tool-result messages, whose assistant call would be cut
    away: providers reject a result without its call.
    """
    keep_last = check_keep_last(keep_last)
    start = max(len(messages) - keep_last, 0)
    while start < len(messages) and messages[start].tool_results:
        start += 1
    return start


def check_keep_last(keep_last: int) -> int:
    """``keep_last`` as every store's ``trim`` uses it, or a ValueError saying what is wrong.

    A float, a bool or text would be read differently by each backend (SQLite trims
    2.5 as if it were 2, Python slicing refuses it, Redis and PostgreSQL fail in
    their own words), so all refuse it alike; a number beyond any session's length
    keeps everything (:data:`MAX_KEEP_LAST`) rather than overflowing a 64-bit column.
    """
    if isinstance(keep_last, bool) or not isinstance(keep_last, int):
        raise ValueError(f"keep_last must be a whole number of messages >= 0, got {keep_last!r}")
    if keep_last < 0:
        raise ValueError(f"keep_last must be >= 0, got {keep_last}")
    return min(keep_last, MAX_KEEP_LAST)


def prune_cutoff(idle_for: float) -> datetime | None:
    """When a session last written before counts as idle for ``idle_for`` seconds, or
    ``None`` when no session can be that idle (the moment is before year 1).

    Every store's ``prune`` checks its argument here first: a negative or NaN
    ``idle_for`` (a sign error, a bad setting) would otherwise delete every
    session, or fail in each backend's own words; an infinite or huge one means
    "nothing is that old" instead of an OverflowError from ``timedelta``.
    """
    if (
        isinstance(idle_for, bool)
        or not isinstance(idle_for, int | float)
        or math.isnan(idle_for)
        or idle_for < 0
    ):
        raise ValueError(f"idle_for must be a number of seconds >= 0, got {idle_for!r}")
    try:
        return utc_now() - timedelta(seconds=idle_for)
    except OverflowError:
        return None


# -- what any store can hold (the runtime checks a hook's changes with these) ----------


def dump_metadata(metadata: Mapping[str, Any], what: str) -> str:
    """Session metadata as JSON; ``what`` names the operation in the error.

    Lone surrogates become U+FFFD, as in messages (:func:`storable_json`): a hook
    that keeps ``os.fsdecode`` of a non-UTF-8 path would otherwise fail the write
    with a bare UnicodeEncodeError from the backend's driver. Nesting deeper than
    the encoder can follow is a StoreError like any other value JSON refuses.
    """
    try:
        return json.dumps(storable_json(dict(metadata)), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} failed: metadata is not JSON-serialisable: {exc}") from exc
    except RecursionError:
        raise StoreError(
            f"{what} failed: metadata is not JSON-serialisable: it is nested too deeply; "
            "keep it a few levels deep"
        ) from None


def dump_messages(messages: Iterable[Message]) -> list[str]:
    """One JSON document per message, in order (empty tool lists omitted).

    An item that is not a :class:`Message` (a string, a dict, what a hook put in
    ``session.messages``) is a StoreError naming it, not an AttributeError from
    deep inside the store, and nothing is written.
    """
    bodies: list[str] = []
    for index, message in enumerate(messages):
        if not isinstance(message, Message):
            raise StoreError(not_a_message(index, message))
        try:
            bodies.append(message.model_dump_json())
        except PydanticSerializationError as exc:  # e.g. arguments nested too deep
            raise StoreError(f"cannot store a message as JSON: {exc}") from exc
    return bodies


def not_a_message(index: int, item: object) -> str:
    """What is wrong with item ``index`` of a list of messages, and how to make one."""
    return (
        f"cannot store message {index}: it is a {type(item).__name__}, not a Message; "
        "make it with Message.user(...), Message.assistant(...) or Message.tool_result(...)"
    )
