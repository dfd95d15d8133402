"""The runtime's promises, checked on every session store, not only in memory.

``InMemoryStore`` never yields inside a write, so a cancellation can never land
in the middle of one, and it hands back the very message objects it was given.
The real stores do neither: a cancelled ``append`` on FileStore, SQLite,
PostgreSQL or Redis is an append that did not happen unless the runtime shields
it, and their loads build fresh (equal, not identical) messages. So the
scenarios below (persistence order, cancellation while tools run, crash repair,
one writer per session, budgets after a rewrite, text that is not valid Unicode,
namespaces given as keys) run over every store, like the store conformance suite.

``stores`` opens store objects that share one fresh storage; two objects on one
storage stand for two processes (for memory, the factory hands out one object).
PostgreSQL and Redis skip when their server is absent, except under ``CI``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.context import ContextBudget
from orra_di.errors import NamespaceError, ProviderError
from orra_di.hook import Hook
from orra_di.message import Message, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.runtime import INTERRUPTED, Runtime, RuntimeConfig
from orra_di.session import Session
from orra_di.store import SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import tool

pytestmark = pytest.mark.anyio

OpenStore = Callable[..., SessionStore]
"""``open_store(cache=True)``: one more store object on the test's storage."""

KINDS = [
    "memory",
    "file",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.service),
    pytest.param("redis", marks=pytest.mark.service),
]


@pytest.fixture(params=KINDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """A factory of store objects of one kind on one fresh storage, closed after the test."""
    kind: str = request.param
    token = secrets.token_hex(6)
    opened: list[SessionStore] = []
    memory = InMemoryStore()
    cleanup: Callable[[], Any] | None = None

    if kind == "postgres":
        require_postgres()
        import psycopg

        from orra_di.stores.postgres import PostgresStore

        schema = f"orra_rt_{token}"

        def make(cache: bool) -> SessionStore:
            return PostgresStore(
                POSTGRES_URL, schema=schema, lease_seconds=1.0, session_cache=1000 if cache else 0
            )

        async def drop_schema() -> None:
            async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

        cleanup = drop_schema
    elif kind == "redis":
        require_redis()
        from redis.asyncio import Redis

        from orra_di.stores.redis import RedisStore

        prefix = f"orra-rt-test:{token}:"

        def make(cache: bool) -> SessionStore:
            return RedisStore(
                REDIS_URL, key_prefix=prefix, lease_seconds=1.0, session_cache=1000 if cache else 0
            )

        async def delete_keys() -> None:
            client = Redis.from_url(REDIS_URL)
            try:
                async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                    await client.delete(key)
            finally:
                await client.aclose()

        cleanup = delete_keys
    elif kind == "sqlite":

        def make(cache: bool) -> SessionStore:
            return SQLiteStore(
                tmp_path / "sessions.db", lease_seconds=1.0, cache_sessions=1000 if cache else 0
            )
    elif kind == "file":

        def make(cache: bool) -> SessionStore:
            return FileStore(tmp_path / "sessions", cache_sessions=1000 if cache else 0)
    else:

        def make(cache: bool) -> SessionStore:
            return memory

    def open_store(*, cache: bool = True) -> SessionStore:
        store = make(cache)
        opened.append(store)
        return store

    try:
        yield open_store
    finally:
        for store in opened:
            await store.aclose()
        if cleanup is not None:
            await cleanup()


def fresh() -> Namespace:
    return Namespace("runtime", secrets.token_hex(4))


def unanswered(messages: list[Message]) -> list[str]:
    """Ids of tool calls in a history that no tool result answers."""
    answered = {r.call_id for m in messages for r in m.tool_results}
    return [c.id for m in messages for c in m.tool_calls if c.id not in answered]


async def history(store: SessionStore, ns: Namespace) -> list[Message]:
    session = await store.load(ns)
    assert session is not None, f"no session at {ns}"
    return session.messages


@tool
def uppercase(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


# -- persistence order ----------------------------------------------------------------------


async def test_each_step_is_stored_before_the_next_one_starts(open_store: OpenStore) -> None:
    """What another process sees while the run goes on: every step as soon as it is done."""
    ns = fresh()
    observer = open_store()
    seen_by_tool: list[list[str]] = []

    @tool
    async def peek() -> str:
        """Look at the stored history."""
        seen_by_tool.append([m.role.value for m in await history(observer, ns)])
        return "peeked"

    seen_by_model: list[list[str]] = []

    async def model(request: CompletionRequest) -> CompletionResponse:
        seen_by_model.append([m.role.value for m in await history(observer, ns)])
        if len(seen_by_model) == 1:
            return tool_calls(call("peek", id="c1"))
        if len(seen_by_model) == 2:
            return reply("done")
        raise ProviderError("upstream exploded")

    rt = Runtime(ScriptedProvider(model), open_store(), tools=[peek])
    await rt.run(ns, "go")
    with pytest.raises(ProviderError):
        await rt.run(ns, "again")

    assert seen_by_model[0] == ["user"]
    assert seen_by_tool == [["user", "assistant"]]
    assert seen_by_model[1] == ["user", "assistant", "user"]
    stored = await history(observer, ns)
    assert [(m.role.value, m.content) for m in stored] == [
        ("user", "go"),
        ("assistant", ""),
        ("user", ""),
        ("assistant", "done"),
        ("user", "again"),  # the failed run's question is kept
    ]
    assert stored[2].tool_results == (ToolResult(call_id="c1", content="peeked"),)


# -- cancellation while tools run -----------------------------------------------------------


async def test_a_run_cancelled_while_its_tools_run_leaves_no_unanswered_call(
    open_store: OpenStore,
) -> None:
    ns = fresh()
    started, quick_done = anyio.Event(), anyio.Event()

    @tool
    async def forever() -> str:
        """Never ends."""
        started.set()
        await anyio.sleep_forever()
        return "unreachable"

    @tool
    async def quick(text: str) -> str:
        """Ends at once."""
        quick_done.set()
        return text.upper()

    script = [tool_calls(call("forever", id="c1"), call("quick", {"text": "a"}, id="c2"))]
    rt = Runtime(ScriptedProvider(script), open_store(), tools=[forever, quick])
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run, ns, "go")
        await started.wait()
        await quick_done.wait()
        tg.cancel_scope.cancel()

    stored = await history(open_store(), ns)
    assert unanswered(stored) == []
    (interrupted, finished) = stored[-1].tool_results
    assert (interrupted.call_id, interrupted.content, interrupted.is_error) == (
        "c1",
        INTERRUPTED,
        True,
    )
    assert (finished.call_id, finished.content) == ("c2", "A")

    # The lock went with the cancelled run: the session takes the next run at once.
    after = ScriptedProvider([reply("back")])
    next_run = Runtime(after, open_store(), config=RuntimeConfig(busy_timeout=5))
    assert (await next_run.run(ns, "still there?")).final_message.content == "back"
    assert unanswered(after.requests[0].messages) == []


# -- the last step -------------------------------------------------------------------------


class _AtSave(Hook):
    """A ``before_session_save`` hook that notes state, then fails or waits forever."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.reached = anyio.Event()

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        session.metadata["noted"] = True
        self.reached.set()
        if self.fail:
            raise RuntimeError("the hook broke")
        await anyio.sleep_forever()


@pytest.mark.parametrize("fail", [True, False], ids=["hook-fails", "run-cancelled"])
async def test_the_answer_is_kept_when_the_run_ends_before_its_last_write(
    open_store: OpenStore, fail: bool
) -> None:
    """The answer waits for ``before_session_save`` hooks so that it is stored with what
    they change (and, in SQLite, with the lock's release) in one write; a hook that
    fails, or a run cancelled meanwhile, still leaves it stored."""
    ns = fresh()
    hook = _AtSave(fail)
    rt = Runtime(ScriptedProvider([reply("the answer")]), open_store(), hooks=[hook])
    if fail:
        with pytest.raises(RuntimeError, match="the hook broke"):
            await rt.run(ns, "go")
    else:
        async with anyio.create_task_group() as tg:
            tg.start_soon(rt.run, ns, "go")
            await hook.reached.wait()
            tg.cancel_scope.cancel()
    stored = open_store()
    assert [m.content for m in await history(stored, ns)] == ["go", "the answer"]
    loaded = await stored.load(ns)
    assert loaded is not None and loaded.metadata == {"noted": True}
    # The lock went with the run.
    after = Runtime(ScriptedProvider([reply("back")]), stored, config=RuntimeConfig(busy_timeout=5))
    assert (await after.run(ns, "again")).final_message.content == "back"


async def test_what_hooks_note_at_save_is_stored_with_the_answer(open_store: OpenStore) -> None:
    class Note(Hook):
        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            session.metadata["turns"] = session.metadata.get("turns", 0) + 1

    ns = fresh()
    rt = Runtime(ScriptedProvider([reply("one"), reply("two")]), open_store(), hooks=[Note()])
    await rt.run(ns, "first")
    await rt.run(ns, "second")
    loaded = await open_store().load(ns)
    assert loaded is not None
    assert [m.content for m in loaded.messages] == ["first", "one", "second", "two"]
    assert loaded.metadata == {"turns": 2}


# -- crash repair ---------------------------------------------------------------------------


async def test_a_crashed_runs_open_call_is_answered_before_the_next_run(
    open_store: OpenStore,
) -> None:
    """A process that died mid-tool left [question, call]; the next run answers the call first."""
    ns = fresh()
    crashed = open_store()
    open_call = Message.assistant("", [call("uppercase", {"text": "a"}, id="c1")])
    await crashed.append(ns, [Message.user("before the crash"), open_call])

    provider = ScriptedProvider([reply("recovered")])
    rt = Runtime(provider, open_store(), tools=[uppercase])
    await rt.run(ns, "again")

    expected = ["before the crash", "", "", "again", "recovered"]
    assert [m.content for m in provider.requests[0].messages] == expected[:-1]
    assert unanswered(provider.requests[0].messages) == []
    stored = await history(open_store(), ns)
    assert [m.content for m in stored] == expected
    assert stored[2].tool_results == (ToolResult(call_id="c1", content=INTERRUPTED, is_error=True),)
    assert unanswered(stored) == []


# -- one writer per session -----------------------------------------------------------------


async def test_concurrent_runs_through_two_store_objects_never_interleave(
    open_store: OpenStore,
) -> None:
    """Two runtimes on two store objects (two processes, in effect) share one session."""
    ns = fresh()

    async def answer(request: CompletionRequest) -> CompletionResponse:
        await anyio.lowlevel.checkpoint()
        question = request.messages[-1]
        if question.tool_results:  # the tool turn is done: answer the question before it
            return reply(f"re:{request.messages[-3].content}")
        return tool_calls(call("uppercase", {"text": question.content}))

    runtimes = [
        Runtime(ScriptedProvider(answer), open_store(), tools=[uppercase]) for _ in range(2)
    ]
    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(runtimes[i % 2].run, ns, f"m{i}")

    stored = await history(open_store(), ns)
    assert len(stored) == 6 * 4
    assert unanswered(stored) == []
    for start in range(0, len(stored), 4):
        question, asked, result, answer_ = stored[start : start + 4]
        assert asked.tool_calls[0].arguments == {"text": question.content}
        assert result.tool_results[0].call_id == asked.tool_calls[0].id
        assert result.tool_results[0].content == question.content.upper()
        assert answer_.content == f"re:{question.content}"
    assert sorted(m.content for m in stored[::4]) == [f"m{i}" for i in range(6)]


# -- the context budget after a rewrite -----------------------------------------------------


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "uncached"])
async def test_the_budget_holds_after_the_history_is_rewritten(
    open_store: OpenStore, cache: bool
) -> None:
    """``store.save`` of a longer earlier message, the last one unchanged, is noticed."""
    ns = fresh()
    store = open_store(cache=cache)
    budget = ContextBudget(max_tokens=300, reserved_for_output=0)
    provider = ScriptedProvider(lambda _request: reply("ok"))
    rt = Runtime(provider, store, config=RuntimeConfig(context_budget=budget))
    for i in range(4):
        await rt.run(ns, f"question {i}")

    session = await store.load(ns)
    assert session is not None
    session.messages[1] = Message.assistant("a long answer " * 150)  # ~525 tokens
    await store.save(session)
    await rt.run(ns, "question 4")

    sent = provider.requests[-1].messages
    assert rt.window.estimate_total_tokens(sent) <= budget.available_for_input
    assert [m.content for m in sent][-1] == "question 4"


# -- text that is not valid Unicode ---------------------------------------------------------


async def test_lone_surrogates_from_a_tool_or_the_model_are_stored_as_replacement_characters(
    open_store: OpenStore,
) -> None:
    """What ``os.fsdecode`` makes of a non-UTF-8 file name must not fail the step."""
    ns = fresh()
    name = "report-\udcff.txt"  # os.fsdecode(b"report-\xff.txt")

    @tool
    def list_files(pattern: str, labels: dict[str, list[str]]) -> str:
        """List files."""
        return f"{name} matches {pattern}"

    arguments = {"pattern": "\ud83d*", "labels": {"\udc80key": ["\udcff"]}}
    provider = ScriptedProvider(
        [tool_calls(call("list_files", arguments, id="c1")), reply("found \udcff")]
    )
    rt = Runtime(provider, open_store(), tools=[list_files])
    await rt.run(ns, "which files?")

    stored = await history(open_store(), ns)
    (asked,) = stored[1].tool_calls
    assert asked.arguments == {"pattern": "\ufffd*", "labels": {"\ufffdkey": ["\ufffd"]}}
    (result,) = stored[2].tool_results
    assert not result.is_error, result.content
    assert result.content == "report-\ufffd.txt matches \ufffd*"
    assert stored[3].content == "found \ufffd"


# -- namespaces given as keys ---------------------------------------------------------------


async def test_a_namespace_key_works_wherever_a_namespace_does(open_store: OpenStore) -> None:
    key = f"runtime:{secrets.token_hex(4)}:alice"
    ns = Namespace.parse(key)
    store = open_store()
    rt = Runtime(ScriptedProvider([reply("hi alice"), reply("again")]), store)

    await rt.run(key, "hi")
    async with rt.run_streaming(key, "once more") as events:
        async for _ in events:
            pass
    assert [m.content for m in await history(store, ns)] == ["hi", "hi alice", "once more", "again"]

    loaded = await store.load(key)
    assert loaded is not None and loaded.namespace == ns
    await store.append(key, [Message.user("appended")])
    assert await store.list(ns.parent.key if ns.parent else key) == [ns]
    async with store.lock(key, timeout=5):
        pass
    assert await store.trim(key, 1) == 4
    assert await store.delete_tree(key) == 1
    await store.append(key, [Message.user("x")])
    assert await store.delete(key) is True


@pytest.mark.parametrize("bad", ["", "acme::alice", "a\x00b", 42])
async def test_a_bad_namespace_key_is_a_namespace_error(open_store: OpenStore, bad: Any) -> None:
    store = open_store()
    rt = Runtime(ScriptedProvider([reply("never")]), store)
    with pytest.raises(NamespaceError):
        await rt.run(bad, "hi")
    with pytest.raises(NamespaceError):
        await store.load(bad)
    with pytest.raises(NamespaceError):
        await store.append(bad, [Message.user("lost?")])
    with pytest.raises(NamespaceError):
        store.lock(bad)
    assert await store.list() == []
