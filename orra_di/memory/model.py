"""Memory entries, search results, the embedder protocol and the text rules every store shares.

Keywords match **whole words** (bug 29: orra matched substrings, so ``cat`` found
``category``): a text's words are its runs of Unicode letters, digits and ``_``,
lower-cased (:func:`words`). A query is only ever a set of such words, so FTS operators,
quotes, ``*``, ``NEAR`` or SQL in a query are plain text and never reach a query
language as syntax.
"""

from __future__ import annotations

import math
import re
import uuid
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orra_di.errors import OrraError
from orra_di.message import JsonValue, storable_json, storable_text
from orra_di.namespace import Namespace

__all__ = [
    "MAX_CONTENT_CHARS",
    "EmbeddingError",
    "EmbeddingProvider",
    "MemoryEntry",
    "MemorySearchResult",
    "MemoryStoreError",
    "cosine_similarity",
    "words",
]

MAX_CONTENT_CHARS = 1_000_000
"""Longest memory accepted, in characters (a memory is a fact, not a document)."""

MAX_QUERY_WORDS = 64
"""A query's words beyond this many are ignored."""

_WORD = re.compile(r"\w+")
_ID = re.compile(r"[A-Za-z0-9_-]{1,100}")


class MemoryStoreError(OrraError):
    """A memory could not be stored, found or searched (orra's ``MemoryError::Storage``)."""


class EmbeddingError(OrraError):
    """An embedder failed or answered with vectors of the wrong shape."""


def words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, in order (at most ``MAX_QUERY_WORDS``)."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.replace("\x00", " ").lower()):
        seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_WORDS:
            break
    return list(seen)


def word_list(text: str) -> list[str]:
    """Every word of ``text``, lower-cased, in order, repeats kept: what a full-text index
    holds (BM25 counts how often a word occurs and how long the text is)."""
    return _WORD.findall(text.replace("\x00", " ").lower())


def all_words(text: str) -> set[str]:
    """Every word of ``text`` (no cap): what a stored memory can be found by."""
    return set(_WORD.findall(text.lower()))


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two vectors; 0.0 when empty or of different lengths (orra's rule)."""
    if not a or len(a) != len(b):
        return 0.0
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / max(norm, 1e-10)


def pack_vector(vector: Sequence[float] | None) -> bytes | None:
    """A vector as little-endian float32 bytes, the form stores keep it in."""
    return None if vector is None else array("f", vector).tobytes()


def unpack_vector(blob: bytes | None) -> list[float] | None:
    if blob is None:
        return None
    values = array("f")
    values.frombytes(bytes(blob))
    return values.tolist()


def rank_by_cosine(
    query: Sequence[float], candidates: Sequence[tuple[Any, bytes]], limit: int
) -> list[tuple[Any, float]]:
    """The ``limit`` candidates most similar to ``query`` (numpy when installed)."""
    if not candidates or limit <= 0:
        return []
    try:
        import numpy as np
    except ImportError:
        scored = [
            (key, cosine_similarity(query, unpack_vector(blob) or []))
            for key, blob in candidates
            if len(blob) == 4 * len(query)
        ]
    else:
        q = np.asarray(query, dtype=np.float32)
        size = 4 * q.shape[0]
        keys = [key for key, blob in candidates if len(blob) == size]
        if not keys:
            return []
        matrix = np.frombuffer(
            b"".join(blob for _, blob in candidates if len(blob) == size), dtype=np.float32
        ).reshape(len(keys), q.shape[0])
        norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(q))
        sims = (matrix @ q) / np.maximum(norms, 1e-10)
        top = np.argpartition(-sims, limit - 1)[:limit] if limit < len(keys) else range(len(keys))
        scored = [(keys[int(i)], float(sims[int(i)])) for i in top]
    scored.sort(key=lambda pair: pair[1], reverse=True)
    return scored[:limit]


def _now() -> datetime:
    return datetime.now(UTC)


class MemoryEntry(BaseModel):
    """One remembered fact of one namespace (orra's JSON shape)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    namespace: str
    content: str
    tags: list[str] = Field(default_factory=list)
    embedding: list[float] | None = None
    created_at: datetime = Field(default_factory=_now)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a memory id (1-100 letters, digits, - or _)")
        return value

    @field_validator("namespace", mode="before")
    @classmethod
    def _namespace(cls, value: Any) -> str:
        return Namespace.coerce(value).key

    @field_validator("content")
    @classmethod
    def _content(cls, value: str) -> str:
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")  # no backend keeps NUL in text
        value = storable_text(value)  # nor a lone surrogate (a broken decoder's output)
        if not value.strip():
            raise ValueError("a memory's content is empty")
        if len(value) > MAX_CONTENT_CHARS:
            raise ValueError(
                f"a memory holds at most {MAX_CONTENT_CHARS:,} characters, got {len(value):,}; "
                "keep long texts as documents"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return [storable_text(t.replace("\x00", "\ufffd")) for t in value if t.strip()]

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        cleaned: dict[str, JsonValue] = storable_json(value)
        return cleaned

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @classmethod
    def new(cls, namespace: Namespace | str, content: str) -> MemoryEntry:
        return cls(namespace=namespace, content=content)

    def with_tags(self, tags: Sequence[str]) -> MemoryEntry:
        return self.model_copy(update={"tags": list(tags)})

    def with_embedding(self, embedding: Sequence[float]) -> MemoryEntry:
        return self.model_copy(update={"embedding": [float(x) for x in embedding]})

    def with_metadata(self, key: str, value: JsonValue) -> MemoryEntry:
        return self.model_copy(update={"metadata": {**self.metadata, key: value}})

    def searchable_text(self) -> str:
        """What keyword search reads: the content and the tags."""
        return " ".join([self.content, *self.tags])

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> MemoryEntry:
        return cls.model_validate_json(text)


@dataclass(frozen=True)
class MemorySearchResult:
    """An entry found by a search, with its score (higher is better)."""

    entry: MemoryEntry
    score: float


@runtime_checkable
class EmbeddingProvider(Protocol):
    """Turns text into vectors of a fixed length (orra's trait)."""

    @property
    def dimensions(self) -> int: ...

    async def embed(self, text: str) -> list[float]: ...

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]: ...


async def checked_embedding(embedder: EmbeddingProvider, text: str) -> list[float]:
    """``embedder.embed(text)``, checked: any failure or a wrong length is an EmbeddingError."""
    try:
        vector = await embedder.embed(text)
    except EmbeddingError:
        raise
    except Exception as exc:
        raise EmbeddingError(f"the embedder failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(vector, list | tuple) or len(vector) != embedder.dimensions:
        got = len(vector) if isinstance(vector, list | tuple) else type(vector).__name__
        raise EmbeddingError(
            f"the embedder returned a vector of {got} values where {embedder.dimensions} "
            "were expected; check the embedding model and `memory.embedder` settings"
        )
    values = [float(x) for x in vector]
    if not all(math.isfinite(x) for x in values):
        raise EmbeddingError("the embedder returned a vector with NaN or infinite values")
    return values
