"""Round 9 review: the SQLite memory keyword index per namespace (``memories_fts_v2``).

docs/memory.md: recall by whole words, case-insensitive, any language; a namespace sees
its own and its ancestors' memories, never a sibling's or another tenant's; a database
from before the v2 index is indexed again on first use. Every test here compares the
SQLite store with the in-memory one (the reference: it scores in Python) or checks the
documented visibility directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from memory.backends import BACKENDS, open_sessions

from orra_di.memory import MemoryManager
from orra_di.memory.model import MemoryEntry
from orra_di.memory.stores import (
    InMemoryMemoryStore,
    MemoryStore,
    SQLiteMemoryStore,
    memory_store_for,
)
from orra_di.namespace import index_token
from orra_di.stores import SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_sessions(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "memories.db")
    yield store
    await store.aclose()


@pytest.fixture
def sqlite_store(sqlite_sessions: SQLiteStore) -> MemoryStore:
    return memory_store_for(sqlite_sessions)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """The memory store beside each session backend (SQLite's FTS index, PostgreSQL's
    tsvector, the stores that score in Python)."""
    async for sessions in open_sessions(request.param, tmp_path):
        yield memory_store_for(sessions)


HOSTILE_NAMESPACES = [
    "a_b",
    "aXb",
    "a%b",
    'quo"te',
    "it's",
    "sp ace",
    "ünï:cödé",
    "日本:東京",
    "a*b:NEAR",
    "x:y:z:w",
    "ns0123456789abcdef0123",  # looks like a scope token
]


async def test_hostile_namespaces_each_find_only_their_own(store: MemoryStore) -> None:
    memory = MemoryManager(store, ancestors="none")
    for ns in HOSTILE_NAMESPACES:
        await memory.remember(ns, f"secret kiwi of {ns}")
    for ns in HOSTILE_NAMESPACES:
        found = await memory.recall(ns, "kiwi secret", limit=50)
        assert [r.entry.content for r in found] == [f"secret kiwi of {ns}"], ns


async def test_a_scope_of_several_ancestors_finds_each_level_and_nothing_beside(
    store: MemoryStore,
) -> None:
    levels = ["acme", "acme:eu", "acme:eu:alice", "acme:eu:alice:chat"]
    for ns in levels:
        await store.store(MemoryEntry(namespace=ns, content=f"apple fact at {ns}"))
    for ns in ["acme:us", "acme:eu:bob", "acme:eu:alice:chat:deeper", "acmeother", "globex"]:
        await store.store(MemoryEntry(namespace=ns, content=f"apple fact at {ns}"))

    every = MemoryManager(store, ancestors="all")
    found = {r.entry.namespace for r in await every.recall("acme:eu:alice:chat", "apple", 50)}
    assert found == set(levels)
    tenant = MemoryManager(store, ancestors="tenant")
    found = {r.entry.namespace for r in await tenant.recall("acme:eu:alice:chat", "apple", 50)}
    assert found == {"acme", "acme:eu:alice:chat"}
    none = MemoryManager(store, ancestors="none")
    found = {r.entry.namespace for r in await none.recall("acme:eu:alice:chat", "apple", 50)}
    assert found == {"acme:eu:alice:chat"}


async def test_tags_are_found_and_a_replaced_entrys_old_words_are_not(store: MemoryStore) -> None:
    entry = MemoryEntry(namespace="acme:alice", content="likes tea", tags=["beverage", "morning"])
    await store.store(entry)
    assert [r.entry.id for r in await store.search_text(["acme:alice"], "beverage", 5)] == [
        entry.id
    ]
    replaced = entry.model_copy(update={"content": "likes coffee", "tags": ["evening"]})
    await store.store(replaced)
    assert await store.search_text(["acme:alice"], "beverage tea morning", 5) == []
    found = await store.search_text(["acme:alice"], "coffee evening", 5)
    assert [(r.entry.id, r.entry.content) for r in found] == [(entry.id, "likes coffee")]


async def test_an_entry_stored_again_under_another_namespace_moves_there(
    store: MemoryStore,
) -> None:
    entry = MemoryEntry(namespace="acme:alice", content="the blue door")
    await store.store(entry)
    await store.store(entry.model_copy(update={"namespace": "globex"}))
    assert await store.search_text(["acme:alice"], "door", 5) == []
    assert [r.entry.namespace for r in await store.search_text(["globex"], "door", 5)] == ["globex"]


async def test_deleted_and_erased_entries_are_gone_from_search(store: MemoryStore) -> None:
    a = MemoryEntry(namespace="acme:alice", content="orange juice")
    b = MemoryEntry(namespace="acme:alice:chat", content="orange peel")
    c = MemoryEntry(namespace="acme:bob", content="orange cat")
    for e in (a, b, c):
        await store.store(e)
    assert await store.delete(a.id) is True
    assert await store.search_text(["acme:alice"], "orange", 5) == []
    assert await store.delete_tree("acme:alice") == 1
    assert await store.search_text(["acme:alice:chat"], "orange", 5) == []
    assert [r.entry.id for r in await store.search_text(["acme:bob"], "orange", 5)] == [c.id]


@pytest.mark.parametrize(
    ("content", "query"),
    [
        ("Алиса любит ЗЕЛЁНЫЙ чай", "зелёный"),
        ("Η Σοφία πίνει καφέ", "ΚΑΦΈ"),
        ("東京 に 住んで いる", "東京"),
        ("नमस्ते दुनिया", "दुनिया"),
        ("café au lait", "CAFÉ"),
        ("مرحبا بالعالم", "بالعالم"),
        ("x² and ⅻ and ᏸ", "ᏸ"),
    ],
)
async def test_other_languages_match_whole_words_like_the_reference(
    store: MemoryStore, content: str, query: str
) -> None:
    reference = InMemoryMemoryStore()
    noise = MemoryEntry(namespace="acme", content="unrelated words only")
    entry = MemoryEntry(namespace="acme", content=content)
    for s in (store, reference):
        await s.store(noise)
        await s.store(entry)
    got = [r.entry.id for r in await store.search_text(["acme"], query, 5)]
    want = [r.entry.id for r in await reference.search_text(["acme"], query, 5)]
    assert got == want == [entry.id]


async def test_a_word_only_another_tenant_has_finds_nothing(store: MemoryStore) -> None:
    await store.store(MemoryEntry(namespace="globex", content="zanzibar launch codes"))
    await store.store(MemoryEntry(namespace="acme", content="ordinary facts"))
    assert await store.search_text(["acme", "acme:alice"], "zanzibar codes", 5) == []


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(a b)", "a OR b", "a AND NOT b", "col : word", "'; DROP TABLE x; --", "\x00"],
)
async def test_hostile_queries_neither_fail_nor_widen_the_scope(
    store: MemoryStore, query: str
) -> None:
    await store.store(MemoryEntry(namespace="globex", content="a b word drop table x near"))
    assert await store.search_text(["acme"], query, 5) == []


async def test_another_tenant_cannot_push_a_users_memories_out_of_recall(
    sqlite_store: MemoryStore,
) -> None:
    """A tenant writes words that the FTS tokenizer splits where Python does not (U+19B0,
    a letter for Python, a mark for SQLite's Unicode 6.1 tables) so that a piece of its
    memory reads as alice's ``<scope>_tea``. It must not cost alice her own recall."""
    mine = MemoryEntry(namespace="acme:alice", content="alice likes green tea")
    await sqlite_store.store(mine)
    forged = f"x\u19b0{index_token('acme:alice')}_tea " * 50
    for _ in range(10):
        await sqlite_store.store(MemoryEntry(namespace="evil", content=forged))
    found = await sqlite_store.search_text(["acme:alice", "acme"], "tea", 5)
    assert [r.entry.id for r in found] == [mine.id]


async def test_every_backend_agrees_with_the_reference_over_many_scopes(store: MemoryStore) -> None:
    reference = InMemoryMemoryStore()
    namespaces = ["t", "t:u", "t:u:c", "t:v", "s", "s:u"]
    vocabulary = ["red", "green", "blue", "tea", "milk", "river", "stone", "über"]
    for i in range(120):
        ns = namespaces[i % len(namespaces)]
        text = " ".join(vocabulary[(i * k) % len(vocabulary)] for k in (1, 3, 5))
        entry = MemoryEntry(namespace=ns, content=f"{text} {i}")
        await store.store(entry)
        await reference.store(entry)
    for scope in (["t:u:c", "t:u", "t"], ["s:u", "s"], ["t:v"]):
        for query in ("red", "tea über", "stone milk river", "absent"):
            got = {r.entry.id for r in await store.search_text(scope, query, 1000)}
            want = {r.entry.id for r in await reference.search_text(scope, query, 1000)}
            assert got == want, (scope, query)


def _v1_database(path: Path, entries: list[MemoryEntry]) -> None:
    """A database as the release before ``memories_fts_v2`` wrote it."""
    import hashlib

    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE memories_v1 (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
            "namespace TEXT NOT NULL, created_at REAL NOT NULL, embedding BLOB, "
            "body TEXT NOT NULL)"
        )
        conn.execute("CREATE INDEX memories_v1_namespace ON memories_v1 (namespace, created_at)")
        conn.execute(
            "CREATE VIRTUAL TABLE memories_fts_v1 USING fts5("
            "text, scope, tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\")"
        )
        for entry in entries:
            cursor = conn.execute(
                "INSERT INTO memories_v1 (id, namespace, created_at, embedding, body) "
                "VALUES (?, ?, ?, NULL, ?)",
                (entry.id, entry.namespace, entry.created_at.timestamp(), entry.to_json()),
            )
            token = "ns" + hashlib.sha256(entry.namespace.encode()).hexdigest()[:24]
            conn.execute(
                "INSERT INTO memories_fts_v1 (rowid, text, scope) VALUES (?, ?, ?)",
                (cursor.lastrowid, entry.searchable_text(), token),
            )


async def test_a_v1_database_is_indexed_again_with_its_namespaces_kept_apart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    entries = [
        MemoryEntry(namespace="acme", content="the office closes at six", tags=["hours"]),
        MemoryEntry(namespace="acme:alice", content="alice likes green tea"),
        MemoryEntry(namespace="acme:bob", content="bob likes black tea"),
        MemoryEntry(namespace="globex", content="globex tea secrets"),
    ]
    _v1_database(path, entries)
    sessions = SQLiteStore(path)
    try:
        memory = MemoryManager(memory_store_for(sessions))
        found = {r.entry.content for r in await memory.recall("acme:alice", "tea hours", 10)}
        assert found == {"alice likes green tea", "the office closes at six"}
        # writes after the migration are indexed the new way, beside the old ones
        await memory.remember("acme:alice", "alice also likes mint tea")
        assert len(await memory.recall("acme:alice", "tea", 10)) == 2
    finally:
        await sessions.aclose()
    # a second process opens the migrated database: nothing indexed twice, nothing lost
    again = SQLiteStore(path)
    try:
        store = SQLiteMemoryStore(again)
        found = await store.search_text(["acme:alice"], "tea", 10)
        assert sorted(r.entry.content for r in found) == [
            "alice also likes mint tea",
            "alice likes green tea",
        ]
    finally:
        await again.aclose()
    with sqlite3.connect(path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        indexed = conn.execute("SELECT count(*) FROM memories_fts_v2").fetchone()[0]
    assert "memories_fts_v1" not in names
    assert indexed == 5
