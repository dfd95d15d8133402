"""Round 21 review: streaming runs and the RuntimeConfig knobs, from the outside.

What the docs promise: ``run_streaming`` runs the same loop as ``run`` and saves
the same history; leaving the block early cancels the run and keeps what it did
(a call it did not finish is answered ``INTERRUPTED``); ``max_turns`` counts
provider calls; ``parallel_tool_execution`` runs a turn's calls together (off:
one after the other) and answers them in call order; ``busy_timeout`` is the
wait for a session another run holds. No assertion depends on timing: tools and
providers meet on ``anyio.Event``s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from orra_di import (
    Hook,
    InMemoryStore,
    MaxTurnsExceeded,
    Message,
    Namespace,
    RunFinished,
    Runtime,
    RuntimeConfig,
    Session,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallStarted,
    ToolResult,
    TurnCompleted,
    tool,
)
from orra_di.errors import ConfigurationError
from orra_di.provider import CompletionRequest
from orra_di.runtime import INTERRUPTED
from orra_di.store import SessionStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from tests.memory.backends import BACKENDS, open_sessions

pytestmark = pytest.mark.anyio

NS = Namespace("round21", "stream")


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    async for opened in open_sessions(request.param, tmp_path):
        yield opened


@tool
def echo(text: str) -> str:
    """Say the text back."""
    return f"echo:{text}"


async def stored(store: SessionStore, ns: Namespace = NS) -> list[Message]:
    session = await store.load(ns)
    assert session is not None
    return list(session.messages)


def valid_history(messages: list[Message]) -> bool:
    """Every tool call is answered by the message right after it, id for id."""
    for i, message in enumerate(messages):
        if message.tool_calls:
            if i + 1 >= len(messages):
                return False
            answered = [r.call_id for r in messages[i + 1].tool_results]
            if answered != [c.id for c in message.tool_calls]:
                return False
    return True


# -- event order -----------------------------------------------------------------------------


async def test_streamed_events_come_in_the_order_of_the_loop() -> None:
    """Text, the calls it announces, their results in call order, the turn; then the
    final text, its turn, and RunFinished last."""
    script = [
        tool_calls(call("echo", {"text": "a"}, id="c1"), call("echo", {"text": "b"}, id="c2")),
        reply("all done"),
    ]
    runtime = Runtime(ScriptedProvider(script, chunk_size=4), InMemoryStore(), tools=[echo])
    async with runtime.run_streaming(NS, "go") as events:
        seen = [e async for e in events]
    kinds: list[str] = []
    for e in seen:
        name = type(e).__name__
        if not kinds or kinds[-1] != name or name != "TextDelta":
            kinds.append(name)
    assert kinds == [
        "ToolCallStarted",
        "ToolCallStarted",
        "ToolCallCompleted",
        "ToolCallCompleted",
        "TurnCompleted",
        "TextDelta",
        "TurnCompleted",
        "RunFinished",
    ]
    started = [e.id for e in seen if isinstance(e, ToolCallStarted)]
    completed = [(e.id, e.result.content) for e in seen if isinstance(e, ToolCallCompleted)]
    assert started == ["c1", "c2"]
    assert completed == [("c1", "echo:a"), ("c2", "echo:b")]
    assert "".join(e.text for e in seen if isinstance(e, TextDelta)) == "all done"
    assert isinstance(seen[-1], RunFinished)


async def test_a_streamed_run_stores_exactly_what_run_stores(store: SessionStore) -> None:
    def script() -> list[Any]:
        return [tool_calls(call("echo", {"text": "x"}, id="c1"), text="looking"), reply("ok")]

    other = Namespace("round21", "plain")
    await Runtime(ScriptedProvider(script()), store, tools=[echo]).run(other, "go")
    runtime = Runtime(ScriptedProvider(script()), store, tools=[echo])
    async with runtime.run_streaming(NS, "go") as events:
        async for _ in events:
            pass
    assert events.result is not None
    streamed, plain = await stored(store), await stored(store, other)
    assert [m.model_dump() for m in streamed] == [m.model_dump() for m in plain]
    assert events.result.final_message.content == streamed[-1].content == "ok"


async def test_the_stream_result_is_set_by_run_finished_and_matches_the_turns() -> None:
    runtime = Runtime(ScriptedProvider(["hello"]), InMemoryStore())
    async with runtime.run_streaming(NS, "hi") as events:
        assert events.result is None and not events.finished
        turns = []
        async for event in events:
            if isinstance(event, TurnCompleted):
                turns.append(event.turn)
                assert events.result is None  # not before RunFinished
    assert events.finished
    assert events.result is not None
    assert events.result.turns == tuple(turns)


# -- leaving early -----------------------------------------------------------------------------


async def test_leaving_during_the_final_answer_keeps_no_half_answer(store: SessionStore) -> None:
    """Cancelled while the answer streams: the user message is kept, no partial text
    is stored as an answer, and the next run goes on from a valid history."""
    runtime = Runtime(ScriptedProvider(["a long answer " * 5], chunk_size=3), store)
    async with runtime.run_streaming(NS, "question") as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    assert events.result is None
    assert [(m.role, m.content) for m in await stored(store)] == [("user", "question")]
    after = await Runtime(ScriptedProvider(["fine"]), store).run(NS, "again")
    assert after.final_message.content == "fine"
    assert [m.content for m in await stored(store)] == ["question", "again", "fine"]


async def test_leaving_while_a_tool_runs_keeps_finished_calls_and_interrupts_the_rest(
    store: SessionStore,
) -> None:
    """The fast call's result is final (its after_tool_call hook ran) before the slow
    one starts waiting forever; then the consumer leaves."""
    answered, entered = anyio.Event(), anyio.Event()

    class Answered(Hook):
        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> None:
            if call.id == "fast":
                answered.set()

    @tool
    async def hang() -> str:
        """Never finishes."""
        await answered.wait()
        entered.set()
        await anyio.sleep_forever()
        return "never"

    script = [tool_calls(call("echo", {"text": "q"}, id="fast"), call("hang", {}, id="slow"))]
    runtime = Runtime(ScriptedProvider(script), store, tools=[echo, hang], hooks=[Answered()])
    async with runtime.run_streaming(NS, "go") as events:
        async for event in events:
            if isinstance(event, ToolCallStarted) and event.id == "slow":
                await entered.wait()
                break
    messages = await stored(store)
    assert valid_history(messages)
    assert [(r.call_id, r.content) for r in messages[-1].tool_results] == [
        ("fast", "echo:q"),
        ("slow", INTERRUPTED),
    ]


async def test_leaving_without_reading_frees_the_session(store: SessionStore) -> None:
    """A block left before any event leaves no lock behind: a run that refuses to
    wait (busy_timeout=0) gets the session at once, and the history is valid."""
    runtime = Runtime(ScriptedProvider(["unread"]), store)
    async with runtime.run_streaming(NS, "first"):
        pass
    config = RuntimeConfig(busy_timeout=0)
    result = await Runtime(ScriptedProvider(["second"]), store, config=config).run(NS, "next")
    assert result.final_message.content == "second"
    messages = await stored(store)
    assert valid_history(messages)
    assert [m.content for m in messages][-2:] == ["next", "second"]


async def test_leaving_after_run_finished_does_not_cancel_anything() -> None:
    saved: list[str] = []

    class Save(Hook):
        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            saved.append(namespace.key)
            session.metadata["saved"] = True

    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider(["done"]), store, hooks=[Save()])
    async with runtime.run_streaming(NS, "go") as events:
        async for event in events:
            if isinstance(event, RunFinished):
                break
    assert events.result is not None and events.result.final_message.content == "done"
    session = await store.load(NS)
    assert session is not None and session.metadata == {"saved": True}
    assert saved == [NS.key]


async def test_an_error_in_the_consumer_propagates_as_itself_and_cancels_the_run() -> None:
    entered = anyio.Event()

    @tool
    async def hang() -> str:
        """Never finishes."""
        entered.set()
        await anyio.sleep_forever()
        return "never"

    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider([tool_calls(call("hang", {}, id="h"))]), store, tools=[hang])
    with pytest.raises(KeyError, match="consumer"):
        async with runtime.run_streaming(NS, "go") as events:
            async for event in events:
                if isinstance(event, ToolCallStarted):
                    await entered.wait()
                    raise KeyError("consumer")
    messages = await stored(store)
    assert messages[-1].tool_results[0].content == INTERRUPTED


async def test_max_turns_exceeded_comes_out_of_the_stream_as_itself() -> None:
    looping = ScriptedProvider(lambda request: tool_calls(call("echo", {"text": "again"})))
    store = InMemoryStore()
    runtime = Runtime(looping, store, tools=[echo], config=RuntimeConfig(max_turns=2))
    completed = 0
    with pytest.raises(MaxTurnsExceeded):
        async with runtime.run_streaming(NS, "go") as events:
            async for event in events:
                completed += isinstance(event, TurnCompleted)
    assert completed == 2
    assert events.finished and events.result is None
    messages = await stored(store)
    assert valid_history(messages)
    assert len(looping.requests) == 2


# -- RuntimeConfig ---------------------------------------------------------------------------


async def test_max_turns_one_allows_a_plain_answer_but_not_a_tool_round() -> None:
    ok = await Runtime(
        ScriptedProvider(["hi"]), InMemoryStore(), config=RuntimeConfig(max_turns=1)
    ).run(NS, "hello")
    assert ok.final_message.content == "hi" and len(ok.turns) == 1

    store = InMemoryStore()
    llm = ScriptedProvider([tool_calls(call("echo", {"text": "t"}, id="c1")), reply("never")])
    runtime = Runtime(llm, store, tools=[echo], config=RuntimeConfig(max_turns=1))
    with pytest.raises(MaxTurnsExceeded):
        await runtime.run(NS, "go")
    assert len(llm.requests) == 1
    messages = await stored(store)
    # the tool still ran and its result is kept: nothing done is lost
    assert messages[-1].tool_results[0].content == "echo:t"


async def test_an_answer_on_the_last_allowed_turn_is_a_success() -> None:
    script = [tool_calls(call("echo", {"text": str(n)})) for n in range(2)] + [reply("third")]
    llm = ScriptedProvider(script)
    runtime = Runtime(llm, InMemoryStore(), tools=[echo], config=RuntimeConfig(max_turns=3))
    result = await runtime.run(NS, "go")
    assert result.final_message.content == "third"
    assert len(result.turns) == 3 == len(llm.requests)


async def test_max_turns_exceeded_still_runs_the_save_hooks() -> None:
    """The run ended, if badly: before_session_save sees it and its metadata is kept."""

    class Count(Hook):
        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            session.metadata["saves"] = session.metadata.get("saves", 0) + 1

    store = InMemoryStore()
    looping = ScriptedProvider(lambda request: tool_calls(call("echo", {"text": "x"})))
    runtime = Runtime(
        looping, store, tools=[echo], hooks=[Count()], config=RuntimeConfig(max_turns=1)
    )
    with pytest.raises(MaxTurnsExceeded):
        await runtime.run(NS, "go")
    session = await store.load(NS)
    assert session is not None and session.metadata == {"saves": 1}


async def test_sequential_tools_start_only_after_the_previous_one_ended() -> None:
    log: list[str] = []

    @tool
    async def step(name: str) -> str:
        """Record a step."""
        log.append(f"start {name}")
        await anyio.lowlevel.checkpoint()  # give any other call the chance to start
        log.append(f"end {name}")
        return name

    script = [tool_calls(*(call("step", {"name": n}, id=n) for n in "abc")), reply("ok")]
    config = RuntimeConfig(parallel_tool_execution=False)
    result = await Runtime(
        ScriptedProvider(script), InMemoryStore(), tools=[step], config=config
    ).run(NS, "go")
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert [r.content for r in result.turns[0].tool_results] == ["a", "b", "c"]


async def test_parallel_tools_all_start_before_any_finishes_and_answer_in_call_order() -> None:
    """Each call waits until all three have started: only a parallel run finishes."""
    started: list[str] = []
    everyone = anyio.Event()

    @tool
    async def meet(name: str) -> str:
        """Wait for the others."""
        started.append(name)
        if len(started) == 3:
            everyone.set()
        await everyone.wait()
        return name

    script = [tool_calls(*(call("meet", {"name": n}, id=n) for n in "cab")), reply("ok")]
    runtime = Runtime(ScriptedProvider(script), InMemoryStore(), tools=[meet])
    with anyio.fail_after(30):  # a generous bound against a hang, not a timing assertion
        result = await runtime.run(NS, "go")
    assert sorted(started) == ["a", "b", "c"]
    assert [(r.call_id, r.content) for r in result.turns[0].tool_results] == [
        ("c", "c"),
        ("a", "a"),
        ("b", "b"),
    ]


async def test_a_positive_busy_timeout_waits_for_a_session_released_in_time(
    store: SessionStore,
) -> None:
    entered, release = anyio.Event(), anyio.Event()

    async def slow(request: CompletionRequest) -> str:
        entered.set()
        await release.wait()
        return "first"

    config = RuntimeConfig(busy_timeout=60)
    first = Runtime(ScriptedProvider(slow), store, config=config)
    second = Runtime(ScriptedProvider(["second"]), store, config=config)
    results: list[str] = []

    async def run_second() -> None:
        results.append((await second.run(NS, "two")).final_message.content)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run, NS, "one")
        await entered.wait()
        tg.start_soon(run_second)
        await anyio.lowlevel.checkpoint()
        release.set()
    assert results == ["second"]
    assert [m.content for m in await stored(store)] == ["one", "first", "two", "second"]


@pytest.mark.parametrize(
    "fields",
    [
        {"max_turns": 0},
        {"max_turns": True},
        {"max_turns": 2.0},
        {"max_tokens": 0},
        {"tool_timeout": 0},
        {"tool_timeout": float("nan")},
        {"busy_timeout": -1},
        {"busy_timeout": float("nan")},
        {"busy_timeout": "5"},
    ],
    ids=lambda f: f"{next(iter(f))}={next(iter(f.values()))!r}",
)
def test_runtime_config_refuses_bad_knobs_naming_them(fields: dict[str, Any]) -> None:
    (name,) = fields
    with pytest.raises(ConfigurationError, match=name):
        RuntimeConfig(**fields)


def test_runtime_config_accepts_the_documented_edge_values() -> None:
    config = RuntimeConfig(max_turns=1, busy_timeout=0, tool_timeout=None)
    assert config.busy_timeout == 0 and config.tool_timeout is None
    assert RuntimeConfig(busy_timeout=float("inf")).busy_timeout == float("inf")
