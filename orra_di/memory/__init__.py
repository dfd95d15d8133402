"""Long-term memory: facts an agent keeps per namespace, searched by words or meaning.

- :class:`MemoryEntry`, :class:`MemorySearchResult`, the :class:`EmbeddingProvider`
  protocol (:mod:`orra_di.memory.model`);
- :class:`MemoryStore` and its backends beside the sessions, :func:`memory_store_for`
  (:mod:`orra_di.memory.stores`);
- :class:`MemoryManager` (remember, recall, forget, list) and the visibility rule
  (:mod:`orra_di.memory.manager`);
- the ``remember`` / ``recall`` / ``forget`` tools (:mod:`orra_di.memory.tool`), the
  automatic-memory hook (:mod:`orra_di.memory.hook`), embedders
  (:mod:`orra_di.memory.embeddings`), settings (:mod:`orra_di.memory.settings`).
"""

from __future__ import annotations

from orra_di.memory.manager import AncestorRule, MemoryManager, visible_scope
from orra_di.memory.model import (
    EmbeddingError,
    EmbeddingProvider,
    MemoryEntry,
    MemorySearchResult,
    MemoryStoreError,
    cosine_similarity,
    words,
)
from orra_di.memory.stores import (
    FileMemoryStore,
    InMemoryMemoryStore,
    MemoryStore,
    SQLiteMemoryStore,
    memory_store_for,
)

__all__ = [
    "AncestorRule",
    "EmbeddingError",
    "EmbeddingProvider",
    "FileMemoryStore",
    "InMemoryMemoryStore",
    "MemoryEntry",
    "MemoryManager",
    "MemorySearchResult",
    "MemoryStore",
    "MemoryStoreError",
    "SQLiteMemoryStore",
    "cosine_similarity",
    "memory_store_for",
    "visible_scope",
    "words",
]
