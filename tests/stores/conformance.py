"""The behaviour every session store must have, as reusable test classes.

A store's test module subclasses :class:`StoreConformance` (or, for a store
whose sessions outlive the store object, :class:`DurableStoreConformance`)
and overrides the ``new_store`` fixture with a factory of store objects that
all share one fresh backing storage (a directory, a database file, a schema).
The suite opens a second object through that factory to check persistence,
caching and cross-object locking, as a second process would see them.

Optional fixtures, each with a default that skips what it enables:

- ``store_url`` (default ``None``): a URL that :func:`orra_di.stores.open_store`
  opens onto that same storage. Worker *processes* open the store through it
  (and so does the parent, to check what they wrote);
- ``store_options`` (default ``{}``): keyword options for ``open_store`` in
  those tests; give a short ``lease_seconds`` where the store has leases, as
  the crash test waits for a killed worker's lease to expire;
- ``break_connection`` (default ``None``): an async callable taking a store
  object that drops its connection (or restarts its server) and returns once
  the server is reachable again.

The process tests use namespaces under a random segment, so a storage shared
between tests (one database) does not disturb them.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from orra_di import stores
from orra_di.errors import NamespaceError, SessionBusyError, StoreError
from orra_di.message import Message, ToolCall, ToolResult, VendorData
from orra_di.namespace import MAX_KEY_LENGTH, Namespace
from orra_di.runtime import INTERRUPTED
from orra_di.session import Session
from orra_di.store import SessionStore, trim_start

from . import workers

StoreFactory = Callable[[], SessionStore]
BreakConnection = Callable[[SessionStore], Awaitable[None]]

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


def vendor_turn() -> list[Message]:
    """A tool turn whose assistant message carries vendor data (signed thinking blocks).

    A vendor refuses the next request of a tool loop without it, so every store
    must give it back as it was given, after a restart too.
    """
    blocks = [
        {"type": "thinking", "thinking": "Look it up.", "signature": "EqQBCgIYAhIM+/=="},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": UNICODE_TEXT}},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
    ]
    vendor_data = [
        VendorData(vendor="anthropic", data={"model": "claude-x", "content": blocks}),
        VendorData(vendor="other", data=[1, 2.5, None, True, {"nested": {"deep": ["x"]}}]),
    ]
    return [
        Message.user("look it up"),
        Message.assistant(
            "Checking.",
            [ToolCall(id="toolu_1", name="lookup", arguments={"q": UNICODE_TEXT})],
            vendor_data=vendor_data,
        ),
        Message.tool_result([ToolResult(call_id="toolu_1", content="found")]),
    ]


def contents(session: Session | None) -> list[str]:
    assert session is not None
    return [m.content for m in session.messages]


def tool_turn(i: int) -> list[Message]:
    """Question, tool call, its result, answer: the result must never lead a history."""
    return [
        Message.user(f"q{i}"),
        Message.assistant("", [ToolCall(id=f"c{i}", name="lookup", arguments={"i": i})]),
        Message.tool_result([ToolResult(call_id=f"c{i}", content=f"r{i}")]),
        Message.assistant(f"a{i}"),
    ]


def fresh_namespace() -> Namespace:
    return Namespace("conformance", secrets.token_hex(6))


def _varied(first: int, span: int, count: int) -> str:
    """``count`` characters spread over ``span`` code points from ``first``: text that does
    not compress (a database may compress an index entry of one character repeated)."""
    return "".join(chr(first + (i * 7919) % span) for i in range(count))


CJK = _varied(0x4E00, 20_000, MAX_KEY_LENGTH)
EMOJI = _varied(0x1F300, 0x250, MAX_KEY_LENGTH)


def _longest(segment: str, *, prefix: tuple[str, ...] = ()) -> Namespace:
    """As many ``segment`` segments after ``prefix`` as a key may hold."""
    used = len(":".join(prefix)) + (1 if prefix else 0)
    count = (MAX_KEY_LENGTH - used + 1) // (len(segment) + 1)
    return Namespace(*prefix, *[segment] * count)


# The largest keys Namespace accepts, in the shapes that stress a store: a key of
# 1,024 characters (4 KiB of UTF-8 as emoji), a segment far beyond a file name's 255
# bytes once %-encoded (a 28-character CJK segment already was), and 512 segments,
# deeper than a path may be long once encoded.
LONGEST_NAMESPACES = [
    Namespace("a" * MAX_KEY_LENGTH),
    Namespace(CJK),
    Namespace(EMOJI),
    Namespace("acme", CJK[:28], "alice"),
    Namespace("acme", "é" * 43),  # 258 bytes once %-encoded
    _longest("a"),
    _longest("😀"),
    _longest("👩\u200d💻" * 3),
    Namespace("acme", EMOJI[:200], CJK[:300], "z" * 300),
]


# Quotes, SQL, escapes, LIKE and GLOB wildcards, NUL and other control characters,
# and the line separators JSON leaves raw.
HOSTILE_TEXT = (
    "it's \"quoted\" '; DROP TABLE sessions; -- \\ \\' %_% [a-z]*? $1 {x} "
    "nul\x00byte \x01\x1b[31m\r\n\u2028\u2029 \ufeff"
)
HOSTILE_SEGMENTS = [
    *("it's", 'say "hi"', "'; DROP TABLE sessions; --", "a\\b", "\\'", "100%", "%", "a_b"),
    *("_", "*", "?", "[ab]", "$1", "{x}", "..", ".", " "),
]
# A prefix and a key that the prefix, read as a LIKE or GLOB pattern, would match.
LOOKALIKES = [
    *(("a_b", "axb"), ("100%", "100x"), ("%", "x"), ("_", "y"), ("\\", "z")),
    *(("[ab]", "a"), ("*", "star"), ("?", "q")),
]


async def join(process: multiprocessing.process.BaseProcess) -> int | None:
    await anyio.to_thread.run_sync(process.join, 120)
    return process.exitcode


def _wait_until_stopped(pid: int) -> None:
    """Return once process ``pid`` is stopped (state ``T`` in /proc)."""
    for _ in range(6000):
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rpartition(")")[2].split()[0] in ("T", "t"):
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not stop")


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

    @pytest.fixture
    def store_url(self) -> str | None:
        """Override: an ``open_store`` URL for the storage ``new_store`` uses (module doc)."""
        return None

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        """Override: ``open_store`` options for the process tests, e.g. a short lease."""
        return {}

    @pytest.fixture
    def break_connection(self) -> BreakConnection | None:
        """Override: drop a store object's connection or restart its server (module doc)."""
        return None

    @pytest.fixture
    async def url_store(
        self, store_url: str | None, store_options: dict[str, Any]
    ) -> AsyncIterator[SessionStore]:
        """The store opened from ``store_url``, as the worker processes open it."""
        if store_url is None:
            pytest.skip("no store_url: this store cannot be shared with another process")
        store = stores.open_store(store_url, **store_options)
        yield store
        await store.aclose()

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

    async def test_vendor_data_comes_back_identical(self, store: SessionStore) -> None:
        saved, appended = Namespace("saved"), Namespace("appended")
        await store.save(Session(namespace=saved, messages=vendor_turn()))
        await store.append(appended, vendor_turn())
        for ns in (saved, appended):
            loaded = await store.load(ns)
            assert loaded is not None
            assert loaded.messages == vendor_turn()
            assert loaded.messages[1].vendor_data == vendor_turn()[1].vendor_data

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

    # -- what a lock holder wrote never silently vanishes -----------------------------------------

    async def test_prune_spares_a_session_under_a_live_lock(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user("mine")])
        await store.append(Namespace("idle"), [Message.user("idle")])
        await anyio.sleep(0.05)
        async with store.lock(ALICE):  # a run is on it, however long ago it last wrote
            assert await store.prune(0.01) == 1
            assert contents(await store.load(ALICE)) == ["mine"]
            await store.append(ALICE, [Message.user("more")])
        assert contents(await store.load(ALICE)) == ["mine", "more"]
        await anyio.sleep(0.05)
        assert await store.prune(0.01) == 1  # released: idle like any other
        assert await store.list() == []

    @pytest.mark.parametrize("erase", ["delete", "delete_tree"])
    @pytest.mark.parametrize("wrote_first", [False, True])
    async def test_a_write_under_a_lock_whose_session_was_deleted_is_refused(
        self, store: SessionStore, erase: str, wrote_first: bool
    ) -> None:
        await store.append(ALICE, [Message.user("earlier turn")])
        async with store.lock(ALICE):
            assert contents(await store.load(ALICE)) == ["earlier turn"]
            if wrote_first:
                await store.append(ALICE, [Message.user("this turn")])
            # An erasure served meanwhile (it takes no lock: erasure must win).
            if erase == "delete":
                assert await store.delete(ALICE) is True
            else:
                assert await store.delete_tree(Namespace("acme")) == 1
            # The run's history is gone: going on would store a tail without its head.
            # The error names the refused operation and its session.
            gone = "refused: the session was deleted while this run held"
            with pytest.raises(StoreError, match=f"append to session 'acme:alice' {gone}"):
                await store.append(ALICE, [Message.assistant("answer")])
            with pytest.raises(StoreError, match=f"save session 'acme:alice' {gone}"):
                await store.save(Session(namespace=ALICE, messages=[Message.user("x")]))
            assert await store.load(ALICE) is None
        async with store.lock(ALICE, timeout=5):  # the next run starts afresh
            assert await store.load(ALICE) is None
            await store.append(ALICE, [Message.user("next run")])
        assert contents(await store.load(ALICE)) == ["next run"]

    async def test_a_lock_on_a_missing_session_may_create_it(self, store: SessionStore) -> None:
        async with store.lock(ALICE):
            assert await store.delete(ALICE) is False  # nothing of this run's was there
            await store.append(ALICE, [Message.user("first")])
            await store.append(ALICE, [Message.assistant("second")])
        assert contents(await store.load(ALICE)) == ["first", "second"]

    async def test_a_stalled_holder_never_recreates_a_pruned_session(
        self, url_store: SessionStore, store_url: str, store_options: dict[str, Any]
    ) -> None:
        """A holder stopped (SIGSTOP: a GC pause, a frozen VM) past its lease and the TTL.

        Whatever the store decides (spare the session, or prune it and refuse the
        holder's next write), the holder's next append never lands in a session
        that lacks what it wrote before.
        """
        ns = fresh_namespace()
        lease = float(store_options.get("lease_seconds", 0.2))
        spawn = multiprocessing.get_context("spawn")
        outcome, sender = spawn.Pipe(duplex=False)
        worker = spawn.Process(
            target=workers.stall_while_holding, args=(store_url, store_options, ns.key, sender)
        )
        worker.start()
        sender.close()

        def receive() -> str:
            assert outcome.poll(60), "the worker said nothing"
            said: str = outcome.recv()
            return said

        try:
            assert await anyio.to_thread.run_sync(receive) == "stopping"
            assert worker.pid is not None
            await anyio.to_thread.run_sync(_wait_until_stopped, worker.pid)
            await anyio.sleep(lease * 1.5)  # past its lease, unrenewed
            pruned = await url_store.prune(lease / 2)
            os.kill(worker.pid, signal.SIGCONT)
            result = await anyio.to_thread.run_sync(receive)
            assert await join(worker) == 0
        finally:
            worker.kill()
        loaded = await url_store.load(ns)
        if result == "appended":  # the store spared the session
            assert pruned == 0
            assert contents(loaded) == ["before the stall", "after the stall"]
        else:  # it pruned the session: the holder is told, and nothing is recreated
            assert pruned == 1
            assert "deleted while this run held" in result, result
            assert loaded is None

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

    # -- hostile input -----------------------------------------------------------------------

    async def test_hostile_namespaces_and_contents(self, store: SessionStore) -> None:
        namespaces = [Namespace("hostile", segment) for segment in HOSTILE_SEGMENTS]
        for ns in namespaces:
            call = ToolCall(id=HOSTILE_TEXT, name="t", arguments={HOSTILE_TEXT: [HOSTILE_TEXT]})
            turn = [
                Message.user(ns.key),
                Message.assistant(HOSTILE_TEXT, [call]),
                Message.tool_result([ToolResult(call_id=HOSTILE_TEXT, content=HOSTILE_TEXT)]),
            ]
            await store.append(ns, turn, metadata={HOSTILE_TEXT: HOSTILE_TEXT})
        for ns in namespaces:
            loaded = await store.load(ns)
            assert loaded is not None and loaded.namespace == ns
            assert contents(loaded) == [ns.key, HOSTILE_TEXT, ""]
            assert loaded.messages[1].tool_calls[0].arguments == {HOSTILE_TEXT: [HOSTILE_TEXT]}
            assert loaded.messages[2].tool_results[0].content == HOSTILE_TEXT
            assert loaded.metadata == {HOSTILE_TEXT: HOSTILE_TEXT}
        by_key = sorted(namespaces, key=lambda ns: ns.key)
        assert await store.list(Namespace("hostile")) == by_key
        assert await store.list() == by_key

    async def test_wildcards_in_a_prefix_match_only_themselves(self, store: SessionStore) -> None:
        for prefix, lookalike in LOOKALIKES:
            for segments in ((prefix,), (prefix, "child"), (lookalike, "child")):
                await store.append(Namespace("w", *segments), [Message.user("x")])
        for prefix, _ in LOOKALIKES:
            listed = await store.list(Namespace("w", prefix))
            assert listed == [Namespace("w", prefix), Namespace("w", prefix, "child")]
        for prefix, _ in LOOKALIKES:
            assert await store.delete_tree(Namespace("w", prefix)) == 2
        kept = [Namespace("w", other, "child") for _, other in LOOKALIKES]
        assert await store.list() == sorted(kept, key=lambda ns: ns.key)

    async def test_nul_is_content_but_never_part_of_a_namespace(self, store: SessionStore) -> None:
        for bad in ("nul\x00", "tab\t", "new\nline", "del\x7f"):
            with pytest.raises(NamespaceError, match="control character"):
                Namespace("acme", bad)
            with pytest.raises(NamespaceError, match="control character"):
                Namespace.parse(f"acme:{bad}")
        nul = Session(namespace=ALICE, messages=[Message.user("\x00")], metadata={"\x00": "\x00"})
        await store.save(nul)
        await store.append(ALICE, [Message.assistant("a\x00b\x00")])
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["\x00", "a\x00b\x00"]
        assert loaded is not None and loaded.metadata == {"\x00": "\x00"}

    # -- the longest keys ---------------------------------------------------------------

    async def test_every_namespace_namespace_accepts_can_be_stored(
        self, store: SessionStore
    ) -> None:
        for i, ns in enumerate(LONGEST_NAMESPACES):
            await store.append(ns, [Message.user(f"m{i}")], metadata={"i": i})
            async with store.lock(ns, timeout=5):
                await store.append(ns, [Message.assistant(ns.key)])
            await store.save(
                Session(namespace=ns, messages=[Message.user(f"m{i}"), Message.assistant(ns.key)])
            )
        for i, ns in enumerate(LONGEST_NAMESPACES):
            loaded = await store.load(ns)
            assert loaded is not None and loaded.namespace == ns
            assert contents(loaded) == [f"m{i}", ns.key]
            assert await store.list(ns) == [ns]
        by_key = sorted(LONGEST_NAMESPACES, key=lambda ns: ns.key)
        assert await store.list() == by_key
        assert await store.trim(LONGEST_NAMESPACES[0], 1) == 1
        for ns in LONGEST_NAMESPACES:
            assert await store.delete(ns)
            assert await store.load(ns) is None
        assert await store.list() == []

    @pytest.mark.parametrize("depth", [1, 150, 300, 400])
    async def test_subtrees_of_the_longest_keys(self, store: SessionStore, depth: int) -> None:
        """List and erase below a prefix of ``depth`` emoji segments (12 bytes each once
        %-encoded): from a short path to one past what a path can hold."""
        prefix = Namespace("t", *["😀"] * depth)
        below = [
            prefix,
            prefix.child("a"),
            prefix.child("長" * 40),
            _longest("😀", prefix=prefix.segments),
            Namespace(*prefix.segments, "é" * 43, "x"),
        ]
        beside = [
            Namespace("t", *["😀"] * (depth - 1), "😁"),
            Namespace("t", *["😀"] * (depth - 1), "😁", "a"),
            Namespace("t", *["😀"] * (depth - 1)),
        ]
        for ns in [*below, *beside]:
            await store.append(ns, [Message.user(ns.key[-20:])])
        assert await store.list(prefix) == sorted(below, key=lambda ns: ns.key)
        assert await store.list(prefix.child("a")) == [prefix.child("a")]
        assert await store.list() == sorted([*below, *beside], key=lambda ns: ns.key)
        assert await store.delete_tree(prefix.child("長" * 40)) == 1
        assert await store.delete_tree(prefix) == len(below) - 1
        assert await store.list() == sorted(beside, key=lambda ns: ns.key)
        for ns in beside:
            assert contents(await store.load(ns)) == [ns.key[-20:]]

    async def test_prune_reaches_the_longest_keys(self, store: SessionStore) -> None:
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        for ns in LONGEST_NAMESPACES:
            await store.save(Session(namespace=ns, created_at=long_ago, updated_at=long_ago))
        await anyio.sleep(0.4)  # idle for real too, for a store that stamps its own time
        kept = LONGEST_NAMESPACES[-1]
        await store.append(kept, [Message.user("back")])
        assert await store.prune(0.3) == len(LONGEST_NAMESPACES) - 1
        assert await store.list() == [kept]

    async def test_a_10_mb_message(self, store: SessionStore) -> None:
        big = HOSTILE_TEXT + "0123456789abcdef" * 655_360  # 10 MiB and a bit
        await store.append(ALICE, [Message.user("small"), Message.assistant(big)])
        await store.append(ALICE, [Message.user("after")])
        loaded = await store.load(ALICE)
        assert loaded is not None and len(loaded.messages) == 3
        assert loaded.messages[1].content == big
        assert contents(loaded)[::2] == ["small", "after"]

    async def test_100k_messages_in_one_session(self, store: SessionStore) -> None:
        await store.append(ALICE, [Message.user(str(i)) for i in range(100_000)])
        assert contents(await store.load(ALICE)) == [str(i) for i in range(100_000)]
        assert await store.trim(ALICE, 1) == 99_999
        assert contents(await store.load(ALICE)) == ["99999"]

    # -- retention ------------------------------------------------------------------------

    async def test_trim_keeps_the_newest_and_never_starts_with_a_result(
        self, store: SessionStore
    ) -> None:
        history = [m for i in range(3) for m in tool_turn(i)]
        created = datetime(2024, 1, 2, tzinfo=UTC)
        await store.save(
            Session(namespace=ALICE, messages=history, created_at=created, metadata={"k": "v"})
        )
        assert await store.trim(ALICE, 12) == 0
        # The newest 6 start with turn 1's tool result, whose call is cut: it goes too.
        assert trim_start(history, 6) == 7
        assert await store.trim(ALICE, 6) == 7
        loaded = await store.load(ALICE)
        assert loaded is not None and loaded.messages == history[7:]
        assert loaded.metadata == {"k": "v"} and loaded.created_at == created
        await store.append(ALICE, [Message.user("after")])  # numbered after the kept ones
        loaded = await store.load(ALICE)
        assert loaded is not None and loaded.messages == [*history[7:], Message.user("after")]
        assert await store.trim(ALICE, 5) == 1  # cut at turn 2's question
        assert await store.trim(ALICE, 4) == 1  # cut at an assistant's call: its result stays
        loaded = await store.load(ALICE)
        assert loaded is not None and loaded.messages == [*history[9:], Message.user("after")]

    async def test_trim_to_nothing_keeps_an_empty_session(self, store: SessionStore) -> None:
        await store.append(ALICE, tool_turn(0), metadata={"k": 1})
        assert await store.trim(ALICE, 0) == 4
        loaded = await store.load(ALICE)
        assert loaded is not None and loaded.messages == [] and loaded.metadata == {"k": 1}
        assert await store.list() == [ALICE]
        assert await store.trim(ALICE, 0) == 0

    async def test_trim_of_a_missing_session_and_a_bad_count(self, store: SessionStore) -> None:
        assert await store.trim(ALICE, 3) == 0
        assert await store.list() == []
        await store.append(ALICE, [Message.user("x")])
        with pytest.raises(ValueError, match="keep_last"):
            await store.trim(ALICE, -1)
        assert contents(await store.load(ALICE)) == ["x"]

    async def test_prune_drops_only_idle_sessions(self, store: SessionStore) -> None:
        long_ago = datetime(2020, 1, 1, tzinfo=UTC)
        idle = [Namespace("idle"), Namespace("acme", "idle"), Namespace("acme", "revived")]
        for ns in idle:
            await store.save(
                Session(
                    namespace=ns,
                    messages=[Message.user(ns.key)],
                    created_at=long_ago,
                    updated_at=long_ago,
                )
            )
        await anyio.sleep(0.4)  # idle for real too, for a store that stamps its own time
        await store.append(Namespace("acme", "revived"), [Message.user("back")])
        await store.append(ALICE, [Message.user("new")])
        await store.save(Session(namespace=Namespace("saved")))
        assert await store.prune(0.3) == 2
        assert [ns.key for ns in await store.list()] == ["acme:alice", "acme:revived", "saved"]
        assert contents(await store.load(Namespace("acme", "revived"))) == ["acme:revived", "back"]
        assert await store.load(Namespace("idle")) is None
        assert await store.prune(0.3) == 0

    # -- worker processes -----------------------------------------------------------------

    async def test_worker_processes_keep_every_turn_whole(
        self, url_store: SessionStore, store_url: str, store_options: dict[str, Any]
    ) -> None:
        base = fresh_namespace()
        keys = [base.child(name).key for name in ("a", "b", "c")]
        count, turns = 4, 6
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(count)
        processes = [
            spawn.Process(
                target=workers.run_turns, args=(store_url, store_options, keys, w, turns, start)
            )
            for w in range(count)
        ]
        for process in processes:
            process.start()
        try:
            assert [await join(p) for p in processes] == [0] * count
        finally:
            for process in processes:
                process.kill()
        for key in keys:
            ran = [
                f"w{w}-t{t}"
                for w in range(count)
                for t in range(turns)
                if keys[(w + t) % len(keys)] == key
            ]
            loaded = await url_store.load(Namespace.parse(key))
            assert loaded is not None
            tags = workers.turn_tags(loaded.messages)  # whole turns, each contiguous
            assert sorted(tags) == sorted(ran)
            for w in range(count):  # and each worker's in the order it ran them
                assert [t for t in tags if t.startswith(f"w{w}-")] == [
                    t for t in ran if t.startswith(f"w{w}-")
                ]
            assert workers.unanswered(loaded.messages) == []

    async def test_workers_on_one_session_take_turns_in_arrival_order(
        self, url_store: SessionStore, store_url: str, store_options: dict[str, Any]
    ) -> None:
        """Back-to-back turns from two processes on one session alternate, roughly.

        A holder that releases and at once asks again must queue behind a run
        that was already waiting, or the waiter can wait through every turn of
        the other (and time out, with a finite busy_timeout, under steady load).
        """
        key = fresh_namespace().key
        count, turns = 2, 12
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(count)
        processes = [
            spawn.Process(
                target=workers.run_turns, args=(store_url, store_options, [key], w, turns, start)
            )
            for w in range(count)
        ]
        for process in processes:
            process.start()
        try:
            assert [await join(p) for p in processes] == [0] * count
        finally:
            for process in processes:
                process.kill()
        loaded = await url_store.load(Namespace.parse(key))
        assert loaded is not None
        order = [tag.partition("-")[0] for tag in workers.turn_tags(loaded.messages)]
        # From when both were running until one was done, neither ran more than a few in
        # a row (before that, one process may still have been starting).
        both = order[
            max(order.index(w) for w in ("w0", "w1")) : min(
                len(order) - order[::-1].index(w) for w in ("w0", "w1")
            )
        ]
        streaks = [len(list(run)) for _, run in itertools.groupby(both)]
        assert max(streaks) <= 3, order

    async def test_a_worker_killed_mid_turn_leaves_a_usable_session(
        self, url_store: SessionStore, store_url: str, store_options: dict[str, Any]
    ) -> None:
        ns = fresh_namespace()
        spawn = multiprocessing.get_context("spawn")
        blocked = spawn.Event()
        worker = spawn.Process(
            target=workers.run_until_blocked, args=(store_url, store_options, ns.key, blocked)
        )
        worker.start()
        try:
            assert await anyio.to_thread.run_sync(blocked.wait, 60), "the tool never ran"
            assert worker.pid is not None
            os.kill(worker.pid, signal.SIGKILL)
            assert await join(worker) == -signal.SIGKILL
        finally:
            worker.kill()
        loaded = await url_store.load(ns)
        assert loaded is not None
        assert workers.turn_tags(loaded.messages[:4]) == ["before"]
        assert contents(loaded)[4:] == [workers.BLOCKING, ""]
        assert [c.id for c in loaded.messages[5].tool_calls] == [f"{workers.BLOCKING}-call"]
        # Once the dead worker's lock is gone, the next run answers its call and goes on.
        with anyio.fail_after(60):
            await workers.runtime(url_store).run(ns, "after")
        loaded = await url_store.load(ns)
        assert loaded is not None
        assert loaded.messages[6].tool_results == (
            ToolResult(call_id=f"{workers.BLOCKING}-call", content=INTERRUPTED, is_error=True),
        )
        assert workers.turn_tags(loaded.messages[7:]) == ["after"]
        assert workers.unanswered(loaded.messages) == []

    # -- a dropped connection -------------------------------------------------------------

    async def test_a_dropped_connection_is_a_store_error_and_nothing_half_written(
        self, store: SessionStore, break_connection: BreakConnection | None
    ) -> None:
        if break_connection is None:
            pytest.skip("break_connection is None: this store has no connection to drop")
        before = [Message.user("before")]
        step = tool_turn(0)[1:3]  # a call and its result: both or neither
        await store.append(ALICE, before)
        await break_connection(store)
        try:
            await store.append(ALICE, step)
            appended = True
        except StoreError:  # the error in flight, as our own type
            appended = False
        loaded = await store.load(ALICE)  # reconnected
        assert loaded is not None
        assert loaded.messages in (before, before + step)
        assert not appended or loaded.messages == before + step
        await break_connection(store)
        try:
            again = await store.load(ALICE)
            assert again is not None and again.messages == loaded.messages
        except StoreError:
            pass
        await store.append(ALICE, [Message.user("after")])
        final = await store.load(ALICE)
        assert final is not None and final.messages == [*loaded.messages, Message.user("after")]


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

    async def test_vendor_data_survives_a_restart(self, open_store: StoreFactory) -> None:
        first = open_store()
        await first.save(Session(namespace=ALICE, messages=vendor_turn()))
        await first.append(Namespace("appended"), vendor_turn())
        await first.aclose()
        second = open_store()
        for ns in (ALICE, Namespace("appended")):
            loaded = await second.load(ns)
            assert loaded is not None
            assert loaded.messages == vendor_turn()
            assert loaded.messages[1].vendor("anthropic") == vendor_turn()[1].vendor("anthropic")

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

    async def test_hostile_content_as_another_store_object_reads_it(
        self, open_store: StoreFactory
    ) -> None:
        mine, theirs = open_store(), open_store()
        hostile = Namespace("hostile", *HOSTILE_SEGMENTS)
        await mine.append(hostile, tool_turn(0), metadata={HOSTILE_TEXT: [HOSTILE_TEXT]})
        await mine.append(hostile, [Message.user(HOSTILE_TEXT)])
        loaded = await theirs.load(hostile)
        assert loaded is not None and loaded.namespace == hostile
        assert loaded.messages == [*tool_turn(0), Message.user(HOSTILE_TEXT)]
        assert loaded.metadata == {HOSTILE_TEXT: [HOSTILE_TEXT]}
        assert await theirs.list(Namespace("hostile", *HOSTILE_SEGMENTS[:3])) == [hostile]

    async def test_trim_and_prune_are_seen_by_another_store_object(
        self, open_store: StoreFactory
    ) -> None:
        mine, theirs = open_store(), open_store()
        await mine.append(ALICE, tool_turn(0) + tool_turn(1))
        await mine.append(Namespace("idle"), [Message.user("x")])
        assert len(contents(await mine.load(ALICE))) == 8  # cached, if mine caches
        assert await theirs.trim(ALICE, 3) == 5
        assert (await mine.load(ALICE)) == (await theirs.load(ALICE))
        await mine.append(ALICE, [Message.user("more")])
        loaded = await theirs.load(ALICE)
        assert loaded is not None and loaded.messages == [*tool_turn(1)[1:], Message.user("more")]
        await anyio.sleep(0.3)
        await mine.append(ALICE, [Message.user("fresh")])
        assert await theirs.prune(0.2) == 1
        assert await mine.load(Namespace("idle")) is None
        assert await mine.list() == [ALICE]
