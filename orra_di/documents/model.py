"""Documents, what a listing and a search return, and the visibility rule."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orra_di.errors import OrraError
from orra_di.message import storable_text
from orra_di.namespace import Namespace, NamespaceLike

__all__ = [
    "Document",
    "DocumentError",
    "DocumentSummary",
    "SearchResult",
    "content_hash",
    "visible_namespaces",
]

MAX_ID = 200
MAX_TITLE = 1000


class DocumentError(OrraError, ValueError):
    """A document that cannot be stored or read: a bad id, binary content, a file too big
    or unreadable. The message says which and what to do."""


def content_hash(content: str) -> str:
    """``sha256:<hex>`` of the UTF-8 content: equal hashes, unchanged document."""
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class Document(BaseModel):
    """One document of one tenant: orra's ``{id, title, content, metadata}`` plus the
    namespace it belongs to, where it came from and a hash of its content.

    ``id`` is unique within ``namespace`` (the same id may exist in another
    namespace). ``content_hash`` is computed from ``content``; re-adding a file whose
    hash is unchanged is skipped by the ingestion.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    namespace: Namespace
    title: str = ""
    content: str
    source: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    content_hash: str = ""
    updated_at: datetime = Field(default_factory=_now)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'document'}: "
                f"{str(e['msg']).removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise DocumentError(f"not a valid document: {problems}") from None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not value or len(value) > MAX_ID or value != value.strip():
            raise ValueError(
                f"{value!r} is not a document id: 1 to {MAX_ID} characters, "
                "no leading or trailing space"
            )
        if any(ord(c) < 32 for c in value):
            raise ValueError(f"{value!r} is not a document id: it has control characters")
        return value

    @field_validator("title", "source")
    @classmethod
    def _short(cls, value: str) -> str:
        if len(value) > MAX_TITLE:
            raise ValueError(f"a document title or source is at most {MAX_TITLE} characters")
        return value

    @field_validator("title", "content", "source")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError(
                "document text holds NUL characters: it looks binary; give text, "
                "Markdown, HTML or PDF"
            )
        # A lone surrogate (a broken decoder, a non-UTF-8 file name) can be neither
        # hashed nor stored: it becomes U+FFFD, as in messages.
        return storable_text(value)

    @field_validator("metadata")
    @classmethod
    def _storable_metadata(cls, value: dict[str, str]) -> dict[str, str]:
        return {storable_text(k): storable_text(v) for k, v in value.items()}

    @model_validator(mode="after")
    def _hash(self) -> Document:
        expected = content_hash(self.content)
        if self.content_hash != expected:
            object.__setattr__(self, "content_hash", expected)
        return self

    def summary(self) -> DocumentSummary:
        return DocumentSummary(
            id=self.id,
            namespace=self.namespace,
            title=self.title,
            source=self.source,
            metadata=self.metadata,
            content_hash=self.content_hash,
            updated_at=self.updated_at,
        )


class DocumentSummary(BaseModel):
    """A document without its content (``list``)."""

    model_config = ConfigDict(frozen=True)

    id: str
    namespace: Namespace
    title: str
    source: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)
    content_hash: str = ""
    updated_at: datetime


class SearchResult(BaseModel):
    """The best chunk of one document for a query, and its score (higher is better).

    Scores are comparable within one search on one backend: BM25 on memory, SQLite and
    Redis, ``ts_rank_cd`` on PostgreSQL (docs/documents.md).
    """

    model_config = ConfigDict(frozen=True)

    document_id: str
    namespace: Namespace
    title: str
    chunk: str
    chunk_index: int
    score: float


def visible_namespaces(namespace: NamespaceLike) -> list[Namespace]:
    """The namespaces whose documents ``namespace`` sees: itself, then its ancestors,
    nearest first (``acme:alice`` sees ``acme:alice`` and ``acme``), never a sibling,
    a descendant or another tenant."""
    ns = Namespace.coerce(namespace)
    return [ns, *ns.ancestors()]
