"""The memory-store contract on every backend (orra's store tests, and bug 29's fixes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from orra_di.errors import ConfigurationError
from orra_di.memory import MemoryEntry, MemoryManager, MemoryStore, memory_store_for
from orra_di.store import SessionStore
from orra_di.stores import InMemoryStore

pytestmark = pytest.mark.anyio

T0 = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)


def entry(ns: str, content: str, minutes: int = 0, **fields: object) -> MemoryEntry:
    return MemoryEntry(
        namespace=ns, content=content, created_at=T0 + timedelta(minutes=minutes), **fields
    )


async def test_roundtrip_keeps_every_field(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    original = (
        entry("users:alice", "likes green tea")
        .with_tags(["drink", "preference"])
        .with_embedding([0.5, -0.25, 1.0])
        .with_metadata("source", "chat")
    )
    assert await store.store(original) == original.id
    assert await store.get(original.id) == original
    assert await store.get("no-such-id") is None


async def test_delete(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    e = entry("users:alice", "temporary")
    await store.store(e)
    assert await store.delete(e.id) is True
    assert await store.delete(e.id) is False
    assert await store.get(e.id) is None
    assert await store.search_text(["users:alice"], "temporary", 5) == []


async def test_storing_an_id_again_replaces_the_entry(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    e = entry("users:alice", "old words here")
    await store.store(e)
    await store.store(e.model_copy(update={"content": "new words", "namespace": "users:bob"}))
    assert await store.search_text(["users:alice"], "old", 5) == []
    assert await store.list(["users:alice"], 10) == []
    (found,) = await store.search_text(["users:bob"], "new", 5)
    assert found.entry.content == "new words"


async def test_text_search_ranks_the_best_match_first(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "dogs are loyal companions"))
    await store.store(entry("u", "cats are fluffy and independent"))
    await store.store(entry("u", "the weather is nice today"))
    results = await store.search_text(["u"], "fluffy cats", 5)
    assert [r.entry.content for r in results] == ["cats are fluffy and independent"]
    assert 0 < results[0].score <= 1  # comparable across backends: a share


async def test_text_search_orders_by_score(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "green tea in the morning", 1))
    await store.store(entry("u", "green and black tea with jasmine and tea leaves", 2))
    await store.store(entry("u", "green paint", 3))
    results = await store.search_text(["u"], "green tea jasmine", 5)
    assert len(results) == 3
    assert results[0].entry.content.startswith("green and black tea")
    assert results[-1].entry.content == "green paint"
    assert [r.score for r in results] == sorted((r.score for r in results), reverse=True)


async def test_keywords_match_whole_words_never_substrings(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)  # bug 29: orra's "cat" found "category"
    await store.store(entry("u", "the category of the item is books"))
    await store.store(entry("u", "concatenate strings"))
    assert await store.search_text(["u"], "cat", 5) == []
    await store.store(entry("u", "my cat sleeps"))
    assert [r.entry.content for r in await store.search_text(["u"], "cat", 5)] == ["my cat sleeps"]


async def test_tags_are_searched(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "prefers the window seat").with_tags(["travel"]))
    (found,) = await store.search_text(["u"], "travel", 5)
    assert found.entry.tags == ["travel"]


async def test_text_search_case_insensitive_and_empty_query(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "Paris is the capital of France"))
    assert len(await store.search_text(["u"], "FRANCE", 5)) == 1
    assert await store.search_text(["u"], "", 5) == []
    assert await store.search_text(["u"], "  ?! ", 5) == []


HOSTILE_QUERIES = [
    'cats" OR "dogs',
    "cats*",
    "* NEAR(cats dogs)",
    "cats AND NOT dogs",
    "content:cats",
    "scope:cats",
    "-cats ^dogs",
    "'; DROP TABLE memories_v1; --",
    "cats' OR '1'='1",
    "cats\x00dogs",
    "(cats | dogs) & !x <-> y:*",
    '"unbalanced',
    "\\ cats \\",
]


async def test_hostile_queries_are_words_only(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "cats are fluffy"))
    await store.store(entry("u", "the weather"))
    for query in HOSTILE_QUERIES:
        results = await store.search_text(["u"], query, 5)
        expected = ["cats are fluffy"] if "cats" in query else []
        assert [r.entry.content for r in results] == expected, query
    assert len(await store.list(["u"], 10)) == 2  # nothing was dropped


async def test_hostile_contents_are_stored_verbatim(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    hostile = [
        "Robert'); DROP TABLE memories_v1;--",
        'he said "NEAR(a b)" OR * AND NOT',
        "nul\x00inside",
        "a\\b\\'c :* <-> |",
        "lone \ud83d surrogate",  # a broken decoder's output: no backend can encode it
    ]
    ids = [await store.store(entry("u", text, i)) for i, text in enumerate(hostile)]
    stored = [await store.get(i) for i in ids]
    assert [s.content for s in stored if s] == [
        "Robert'); DROP TABLE memories_v1;--",
        'he said "NEAR(a b)" OR * AND NOT',
        "nul\ufffdinside",
        "a\\b\\'c :* <-> |",
        "lone \ufffd surrogate",
    ]
    (found,) = await store.search_text(["u"], "robert", 5)
    assert found.entry.id == ids[0]


async def test_a_one_megabyte_entry(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    big = ("lorem ipsum dolor " * 55_000)[:999_980] + " zebracorn"
    await store.store(entry("u", big))
    (found,) = await store.search_text(["u"], "zebracorn", 5)
    assert len(found.entry.content) == len(big)
    with pytest.raises(ValueError, match="at most 1,000,000 characters"):
        entry("u", "x" * 1_000_001)


async def test_another_language(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "Я люблю собак и кошек"))
    await store.store(entry("u", "Ich trinke gern Kräutertee"))
    await store.store(entry("u", "Le café est très fort"))
    assert [r.entry.content for r in await store.search_text(["u"], "собак", 5)] == [
        "Я люблю собак и кошек"
    ]
    assert len(await store.search_text(["u"], "KRÄUTERTEE", 5)) == 1
    assert len(await store.search_text(["u"], "très", 5)) == 1


async def test_vector_search(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "cats").with_embedding([1.0, 0.0, 0.0]))
    await store.store(entry("u", "dogs").with_embedding([0.0, 1.0, 0.0]))
    await store.store(entry("u", "fish").with_embedding([0.0, 0.0, 1.0]))
    await store.store(entry("u", "no vector"))
    results = await store.search(["u"], [0.8, 0.2, 0.0], 2)
    assert [r.entry.content for r in results] == ["cats", "dogs"]
    assert results[0].score > results[1].score
    assert results[0].entry.embedding == [1.0, 0.0, 0.0]
    assert await store.search(["u"], [0.8, 0.2, 0.0], 0) == []


async def test_vector_search_skips_other_lengths(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("u", "short").with_embedding([1.0, 0.0]))
    await store.store(entry("u", "right").with_embedding([1.0, 0.0, 0.0]))
    assert [r.entry.content for r in await store.search(["u"], [1.0, 0.0, 0.0], 5)] == ["right"]


async def test_scope_is_exact_namespaces(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("users:alice", "alice likes tea").with_embedding([1.0, 0.0]))
    await store.store(entry("users:bob", "bob likes tea").with_embedding([1.0, 0.0]))
    await store.store(entry("users:alice:chat", "alice chat likes tea").with_embedding([1, 0]))
    await store.store(entry("users:alicex", "alicex likes tea").with_embedding([1.0, 0.0]))
    for found in (
        [r.entry for r in await store.search_text(["users:alice"], "tea", 10)],
        [r.entry for r in await store.search(["users:alice"], [1.0, 0.0], 10)],
        await store.list(["users:alice"], 10),
    ):
        assert [e.content for e in found] == ["alice likes tea"]
    both = await store.list(["users:alice", "users:bob"], 10)
    assert sorted(e.content for e in both) == ["alice likes tea", "bob likes tea"]


async def test_list_newest_first_and_limit(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    for i in range(10):
        await store.store(entry("u", f"memory number {i}", i))
    listed = await store.list(["u"], 3)
    assert [e.content for e in listed] == ["memory number 9", "memory number 8", "memory number 7"]
    assert len(await store.list(["u"], 100)) == 10
    assert await store.list([], 10) == []


async def test_delete_tree_by_whole_segments(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    await store.store(entry("acme", "shared"))
    await store.store(entry("acme:alice", "one"))
    await store.store(entry("acme:alice:chat", "two"))
    await store.store(entry("acme:bob", "three"))
    await store.store(entry("acmeother", "kept"))
    assert await store.delete_tree("acme:alice") == 2
    assert [e.content for e in await store.list(["acme", "acme:bob"], 10)] != []
    assert await store.delete_tree("acme") == 2
    assert [e.content for e in await store.list(["acmeother"], 10)] == ["kept"]
    assert await store.delete_tree("acme") == 0
    assert await store.search_text(["acme:alice"], "one", 5) == []


async def test_concurrent_remember_and_forget(sessions: SessionStore) -> None:
    manager = MemoryManager(memory_store_for(sessions))
    ids: list[str] = []

    async def remember(i: int) -> None:
        ids.append(await manager.remember("acme:alice", f"fact number {i} about tea"))

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(remember, i)
    forgotten: list[bool] = []

    async def forget(memory_id: str) -> None:
        forgotten.append(await manager.forget("acme:alice", memory_id))

    async with anyio.create_task_group() as tg:
        for memory_id in ids[:15]:
            tg.start_soon(forget, memory_id)
            tg.start_soon(forget, memory_id)  # twice: exactly one wins
        for i in range(30, 40):
            tg.start_soon(remember, i)
    assert forgotten.count(True) == 15
    left = await manager.list("acme:alice", 100)
    assert len(left) == 25
    assert {e.id for e in left} == set(ids[15:])
    assert len(await manager.recall("acme:alice", "tea", 100)) == 25


async def test_one_memory_store_per_session_store() -> None:
    sessions = InMemoryStore()
    assert memory_store_for(sessions) is memory_store_for(sessions)
    assert isinstance(memory_store_for(sessions), MemoryStore)


async def test_a_session_store_without_a_memory_backend_is_named() -> None:
    class Custom:
        pass

    with pytest.raises(ConfigurationError, match="no backend beside a Custom"):
        memory_store_for(Custom())  # type: ignore[arg-type]


async def test_store_many(sessions: SessionStore) -> None:
    store = memory_store_for(sessions)
    entries = [entry("u", f"bulk fact {i}", i) for i in range(20)]
    await store.store_many(entries)
    await store.store_many([])
    await store.store_many([entries[0].model_copy(update={"content": "bulk fact replaced"})])
    assert len(await store.list(["u"], 100)) == 20
    assert [r.entry.content for r in await store.search_text(["u"], "replaced", 5)] == [
        "bulk fact replaced"
    ]


async def test_a_database_with_the_old_keyword_index_is_indexed_again(tmp_path: Path) -> None:
    """Databases written before the per-namespace index (``memories_fts_v1`` with a
    ``scope`` column) are searchable after the upgrade, and the old index is gone."""
    import sqlite3

    from orra_di.stores import SQLiteStore

    path = tmp_path / "old.db"
    old = entry("acme:alice", "I drink green tea every morning", tags=["drinks"])
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE memories_v1 (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
            "namespace TEXT NOT NULL, created_at REAL NOT NULL, embedding BLOB, "
            "body TEXT NOT NULL)"
        )
        conn.execute("CREATE VIRTUAL TABLE memories_fts_v1 USING fts5(text, scope)")
        conn.execute(
            "INSERT INTO memories_v1 (rowid, id, namespace, created_at, body) "
            "VALUES (7, ?, 'acme:alice', 0, ?)",
            (old.id, old.model_copy(update={"embedding": None}).to_json()),
        )
        conn.execute("INSERT INTO memories_fts_v1 (rowid, text, scope) VALUES (7, 'x', 'y')")
    sessions = SQLiteStore(path)
    try:
        store = memory_store_for(sessions)
        assert [r.entry.id for r in await store.search_text(["acme:alice"], "drinks", 5)] == [
            old.id
        ]
        assert await store.search_text(["acme:bob"], "tea", 5) == []
    finally:
        await sessions.aclose()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "memories_fts_v1" not in names and "memories_fts_v2" in names
