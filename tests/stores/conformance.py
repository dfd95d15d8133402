"""The behaviour every session store must have, as reusable test classes.

A store's test module subclasses :class:`StoreConformance` (or, for a store
whose sessions outlive the store object, :class:`DurableStoreConformance`)
and overrides the ``new_store`` fixture with a factory of store objects that
all share one fresh backing storage (a directory, a database file, a schema).
The suite opens a second object through that factory to check persistence,
caching and cross-object locking, as a second process would see them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone

import anyio
import pytest

from orra_di.errors import SessionBusyError
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.store import SessionStore

StoreFactory = Callable[[], SessionStore]

ALICE = Namespace("acme", "alice")

# Right-to-left text, a combining accent, an emoji ZWJ sequence, CJK.
UNICODE_TEXT = "שלום עולם · e\u0301 · 👩\u200d💻 · 日本語 · \u200fمرحبا"


def conversation() -> list[Message]:
    """A turn with a tool call, an ok and an error result, and the final answer."""
    return [
        Message.system("You are terse."),
        Message.user("Weather in Paris and Rome?"),
        Message.assistant(
            "Checking.",
            [
                ToolCall(id="call_1", name="weather", arguments={"city": "Paris", "units": ["C"]}),
                ToolCall(id="call_2", name="weather", arguments={"city": "Rome"}),
            ],
        ),
        Message.tool_result(
            [
                ToolResult(call_id="call_1", content="21C, sunny"),
                ToolResult(call_id="call_2", content="service down", is_error=True),
            ]
        ),
        Message.assistant("Paris: 21C and sunny. Rome: unknown."),
    ]


def contents(session: Session | None) -> list[str]:
    assert session is not None
    return [m.content for m in session.messages]


class StoreConformance:
    """Tests for the :class:`~orra_di.store.SessionStore` contract."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def new_store(self) -> StoreFactory:
        """Override: a factory of store objects sharing one fresh storage."""
        raise NotImplementedError("a store's test class must override the new_store fixture")

    @pytest.fixture
    async def open_store(self, new_store: StoreFactory) -> AsyncIterator[StoreFactory]:
        """Opens store objects and closes them all after the test."""
        opened: list[SessionStore] = []

        def open_store() -> SessionStore:
            store = new_store()
            opened.append(store)
            return store

        yield open_store
        for store in opened:
            await store.aclose()

    @pytest.fixture
    def store(self, open_store: StoreFactory) -> SessionStore:
        return open_store()

    # -- load and save ----------------------------------------------------------------------

    async def test_implements_the_protocol(self, store: SessionStore) -> None:
        assert isinstance(store, SessionStore)

    async def test_round_trip(self, store: SessionStore) -> None:
        session = Session(
            namespace=ALICE,
            messages=conversation(),
            created_at=datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            updated_at=datetime(2024, 1, 2, 3, 5, 0, 1, tzinfo=UTC),
            metadata={"working_directory": "/srv/a", "chaos_mode": True, "n": [1, 2.5, None]},
        )
        await store.save(session)
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.namespace == ALICE
        assert loaded.namespace.segments == ("acme", "alice")
        assert loaded.messages == session.messages
        assert loaded.messages[2].tool_calls[0].arguments == {"city": "Paris", "units": ["C"]}
        assert loaded.messages[3].tool_results[1].is_error is True
        assert loaded.created_at == session.created_at
        assert loaded.updated_at == session.updated_at
        assert loaded.metadata == session.metadata

    async def test_load_missing_returns_none(self, store: SessionStore) -> None:
        assert await store.load(ALICE) is None

    async def test_save_overwrites(self, store: SessionStore) -> None:
        await store.save(Session(namespace=ALICE, messages=conversation(), metadata={"a": 1}))
        replacement = Session(namespace=ALICE, messages=[Message.user("fresh")], metadata={"b": 2})
        await store.save(replacement)
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["fresh"]
        assert loaded is not None and loaded.metadata == {"b": 2}

    async def test_loaded_session_is_a_copy(self, store: SessionStore) -> None:
        await store.save(Session(namespace=ALICE, messages=[Message.user("one")], metadata={}))
        loaded = await store.load(ALICE)
        assert loaded is not None
        loaded.messages.append(Message.user("not saved"))
        loaded.metadata["not"] = "saved"
        again = await store.load(ALICE)
        assert contents(again) == ["one"]
        assert again is not None and again.metadata == {}

    async def test_save_keeps_no_reference_to_the_callers_session(
        self, store: SessionStore
    ) -> None:
        session = Session(namespace=ALICE, messages=[Message.user("one")], metadata={"k": [1]})
        await store.save(session)
        session.messages.append(Message.user("later"))
        session.metadata["k"].append(2)
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["one"]
        assert loaded is not None and loaded.metadata == {"k": [1]}

    async def test_timestamps_keep_their_instant(self, store: SessionStore) -> None:
        paris = timezone(timedelta(hours=2))
        created = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=paris)
        await store.save(Session(namespace=ALICE, created_at=created, updated_at=created))
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.created_at == created
        assert loaded.created_at.tzinfo is not None

    # -- append ---------------------------------------------------------------------------------

    async def test_append_creates_the_session_and_keeps_order(self, store: SessionStore) -> None:
        before = datetime.now(UTC)
        await store.append(ALICE, [Message.user("1")])
        await store.append(ALICE, [Message.assistant("2"), Message.user("3")])
        await store.append(ALICE, conversation())
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.namespace == ALICE
        assert contents(loaded)[:3] == ["1", "2", "3"]
        assert loaded.messages[3:] == conversation()
        assert before - timedelta(seconds=1) <= loaded.created_at <= loaded.updated_at
        assert loaded.metadata == {}

    async def test_append_moves_updated_at_only(self, store: SessionStore) -> None:
        old = datetime(2020, 1, 1, tzinfo=UTC)
        await store.save(Session(namespace=ALICE, created_at=old, updated_at=old))
        await store.append(ALICE, [Message.user("hi")])
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.created_at == old
        assert loaded.updated_at > old

    async def test_append_with_no_messages_creates_an_empty_session(
        self, store: SessionStore
    ) -> None:
        await store.append(ALICE, [], metadata={"started": True})
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.messages == []
        assert loaded.metadata == {"started": True}

    async def test_append_with_metadata_replaces_it(self, store: SessionStore) -> None:
        await store.save(Session(namespace=ALICE, metadata={"old": 1, "keep": "no"}))
        await store.append(ALICE, [Message.user("a")], metadata={"working_directory": "/w"})
        await store.append(ALICE, [Message.user("b")])  # no metadata: unchanged
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["a", "b"]
        assert loaded is not None and loaded.metadata == {"working_directory": "/w"}

    async def test_append_continues_a_saved_history(self, store: SessionStore) -> None:
        await store.save(Session(namespace=ALICE, messages=conversation()))
        await store.append(ALICE, [Message.user("more")])
        loaded = await store.load(ALICE)
        assert contents(loaded) == [m.content for m in conversation()] + ["more"]

    async def test_load_after_append_sees_it(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user("1")])
        assert contents(await store.load(ALICE)) == ["1"]
        await store.append(ALICE, [Message.user("2")], metadata={"v": 2})
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["1", "2"]
        assert loaded is not None and loaded.metadata == {"v": 2}

    # -- isolation and listing ------------------------------------------------------------------

    async def test_namespaces_are_isolated(self, store: SessionStore) -> None:
        bob = Namespace("acme", "bob")
        acme = Namespace("acme")
        await store.append(ALICE, [Message.user("for alice")])
        await store.append(bob, [Message.user("for bob")])
        await store.append(acme, [Message.user("for acme")])
        assert contents(await store.load(ALICE)) == ["for alice"]
        assert contents(await store.load(bob)) == ["for bob"]
        assert contents(await store.load(acme)) == ["for acme"]
        assert await store.load(Namespace("acme", "alice", "support")) is None

    async def test_list_is_sorted_by_key(self, store: SessionStore) -> None:
        # Key order differs from segment order here: "a-b" < "a:b" but ("a", "b") < ("a-b",).
        keys = ["b", "a:b", "a-b", "a", "A", "a:b:c", "é", "z:a"]
        for key in keys:
            await store.append(Namespace.parse(key), [Message.user(key)])
        listed = await store.list()
        assert [ns.key for ns in listed] == sorted(keys)
        assert listed != sorted(listed)  # not segment order
        assert Namespace("a", "b", "c") in listed

    async def test_list_empty_store(self, store: SessionStore) -> None:
        assert await store.list() == []
        assert await store.list(Namespace("nobody")) == []

    async def test_list_prefix_matches_whole_segments_and_includes_the_prefix(
        self, store: SessionStore
    ) -> None:
        for key in ["acme", "acme:alice", "acme:alice:support", "acme:bob", "acmeother",
                    "acmeother:bob", "acme-x", "acm", "other:acme"]:  # fmt: skip
            await store.append(Namespace.parse(key), [Message.user(key)])
        listed = await store.list(Namespace("acme"))
        assert [ns.key for ns in listed] == [
            "acme",
            "acme:alice",
            "acme:alice:support",
            "acme:bob",
        ]
        assert listed[2] == Namespace("acme", "alice", "support")
        assert [ns.key for ns in await store.list(ALICE)] == ["acme:alice", "acme:alice:support"]
        assert await store.list(Namespace("acme", "carol")) == []

    async def test_list_prefix_without_its_own_session(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user("x")])
        assert await store.list(Namespace("acme")) == [ALICE]

    # -- deletion ---------------------------------------------------------------------------------

    async def test_delete_reports_whether_it_existed(self, store: SessionStore) -> None:
        assert await store.delete(ALICE) is False
        await store.append(ALICE, [Message.user("x")])
        await store.append(Namespace("acme", "alice", "child"), [Message.user("y")])
        assert await store.delete(ALICE) is True
        assert await store.load(ALICE) is None
        assert await store.delete(ALICE) is False
        assert await store.list() == [Namespace("acme", "alice", "child")]

    async def test_delete_then_append_starts_afresh(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user("old")], metadata={"old": True})
        assert contents(await store.load(ALICE)) == ["old"]
        await store.delete(ALICE)
        await store.append(ALICE, [Message.user("new")])
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["new"]
        assert loaded is not None and loaded.metadata == {}

    async def test_delete_tree_counts_and_keeps_siblings(self, store: SessionStore) -> None:
        doomed = ["acme", "acme:alice", "acme:alice:support", "acme:bob"]
        kept = ["acmeother", "acmeother:x", "acme-x", "other"]
        for key in doomed + kept:
            await store.append(Namespace.parse(key), [Message.user(key)])
        assert await store.delete_tree(Namespace("acme")) == 4
        for key in doomed:
            assert await store.load(Namespace.parse(key)) is None
        assert [ns.key for ns in await store.list()] == sorted(kept)
        assert await store.delete_tree(Namespace("acme")) == 0

    async def test_delete_tree_below_a_session_keeps_it(self, store: SessionStore) -> None:
        await store.append(Namespace("acme"), [Message.user("root")])
        await store.append(ALICE, [Message.user("alice")])
        await store.append(Namespace("acme", "alice", "x"), [Message.user("x")])
        assert await store.delete_tree(ALICE) == 2
        assert await store.list() == [Namespace("acme")]

    async def test_delete_tree_of_a_leaf(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user("alice")])
        assert await store.delete_tree(ALICE) == 1
        assert await store.list() == []

    # -- the single-writer lock ---------------------------------------------------------------

    async def test_concurrent_writers_through_the_lock(self, store: SessionStore) -> None:
        async def writer(i: int) -> None:
            async with store.lock(ALICE, timeout=10):
                before = await store.load(ALICE)
                count = 0 if before is None else before.message_count
                await store.append(ALICE, [Message.user(f"{i}-question")])
                await anyio.sleep(0.001)  # give the other writers every chance to interleave
                await store.append(ALICE, [Message.assistant(f"{i}-answer")])
                after = await store.load(ALICE)
                assert after is not None and after.message_count == count + 2

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(writer, i)
        written = contents(await store.load(ALICE))
        assert len(written) == 40
        pairs = [tuple(written[k : k + 2]) for k in range(0, 40, 2)]
        assert sorted(pairs) == sorted((f"{i}-question", f"{i}-answer") for i in range(20))

    async def test_lock_times_out_with_session_busy(self, store: SessionStore) -> None:
        held, release = anyio.Event(), anyio.Event()

        async def holder() -> None:
            async with store.lock(ALICE):
                held.set()
                await release.wait()

        async with anyio.create_task_group() as tg:
            tg.start_soon(holder)
            await held.wait()
            started = anyio.current_time()
            with pytest.raises(SessionBusyError) as busy:
                async with store.lock(ALICE, timeout=0.1):
                    pytest.fail("the lock was granted twice")
            assert anyio.current_time() - started >= 0.09
            assert busy.value.key == "acme:alice"
            assert busy.value.waited == 0.1
            release.set()
        async with store.lock(ALICE, timeout=1):
            pass

    async def test_lock_timeout_zero_refuses_at_once(self, store: SessionStore) -> None:
        async with store.lock(ALICE):
            started = anyio.current_time()
            with pytest.raises(SessionBusyError, match="refused at once"):
                async with store.lock(ALICE, timeout=0):
                    pytest.fail("the lock was granted twice")
            assert anyio.current_time() - started < 1
        async with store.lock(ALICE, timeout=0):
            pass

    async def test_lock_is_per_namespace(self, store: SessionStore) -> None:
        async with (
            store.lock(ALICE, timeout=0),
            store.lock(Namespace("acme"), timeout=0),
            store.lock(Namespace("acme", "alice", "sub"), timeout=0),
        ):
            await store.append(ALICE, [Message.user("still writable")])
        assert contents(await store.load(ALICE)) == ["still writable"]

    async def test_lock_is_released_after_an_error(self, store: SessionStore) -> None:
        with pytest.raises(ValueError, match="boom"):  # the error itself, not a group
            async with store.lock(ALICE):
                raise ValueError("boom")
        async with store.lock(ALICE, timeout=0):
            pass

    async def test_lock_is_released_after_cancellation(self, store: SessionStore) -> None:
        with anyio.move_on_after(0.05) as scope:
            async with store.lock(ALICE):
                await anyio.sleep(10)
        assert scope.cancelled_caught
        async with store.lock(ALICE, timeout=0):
            pass

    async def test_waiter_gets_the_lock_when_it_is_released(self, store: SessionStore) -> None:
        order: list[str] = []
        held = anyio.Event()

        async def first() -> None:
            async with store.lock(ALICE):
                held.set()
                await anyio.sleep(0.05)
                order.append("first done")

        async def second() -> None:
            await held.wait()
            async with store.lock(ALICE, timeout=5):
                order.append("second in")

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            tg.start_soon(second)
        assert order == ["first done", "second in"]

    # -- content ---------------------------------------------------------------------------------

    async def test_unicode_namespaces_and_content(self, store: SessionStore) -> None:
        namespaces = [
            Namespace("שלום", "👩\u200d💻"),
            Namespace("e\u0301"),  # combining accent: must not be normalised to "é"
            Namespace("é"),
            Namespace("日本語", "ユーザー"),
        ]
        for ns in namespaces:
            await store.save(
                Session(namespace=ns, messages=[Message.user(UNICODE_TEXT)], metadata={"t": "☃"})
            )
            await store.append(ns, [Message.assistant(UNICODE_TEXT[::-1])])
        for ns in namespaces:
            loaded = await store.load(ns)
            assert loaded is not None and loaded.namespace == ns
            assert contents(loaded) == [UNICODE_TEXT, UNICODE_TEXT[::-1]]
            assert loaded.metadata == {"t": "☃"}
        assert await store.list() == sorted(namespaces, key=lambda ns: ns.key)

    async def test_large_messages(self, store: SessionStore) -> None:
        big = 'ab€\n"{}' * 150_000  # about 1 MB of characters, 1.35 MB of UTF-8
        await store.append(ALICE, [Message.user("small"), Message.user(big)])
        await store.append(ALICE, [Message.tool_result([ToolResult(call_id="c", content=big)])])
        loaded = await store.load(ALICE)
        assert loaded is not None
        assert loaded.messages[1].content == big
        assert loaded.messages[2].tool_results[0].content == big
        await store.save(Session(namespace=ALICE, messages=[Message.assistant(big)]))
        assert contents(await store.load(ALICE)) == [big]


class DurableStoreConformance(StoreConformance):
    """More tests for stores whose sessions outlive the store object."""

    async def test_sessions_persist_across_store_objects(self, open_store: StoreFactory) -> None:
        first = open_store()
        session = Session(namespace=ALICE, messages=conversation(), metadata={"k": "v"})
        await first.save(session)
        await first.append(Namespace("acme", "bob"), [Message.user("bob")])
        await first.aclose()
        second = open_store()
        loaded = await second.load(ALICE)
        assert loaded is not None
        assert loaded.messages == session.messages
        assert loaded.metadata == {"k": "v"}
        assert loaded.created_at == session.created_at
        assert await second.list() == [ALICE, Namespace("acme", "bob")]

    async def test_timestamps_come_back_as_utc(self, open_store: StoreFactory) -> None:
        store = open_store()
        paris = timezone(timedelta(hours=2))
        created = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=paris)
        naive = datetime(2024, 6, 1, 13, 0, 0, 5)  # taken as UTC
        await store.save(Session(namespace=ALICE, created_at=created, updated_at=naive))
        await store.append(Namespace("b"), [])
        for reader in (store, open_store()):  # from the cache, and from storage
            for ns in (ALICE, Namespace("b")):
                loaded = await reader.load(ns)
                assert loaded is not None
                assert loaded.created_at.utcoffset() == timedelta(0)
                assert loaded.updated_at.utcoffset() == timedelta(0)
            loaded = await reader.load(ALICE)
            assert loaded is not None
            assert loaded.created_at == created
            assert loaded.updated_at == naive.replace(tzinfo=UTC)

    async def test_loads_see_writes_of_another_store_object(self, open_store: StoreFactory) -> None:
        mine, theirs = open_store(), open_store()
        await mine.append(ALICE, [Message.user("1")])
        assert contents(await mine.load(ALICE)) == ["1"]  # now cached, if mine caches
        await theirs.append(ALICE, [Message.user("2")], metadata={"by": "them"})
        loaded = await mine.load(ALICE)
        assert contents(loaded) == ["1", "2"]
        assert loaded is not None and loaded.metadata == {"by": "them"}
        await mine.append(ALICE, [Message.user("3")])
        assert contents(await mine.load(ALICE)) == ["1", "2", "3"]
        await theirs.save(Session(namespace=ALICE, messages=[Message.user("replaced")]))
        assert contents(await mine.load(ALICE)) == ["replaced"]

    async def test_loads_see_a_delete_and_recreate_elsewhere(
        self, open_store: StoreFactory
    ) -> None:
        mine, theirs = open_store(), open_store()
        await mine.append(ALICE, [Message.user("old")])
        assert contents(await mine.load(ALICE)) == ["old"]
        # The same number of writes as before, so a revision counter alone would match.
        await theirs.delete(ALICE)
        await theirs.append(ALICE, [Message.user("new")])
        assert contents(await mine.load(ALICE)) == ["new"]
        assert await theirs.delete_tree(Namespace("acme")) == 1
        assert await mine.load(ALICE) is None

    async def test_lock_excludes_another_store_object(self, open_store: StoreFactory) -> None:
        mine, theirs = open_store(), open_store()
        async with mine.lock(ALICE):
            with pytest.raises(SessionBusyError):
                async with theirs.lock(ALICE, timeout=0):
                    pytest.fail("two store objects held one session")
            with pytest.raises(SessionBusyError):
                async with theirs.lock(ALICE, timeout=0.05):
                    pytest.fail("two store objects held one session")
            async with theirs.lock(Namespace("acme", "bob"), timeout=0):
                pass
        async with theirs.lock(ALICE, timeout=0):
            pass

    async def test_waiter_in_another_store_object_gets_the_lock(
        self, open_store: StoreFactory
    ) -> None:
        mine, theirs = open_store(), open_store()
        held = anyio.Event()

        async def hold_briefly() -> None:
            async with mine.lock(ALICE):
                held.set()
                await anyio.sleep(0.05)
                await mine.append(ALICE, [Message.user("mine")])

        async with anyio.create_task_group() as tg:
            tg.start_soon(hold_briefly)
            await held.wait()
            async with theirs.lock(ALICE, timeout=5):
                await theirs.append(ALICE, [Message.user("theirs")])
        assert contents(await theirs.load(ALICE)) == ["mine", "theirs"]
