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

Names are imported on first use (PEP 562): ``orra-di --help`` loads the CLI module of
this package without pydantic or the stores.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.memory.manager import (
        AncestorRule,
        MemoryManager,
        visible_scope,
    )
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

_WHERE = {
    "AncestorRule": "orra_di.memory.manager",
    "MemoryManager": "orra_di.memory.manager",
    "visible_scope": "orra_di.memory.manager",
    "EmbeddingError": "orra_di.memory.model",
    "EmbeddingProvider": "orra_di.memory.model",
    "MemoryEntry": "orra_di.memory.model",
    "MemorySearchResult": "orra_di.memory.model",
    "MemoryStoreError": "orra_di.memory.model",
    "cosine_similarity": "orra_di.memory.model",
    "words": "orra_di.memory.model",
    "FileMemoryStore": "orra_di.memory.stores",
    "InMemoryMemoryStore": "orra_di.memory.stores",
    "MemoryStore": "orra_di.memory.stores",
    "SQLiteMemoryStore": "orra_di.memory.stores",
    "memory_store_for": "orra_di.memory.stores",
}

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


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'orra_di.memory' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
