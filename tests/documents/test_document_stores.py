"""The document-store conformance suite on every backend, and BM25 agreeing across them."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.documents import Document, document_store_for
from orra_di.documents.stores import MemoryDocumentStore, SQLiteDocumentStore
from orra_di.errors import ConfigurationError
from orra_di.stores import FileStore, InMemoryStore, SQLiteStore

from .conformance import HANDBOOK, ONBOARDING, SECURITY, DocumentStoreConformance, SessionsFactory

pytestmark = pytest.mark.anyio


class TestMemoryDocuments(DocumentStoreConformance):
    @pytest.fixture
    def new_sessions(self) -> SessionsFactory:
        store = InMemoryStore()
        return lambda: store


class TestSQLiteDocuments(DocumentStoreConformance):
    @pytest.fixture
    def new_sessions(self, tmp_path: Path) -> SessionsFactory:
        return lambda: SQLiteStore(tmp_path / "sessions.db")


@pytest.mark.service
class TestPostgresDocuments(DocumentStoreConformance):
    @pytest.fixture
    async def schema(self) -> AsyncIterator[str]:
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield schema
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    @pytest.fixture
    def new_sessions(self, schema: str) -> SessionsFactory:
        from orra_di.stores.postgres import PostgresStore

        return lambda: PostgresStore(POSTGRES_URL, schema=schema, max_size=3)


@pytest.mark.service
class TestRedisDocuments(DocumentStoreConformance):
    @pytest.fixture
    async def prefix(self) -> AsyncIterator[str]:
        require_redis()
        from redis.asyncio import Redis

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield prefix
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()

    @pytest.fixture
    def new_sessions(self, prefix: str) -> SessionsFactory:
        from orra_di.stores.redis import RedisStore

        return lambda: RedisStore(REDIS_URL, key_prefix=prefix)


CORPUS = [
    HANDBOOK,
    SECURITY,
    ONBOARDING,
    Document(
        id="travel",
        namespace="acme",
        title="Travel",
        content="Book travel two weeks ahead. Vacation travel is not reimbursed. "
        "Days abroad count as working days.",
    ),
]


@pytest.mark.parametrize(
    "query", ["vacation days", "password encryption", "weeks ahead", "travel days laptop"]
)
async def test_memory_bm25_scores_equal_fts5_bm25(tmp_path: Path, query: str) -> None:
    """Bug 30: one definition of a term and one formula: the in-memory BM25 gives the
    scores SQLite's FTS5 ``bm25()`` gives over the same chunks."""
    memory = MemoryDocumentStore(chunk_size=120, overlap=20)
    sessions = SQLiteStore(tmp_path / "s.db")
    sqlite = SQLiteDocumentStore(sessions, chunk_size=120, overlap=20)
    for d in CORPUS:
        await memory.upsert(d)
        await sqlite.upsert(d)
    ours = await memory.search(query, ["acme"], 10)
    theirs = await sqlite.search(query, ["acme"], 10)
    await sessions.aclose()
    assert ours
    assert [(r.document_id, r.chunk_index) for r in ours] == [
        (r.document_id, r.chunk_index) for r in theirs
    ]
    for a, b in zip(ours, theirs, strict=True):
        assert a.score == pytest.approx(b.score, rel=1e-9)


@pytest.mark.service
async def test_redis_scores_equal_the_memory_stores(prefix_redis: str) -> None:
    """Redis ranks its own postings with the in-memory store's BM25: the same scores."""
    from orra_di.documents.redis import RedisDocumentStore
    from orra_di.stores.redis import RedisStore

    sessions = RedisStore(REDIS_URL, key_prefix=prefix_redis)
    redis = RedisDocumentStore(sessions, chunk_size=120, overlap=20)
    memory = MemoryDocumentStore(chunk_size=120, overlap=20)
    for d in CORPUS:
        await memory.upsert(d)
        await redis.upsert(d)
    await redis.upsert(CORPUS[0])  # replacing leaves the statistics as they were
    for query in ("vacation days", "password encryption", "travel days laptop"):
        ours = await memory.search(query, ["acme"], 10)
        theirs = await redis.search(query, ["acme"], 10)
        assert [(r.document_id, r.chunk_index, r.chunk) for r in ours] == [
            (r.document_id, r.chunk_index, r.chunk) for r in theirs
        ]
        for a, b in zip(ours, theirs, strict=True):
            assert a.score == pytest.approx(b.score, rel=1e-9)
    await sessions.aclose()


@pytest.fixture
async def prefix_redis() -> AsyncIterator[str]:
    require_redis()
    from redis.asyncio import Redis

    prefix = f"orra-test:{secrets.token_hex(6)}:"
    yield prefix
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        await client.delete(key)
    await client.aclose()


def test_one_document_store_per_session_store_and_chunking() -> None:
    sessions = InMemoryStore()
    assert document_store_for(sessions) is document_store_for(sessions)
    assert document_store_for(sessions, chunk_size=500) is not document_store_for(sessions)


def test_a_file_store_has_no_document_backend(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no backend beside a FileStore"):
        document_store_for(FileStore(tmp_path))


async def test_a_database_with_the_old_index_is_indexed_again(tmp_path: Path) -> None:
    """A database written before the per-namespace index (``document_fts_v1``, plain
    terms) is searchable after the upgrade, each tenant's chunks in its own scope."""
    import sqlite3

    from orra_di.documents.stores import chunk_source
    from orra_di.documents.text import index_text

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE documents_v1 (namespace TEXT NOT NULL, id TEXT NOT NULL, "
            "title TEXT NOT NULL, source TEXT NOT NULL, metadata TEXT NOT NULL, "
            "content_hash TEXT NOT NULL, updated_at REAL NOT NULL, content TEXT NOT NULL, "
            "PRIMARY KEY (namespace, id)) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TABLE document_chunks_v1 (rowid INTEGER PRIMARY KEY, namespace TEXT NOT "
            "NULL, doc_id TEXT NOT NULL, seq INTEGER NOT NULL, chunk TEXT NOT NULL)"
        )
        conn.execute("CREATE VIRTUAL TABLE document_fts_v1 USING fts5(terms)")
        for rowid, ns in ((1, "acme"), (2, "globex")):
            chunk = f"Vacation policy of {ns}: twenty days."
            conn.execute(
                "INSERT INTO documents_v1 VALUES (?, 'policy', 'Policy', 'policy.md', '{}', "
                "'h', 0, ?)",
                (ns, chunk),
            )
            conn.execute(
                "INSERT INTO document_chunks_v1 VALUES (?, ?, 'policy', 0, ?)", (rowid, ns, chunk)
            )
            conn.execute(
                "INSERT INTO document_fts_v1 (rowid, terms) VALUES (?, ?)",
                (rowid, index_text(chunk_source("Policy", chunk))),
            )
    sessions = SQLiteStore(path)
    try:
        store = document_store_for(sessions)
        found = await store.search("vacation days", ["acme"], 5)
        assert [(r.namespace.key, r.document_id) for r in found] == [("acme", "policy")]
        assert "acme" in found[0].chunk
    finally:
        await sessions.aclose()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "document_fts_v1" not in names and "document_fts_v2" in names
