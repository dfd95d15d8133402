"""Builders the container uses: the embedder and the manager from ``MemorySettings``."""

from __future__ import annotations

from orra_di.memory.manager import MemoryManager
from orra_di.memory.model import EmbeddingProvider
from orra_di.memory.settings import MemorySettings
from orra_di.memory.stores import MemoryStore

__all__ = ["make_embedder", "make_manager"]


def make_embedder(section: MemorySettings) -> EmbeddingProvider | None:
    """The embedder ``memory.embedder`` names (its SDK imported only then)."""
    if section.embedder == "none":
        return None
    from orra_di.memory import embeddings

    if section.embedder == "hash":
        return embeddings.HashEmbeddings(section.embedding_dimensions or 64)
    if section.embedder == "local":
        return embeddings.LocalEmbeddings()
    key = section.embedding_api_key
    return embeddings.OpenAIEmbeddings(
        section.embedding_model,
        api_key=key.get_secret_value() if key else None,
        base_url=section.embedding_base_url,
        dimensions=section.embedding_dimensions,
    )


def make_manager(
    section: MemorySettings, store: MemoryStore, embedder: EmbeddingProvider | None
) -> MemoryManager:
    return MemoryManager(
        store,
        embedder,
        ancestors=section.ancestors,
        vector_weight=section.vector_weight,
        owner_depth=section.owner_depth,
    )
