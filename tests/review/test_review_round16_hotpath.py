"""Round 16 review: two hot-path changes against the guarantees they must keep.

1. A plain ``def`` tool's answer handed straight to an idle event loop
   (``orra_di.tool._Handoff``, ``QUICK_WAIT``, ``_Pace``): per-tool timeouts,
   cancellation, the caller's contextvars, a tool's exceptions as error results,
   fork safety, a tool that calls back into the loop.
2. A SQLite lease holder's append to the row it knows (``_Lease.position``,
   ``_bump_known``) and its fallbacks: fencing, a session deleted under the lease,
   message numbering, the load cache, two processes taking turns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import importlib.util
import multiprocessing
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di.errors import StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.runtime import INTERRUPTED, Runtime, RuntimeConfig
from orra_di.session import Session
from orra_di.stores import SQLiteStore
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import FunctionTool, ToolContext, ToolTimedOut, tool

CTX = ToolContext(namespace=Namespace("review16"), call_id="c1")
NS = Namespace("review16", "alice")


def _tool_module() -> Any:
    return sys.modules["orra_di.tool"]  # ``orra_di.tool`` the attribute is the decorator


def _through(path: str, monkeypatch: pytest.MonkeyPatch, func: FunctionTool) -> None:
    """Make ``func``'s calls take one path: the handoff (a wait far longer than any
    quick tool needs) or the future (the wait skipped)."""
    if path == "handoff":
        monkeypatch.setattr(_tool_module(), "QUICK_WAIT", 30.0)
    else:
        func._pace.skip = 10**9


PATHS = ["handoff", "future"]


def unanswered(messages: list[Message]) -> list[str]:
    answered = {r.call_id for m in messages for r in m.tool_results}
    return [c.id for m in messages for c in m.tool_calls if c.id not in answered]


# -- 1. the handoff ------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
async def test_a_tool_raising_stopiteration_is_an_error_on_either_path(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``next(iter([]))`` in a tool is an ordinary bug: an error result, not a hang
    until the tool's timeout (a Future refuses StopIteration: the answer was lost)."""

    @tool
    def first_of_nothing() -> str:
        """Take the first of nothing."""
        return str(next(iter([])))

    _through(path, monkeypatch, first_of_nothing)
    with anyio.fail_after(10):
        with pytest.raises(RuntimeError, match="StopIteration") as info:
            await first_of_nothing.execute_within({}, CTX, 5.0)
    assert isinstance(info.value.__cause__, StopIteration)


@pytest.mark.anyio
async def test_a_stopiteration_does_not_lose_the_other_answers_delivered_with_it() -> None:
    """Answers that reach a busy loop are delivered in one batch: one bad answer in it
    must not leave the others' calls waiting for their timeouts."""
    gate = threading.Barrier(3)

    @tool
    def fine(n: int) -> str:
        """Answer after the others are running."""
        gate.wait(5)
        if n == 1:
            raise StopIteration
        return f"ok{n}"

    fine._pace.skip = 10**9  # every answer through the loop's inbox
    with anyio.fail_after(10):
        outcomes = await asyncio.gather(
            *(fine.execute_within({"n": n}, CTX, 5.0) for n in range(3)),
            return_exceptions=True,
        )
    assert outcomes[0] == "ok0" and outcomes[2] == "ok2", outcomes
    assert isinstance(outcomes[1], RuntimeError), outcomes


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
async def test_a_tool_raising_stopiteration_in_a_run_is_answered_as_an_error(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    @tool
    def empty() -> str:
        """Nothing there."""
        return str(next(iter(())))

    _through(path, monkeypatch, empty)
    llm = ScriptedProvider([tool_calls(call("empty", {}, id="c1")), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[empty], config=RuntimeConfig(tool_timeout=30.0))
    with anyio.fail_after(10):
        result = await rt.run(NS, "go")
    (res,) = result.turns[0].tool_results
    assert res.is_error, res
    assert res.content == "execution failed: RuntimeError: coroutine raised StopIteration"


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "error",
    [
        LookupError("no such key"),
        TimeoutError("the tool's own timeout"),
        concurrent.futures.CancelledError(),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad byte"),
    ],
    ids=["lookup", "timeout", "concurrent-cancelled", "unicode"],
)
async def test_a_tools_exception_is_the_same_error_result_on_either_path(
    path: str, error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    @tool
    def failing() -> str:
        """Fail."""
        raise error

    _through(path, monkeypatch, failing)
    llm = ScriptedProvider([tool_calls(call("failing", {}, id="c1")), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[failing], config=RuntimeConfig(tool_timeout=30.0))
    with anyio.fail_after(10):
        result = await rt.run(NS, "go")
    (res,) = result.turns[0].tool_results
    assert res.is_error, res
    assert res.content == f"execution failed: {type(error).__name__}: {error}"


def _raise_in_fresh_loop(func: FunctionTool) -> BaseException | str:
    """Run ``func`` on a new event loop; what escaped it (a BaseException must not
    reach pytest's own loop)."""

    async def main() -> str:
        return await func.execute_within({}, CTX, 5.0)

    try:
        return asyncio.run(main())
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit, GeneratorExit])
@pytest.mark.parametrize("path", PATHS)
def test_a_base_exception_from_a_tool_comes_through_as_itself_on_either_path(
    kind: type[BaseException], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    @tool
    def leave() -> str:
        """Leave."""
        raise kind("from the tool")

    _through(path, monkeypatch, leave)
    escaped = _raise_in_fresh_loop(leave)
    assert type(escaped) is kind, repr(escaped)
    assert str(escaped) == "from the tool"


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
async def test_a_tool_runs_in_a_copy_of_the_callers_context(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    @tool
    def peek() -> str:
        """Read and change a context variable."""
        seen.append(var.get())
        var.set("changed by the tool")
        return var.get()

    _through(path, monkeypatch, peek)
    token = var.set("caller's")
    try:
        for _ in range(2):
            assert await peek.execute_within({}, CTX, 5.0) == "changed by the tool"
        assert seen == ["caller's", "caller's"]
        assert var.get() == "caller's"
    finally:
        var.reset(token)


@pytest.mark.anyio
async def test_a_tool_slower_than_the_wait_then_a_quick_one_both_answer() -> None:
    release = threading.Event()

    @tool
    def slow() -> str:
        """Slower than the wait."""
        release.wait(5)
        return "slow"

    @tool
    def quick() -> str:
        """Quick."""
        return "quick"

    threading.Timer(0.05, release.set).start()
    with anyio.fail_after(10):
        assert await slow.execute_within({}, CTX, 5.0) == "slow"
        for _ in range(40):  # its own pace: not skipped because another tool missed
            assert await quick.execute_within({}, CTX, 5.0) == "quick"
        release.set()
        for _ in range(40):  # past the skipped calls: waited for again, and right
            assert await slow.execute_within({}, CTX, 5.0) == "slow"
    assert quick._pace.skip == 0 or quick._pace.skip < quick._pace.skip_after_miss


@pytest.mark.anyio
async def test_answers_racing_the_end_of_the_wait_are_each_taken_once() -> None:
    """A tool about as long as the wait: its answer lands before, during or after the
    loop gives up waiting. Every call gets its own outcome, once, and nothing is left
    for the loop to complain about (an exception set on a future nobody awaits)."""
    module = _tool_module()
    complaints: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: complaints.append(context))

    @tool
    def about_the_wait(n: int) -> str:
        """Take about as long as the loop waits."""
        deadline = time.perf_counter() + module.QUICK_WAIT * (0.5 + (n % 5) / 4)
        while time.perf_counter() < deadline:
            pass
        if n % 2:
            raise ValueError(f"odd {n}")
        return f"even {n}"

    try:
        with anyio.fail_after(30):
            for n in range(200):
                about_the_wait._pace.skip = 0  # waited for every time
                if n % 2:
                    with pytest.raises(ValueError, match=f"^odd {n}$"):
                        await about_the_wait.execute_within({"n": n}, CTX, 10.0)
                else:
                    assert await about_the_wait.execute_within({"n": n}, CTX, 10.0) == f"even {n}"
        await asyncio.sleep(0.05)  # answers through the futures delivered by now
        import gc

        gc.collect()  # a future holding an unretrieved exception complains when collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert complaints == []


@pytest.mark.skipif(importlib.util.find_spec("trio") is None, reason="trio is not installed")
@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_sync_tools_on_trio(anyio_backend: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("trio_var", default="unset")
    var.set("caller's")

    @tool
    def peek(n: int) -> str:
        """Read a context variable, fail on 3."""
        if n == 3:
            raise LookupError("three")
        if n == 4:
            return str(next(iter(())))
        return f"{var.get()} {n}"

    for n in range(3):
        assert await peek.execute_within({"n": n}, CTX, 5.0) == f"caller's {n}"
    with pytest.raises(LookupError, match="three"):
        await peek.execute_within({"n": 3}, CTX, 5.0)
    with pytest.raises(RuntimeError, match="StopIteration"):
        await peek.execute_within({"n": 4}, CTX, 5.0)
    release = threading.Event()

    @tool
    def hang() -> str:
        """Hang."""
        release.wait(5)
        return "late"

    try:
        with pytest.raises(ToolTimedOut):
            await hang.execute_within({}, CTX, 0.05)
    finally:
        release.set()
    calls = [call("peek", {"n": n}, id=f"c{n}") for n in range(5)]
    llm = ScriptedProvider([tool_calls(*calls), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[peek], config=RuntimeConfig(tool_timeout=5.0))
    result = await rt.run(NS, "go")
    assert [r.content for r in result.turns[0].tool_results] == [
        *(f"caller's {n}" for n in range(3)),
        "execution failed: LookupError: three",
        "execution failed: RuntimeError: coroutine raised StopIteration",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("parallel", [True, False], ids=["parallel", "sequential"])
@pytest.mark.parametrize("busy", [True, False], ids=["busy-loop", "idle-loop"])
async def test_many_sync_tool_calls_in_one_turn_all_answer_in_order(
    parallel: bool, busy: bool
) -> None:
    @tool
    def square(n: int) -> str:
        """Square n, sometimes slowly."""
        if n % 7 == 3:
            time.sleep(0.002)  # outlasts the wait
        return str(n * n)

    calls = [call("square", {"n": n}, id=f"c{n}") for n in range(24)]
    llm = ScriptedProvider([tool_calls(*calls), reply("done")])
    store = InMemoryStore()
    config = RuntimeConfig(tool_timeout=30.0, parallel_tool_execution=parallel)
    rt = Runtime(llm, store, tools=[square], config=config)
    stop = threading.Event()

    async def churn() -> None:  # other work always ready on the loop
        while not stop.is_set():  # noqa: ASYNC110 (a busy loop is the point)
            await asyncio.sleep(0)

    async with anyio.create_task_group() as tg:
        if busy:
            tg.start_soon(churn)
        with anyio.fail_after(20):
            result = await rt.run(NS, "go")
        stop.set()
    results = result.turns[0].tool_results
    assert [r.call_id for r in results] == [f"c{n}" for n in range(24)]
    assert [r.content for r in results] == [str(n * n) for n in range(24)]
    assert not any(r.is_error for r in results)


@pytest.mark.anyio
async def test_a_timeout_shorter_than_the_wait_still_fires() -> None:
    release = threading.Event()

    @tool
    def hang() -> str:
        """Hang."""
        release.wait(5)
        return "late"

    llm = ScriptedProvider([tool_calls(call("hang", {}, id="c1")), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[hang], config=RuntimeConfig(tool_timeout=0.0001))
    try:
        with anyio.fail_after(10):
            result = await rt.run(NS, "go")
    finally:
        release.set()
    (res,) = result.turns[0].tool_results
    assert res.is_error and "timed out" in res.content, res


@pytest.mark.anyio
async def test_the_deadline_counts_from_the_call_not_from_the_end_of_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop thread may come back from its wait late (a busy machine): the time it
    was away counts against the timeout all the same."""
    module = _tool_module()
    late = 0.2

    class Late(module._Handoff):  # type: ignore[misc,name-defined]
        def wait(self, seconds: float) -> Any:
            outcome = super().wait(seconds)
            time.sleep(late)  # descheduled after the wait
            return outcome if outcome is not None else super().wait(0)

    deadlines: list[float] = []
    original = module._Waiters.expire_at

    def spy(self: Any, future: Any, deadline: float) -> None:
        deadlines.append(deadline)
        original(self, future, deadline)

    monkeypatch.setattr(module, "_Handoff", Late)
    monkeypatch.setattr(module._Waiters, "expire_at", spy)
    release = threading.Event()

    @tool
    def hang() -> str:
        """Hang."""
        release.wait(5)
        return "late"

    limit = 1.0
    started = asyncio.get_running_loop().time()
    try:
        with pytest.raises(ToolTimedOut):
            await hang.execute_within({}, CTX, limit)
    finally:
        release.set()
    assert deadlines and deadlines[0] <= started + limit + 0.01, (deadlines, started)


@pytest.mark.anyio
async def test_quick_tools_called_back_to_back_still_let_the_loop_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An answer taken on the loop thread returns without the task ever suspending: a
    loop of such calls must still yield now and then, or no timer (a timeout, a cancel
    scope's deadline), no I/O and no other task runs until it ends."""
    monkeypatch.setattr(_tool_module(), "QUICK_WAIT", 30.0)  # every answer handed over
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await asyncio.sleep(0.005)
            ticks.append(time.monotonic())

    @tool
    def quick() -> str:
        """Answer at once."""
        return "ok"

    other = asyncio.ensure_future(ticker())
    try:
        await asyncio.sleep(0)  # the ticker's timer is set
        bound = time.monotonic() + 5  # the test's own way out, should nothing else stop it
        with anyio.move_on_after(0.05) as scope:
            while time.monotonic() < bound:
                assert await quick.execute_within({}, CTX, 30.0) == "ok"
    finally:
        other.cancel()
    assert scope.cancelled_caught  # the deadline fired: the loop ran its timers
    assert ticks  # and the other task ran meanwhile


@pytest.mark.anyio
async def test_a_tool_calling_back_into_the_loop_finishes() -> None:
    """The loop thread blocked in its wait cannot run what the tool asks of it: the
    wait must end and the loop serve the tool (no deadlock)."""
    loop = asyncio.get_running_loop()

    async def on_the_loop(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    @tool
    def ask_the_loop(n: int) -> str:
        """Ask the event loop for n + 1."""
        return str(asyncio.run_coroutine_threadsafe(on_the_loop(n), loop).result(5))

    with anyio.fail_after(15):
        for n in range(5):
            ask_the_loop._pace.skip = 0  # waited for every time
            assert await ask_the_loop.execute_within({"n": n}, CTX, 10.0) == str(n + 1)


async def _cancel_while_the_tool_finishes(delay: float) -> None:
    """A run whose tool call is cancelled from another thread, ``delay`` before the tool
    finishes: the loop thread is waiting for it, or just gave up."""
    loop = asyncio.get_running_loop()
    started, proceed = threading.Event(), threading.Event()

    @tool
    def work() -> str:
        """Work a moment."""
        started.set()
        proceed.wait(5)
        return "finished"

    store = InMemoryStore()
    llm = ScriptedProvider([tool_calls(call("work", {}, id="c1")), reply("done")])
    rt = Runtime(llm, store, tools=[work], config=RuntimeConfig(tool_timeout=30.0))
    task = asyncio.ensure_future(rt.run(NS, "go"))

    def cancel_then_release() -> None:
        started.wait(5)
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(delay)
        proceed.set()

    helper = threading.Thread(target=cancel_then_release)
    helper.start()
    with anyio.fail_after(10), contextlib.suppress(asyncio.CancelledError):
        await task  # not cancelled if the run ended in the step the tool's answer came in
    helper.join()
    session = await store.load(NS)
    assert session is not None
    assert unanswered(session.messages) == []
    (results,) = [m.tool_results for m in session.messages if m.tool_results]
    assert results[0].content in ("finished", INTERRUPTED), results


@pytest.mark.anyio
async def test_a_run_cancelled_from_another_thread_while_the_loop_waits() -> None:
    """Cancelled while the loop thread waits for the tool: either the tool's answer
    (it finished before the cancellation landed) or "interrupted", never a lost call."""
    for attempt in range(6):
        await _cancel_while_the_tool_finishes(attempt * 0.0002)


def _child_runs_a_tool() -> None:
    @tool
    def where() -> str:
        """Report the thread."""
        return threading.current_thread().name

    name = anyio.run(where.execute, {}, CTX)
    raise SystemExit(0 if name != threading.main_thread().name else 1)


def test_a_child_forked_while_a_worker_hands_off_still_runs_tools() -> None:
    """A worker thread holding the handoff's lock at the moment of a fork (between its
    check and its release) leaves the child a lock nobody will release."""
    module = _tool_module()
    holding, done = threading.Event(), threading.Event()

    def hold() -> None:
        with module._handoff_flip:
            holding.set()
            done.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        child = multiprocessing.get_context("fork").Process(target=_child_runs_a_tool)
        child.start()
    finally:
        done.set()
        holder.join()
    child.join(20)
    if child.exitcode is None:
        child.kill()
        child.join()
    assert child.exitcode == 0


# -- 2. SQLite: the holder's append to the row it knows ------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(db, lease_seconds=5.0)
    await store.list()
    yield store
    await store.aclose()


@pytest.fixture
async def other(db: Path, store: SQLiteStore) -> AsyncIterator[SQLiteStore]:
    other = SQLiteStore(db, lease_seconds=5.0)
    yield other
    await other.aclose()


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def texts(session: Session | None) -> list[str]:
    assert session is not None
    return [m.content for m in session.messages]


def rows(db: Path) -> list[tuple[int, str]]:
    """(seq, content) of every message row, by seq."""
    with raw(db) as conn:
        found = conn.execute(
            "SELECT seq, json_extract(body, '$.content') FROM messages ORDER BY seq"
        )
        return [(seq, text) for seq, text in found]


def numbering_is_sound(db: Path) -> None:
    """Seqs unique and below next_seq; message_count the rows there are."""
    with raw(db) as conn:
        for sid, count, next_seq in conn.execute(
            "SELECT id, message_count, next_seq FROM sessions"
        ).fetchall():
            seqs = [
                r[0] for r in conn.execute("SELECT seq FROM messages WHERE session_id = ?", (sid,))
            ]
            assert len(seqs) == len(set(seqs)) == count, (seqs, count)
            assert all(s < next_seq for s in seqs), (seqs, next_seq)


async def agrees(store: SQLiteStore, db: Path, ns: Namespace = NS) -> Session | None:
    """The store's (cached) load equals a fresh store's."""
    mine = await store.load(ns)
    fresh = SQLiteStore(db)
    try:
        theirs = await fresh.load(ns)
    finally:
        await fresh.aclose()
    if theirs is None:
        assert mine is None
        return None
    assert mine is not None
    assert [m.model_dump() for m in mine.messages] == [m.model_dump() for m in theirs.messages]
    assert mine.metadata == theirs.metadata
    return mine


@pytest.mark.anyio
@pytest.mark.parametrize("last", [False, True], ids=["append", "append_last"])
@pytest.mark.parametrize("change", ["trim", "save", "append", "trim-to-nothing"])
async def test_a_holder_numbers_after_a_change_by_another_store(
    store: SQLiteStore, other: SQLiteStore, db: Path, change: str, last: bool
) -> None:
    await store.append(NS, [Message.user("before")])
    async with store.lock(NS):
        await store.load(NS)
        await store.append(NS, [Message.user("h1"), Message.assistant("h2")])
        if change == "trim":
            await other.trim(NS, keep_last=1)
            expected = ["h2"]
        elif change == "trim-to-nothing":
            await other.trim(NS, keep_last=0)
            expected = []
        elif change == "save":
            await other.save(Session(namespace=NS, messages=[Message.user("saved")]))
            expected = ["saved"]
        else:
            await other.append(NS, [Message.user("unlocked")])
            expected = ["before", "h1", "h2", "unlocked"]
        write = store.append_last if last else store.append
        await write(NS, [Message.user("h3")])
        if not last:
            await store.append(NS, [Message.user("h4")])
    expected += ["h3"] if last else ["h3", "h4"]
    assert texts(await agrees(store, db)) == expected
    assert texts(await other.load(NS)) == expected
    numbering_is_sound(db)
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


@pytest.mark.anyio
@pytest.mark.parametrize("last", [False, True], ids=["append", "append_last"])
@pytest.mark.parametrize("how", ["delete", "delete_tree", "prune", "delete-and-recreate"])
async def test_a_session_deleted_under_the_lease_is_not_recreated(
    store: SQLiteStore, other: SQLiteStore, db: Path, how: str, last: bool
) -> None:
    await store.append(NS, [Message.user("before")])
    async with store.lock(NS):
        await store.append(NS, [Message.user("h1")])
        if how == "delete":
            assert await other.delete(NS)
        elif how == "delete_tree":
            assert await other.delete_tree(Namespace("review16")) == 1
        elif how == "prune":
            with raw(db) as conn:  # lapsed (not taken over), and idle long enough
                conn.execute("UPDATE leases SET expires_at = 0")
                conn.execute("UPDATE sessions SET updated_at = '2000-01-01T00:00:00+00:00'")
            assert await other.prune(60) == 1
        else:
            assert await other.delete(NS)
            await other.append(NS, [Message.user("someone else's")])
        write = store.append_last if last else store.append
        with pytest.raises(StoreError, match="deleted while this run held"):
            await write(NS, [Message.user("h2")])
    loaded = await agrees(store, db)
    if how == "delete-and-recreate":
        assert texts(loaded) == ["someone else's"]
    else:
        assert loaded is None
    numbering_is_sound(db)


@pytest.mark.anyio
@pytest.mark.parametrize("last", [False, True], ids=["append", "append_last"])
@pytest.mark.parametrize("taker_writes", [False, True], ids=["taker-idle", "taker-wrote"])
async def test_a_lease_taken_over_between_two_appends_refuses_the_second_whole(
    store: SQLiteStore, other: SQLiteStore, db: Path, last: bool, taker_writes: bool
) -> None:
    async with store.lock(NS):
        await store.append(NS, [Message.user("mine")])
        with raw(db) as conn:
            conn.execute("UPDATE leases SET expires_at = 0")
        async with other.lock(NS, timeout=0):
            if taker_writes:
                await other.append(NS, [Message.user("taker")])
            write = store.append_last if last else store.append
            with pytest.raises(StoreError, match="lapsed"):
                await write(NS, [Message.user("stale")], metadata={"stale": True})
            with pytest.raises(StoreError, match="lapsed"):
                await store.append(NS, [Message.user("stale again")])
        # The taker has gone (released): still not the first holder's lease.
        with pytest.raises(StoreError, match=r"lapsed|released"):
            await store.append(NS, [Message.user("stale at last")])
    expected = ["mine", "taker"] if taker_writes else ["mine"]
    loaded = await agrees(store, db)
    assert texts(loaded) == expected
    assert loaded is not None and "stale" not in loaded.metadata
    numbering_is_sound(db)


@pytest.mark.anyio
async def test_a_lapsed_lease_not_taken_over_still_writes(store: SQLiteStore, db: Path) -> None:
    async with store.lock(NS):
        await store.append(NS, [Message.user("a")])
        with raw(db) as conn:
            conn.execute("UPDATE leases SET expires_at = 0")
        await store.append(NS, [Message.user("b")])
        await store.append_last(NS, [Message.user("c")])
    assert texts(await agrees(store, db)) == ["a", "b", "c"]
    numbering_is_sound(db)


@pytest.mark.anyio
async def test_the_first_append_creates_the_session_then_appends_know_it(
    store: SQLiteStore, other: SQLiteStore, db: Path
) -> None:
    async with store.lock(NS):
        assert await store.load(NS) is None
        await store.append(NS, [Message.user("q")], metadata={"title": "t1"})
        assert texts(await other.load(NS)) == ["q"]
        await store.append(NS, [Message.assistant("a1"), Message.assistant("a2")])
        await store.append(NS, [Message.user("q2")], metadata={"title": "t2", "n": 2})
        await store.append(NS, [], metadata={"title": "t3"})  # metadata only
        await store.append(NS, [])
        await store.append_last(NS, [Message.assistant("end")])
        with pytest.raises(StoreError, match="released"):
            await store.append(NS, [Message.user("after the last")])
    loaded = await agrees(store, db)
    assert texts(loaded) == ["q", "a1", "a2", "q2", "end"]
    assert loaded is not None and loaded.metadata == {"title": "t3"}
    assert [seq for seq, _ in rows(db)] == [0, 1, 2, 3, 4]
    with raw(db) as conn:
        found = conn.execute("SELECT revision, message_count, next_seq FROM sessions").fetchone()
        assert found == (6, 5, 5)


@pytest.mark.anyio
async def test_metadata_through_appends_and_the_cache_after_a_fallback(
    store: SQLiteStore, other: SQLiteStore, db: Path
) -> None:
    await store.save(Session(namespace=NS, messages=[Message.user("s")], metadata={"v": 0}))
    async with store.lock(NS):
        await store.load(NS)  # cached
        await store.append(NS, [Message.user("a")], metadata={"v": 1})
        await agrees(store, db)
        await other.append(NS, [Message.user("b")], metadata={"v": 2, "by": "other"})
        await store.append(NS, [Message.user("c")])  # falls back: the row changed
        assert (await agrees(store, db)).metadata == {"v": 2, "by": "other"}  # type: ignore[union-attr]
        await store.append(NS, [Message.user("d")], metadata={"v": 3})  # known again
        await agrees(store, db)
        await store.trim(NS, keep_last=2)  # the holder's own trim
        await store.append(NS, [Message.user("e")])
        await agrees(store, db)
        await store.save(Session(namespace=NS, messages=[Message.user("fresh")], metadata={}))
        await store.append(NS, [Message.user("f")], metadata={"v": 4})
        await store.append_last(NS, [Message.user("g")])
    loaded = await agrees(store, db)
    assert texts(loaded) == ["fresh", "f", "g"]
    assert loaded is not None and loaded.metadata == {"v": 4}
    numbering_is_sound(db)


@pytest.mark.anyio
async def test_the_holders_own_delete_then_append_is_refused(store: SQLiteStore, db: Path) -> None:
    await store.append(NS, [Message.user("before")])
    async with store.lock(NS):
        await store.append(NS, [Message.user("h1")])
        assert await store.delete(NS)
        with pytest.raises(StoreError, match="deleted while this run held"):
            await store.append(NS, [Message.user("h2")])
    assert await agrees(store, db) is None


@pytest.mark.anyio
async def test_a_failed_append_leaves_the_holders_position_unchanged(
    store: SQLiteStore, db: Path
) -> None:
    """A write that fails after the row's update (here: a message row already there)
    rolls back whole, and the holder's next append still numbers from the database."""
    async with store.lock(NS):
        await store.append(NS, [Message.user("a")])
        with raw(db) as conn:  # a stray row where the next message goes
            sid = conn.execute("SELECT id FROM sessions").fetchone()[0]
            conn.execute(
                "INSERT INTO messages (session_id, seq, body) VALUES (?, 1, ?)",
                (sid, Message.user("stray").model_dump_json()),
            )
        with pytest.raises(StoreError):
            await store.append(NS, [Message.user("b")])
        with raw(db) as conn:
            conn.execute("DELETE FROM messages WHERE seq = 1")
        await store.append(NS, [Message.user("b")])
        await store.append_last(NS, [Message.user("c")])
    assert texts(await agrees(store, db)) == ["a", "b", "c"]
    numbering_is_sound(db)


def _alternate(path: str, key: str, worker: int, turns: int, start: Any) -> None:
    """``turns`` runs on one session, each under the lock: load, three appends."""

    async def main() -> None:
        store = SQLiteStore(path, lease_seconds=5.0, busy_timeout=10.0)
        ns = Namespace.parse(key)
        start.wait()
        try:
            for n in range(turns):
                async with store.lock(ns, timeout=30):
                    await store.load(ns)
                    await store.append(ns, [Message.user(f"w{worker}-t{n}-q")])
                    await store.append(ns, [Message.assistant(f"w{worker}-t{n}-a")])
                    await store.append_last(ns, [Message.assistant(f"w{worker}-t{n}-z")])
                if n % 3 == 2:
                    await store.trim(ns, keep_last=6)
        finally:
            await store.aclose()

    anyio.run(main)


@pytest.mark.anyio
async def test_two_processes_alternating_runs_on_one_session(store: SQLiteStore, db: Path) -> None:
    await store.append(NS, [Message.user("created")])
    await store.load(NS)  # this store's cache holds the session: it must notice the rest
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    turns = 6
    processes = [
        spawn.Process(target=_alternate, args=(str(db), NS.key, w, turns, start)) for w in range(2)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            await anyio.to_thread.run_sync(process.join, 120)
            assert process.exitcode == 0
    finally:
        for process in processes:
            process.kill()
    numbering_is_sound(db)
    loaded = await agrees(store, db)
    assert loaded is not None
    # Each run's three messages are together and in order (no interleaving).
    found = texts(loaded)
    for i, text in enumerate(found):
        if text.endswith("-q") and i + 2 < len(found):
            run = text[:-2]
            assert found[i + 1 : i + 3] == [f"{run}-a", f"{run}-z"], found
    with raw(db) as conn:
        next_seq = conn.execute("SELECT next_seq FROM sessions").fetchone()[0]
    assert next_seq == 1 + 2 * turns * 3
