"""The session store contract every backend implements.

orra's four operations (load, save, delete, list) plus what a runtime in a
real product needs:

- ``append`` adds a step without rewriting the history, so persisting one
  step costs the same at message 10 and at message 10,000;
- ``delete_tree`` erases a namespace and everything below it (GDPR erasure);
- ``lock`` is the single-writer mechanism: while a run holds it, no other run
  (in this process or, for shared stores, in another) writes the session.

Listing is by whole segments: the prefix ``acme`` finds ``acme`` and
``acme:alice`` but never ``acmeother``. Results are sorted by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from orra_di.message import Message
from orra_di.namespace import SEPARATOR, Namespace
from orra_di.session import Session

__all__ = ["SessionStore", "in_subtree", "subtree_bounds"]


@runtime_checkable
class SessionStore(Protocol):
    async def load(self, namespace: Namespace) -> Session | None:
        """The session, or ``None`` if there is none."""
        ...

    async def save(self, session: Session) -> None:
        """Write the whole session, replacing what is stored under its namespace."""
        ...

    async def append(
        self,
        namespace: Namespace,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``messages`` at the end (creating the session if needed).

        With ``metadata``, the session's metadata is replaced in the same write.
        """
        ...

    async def delete(self, namespace: Namespace) -> bool:
        """Delete one session; ``True`` if it existed."""
        ...

    async def delete_tree(self, namespace: Namespace) -> int:
        """Delete the session at ``namespace`` and every one below; return how many."""
        ...

    async def list(self, prefix: Namespace | None = None) -> list[Namespace]:
        """Namespaces with a session, at or below ``prefix``, sorted by key."""
        ...

    def lock(
        self, namespace: Namespace, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the session's single-writer lock.

        ``timeout=None`` waits as long as it takes, ``0`` refuses at once;
        when the wait runs out, :class:`~orra_di.errors.SessionBusyError`.
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
