"""Memories in PostgreSQL, in the sessions' schema, on the session store's pool.

The ``memories_v1`` table (layout version in the name) is created on first use. Keyword
search is full-text: a stored ``tsvector`` of the ``simple`` configuration (words, no
stemming, any language) under a GIN index, matched by a ``tsquery`` that ORs the query's
words, each quoted, ranked with ``ts_rank_cd``. PostgreSQL caps a ``tsvector`` at 1 MB, so
the indexed text is the entry's distinct words, cut at ``_INDEXED_CHARS``. Vectors are
float32 ``bytea`` ranked in the process (pgvector is not required; see
:mod:`orra_di.memory.stores`).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection

from orra_di.errors import StoreError
from orra_di.memory.model import (
    MemoryEntry,
    MemorySearchResult,
    all_words,
    pack_vector,
    rank_by_cosine,
    words,
)
from orra_di.memory.stores import MemoryStore, _entry, body_of, relative, scope_keys
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import subtree_bounds
from orra_di.stores.postgres import PostgresStore

__all__ = ["PostgresMemoryStore"]

_T = TypeVar("_T")

_INDEXED_CHARS = 400_000


def tsquery(terms: Sequence[str]) -> str:
    """A ``tsquery`` text matching any of ``terms`` (each quoted: no operator survives)."""
    return " | ".join("'" + t.replace("'", "''").replace("\\", "\\\\") + "'" for t in terms)


def indexed_text(entry: MemoryEntry) -> str:
    return " ".join(sorted(all_words(entry.searchable_text())))[:_INDEXED_CHARS]


class PostgresMemoryStore(MemoryStore):
    """Memories beside the sessions of ``sessions`` (same database and schema)."""

    def __init__(self, sessions: PostgresStore) -> None:
        self._sessions = sessions
        self._table = f'"{sessions.schema}".memories_v1'
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
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._table,))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                'id text PRIMARY KEY, namespace text COLLATE "C" NOT NULL, '
                "created_at double precision NOT NULL, embedding bytea, body text NOT NULL, "
                "words tsvector NOT NULL)"
            )
            await conn.execute(
                "CREATE INDEX IF NOT EXISTS memories_v1_namespace "
                f"ON {self._table} (namespace, created_at)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS memories_v1_words ON {self._table} USING gin (words)"
            )

    _UPSERT = (
        "INSERT INTO {table} (id, namespace, created_at, embedding, body, words) "
        "VALUES (%s, %s, %s, %s, %s, to_tsvector('simple', %s)) ON CONFLICT (id) DO UPDATE "
        "SET namespace = excluded.namespace, created_at = excluded.created_at, "
        "embedding = excluded.embedding, body = excluded.body, words = excluded.words"
    )

    @staticmethod
    def _row(entry: MemoryEntry) -> tuple[Any, ...]:
        return (
            entry.id,
            entry.namespace,
            entry.created_at.timestamp(),
            pack_vector(entry.embedding),
            body_of(entry),
            indexed_text(entry),
        )

    async def store(self, entry: MemoryEntry) -> str:
        await self.store_many([entry])
        return entry.id

    async def store_many(self, entries: Sequence[MemoryEntry]) -> None:
        rows = [self._row(e) for e in entries]
        sql = self._UPSERT.format(table=self._table)

        async def upsert(conn: AsyncConnection[Any]) -> None:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(sql, rows)

        if rows:
            what = (
                f"store memory {entries[0].id}" if len(rows) == 1 else f"store {len(rows)} memories"
            )
            await self._run(what, upsert)

    async def get(self, memory_id: str) -> MemoryEntry | None:
        async def select(conn: AsyncConnection[Any]) -> Any:
            cursor = await conn.execute(
                f"SELECT body, embedding FROM {self._table} WHERE id = %s", (memory_id,)
            )
            return await cursor.fetchone()

        row = await self._run(f"read memory {memory_id}", select)
        return None if row is None else _entry(*row)

    async def delete(self, memory_id: str) -> bool:
        async def delete(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(f"DELETE FROM {self._table} WHERE id = %s", (memory_id,))
            return cursor.rowcount > 0

        return await self._run(f"delete memory {memory_id}", delete)

    async def list(self, scope: Sequence[NamespaceLike], limit: int) -> builtins.list[MemoryEntry]:
        keys = scope_keys(scope)
        if not keys or limit <= 0:
            return []

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            cursor = await conn.execute(
                f"SELECT body, embedding FROM {self._table} WHERE namespace = ANY(%s) "
                "ORDER BY created_at DESC, id DESC LIMIT %s",
                (keys, limit),
            )
            return await cursor.fetchall()

        return [_entry(*row) for row in await self._run("list memories", select)]

    async def search_text(
        self, scope: Sequence[NamespaceLike], query: str, limit: int
    ) -> builtins.list[MemorySearchResult]:
        keys, terms = scope_keys(scope), words(query)
        if not keys or not terms or limit <= 0:
            return []

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            # rank ids first (the sort holds no bodies), then read the best ones' bodies
            cursor = await conn.execute(
                f"WITH best AS (SELECT id, created_at, ts_rank_cd(words, q) AS rank "
                f"FROM {self._table}, to_tsquery('simple', %s) q "
                "WHERE words @@ q AND namespace = ANY(%s) "
                "ORDER BY rank DESC, created_at DESC LIMIT %s) "
                f"SELECT m.body, m.embedding, best.rank FROM best JOIN {self._table} m "
                "USING (id) ORDER BY best.rank DESC, best.created_at DESC",
                (tsquery(terms), keys, limit),
            )
            return await cursor.fetchall()

        rows = await self._run("search memories", select)
        return relative([(_entry(body, blob), float(rank)) for body, blob, rank in rows])

    async def search(
        self, scope: Sequence[NamespaceLike], embedding: Sequence[float], limit: int
    ) -> builtins.list[MemorySearchResult]:
        keys = scope_keys(scope)
        if not keys or limit <= 0:
            return []

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            cursor = await conn.execute(
                f"SELECT id, embedding FROM {self._table} "
                "WHERE embedding IS NOT NULL AND namespace = ANY(%s)",
                (keys,),
            )
            return [(i, bytes(blob)) for i, blob in await cursor.fetchall()]

        best = rank_by_cosine(embedding, await self._run("search memories", select), limit)
        if not best:
            return []

        async def bodies(conn: AsyncConnection[Any]) -> dict[str, tuple[str, bytes]]:
            cursor = await conn.execute(
                f"SELECT id, body, embedding FROM {self._table} WHERE id = ANY(%s)",
                ([i for i, _ in best],),
            )
            return {r[0]: (r[1], r[2]) for r in await cursor.fetchall()}

        found = await self._run("read memories", bodies)
        return [MemorySearchResult(_entry(*found[i]), s) for i, s in best if i in found]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key
        low, high = subtree_bounds(prefix)

        async def delete(conn: AsyncConnection[Any]) -> int:
            cursor = await conn.execute(
                f"DELETE FROM {self._table} WHERE namespace = %s "
                "OR (namespace >= %s AND namespace < %s)",
                (prefix, low, high),
            )
            return cursor.rowcount

        return await self._run(f"erase the memories under {prefix!r}", delete)
