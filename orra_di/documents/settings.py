"""The ``documents`` settings section (``ORRA_DOCUMENTS__*``), composed by ``OrraSettings``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DocumentSettings"]


class DocumentSettings(BaseModel):
    """A tenant's documents: the agents' tools, how documents are chunked, file limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tools: bool = False
    """Give every agent the ``search_documents``, ``read_document`` and
    ``list_documents`` tools over the documents its conversation may see (its namespace
    and that namespace's ancestors). Documents can be added and searched from the CLI
    either way."""
    chunk_size: int = Field(1000, ge=100, le=100_000)
    """Characters a chunk holds at most before its overlap: the unit a search ranks and
    returns. Changing it applies to documents added afterwards."""
    chunk_overlap: int = Field(150, ge=0)
    """Characters of the previous chunk repeated at the start of the next (less than
    ``chunk_size``), so a sentence cut at a boundary is found whole."""
    max_file_size: int = Field(10_000_000, ge=1)
    """Largest file ``orra-di docs add`` reads, in bytes; bigger files are refused."""
    search_limit: int = Field(5, ge=1, le=100)
    """Results ``search_documents`` returns when the model gives no ``limit`` (it may
    ask for up to 20)."""
    excerpt_chars: int = Field(600, ge=50)
    """Characters of each result's chunk shown to the model, around the first match."""

    @model_validator(mode="after")
    def _overlap(self) -> DocumentSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be less than "
                f"chunk_size ({self.chunk_size})"
            )
        return self
