"""SessionCache: hands out snapshots while the stored version matches, LRU-bounded."""

from __future__ import annotations

from datetime import UTC, datetime

from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores._cache import SessionCache


def session(key: str, *contents: str) -> Session:
    return Session(namespace=Namespace.parse(key), messages=[Message.user(c) for c in contents])


def test_get_matches_the_version() -> None:
    cache = SessionCache()
    cache.put("a", (1, 3), session("a", "x"))
    hit = cache.get("a", (1, 3))
    assert hit is not None and [m.content for m in hit.messages] == ["x"]
    assert cache.get("a", (1, 4)) is None
    assert cache.get("a", (1, 3)) is None  # a stale entry is dropped on sight
    assert cache.get("missing", 1) is None


def test_get_hands_out_snapshots() -> None:
    cache = SessionCache()
    cache.put("a", 1, session("a", "x"))
    first = cache.get("a", 1)
    assert first is not None
    first.messages.append(Message.user("y"))
    first.metadata["k"] = "v"
    again = cache.get("a", 1)
    assert again is not None
    assert len(again.messages) == 1 and again.metadata == {}


def test_advance_applies_an_append_at_the_expected_version() -> None:
    cache = SessionCache()
    cache.put("a", 1, session("a", "x"))
    later = datetime(2030, 1, 1, tzinfo=UTC)
    cache.advance("a", 1, 2, [Message.user("y")], updated_at=later, metadata={"k": 1})
    assert cache.get("a", 1) is None
    cache.put("a", 1, session("a", "x"))
    cache.advance("a", 1, 2, [Message.user("y")], updated_at=later, metadata={"k": 1})
    advanced = cache.get("a", 2)
    assert advanced is not None
    assert [m.content for m in advanced.messages] == ["x", "y"]
    assert advanced.updated_at == later and advanced.metadata == {"k": 1}
    cache.advance("a", 2, 3, [], updated_at=later, metadata=None)
    kept = cache.get("a", 3)
    assert kept is not None and kept.metadata == {"k": 1}


def test_advance_from_another_version_drops_the_entry() -> None:
    cache = SessionCache()
    cache.put("a", 5, session("a", "x"))
    cache.advance("a", 6, 7, [Message.user("y")], updated_at=datetime.now(UTC), metadata=None)
    assert len(cache) == 0
    cache.advance("b", 0, 1, [Message.user("y")], updated_at=datetime.now(UTC), metadata=None)
    assert len(cache) == 0


def test_least_recently_used_is_evicted() -> None:
    cache = SessionCache(max_sessions=2)
    cache.put("a", 1, session("a"))
    cache.put("b", 1, session("b"))
    assert cache.get("a", 1) is not None  # a is now the most recent
    cache.put("c", 1, session("c"))
    assert len(cache) == 2
    assert cache.get("b", 1) is None
    assert cache.get("a", 1) is not None and cache.get("c", 1) is not None


def test_zero_size_caches_nothing() -> None:
    cache = SessionCache(max_sessions=0)
    cache.put("a", 1, session("a"))
    assert len(cache) == 0


def test_discard_and_discard_tree() -> None:
    cache = SessionCache()
    for key in ("acme", "acme:alice", "acme:alice:x", "acmeother", "b"):
        cache.put(key, 1, session(key))
    cache.discard("b")
    cache.discard("never-cached")
    cache.discard_tree("acme")
    assert len(cache) == 1
    assert cache.get("acmeother", 1) is not None
