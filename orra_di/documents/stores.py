"""Document stores beside the sessions, in every backend, with BM25 search over chunks.

A document is stored whole (for ``read_document``) and as chunks
(:func:`~orra_di.documents.text.chunk_text`), each chunk indexed with the document's
title in front of it; a search ranks chunks and returns each document's best one.
Backends, picked by :func:`document_store_for` from the session store object:

- in memory: dicts beside the :class:`~orra_di.stores.memory.InMemoryStore`, ranked by
  :class:`~orra_di.documents.text.Bm25` over the chunks of the namespaces searched;
- SQLite: the ``documents_v1`` and ``document_chunks_v1`` tables and the FTS5 table
  ``document_fts_v2`` in the sessions' database, ranked by FTS5's ``bm25()``; each term is
  indexed bound to its namespace, so a term's document frequency is its namespace's own
  (the average chunk length still covers the whole table);
- PostgreSQL: :mod:`orra_di.documents.postgres` (a ``tsvector`` column with a GIN
  index, ranked by ``ts_rank_cd``);
- Redis: :mod:`orra_di.documents.redis` (hashes per document; the search reads the
  namespaces' chunks and ranks them with the in-memory BM25).

Documents have no backend beside a :class:`~orra_di.stores.file.FileStore`.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from orra_di.documents.model import Document, DocumentSummary, SearchResult
from orra_di.documents.text import (
    Bm25,
    chunk_text,
    idf,
    index_text,
    query_terms,
    term_score,
    tokenize,
)
from orra_di.errors import ConfigurationError
from orra_di.namespace import Namespace, NamespaceLike, index_token
from orra_di.store import SessionStore, in_subtree, subtree_bounds
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "DocumentStore",
    "MemoryDocumentStore",
    "SQLiteDocumentStore",
    "document_store_for",
]

DEFAULT_CHUNK_SIZE = 1000
DEFAULT_OVERLAP = 150
MAX_LIMIT = 100


def chunk_source(title: str, chunk: str) -> str:
    """What a chunk is indexed as: the document's title, then the chunk."""
    return f"{title}\n{chunk}" if title else chunk


def _keys(namespaces: Sequence[NamespaceLike]) -> list[str]:
    return list(dict.fromkeys(Namespace.coerce(ns).key for ns in namespaces))


def _limit(limit: int) -> int:
    return max(0, min(int(limit), MAX_LIMIT))


class DocumentStore(ABC):
    """Documents by ``(namespace, id)``; search ranks chunks by BM25 (module docstring).

    Namespaces are exact in ``get``/``remove``/``search``/``list``: a caller passes
    the ones it may see (:func:`~orra_di.documents.model.visible_namespaces`);
    :meth:`delete_tree` erases a whole subtree.
    """

    def __init__(
        self, *, chunk_size: int = DEFAULT_CHUNK_SIZE, overlap: int = DEFAULT_OVERLAP
    ) -> None:
        chunk_text("", chunk_size, overlap)  # checks the pair
        self.chunk_size = chunk_size
        self.overlap = overlap

    def chunks(self, document: Document) -> builtins.list[str]:
        """``document``'s chunks under this store's size and overlap (one, empty, if none)."""
        return chunk_text(document.content, self.chunk_size, self.overlap) or [""]

    async def upsert(self, document: Document) -> int:
        """Add ``document``, or replace the one with its namespace and id (and its chunks);
        how many chunks it has now."""
        chunks = self.chunks(document)
        await self._write(document, chunks)
        return len(chunks)

    @abstractmethod
    async def _write(self, document: Document, chunks: builtins.list[str]) -> None: ...

    @abstractmethod
    async def get(self, namespace: NamespaceLike, document_id: str) -> Document | None:
        """The document with this id in exactly this namespace, or None."""

    @abstractmethod
    async def remove(self, namespace: NamespaceLike, document_id: str) -> bool:
        """Remove one document and its chunks; True if it existed."""

    @abstractmethod
    async def list(
        self, namespaces: Sequence[NamespaceLike] | None = None
    ) -> builtins.list[DocumentSummary]:
        """Summaries of the documents of these namespaces (all without them), by id then
        namespace."""

    async def search(
        self, query: str, namespaces: Sequence[NamespaceLike], limit: int = 5
    ) -> builtins.list[SearchResult]:
        """The best chunk of each matching document of ``namespaces``, best first.

        Every query term is optional; a query with no terms (or ``limit`` 0) gives [].
        """
        terms = query_terms(query)
        keys = _keys(namespaces)
        limit = _limit(limit)
        if not terms or not keys or not limit:
            return []
        return await self._search(terms, keys, limit)

    @abstractmethod
    async def _search(
        self, terms: builtins.list[str], keys: builtins.list[str], limit: int
    ) -> builtins.list[SearchResult]: ...

    async def find(self, namespaces: Sequence[NamespaceLike], document_id: str) -> Document | None:
        """The document with this id in the first of ``namespaces`` that has one."""
        for key in _keys(namespaces):
            found = await self.get(key, document_id)
            if found is not None:
                return found
        return None

    @abstractmethod
    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Delete every document of ``namespace`` and its descendants; how many."""

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Release what this store holds of its own (the sessions' connection stays)."""


def best_per_document(
    scored: builtins.list[tuple[str, str, int, str, float]], limit: int
) -> builtins.list[tuple[str, str, int, str, float]]:
    """``(namespace, id, seq, chunk, score)`` rows: each document's best, best first
    (ties by namespace, id, then earlier chunk), at most ``limit``."""
    best: dict[tuple[str, str], tuple[str, str, int, str, float]] = {}
    for row in scored:
        key = (row[0], row[1])
        kept = best.get(key)
        if kept is None or (row[4], -row[2]) > (kept[4], -kept[2]):
            best[key] = row
    ordered = sorted(best.values(), key=lambda r: (-r[4], r[0], r[1]))
    return ordered[:limit]


# -- in memory --------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("chunks", "counts", "document", "lengths")

    def __init__(self, document: Document, chunks: builtins.list[str]) -> None:
        self.document = document
        self.chunks = chunks
        self.counts = [Bm25.counts_of(tokenize(chunk_source(document.title, c))) for c in chunks]
        self.lengths = [c.total() for c in self.counts]


class _MemoryIndex:
    """The documents of one in-memory backend and an inverted index over their chunks:
    ``postings[term][namespace][id]`` lists ``(chunk, count, chunk length)``;
    ``sizes[namespace]`` is ``[chunks, terms]``, for BM25's statistics over the
    namespaces searched."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], _Entry] = {}
        self.postings: dict[str, dict[str, dict[str, builtins.list[tuple[int, int, int]]]]] = {}
        self.sizes: dict[str, builtins.list[int]] = {}

    def put(self, entry: _Entry) -> None:
        ns, doc_id = entry.document.namespace.key, entry.document.id
        self.pop(ns, doc_id)
        self.docs[(ns, doc_id)] = entry
        size = self.sizes.setdefault(ns, [0, 0])
        size[0] += len(entry.chunks)
        size[1] += sum(entry.lengths)
        for seq, counts in enumerate(entry.counts):
            length = entry.lengths[seq]
            for term, count in counts.items():
                per_ns = self.postings.setdefault(term, {}).setdefault(ns, {})
                per_ns.setdefault(doc_id, []).append((seq, count, length))

    def pop(self, ns: str, doc_id: str) -> _Entry | None:
        entry = self.docs.pop((ns, doc_id), None)
        if entry is None:
            return None
        size = self.sizes[ns]
        size[0] -= len(entry.chunks)
        size[1] -= sum(entry.lengths)
        for term in {t for counts in entry.counts for t in counts}:
            per_term = self.postings[term]
            per_ns = per_term[ns]
            del per_ns[doc_id]
            if not per_ns:
                del per_term[ns]
                if not per_term:
                    del self.postings[term]
        return entry


class MemoryDocumentStore(DocumentStore):
    """Documents in a dict with an inverted index; a search is BM25 (FTS5's formula)
    with the statistics of the namespaces searched only."""

    def __init__(
        self,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        overlap: int = DEFAULT_OVERLAP,
        data: _MemoryIndex | None = None,
    ) -> None:
        super().__init__(chunk_size=chunk_size, overlap=overlap)
        self._index = data if data is not None else _MemoryIndex()

    async def _write(self, document: Document, chunks: builtins.list[str]) -> None:
        self._index.put(_Entry(document, chunks))

    async def get(self, namespace: NamespaceLike, document_id: str) -> Document | None:
        entry = self._index.docs.get((Namespace.coerce(namespace).key, document_id))
        return entry.document if entry else None

    async def remove(self, namespace: NamespaceLike, document_id: str) -> bool:
        return self._index.pop(Namespace.coerce(namespace).key, document_id) is not None

    async def list(
        self, namespaces: Sequence[NamespaceLike] | None = None
    ) -> builtins.list[DocumentSummary]:
        keys = None if namespaces is None else set(_keys(namespaces))
        found = [
            e.document.summary()
            for (ns, _), e in self._index.docs.items()
            if keys is None or ns in keys
        ]
        return sorted(found, key=lambda s: (s.id, s.namespace.key))

    async def _search(
        self, terms: builtins.list[str], keys: builtins.list[str], limit: int
    ) -> builtins.list[SearchResult]:
        index = self._index
        n_chunks = sum(index.sizes.get(ns, (0, 0))[0] for ns in keys)
        if not n_chunks:
            return []
        average = sum(index.sizes.get(ns, (0, 0))[1] for ns in keys) / n_chunks or 1.0
        scores: dict[tuple[str, str, int], float] = {}
        for term in terms:
            per_term = index.postings.get(term, {})
            having = sum(len(c) for ns in keys for c in per_term.get(ns, {}).values())
            if not having:
                continue
            weight = idf(n_chunks, having)
            for ns in keys:
                for doc_id, chunks in per_term.get(ns, {}).items():
                    for seq, count, length in chunks:
                        key = (ns, doc_id, seq)
                        share = term_score(weight, count, length, average)
                        scores[key] = scores.get(key, 0.0) + share
        scored = [
            (ns, doc_id, seq, index.docs[(ns, doc_id)].chunks[seq], score)
            for (ns, doc_id, seq), score in scores.items()
        ]
        return [
            SearchResult(
                document_id=doc_id,
                namespace=Namespace.parse(ns),
                title=index.docs[(ns, doc_id)].document.title,
                chunk=chunk,
                chunk_index=seq,
                score=score,
            )
            for ns, doc_id, seq, chunk, score in best_per_document(scored, limit)
        ]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key
        doomed = [key for key in self._index.docs if in_subtree(key[0], prefix)]
        for ns, doc_id in doomed:
            self._index.pop(ns, doc_id)
        return len(doomed)


# -- SQLite -----------------------------------------------------------------------------------

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS documents_v1 (
        namespace TEXT NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL,
        source TEXT NOT NULL, metadata TEXT NOT NULL, content_hash TEXT NOT NULL,
        updated_at REAL NOT NULL, content TEXT NOT NULL,
        PRIMARY KEY (namespace, id)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS document_chunks_v1 (
        rowid INTEGER PRIMARY KEY, namespace TEXT NOT NULL, doc_id TEXT NOT NULL,
        seq INTEGER NOT NULL, chunk TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS document_chunks_v1_doc ON document_chunks_v1 (namespace, doc_id)",
    # The terms are already our tokens joined by spaces (text.index_text), each bound to
    # its namespace as ``<scope token>_<term>`` (our tokens never hold ``_``): the tokenizer
    # only splits on the spaces, keeping spacing marks (Mc) inside words as ours does. One
    # posting list per namespace and term: a search reads only its scope's matches, and
    # BM25's document frequencies are the tenant's own, not every tenant's.
    """CREATE VIRTUAL TABLE IF NOT EXISTS document_fts_v2 USING fts5(
        terms, tokenize = "unicode61 remove_diacritics 0 categories 'L* N* Co Mc' tokenchars '_'"
    )""",
)


def scoped_terms(namespace: str, text: str) -> str:
    """What the FTS index holds for a chunk: its terms, each bound to ``namespace``."""
    scope = index_token(namespace)
    return " ".join(f"{scope}_{term}" for term in index_text(text).split())


def _migrate_fts_v1(conn: sqlite3.Connection) -> None:
    """Databases written before the per-namespace index: index their chunks again the v2
    way from the chunks and titles kept beside it, then drop the old index."""
    if (
        conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'document_fts_v1'").fetchone()
        is None
    ):
        return
    conn.execute("DELETE FROM document_fts_v2")
    rows = conn.execute(
        "SELECT c.rowid, c.namespace, d.title, c.chunk FROM document_chunks_v1 c "
        "JOIN documents_v1 d ON d.namespace = c.namespace AND d.id = c.doc_id"
    ).fetchall()
    conn.executemany(
        "INSERT INTO document_fts_v2 (rowid, terms) VALUES (?, ?)",
        [(rowid, scoped_terms(ns, chunk_source(title, chunk))) for rowid, ns, title, chunk in rows],
    )
    conn.execute("DROP TABLE document_fts_v1")


_SQLITE_SEARCH = """
WITH matched AS (
    SELECT rowid AS rid, -bm25(document_fts_v2) AS score
    FROM document_fts_v2 WHERE document_fts_v2 MATCH ?
), ranked AS (
    SELECT c.namespace, c.doc_id, c.seq, matched.rid, matched.score, ROW_NUMBER() OVER (
        PARTITION BY c.namespace, c.doc_id ORDER BY matched.score DESC, c.seq) AS rn
    FROM matched JOIN document_chunks_v1 c ON c.rowid = matched.rid
    WHERE c.namespace IN ({marks})
)
SELECT r.namespace, r.doc_id, r.seq, c.chunk, r.score, d.title
FROM ranked r
JOIN document_chunks_v1 c ON c.rowid = r.rid
JOIN documents_v1 d ON d.namespace = r.namespace AND d.id = r.doc_id
WHERE r.rn = 1 ORDER BY r.score DESC, r.namespace, r.doc_id LIMIT ?
"""


def fts_query(terms: Sequence[str], keys: Sequence[str]) -> str:
    """An FTS5 query matching any of ``terms`` in any of the ``keys`` namespaces, each a
    quoted string (nothing else of the user's text reaches FTS5's syntax)."""
    scopes = [index_token(key) for key in keys]
    return " OR ".join(
        '"' + f"{scope}_{term}".replace('"', '""') + '"' for scope in scopes for term in terms
    )


def _stamp(moment: datetime) -> float:
    return moment.timestamp()


def _unstamp(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class SQLiteDocumentStore(DocumentStore):
    """Documents in the sessions' SQLite database, searched with FTS5 ``bm25()``."""

    def __init__(
        self,
        sessions: SQLiteStore,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        super().__init__(chunk_size=chunk_size, overlap=overlap)
        self._sessions = sessions
        self._ready = False

    async def _run(self, what: str, op: Any, *, write: bool = False) -> Any:
        if not self._ready:

            def create(conn: sqlite3.Connection) -> None:
                for statement in _SQLITE_SCHEMA:
                    conn.execute(statement)
                _migrate_fts_v1(conn)

            await self._sessions.run_in_connection("create the document tables", create, write=True)
            self._ready = True
        return await self._sessions.run_in_connection(what, op, write=write)

    @staticmethod
    def _drop(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> None:
        conn.execute(
            f"DELETE FROM document_fts_v2 WHERE rowid IN "
            f"(SELECT rowid FROM document_chunks_v1 WHERE {where})",
            args,
        )
        conn.execute(f"DELETE FROM document_chunks_v1 WHERE {where}", args)

    async def _write(self, document: Document, chunks: builtins.list[str]) -> None:
        ns, title = document.namespace.key, document.title

        def write(conn: sqlite3.Connection) -> None:
            self._drop(conn, "namespace = ? AND doc_id = ?", (ns, document.id))
            conn.execute(
                "INSERT OR REPLACE INTO documents_v1 (namespace, id, title, source, metadata, "
                "content_hash, updated_at, content) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ns,
                    document.id,
                    title,
                    document.source,
                    json.dumps(document.metadata, sort_keys=True),
                    document.content_hash,
                    _stamp(document.updated_at),
                    document.content,
                ),
            )
            for seq, chunk in enumerate(chunks):
                rowid = conn.execute(
                    "INSERT INTO document_chunks_v1 (namespace, doc_id, seq, chunk) "
                    "VALUES (?, ?, ?, ?)",
                    (ns, document.id, seq, chunk),
                ).lastrowid
                conn.execute(
                    "INSERT INTO document_fts_v2 (rowid, terms) VALUES (?, ?)",
                    (rowid, scoped_terms(ns, chunk_source(title, chunk))),
                )

        await self._run(f"store document {document.id}", write, write=True)

    async def get(self, namespace: NamespaceLike, document_id: str) -> Document | None:
        ns = Namespace.coerce(namespace).key

        def select(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT title, source, metadata, content_hash, updated_at, content "
                "FROM documents_v1 WHERE namespace = ? AND id = ?",
                (ns, document_id),
            ).fetchone()

        row = await self._run(f"read document {document_id}", select)
        if row is None:
            return None
        title, source, metadata, _hash, updated, content = row
        return Document(
            id=document_id,
            namespace=Namespace.parse(ns),
            title=title,
            source=source,
            metadata=json.loads(metadata),
            updated_at=_unstamp(updated),
            content=content,
        )

    async def remove(self, namespace: NamespaceLike, document_id: str) -> bool:
        ns = Namespace.coerce(namespace).key

        def delete(conn: sqlite3.Connection) -> bool:
            self._drop(conn, "namespace = ? AND doc_id = ?", (ns, document_id))
            return bool(
                conn.execute(
                    "DELETE FROM documents_v1 WHERE namespace = ? AND id = ?", (ns, document_id)
                ).rowcount
            )

        done: bool = await self._run(f"remove document {document_id}", delete, write=True)
        return done

    async def list(
        self, namespaces: Sequence[NamespaceLike] | None = None
    ) -> builtins.list[DocumentSummary]:
        keys = None if namespaces is None else _keys(namespaces)

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            sql = (
                "SELECT namespace, id, title, source, metadata, content_hash, updated_at "
                "FROM documents_v1"
            )
            args: builtins.list[str] = []
            if keys is not None:
                sql += f" WHERE namespace IN ({', '.join('?' * len(keys))})"
                args = keys
            return conn.execute(sql + " ORDER BY id, namespace", args).fetchall()

        if keys == []:
            return []
        rows = await self._run("list documents", select)
        return [summary_from_row(*row) for row in rows]

    async def _search(
        self, terms: builtins.list[str], keys: builtins.list[str], limit: int
    ) -> builtins.list[SearchResult]:
        sql = _SQLITE_SEARCH.format(marks=", ".join("?" * len(keys)))

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            return conn.execute(sql, (fts_query(terms, keys), *keys, limit)).fetchall()

        rows = await self._run("search documents", select)
        return [
            SearchResult(
                document_id=doc_id,
                namespace=Namespace.parse(ns),
                title=title,
                chunk=chunk,
                chunk_index=seq,
                score=score,
            )
            for ns, doc_id, seq, chunk, score, title in rows
        ]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        key = Namespace.coerce(namespace).key
        low, high = subtree_bounds(key)
        where = "(namespace = ? OR (namespace >= ? AND namespace < ?))"

        def delete(conn: sqlite3.Connection) -> int:
            self._drop(conn, where, (key, low, high))
            return int(
                conn.execute(f"DELETE FROM documents_v1 WHERE {where}", (key, low, high)).rowcount
            )

        gone: int = await self._run(f"delete the documents of {key}", delete, write=True)
        return gone


def summary_from_row(
    ns: str, doc_id: str, title: str, source: str, metadata: Any, digest: str, updated: Any
) -> DocumentSummary:
    """A summary from stored columns (metadata as JSON text or already decoded)."""
    return DocumentSummary(
        id=doc_id,
        namespace=Namespace.parse(ns),
        title=title,
        source=source,
        metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        content_hash=digest,
        updated_at=updated if isinstance(updated, datetime) else _unstamp(float(updated)),
    )


# -- which store ------------------------------------------------------------------------------

_memory_data: weakref.WeakKeyDictionary[Any, _MemoryIndex] = weakref.WeakKeyDictionary()
_for_store: weakref.WeakKeyDictionary[Any, dict[tuple[int, int], DocumentStore]] = (
    weakref.WeakKeyDictionary()
)


def document_store_for(
    sessions: SessionStore,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    overlap: int = DEFAULT_OVERLAP,
) -> DocumentStore:
    """The document store that lives beside ``sessions``, in the same backend.

    One per session store object and chunking (asking again returns the same one).
    Raises ConfigurationError for a session store kind with no document backend.
    """
    shape = (chunk_size, overlap)
    with suppress(KeyError):
        return _for_store[sessions][shape]
    store: DocumentStore
    if isinstance(sessions, InMemoryStore):
        data = _memory_data.setdefault(sessions, _MemoryIndex())
        store = MemoryDocumentStore(chunk_size=chunk_size, overlap=overlap, data=data)
    elif isinstance(sessions, SQLiteStore):
        store = SQLiteDocumentStore(sessions, chunk_size=chunk_size, overlap=overlap)
    else:
        module = type(sessions).__module__
        if module == "orra_di.stores.postgres":
            from orra_di.documents.postgres import PostgresDocumentStore

            store = PostgresDocumentStore(
                sessions,  # type: ignore[arg-type]
                chunk_size=chunk_size,
                overlap=overlap,
            )
        elif module == "orra_di.stores.redis":
            from orra_di.documents.redis import RedisDocumentStore

            store = RedisDocumentStore(
                sessions,  # type: ignore[arg-type]
                chunk_size=chunk_size,
                overlap=overlap,
            )
        else:
            raise ConfigurationError(
                f"documents have no backend beside a {type(sessions).__name__}; use the "
                "memory, SQLite, PostgreSQL or Redis session store (ORRA_STORE__URL)"
            )
    _for_store.setdefault(sessions, {})[shape] = store
    return store
