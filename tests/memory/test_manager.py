"""MemoryManager: orra's manager tests, the visibility rule, forgetting, hybrid recall."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from orra_di.memory import (
    EmbeddingError,
    MemoryEntry,
    MemoryManager,
    cosine_similarity,
    memory_store_for,
    visible_scope,
)
from orra_di.memory.embeddings import HashEmbeddings
from orra_di.memory.stores import InMemoryMemoryStore
from orra_di.namespace import Namespace
from orra_di.store import SessionStore

pytestmark = pytest.mark.anyio


# -- orra's tests ---------------------------------------------------------------------


def test_cosine() -> None:
    assert cosine_similarity([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert cosine_similarity([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.0)
    assert cosine_similarity([1.0, 0.0], [-1.0, 0.0]) == pytest.approx(-1.0)
    assert cosine_similarity([], []) == 0.0
    assert cosine_similarity([1.0, 2.0], [1.0, 2.0, 3.0]) == 0.0


def test_memory_entry_builder_and_json() -> None:
    e = (
        MemoryEntry.new(Namespace("users", "alice"), "likes tea")
        .with_tags(["pref"])
        .with_embedding([1, 2])
        .with_metadata("k", "v")
    )
    assert (e.namespace, e.tags, e.embedding, e.metadata) == (
        "users:alice",
        ["pref"],
        [1.0, 2.0],
        {"k": "v"},
    )
    assert len(e.id) == 36
    assert MemoryEntry.from_json(e.to_json()) == e
    with pytest.raises(ValueError, match="not a memory id"):
        MemoryEntry(id="../etc", namespace="u", content="x")
    with pytest.raises(ValueError, match="empty"):
        MemoryEntry(namespace="u", content="  ")


async def test_remember_and_recall_text() -> None:
    manager = MemoryManager(InMemoryMemoryStore())
    await manager.remember("u", "The capital of France is Paris", ["geo"])
    await manager.remember("u", "Python is a programming language")
    results = await manager.recall("u", "France capital", 5)
    assert results[0].entry.content == "The capital of France is Paris"
    assert await manager.recall("u", "", 5) == []


async def test_forget() -> None:
    manager = MemoryManager(InMemoryMemoryStore())
    memory_id = await manager.remember("u", "temporary memory")
    assert await manager.forget("u", memory_id) is True
    assert await manager.recall("u", "temporary", 5) == []
    assert await manager.forget("u", memory_id) is False


# -- visibility (bug 29) -------------------------------------------------------------------


def test_visible_scope_rules() -> None:
    keys = lambda ns, rule: [n.key for n in visible_scope(ns, rule)]  # noqa: E731
    assert keys("acme:alice:chat", "all") == ["acme:alice:chat", "acme:alice", "acme"]
    assert keys("acme:alice:chat", "tenant") == ["acme:alice:chat", "acme"]
    assert keys("acme:alice:chat", "none") == ["acme:alice:chat"]
    assert keys("acme", "all") == ["acme"]
    assert keys("acme", "tenant") == ["acme"]


async def _populated(sessions: SessionStore, rule: str = "all") -> MemoryManager:
    manager = MemoryManager(memory_store_for(sessions), ancestors=rule)  # type: ignore[arg-type]
    await manager.remember("acme", "acme office closes at six")
    await manager.remember("acme:alice", "alice likes green tea")
    await manager.remember("acme:alice:chat", "chat topic was tea ceremonies")
    await manager.remember("acme:bob", "bob likes black tea")
    await manager.remember("globex:alice", "globex alice likes tea too")
    return manager


async def test_a_namespace_sees_its_own_and_its_ancestors(sessions: SessionStore) -> None:
    manager = await _populated(sessions)
    seen = {e.content for e in await manager.list("acme:alice", 50)}
    assert seen == {"alice likes green tea", "acme office closes at six"}
    found = {r.entry.content for r in await manager.recall("acme:alice", "tea six", 50)}
    assert found == {"alice likes green tea", "acme office closes at six"}
    # the tenant sees its shared facts only, not every user's (orra showed them all)
    assert {e.content for e in await manager.list("acme", 50)} == {"acme office closes at six"}


async def test_the_rule_is_configurable(sessions: SessionStore) -> None:
    manager = await _populated(sessions, "none")
    assert {e.content for e in await manager.list("acme:alice:chat", 50)} == {
        "chat topic was tea ceremonies"
    }
    tenant = MemoryManager(manager.store, ancestors="tenant")
    assert {e.content for e in await tenant.list("acme:alice:chat", 50)} == {
        "chat topic was tea ceremonies",
        "acme office closes at six",
    }


async def test_forget_only_inside_the_callers_subtree(sessions: SessionStore) -> None:
    manager = await _populated(sessions)
    by_content = {e.content: e.id for e in await manager.store.list(["acme", "acme:bob"], 10)}
    bob, shared = by_content["bob likes black tea"], by_content["acme office closes at six"]
    # alice guessing bob's id, or the tenant's shared fact: "not found", nothing deleted
    assert await manager.forget("acme:alice", bob) is False
    assert await manager.get("acme:alice", bob) is None
    assert await manager.forget("acme:alice", shared) is False
    assert await manager.forget("globex", bob) is False
    assert await manager.store.get(bob) is not None
    assert await manager.get("acme:alice", shared) is not None  # visible, read-only
    # the tenant's admin can forget inside its subtree
    assert await manager.forget("acme", bob) is True
    assert await manager.forget("acme:alice", "not an id at all!") is False


# -- embeddings ----------------------------------------------------------------------------


class FixedEmbedder:
    """Maps known texts to fixed vectors (tests choose the geometry)."""

    def __init__(self, table: dict[str, list[float]], dimensions: int = 3) -> None:
        self.table, self._dimensions = table, dimensions

    @property
    def dimensions(self) -> int:
        return self._dimensions

    async def embed(self, text: str) -> list[float]:
        return self.table.get(text, [0.0] * self._dimensions)

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        return [await self.embed(t) for t in texts]


async def test_hybrid_recall_finds_by_meaning_and_words() -> None:
    embedder = FixedEmbedder(
        {
            "I like dogs": [1.0, 0.0, 0.0],
            "the stock market fell": [0.0, 1.0, 0.0],
            "my pet is a puppy": [0.9, 0.1, 0.0],
            "market": [0.0, 1.0, 0.0],
        }
    )
    manager = MemoryManager(InMemoryMemoryStore(), embedder)
    await manager.remember("u", "I like dogs")
    await manager.remember("u", "the stock market fell")
    results = await manager.recall("u", "my pet is a puppy", 2)
    assert [r.entry.content for r in results] == ["I like dogs", "the stock market fell"]
    assert results[0].score > results[1].score
    # words count too: a stored memory without a vector is still found by keywords
    await manager.store.store(MemoryEntry(namespace="u", content="market hours"))
    found = [r.entry.content for r in await manager.recall("u", "market", 5)]
    assert found[0] == "the stock market fell"
    assert "market hours" in found


async def test_hash_embeddings_are_deterministic_and_normalised() -> None:
    embedder = HashEmbeddings(32)
    a, b = await embedder.embed("green tea"), await embedder.embed("green tea")
    assert a == b
    assert len(a) == 32
    assert sum(x * x for x in a) == pytest.approx(1.0)
    near = cosine_similarity(a, await embedder.embed("green tea please"))
    far = cosine_similarity(a, await embedder.embed("stock market"))
    assert near > far


class BrokenEmbedder(FixedEmbedder):
    def __init__(self, answer: object) -> None:
        super().__init__({})
        self.answer = answer

    async def embed(self, text: str) -> list[float]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (RuntimeError("connection refused"), "the embedder failed: RuntimeError"),
        ([1.0, 2.0], "vector of 2 values where 3 were expected"),
        ([1.0, float("nan"), 0.0], "NaN or infinite"),
        ("not a vector", "vector of str values"),
    ],
)
async def test_a_failing_embedder_writes_nothing(
    sessions: SessionStore, answer: object, message: str
) -> None:
    manager = MemoryManager(memory_store_for(sessions), BrokenEmbedder(answer))
    with pytest.raises(EmbeddingError, match=message):
        await manager.remember("u", "never stored")
    assert await manager.store.list(["u"], 10) == []
    with pytest.raises(EmbeddingError, match=message):
        await manager.recall("u", "never stored", 5)


async def test_owner_depth_shares_one_persons_memories() -> None:
    manager = MemoryManager(InMemoryMemoryStore(), owner_depth=2)
    memory_id = await manager.remember("acme:alice:chat-1", "alice likes tea")
    assert (await manager.store.get(memory_id)).namespace == "acme:alice"  # type: ignore[union-attr]
    assert [e.content for e in await manager.list("acme:alice:chat-2")] == ["alice likes tea"]
    assert await manager.list("acme:bob:chat-1") == []
    assert await manager.forget("acme:bob:chat-1", memory_id) is False
    assert await manager.forget("acme:alice:chat-2", memory_id) is True
    with pytest.raises(ValueError, match="owner_depth"):
        MemoryManager(InMemoryMemoryStore(), owner_depth=0)


@pytest.mark.parametrize("numpy", [True, False])
def test_rank_by_cosine_with_and_without_numpy(
    monkeypatch: pytest.MonkeyPatch, numpy: bool
) -> None:
    import sys

    from orra_di.memory.model import pack_vector, rank_by_cosine

    if not numpy:
        monkeypatch.setitem(sys.modules, "numpy", None)  # import numpy raises ImportError
    candidates = [
        ("a", pack_vector([1.0, 0.0, 0.0]) or b""),
        ("b", pack_vector([0.6, 0.8, 0.0]) or b""),
        ("c", pack_vector([0.0, 0.0, 1.0]) or b""),
        ("short", pack_vector([1.0, 0.0]) or b""),
    ]
    ranked = rank_by_cosine([0.8, 0.6, 0.0], candidates, 2)
    assert [k for k, _ in rank_by_cosine([1.0, 0.0, 0.0], candidates, 9)] == ["a", "b", "c"]
    assert [key for key, _ in ranked] == ["b", "a"]
    assert ranked[0][1] == pytest.approx(0.96, abs=1e-6)
    assert rank_by_cosine([1.0, 0.0, 0.0], [], 3) == []
