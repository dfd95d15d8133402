"""``MemoryManager``: remember, recall, forget and list, with the visibility rule.

**Visibility.** A namespace sees the memories stored at exactly its own key and, by
the rule ``ancestors`` (``memory.ancestors`` in the settings), its ancestors':

- ``"all"`` (default): every ancestor's (``acme:alice:support`` sees ``acme:alice`` and
  ``acme``: a tenant's shared facts reach all its users);
- ``"tenant"``: only the root's (``acme``);
- ``"none"``: its own only.

Never a sibling's, a descendant's or another tenant's (orra let an ancestor read every
descendant's memories: bug 29). **Forgetting** works only inside the caller's subtree:
an id of a memory outside it (another tenant's, or the shared facts above) is "not
found", the same answer as an id that does not exist, so ids cannot be probed.

**Owners.** With ``owner_depth`` (``memory.owner_depth``), memories belong to the
caller's namespace cut to that many segments: with 2, ``acme:alice:chat-7`` remembers as
``acme:alice``, so every conversation of alice's sees (and may forget) what any of them
remembered, and no one else does.

**Recall.** Without an embedder, whole-word keyword search. With one, a hybrid: the
query's vector's cosine (``vector_weight``) plus the keyword score scaled to the best
keyword hit (the rest), over the union of both searches' candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import ValidationError

from orra_di.memory.model import (
    EmbeddingProvider,
    MemoryEntry,
    MemorySearchResult,
    checked_embedding,
)
from orra_di.memory.stores import MemoryStore, check_memory_id
from orra_di.message import JsonValue
from orra_di.namespace import Namespace, NamespaceLike

__all__ = ["AncestorRule", "MemoryManager", "visible_scope"]

AncestorRule = Literal["all", "tenant", "none"]

_CANDIDATES = 4  # each search of a hybrid recall fetches this many times the limit


def visible_scope(namespace: NamespaceLike, rule: AncestorRule = "all") -> list[Namespace]:
    """The namespaces whose memories ``namespace`` sees, its own first."""
    ns = Namespace.coerce(namespace)
    ancestors = list(ns.ancestors())
    if rule == "none":
        return [ns]
    if rule == "tenant":
        return [ns, *ancestors[-1:]]
    return [ns, *ancestors]


class MemoryManager:
    """Memories of many namespaces over one :class:`MemoryStore`, optionally embedded."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: EmbeddingProvider | None = None,
        *,
        ancestors: AncestorRule = "all",
        vector_weight: float = 0.7,
        owner_depth: int | None = None,
    ) -> None:
        if not 0.0 <= vector_weight <= 1.0:
            raise ValueError(f"vector_weight must be within 0..1, got {vector_weight}")
        self._store = store
        self.embedder = embedder
        self.ancestors = ancestors
        self.vector_weight = vector_weight
        if owner_depth is not None and owner_depth < 1:
            raise ValueError(f"owner_depth must be >= 1, got {owner_depth}")
        self.owner_depth = owner_depth

    @property
    def store(self) -> MemoryStore:
        return self._store

    def with_embedder(self, embedder: EmbeddingProvider) -> MemoryManager:
        return MemoryManager(
            self._store,
            embedder,
            ancestors=self.ancestors,
            vector_weight=self.vector_weight,
            owner_depth=self.owner_depth,
        )

    def owner(self, namespace: NamespaceLike) -> Namespace:
        """Where ``namespace``'s memories are kept: itself, or its ancestor at
        ``owner_depth`` segments (so one person's conversations share their memories)."""
        ns = Namespace.coerce(namespace)
        if self.owner_depth is None or ns.depth <= self.owner_depth:
            return ns
        return Namespace(*ns.segments[: self.owner_depth])

    def scope(self, namespace: NamespaceLike) -> list[Namespace]:
        """The namespaces whose memories ``namespace`` sees (its owner's rule applies)."""
        ns = Namespace.coerce(namespace)
        owner = self.owner(ns)
        own = [ns, *(a for a in ns.ancestors() if owner.contains(a))]  # up to the owner
        return list(dict.fromkeys([*own, *visible_scope(owner, self.ancestors)]))

    async def remember(
        self,
        namespace: NamespaceLike,
        content: str,
        tags: Sequence[str] = (),
        metadata: dict[str, JsonValue] | None = None,
    ) -> str:
        """Store a memory; its id. The vector is computed first: an embedder that fails
        (or answers with the wrong length) raises EmbeddingError and nothing is stored."""
        try:
            entry = MemoryEntry(
                namespace=self.owner(namespace),
                content=content,
                tags=list(tags),
                metadata=metadata or {},
            )
        except ValidationError as exc:  # one line, not pydantic's report
            message = str(exc.errors()[0].get("msg", exc)).removeprefix("Value error, ")
            raise ValueError(message) from None
        if self.embedder is not None:
            entry = entry.with_embedding(await checked_embedding(self.embedder, entry.content))
        return await self._store.store(entry)

    async def recall(
        self, namespace: NamespaceLike, query: str, limit: int = 5
    ) -> list[MemorySearchResult]:
        """The memories visible from ``namespace`` most relevant to ``query``, best first."""
        if limit <= 0 or not query.strip():
            return []
        scope = self.scope(namespace)
        if self.embedder is None:
            return await self._store.search_text(scope, query, limit)
        vector = await checked_embedding(self.embedder, query)
        fetch = limit * _CANDIDATES
        by_vector = await self._store.search(scope, vector, fetch)
        by_words = await self._store.search_text(scope, query, fetch)
        best_words = max((r.score for r in by_words), default=0.0)
        entries: dict[str, MemoryEntry] = {}
        scores: dict[str, float] = {}
        for r in by_vector:
            entries[r.entry.id] = r.entry
            scores[r.entry.id] = self.vector_weight * r.score
        for r in by_words:
            entries.setdefault(r.entry.id, r.entry)
            share = r.score / best_words if best_words > 0 else 0.0
            scores[r.entry.id] = scores.get(r.entry.id, 0.0) + (1 - self.vector_weight) * share
        ranked = sorted(entries, key=lambda i: (scores[i], entries[i].created_at), reverse=True)
        return [MemorySearchResult(entries[i], scores[i]) for i in ranked[:limit]]

    async def get(self, namespace: NamespaceLike, memory_id: str) -> MemoryEntry | None:
        """The memory if ``namespace`` may see it (visible, or in its subtree), else None."""
        ns = self.owner(namespace)
        if not check_memory_id(memory_id):
            return None
        entry = await self._store.get(memory_id)
        if entry is None:
            return None
        visible = {n.key for n in self.scope(ns)}
        if entry.namespace in visible or ns.contains(entry.namespace):
            return entry
        return None

    async def forget(self, namespace: NamespaceLike, memory_id: str) -> bool:
        """Delete a memory of ``namespace``'s subtree; False (as for an unknown id) for
        any other, so another tenant's ids can neither be deleted nor probed."""
        ns = self.owner(namespace)
        if not check_memory_id(memory_id):
            return False
        entry = await self._store.get(memory_id)
        if entry is None or not ns.contains(entry.namespace):
            return False
        return await self._store.delete(memory_id)

    async def list(self, namespace: NamespaceLike, limit: int = 20) -> list[MemoryEntry]:
        """The memories visible from ``namespace``, newest first."""
        return await self._store.list(self.scope(namespace), limit)

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Erase every memory of ``namespace`` and below; how many."""
        return await self._store.delete_tree(namespace)
