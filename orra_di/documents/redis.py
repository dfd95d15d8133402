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
``P dpost:<namespace>US<term>`` (HASH)
    The term's postings in that namespace: field ``<id>US<chunk>``, value
    ``<count>:<chunk length>``.
``P dstat:<namespace>`` (HASH)
    ``chunks`` and ``terms``: the namespace's totals, for BM25's statistics.

Search needs no Redis module: an inverted index is kept in plain hashes (above),
written in the same ``MULTI`` as the document (under ``WATCH``, so two replacements
of one document never interleave). A search reads the postings of its terms in the
namespaces searched and ranks them with the in-memory store's BM25 (the same scores),
then reads the text of the winning chunks only.
"""

from __future__ import annotations

import builtins
import json
from collections import Counter
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError, WatchError

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
from orra_di.documents.text import idf, term_score, tokenize
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

    def _post(self, ns: str, term: str) -> str:
        return f"{self._p}dpost:{ns}\x1f{term}"

    def _stat(self, ns: str) -> str:
        return f"{self._p}dstat:{ns}"

    def _unindex(self, pipe: Any, ns: str, doc_id: str, old_terms: str | None) -> None:
        """Queue the removal of a stored document's postings and totals."""
        if old_terms is None:
            return
        counts = json.loads(old_terms)
        fields: dict[str, builtins.list[str]] = {}
        for seq, chunk_counts in enumerate(counts):
            for term in chunk_counts:
                fields.setdefault(term, []).append(f"{doc_id}\x1f{seq}")
        for term, where in fields.items():
            pipe.hdel(self._post(ns, term), *where)
        pipe.hincrby(self._stat(ns), "chunks", -len(counts))
        pipe.hincrby(self._stat(ns), "terms", -sum(sum(c.values()) for c in counts))

    async def _watched(self, key: str, queue: Any) -> Any:
        """Read ``key``'s ``terms`` under WATCH, then run what ``queue(pipe, terms)``
        queues in one MULTI; again if the document changed meanwhile."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    old_terms = await pipe.hget(key, "terms")
                    pipe.multi()  # type: ignore[no-untyped-call]
                    queue(pipe, old_terms)
                    return await pipe.execute()
                except WatchError:
                    continue

    async def _write(self, document: Document, chunks: builtins.list[str]) -> None:
        ns, doc_id = document.namespace.key, document.id
        key = self._doc(ns, doc_id)
        counts = [Counter(tokenize(chunk_source(document.title, c))) for c in chunks]

        def queue(pipe: Any, old_terms: str | None) -> None:
            self._unindex(pipe, ns, doc_id, old_terms)
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
                    "terms": json.dumps(counts),
                },
            )
            postings: dict[str, dict[str, str]] = {}
            for seq, chunk_counts in enumerate(counts):
                length = sum(chunk_counts.values())
                for term, count in chunk_counts.items():
                    postings.setdefault(term, {})[f"{doc_id}\x1f{seq}"] = f"{count}:{length}"
            for term, mapping in postings.items():
                pipe.hset(self._post(ns, term), mapping=mapping)
            pipe.hincrby(self._stat(ns), "chunks", len(counts))
            pipe.hincrby(self._stat(ns), "terms", sum(sum(c.values()) for c in counts))
            pipe.sadd(self._ids(ns), doc_id)
            pipe.sadd(self._namespaces, ns)

        await self._run(f"store document {doc_id}", self._watched(key, queue))

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
        key = self._doc(ns, document_id)

        def queue(pipe: Any, old_terms: str | None) -> None:
            self._unindex(pipe, ns, document_id, old_terms)
            pipe.delete(key)
            pipe.srem(self._ids(ns), document_id)

        results = await self._run(f"remove document {document_id}", self._watched(key, queue))
        return bool(results[-2])

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
        async def read() -> tuple[builtins.list[Any], builtins.list[Any]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ns in keys:
                    pipe.hmget(self._stat(ns), ["chunks", "terms"])
                for term in terms:
                    for ns in keys:
                        pipe.hgetall(self._post(ns, term))
                values = await pipe.execute()
            return values[: len(keys)], values[len(keys) :]

        stats, postings = await self._run("search documents", read())
        n_chunks = sum(int(chunks or 0) for chunks, _ in stats)
        if n_chunks <= 0:
            return []
        average = sum(int(total or 0) for _, total in stats) / n_chunks or 1.0
        scores: dict[tuple[str, str, int], float] = {}
        for t in range(len(terms)):
            per_ns = postings[t * len(keys) : (t + 1) * len(keys)]
            having = sum(len(p) for p in per_ns)
            if not having:
                continue
            weight = idf(n_chunks, having)
            for ns, fields in zip(keys, per_ns, strict=True):
                for where, value in fields.items():
                    doc_id, seq_text = str(where).rsplit("\x1f", 1)
                    count, length = str(value).split(":")
                    key = (ns, doc_id, int(seq_text))
                    share = term_score(weight, int(count), int(length), average)
                    scores[key] = scores.get(key, 0.0) + share
        scored = [(ns, doc_id, seq, "", score) for (ns, doc_id, seq), score in scores.items()]
        best = best_per_document(scored, limit)
        if not best:
            return []

        async def texts() -> builtins.list[Any]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for ns, doc_id, *_ in best:
                    pipe.hmget(self._doc(ns, doc_id), ["title", "chunks"])
                return await pipe.execute()

        found = await self._run("read the chunks found", texts())
        results = []
        for (ns, doc_id, seq, _, score), (title, text) in zip(best, found, strict=True):
            chunks = json.loads(text) if text is not None else []
            if seq >= len(chunks):
                continue  # removed or replaced between the two reads
            results.append(
                SearchResult(
                    document_id=doc_id,
                    namespace=Namespace.parse(ns),
                    title=title or "",
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
                for doc_id in [str(i) for i in await self._redis.smembers(self._ids(ns))]:
                    gone += await self.remove(ns, doc_id)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.delete(self._ids(ns), self._stat(ns))
                    pipe.srem(self._namespaces, ns)
                    await pipe.execute()
            return gone

        return await self._run(f"delete the documents of {prefix}", delete())
