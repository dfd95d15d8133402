"""InMemoryStore: the conformance suite, plus the crate's store.rs tests (spec §2A.5)."""

from __future__ import annotations

import pytest

from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores import InMemoryStore

from .conformance import StoreConformance, StoreFactory


class TestInMemoryStore(StoreConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        return InMemoryStore


pytestmark = pytest.mark.anyio


async def test_in_memory_store_save_and_load() -> None:
    store = InMemoryStore()
    ns = Namespace("test")
    assert await store.load(ns) is None
    session = Session(namespace=ns)
    session.push_message(Message.user("Hello"))
    await store.save(session)
    loaded = await store.load(ns)
    assert loaded is not None
    assert loaded.message_count == 1
    assert loaded.messages[0].content == "Hello"


async def test_in_memory_store_delete() -> None:
    store = InMemoryStore()
    ns = Namespace("test")
    assert await store.delete(ns) is False
    await store.save(Session(namespace=ns))
    assert await store.delete(ns) is True
    assert await store.load(ns) is None


async def test_in_memory_store_list_all() -> None:
    store = InMemoryStore()
    for key in ("a", "b", "c"):
        await store.save(Session(namespace=Namespace(key)))
    assert len(await store.list()) == 3


async def test_in_memory_store_list_with_prefix() -> None:
    store = InMemoryStore()
    for key in ("acme:alice", "acme:bob", "other:carol"):
        await store.save(Session(namespace=Namespace.parse(key)))
    listed = await store.list(Namespace("acme"))
    assert len(listed) == 2
    assert all(ns.key.startswith("acme:") for ns in listed)


async def test_in_memory_store_list_prefix_no_partial_match() -> None:
    store = InMemoryStore()
    await store.save(Session(namespace=Namespace("acme", "alice")))
    await store.save(Session(namespace=Namespace("acmeother", "bob")))
    assert [ns.key for ns in await store.list(Namespace("acme"))] == ["acme:alice"]


async def test_in_memory_store_overwrite() -> None:
    store = InMemoryStore()
    ns = Namespace("test")
    session = Session(namespace=ns)
    session.push_message(Message.user("one"))
    await store.save(session)
    session.push_message(Message.assistant("two"))
    await store.save(session)
    loaded = await store.load(ns)
    assert loaded is not None and loaded.message_count == 2
