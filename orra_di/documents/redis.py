"""Documents in Redis, under the session store's key prefix, on its client.

Keys (``P`` is the store's ``key_prefix``, ``US`` the unit separator ``\\x1f``, which
neither a namespace nor a document id may hold):

``P doc:<namespace>US<id>`` (HASH)
    ``title``, ``source``, ``metadata`` (JSON), ``content_hash``, ``updated_at``,
    ``content``, ``chunks`` (a JSON list of the chunk texts) and ``terms`` (a JSON list
    of each chunk's ``{term: count}``, title included, made when the document is stored).
``P docs:<namespace>`` (SET)
    The ids of the namespace's documents.
``P docs:namespaces`` (SET)
    The namespaces that have documents (for :meth:`delete_tree`).

Search needs no Redis module: it reads the term counts of every chunk of the
namespaces searched and ranks them with the in-memory
:class:`~orra_di.documents.text.Bm25` (the same scores as the memory store), then the
text of the winning chunks only. Its cost grows with the size of those namespaces:
fine for a tenant's handbook, not for a hundred thousand chunks (use PostgreSQL or
SQLite there).
"""

from __future__ import annotations

import builtins
import json
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError

from orra_di.documents.model import Document, DocumentSummary, SearchResult
from orra_di.documents.stores import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_OVERLAP,
    DocumentStore,
    _keys,
    best_per_document,
    chunk_source,
    summary_from_row,
)
from orra_di.documents.text import Bm25, tokenize
from orra_di.errors import StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import in_subtree
from orra_di.stores.redis import RedisStore

__all__ = ["RedisDocumentStore"]

_T = TypeVar("_T")

_FIELDS = ("title", "source", "metadata", "content_hash", "updated_at")


class RedisDocumentStore(DocumentStore):
    """Documents beside the sessions of ``sessions`` (same server, same key prefix)."""

    def __init__(
        self,
        sessions: RedisStore,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        super().__init__(chunk_size=chunk_size, overlap=overlap)
        self._sessions = sessions
        self._redis = sessions.client
        self._p = sessions.key_prefix
        self._namespaces = f"{self._p}docs:namespaces"

    def _doc(self, ns: str, doc_id: str) -> str:
        return f"{self._p}doc:{ns}\x1f{doc_id}"

    def _ids(self, ns: str) -> str:
        return f"{self._p}docs:{ns}"

    async def _run(self, what: str, op: Awaitable[_T]) -> _T:
        try:
            return await op
        except RedisError as exc:
            raise StoreError(f"{what} failed: {exc} ({self._sessions!r})") from exc

    async def _write(self, document: Document, chunks: builtins.list[str]) -> None:
        ns = document.namespace.key
        key = self._doc(ns, document.id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                pipe.hset(
                    key,
                    mapping={
                        "title": document.title,
                        "source": document.source,
                        "metadata": json.dumps(document.metadata),
                        "content_hash": document.content_hash,
                        "updated_at": document.updated_at.isoformat(),
                        "content": document.content,
                        "chunks": json.dumps(chunks),
                        "terms": json.dumps(
                            [Counter(tokenize(chunk_source(document.title, c))) for c in chunks]
                        ),
                    },
                )
                pipe.sadd(self._ids(ns), document.id)
                pipe.sadd(self._namespaces, ns)
                await pipe.execute()

        await self._run(f"store document {document.id}", write())

    async def get(self, namespace: NamespaceLike, document_id: str) -> Document | None:
        ns = Namespace.coerce(namespace).key
        row = await self._run(
            f"read document {document_id}",
            self._redis.hmget(self._doc(ns, document_id), [*_FIELDS, "content"]),
        )
        if row[0] is None:
            return None
        title, source, metadata, _hash, updated, content = row
        return Document(
            id=document_id,
            namespace=Namespace.parse(ns),
            title=title,
            source=source,
            metadata=json.loads(str(metadata)),
            updated_at=datetime.fromisoformat(str(updated)),
            content=content,
        )

    async def remove(self, namespace: NamespaceLike, document_id: str) -> bool:
        ns = Namespace.coerce(namespace).key

        async def remove() -> bool:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._doc(ns, document_id))
                pipe.srem(self._ids(ns), document_id)
                gone, _ = await pipe.execute()
            return bool(gone)

        return await self._run(f"remove document {document_id}", remove())

    async def _rows(self, keys: builtins.list[str], fields: Sequence[str]) -> builtins.list[Any]:
        """``(namespace, id, *fields)`` of every document of these namespaces."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for ns in keys:
                pipe.smembers(self._ids(ns))
            id_sets = await pipe.execute()
        wanted = [(ns, doc_id) for ns, ids in zip(keys, id_sets, strict=True) for doc_id in ids]
        if not wanted:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for ns, doc_id in wanted:
                pipe.hmget(self._doc(ns, doc_id), list(fields))
            values = await pipe.execute()
        return [(*w, *v) for w, v in zip(wanted, values, strict=True) if v[0] is not None]

    async def _namespace_keys(self) -> builtins.list[str]:
        return sorted(str(ns) for ns in await self._redis.smembers(self._namespaces))

    async def list(
        self, namespaces: Sequence[NamespaceLike] | None = None
    ) -> builtins.list[DocumentSummary]:
        async def select() -> builtins.list[Any]:
            keys = await self._namespace_keys() if namespaces is None else _keys(namespaces)
            return await self._rows(keys, _FIELDS)

        rows = await self._run("list documents", select())
        summaries = [
            summary_from_row(ns, doc_id, t, s, m, h, datetime.fromisoformat(u))
            for ns, doc_id, t, s, m, h, u in rows
        ]
        return sorted(summaries, key=lambda s: (s.id, s.namespace.key))

    async def _search(
        self, terms: builtins.list[str], keys: builtins.list[str], limit: int
    ) -> builtins.list[SearchResult]:
        rows = await self._run("search documents", self._rows(keys, ("title", "terms")))
        flat: builtins.list[tuple[str, str, int]] = []
        counts: builtins.list[dict[str, int]] = []
        titles: dict[tuple[str, str], str] = {}
        for ns, doc_id, title, chunk_terms in rows:
            titles[(ns, doc_id)] = title
            for seq, chunk_counts in enumerate(json.loads(chunk_terms)):
                flat.append((ns, doc_id, seq))
                counts.append(chunk_counts)
        scores = Bm25(counts).scores(terms)
        scored = [(*row, "", score) for row, score in zip(flat, scores, strict=True) if score > 0]
        best = best_per_document(scored, limit)
        if not best:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for ns, doc_id, *_ in best:
                pipe.hget(self._doc(ns, doc_id), "chunks")
            texts = await self._run("read the chunks found", pipe.execute())
        results = []
        for (ns, doc_id, seq, _, score), text in zip(best, texts, strict=True):
            chunks = json.loads(text) if text is not None else []
            if seq >= len(chunks):
                continue  # replaced between the two reads
            results.append(
                SearchResult(
                    document_id=doc_id,
                    namespace=Namespace.parse(ns),
                    title=titles[(ns, doc_id)],
                    chunk=chunks[seq],
                    chunk_index=seq,
                    score=score,
                )
            )
        return results

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key

        async def delete() -> int:
            gone = 0
            for ns in await self._namespace_keys():
                if not in_subtree(ns, prefix):
                    continue
                ids = [str(i) for i in await self._redis.smembers(self._ids(ns))]
                async with self._redis.pipeline(transaction=True) as pipe:
                    for doc_id in ids:
                        pipe.delete(self._doc(ns, doc_id))
                    pipe.delete(self._ids(ns))
                    pipe.srem(self._namespaces, ns)
                    results = await pipe.execute()
                gone += sum(int(r) for r in results[: len(ids)])
            return gone

        return await self._run(f"delete the documents of {prefix}", delete())
