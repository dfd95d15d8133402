"""Documents in PostgreSQL, in the sessions' schema, on the session store's pool.

Tables (layout version in the name), created on first use: ``documents_v1`` (one row a
document) and ``document_chunks_v1`` (one row a chunk, with a ``tsvector`` column under
a GIN index). The ``tsvector`` is built from our own tokens
(:func:`~orra_di.documents.text.tokenize`) with their positions, not by
``to_tsvector``, so PostgreSQL indexes exactly the terms the other backends index
(no stemming, no stop words, accents dropped the same way); a query is the OR of its
terms as a ``tsquery`` built the same way. Chunks are ranked by
``ts_rank_cd(tsv, query, 1)`` (cover density, divided by ``1 + log(length)``): not
BM25, but one rule for term frequency and matching, and no statistics shared
between tenants.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection

from orra_di.documents.model import Document, DocumentSummary, SearchResult
from orra_di.documents.stores import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_OVERLAP,
    DocumentStore,
    _keys,
    chunk_source,
    summary_from_row,
)
from orra_di.documents.text import tokenize
from orra_di.errors import StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import subtree_bounds
from orra_di.stores.postgres import PostgresStore

__all__ = ["PostgresDocumentStore", "ts_query", "ts_vector"]

_T = TypeVar("_T")

MAX_POSITION = 16383  # PostgreSQL's last tsvector position


def _lexeme(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def ts_vector(text: str) -> str:
    """A ``tsvector`` literal of ``text``'s tokens with their positions."""
    positions: dict[str, builtins.list[int]] = {}
    for index, token in enumerate(tokenize(text), start=1):
        positions.setdefault(token, []).append(min(index, MAX_POSITION))
    return " ".join(
        f"{_lexeme(term)}:{','.join(map(str, sorted(set(where))[:256]))}"
        for term, where in positions.items()
    )


def ts_query(terms: Sequence[str]) -> str:
    """A ``tsquery`` literal matching any of ``terms``."""
    return " | ".join(_lexeme(term) for term in terms)


_SEARCH = """
SELECT r.namespace, r.doc_id, r.seq, r.chunk, r.score, d.title FROM (
    SELECT c.namespace, c.doc_id, c.seq, c.chunk, ts_rank_cd(c.tsv, q, 1) AS score,
           ROW_NUMBER() OVER (PARTITION BY c.namespace, c.doc_id
                              ORDER BY ts_rank_cd(c.tsv, q, 1) DESC, c.seq) AS rn
    FROM {chunks} c, CAST(%s AS tsquery) q
    WHERE c.namespace = ANY(%s) AND c.tsv @@ q
) r JOIN {docs} d ON d.namespace = r.namespace AND d.id = r.doc_id
WHERE r.rn = 1 ORDER BY r.score DESC, r.namespace, r.doc_id LIMIT %s
"""


class PostgresDocumentStore(DocumentStore):
    """Documents beside the sessions of ``sessions`` (same database and schema)."""

    def __init__(
        self,
        sessions: PostgresStore,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        super().__init__(chunk_size=chunk_size, overlap=overlap)
        self._sessions = sessions
        s = f'"{sessions.schema}"'
        self._docs = f"{s}.documents_v1"
        self._chunks = f"{s}.document_chunks_v1"
        self._ready = False
        self._creating = anyio.Lock()

    async def _run(self, what: str, op: Callable[[AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        try:
            if not self._ready:
                async with self._creating:
                    if not self._ready:
                        async with self._sessions.connection() as conn:
                            await self._create(conn)
                        self._ready = True
            async with self._sessions.connection() as conn:
                return await op(conn)
        except psycopg.Error as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} ({self._sessions!r})") from exc

    async def _create(self, conn: AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._docs,))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._docs} ("
                'namespace text COLLATE "C" NOT NULL, id text NOT NULL, title text NOT NULL, '
                "source text NOT NULL, metadata jsonb NOT NULL, content_hash text NOT NULL, "
                "updated_at timestamptz NOT NULL, content text NOT NULL, "
                "PRIMARY KEY (namespace, id))"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._chunks} ("
                'namespace text COLLATE "C" NOT NULL, doc_id text NOT NULL, seq integer NOT NULL, '
                "chunk text NOT NULL, tsv tsvector NOT NULL, PRIMARY KEY (namespace, doc_id, seq), "
                f"FOREIGN KEY (namespace, doc_id) REFERENCES {self._docs} ON DELETE CASCADE)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS document_chunks_v1_tsv ON {self._chunks} "
                "USING gin (tsv)"
            )

    async def _write(self, document: Document, chunks: builtins.list[str]) -> None:
        ns, title = document.namespace.key, document.title

        async def write(conn: AsyncConnection[Any]) -> None:
            async with conn.transaction():
                # one writer per document: two replacements of it never interleave
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))",
                    (f"{self._docs}\x1f{ns}\x1f{document.id}",),
                )
                await conn.execute(
                    f"DELETE FROM {self._docs} WHERE namespace = %s AND id = %s",
                    (ns, document.id),
                )
                await conn.execute(
                    f"INSERT INTO {self._docs} (namespace, id, title, source, metadata, "
                    "content_hash, updated_at, content) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        ns,
                        document.id,
                        title,
                        document.source,
                        json.dumps(document.metadata),
                        document.content_hash,
                        document.updated_at,
                        document.content,
                    ),
                )
                async with conn.cursor() as cursor:
                    await cursor.executemany(
                        f"INSERT INTO {self._chunks} (namespace, doc_id, seq, chunk, tsv) "
                        "VALUES (%s, %s, %s, %s, CAST(%s AS tsvector))",
                        [
                            (ns, document.id, seq, chunk, ts_vector(chunk_source(title, chunk)))
                            for seq, chunk in enumerate(chunks)
                        ],
                    )

        await self._run(f"store document {document.id}", write)

    async def get(self, namespace: NamespaceLike, document_id: str) -> Document | None:
        ns = Namespace.coerce(namespace).key

        async def select(conn: AsyncConnection[Any]) -> Any:
            cursor = await conn.execute(
                f"SELECT title, source, metadata, updated_at, content FROM {self._docs} "
                "WHERE namespace = %s AND id = %s",
                (ns, document_id),
            )
            return await cursor.fetchone()

        row = await self._run(f"read document {document_id}", select)
        if row is None:
            return None
        title, source, metadata, updated, content = row
        return Document(
            id=document_id,
            namespace=Namespace.parse(ns),
            title=title,
            source=source,
            metadata=dict(metadata),
            updated_at=updated,
            content=content,
        )

    async def remove(self, namespace: NamespaceLike, document_id: str) -> bool:
        ns = Namespace.coerce(namespace).key

        async def delete(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(
                f"DELETE FROM {self._docs} WHERE namespace = %s AND id = %s", (ns, document_id)
            )
            return cursor.rowcount > 0

        return await self._run(f"remove document {document_id}", delete)

    async def list(
        self, namespaces: Sequence[NamespaceLike] | None = None
    ) -> builtins.list[DocumentSummary]:
        keys = None if namespaces is None else _keys(namespaces)
        if keys == []:
            return []

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            sql = (
                "SELECT namespace, id, title, source, metadata, content_hash, updated_at "
                f"FROM {self._docs}"
            )
            args: tuple[Any, ...] = ()
            if keys is not None:
                sql += " WHERE namespace = ANY(%s)"
                args = (keys,)
            cursor = await conn.execute(sql + ' ORDER BY id COLLATE "C", namespace', args)
            return await cursor.fetchall()

        rows = await self._run("list documents", select)
        return [summary_from_row(*row) for row in rows]

    async def _search(
        self, terms: builtins.list[str], keys: builtins.list[str], limit: int
    ) -> builtins.list[SearchResult]:
        sql = _SEARCH.format(chunks=self._chunks, docs=self._docs)

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            cursor = await conn.execute(sql, (ts_query(terms), keys, limit))
            return await cursor.fetchall()

        rows = await self._run("search documents", select)
        return [
            SearchResult(
                document_id=doc_id,
                namespace=Namespace.parse(ns),
                title=title,
                chunk=chunk,
                chunk_index=seq,
                score=float(score),
            )
            for ns, doc_id, seq, chunk, score, title in rows
        ]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        key = Namespace.coerce(namespace).key
        low, high = subtree_bounds(key)

        async def delete(conn: AsyncConnection[Any]) -> int:
            cursor = await conn.execute(
                f"DELETE FROM {self._docs} WHERE namespace = %s "
                "OR (namespace >= %s AND namespace < %s)",
                (key, low, high),
            )
            return cursor.rowcount

        return await self._run(f"delete the documents of {key}", delete)
