"""Edge cases of the runtime, tools and test doubles, found by review and fixed.

Each test states a behaviour the code or its documentation promises.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from orra_di.agent import AgentProfile
from orra_di.context import CharEstimator, ContextBudget, ContextWindow
from orra_di.errors import ConfigurationError, ProviderError, ProviderUnavailableError
from orra_di.hook import Hook
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    StreamEvent,
    TextDelta,
    Usage,
)
from orra_di.run_context import current_run
from orra_di.runtime import INTERRUPTED, Runtime, RuntimeConfig
from orra_di.runtime_set import RuntimeMap
from orra_di.session import Session
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider, TestModel, call, reply, tool_calls
from orra_di.tool import FunctionTool, ToolContext, ToolRegistry, tool

NS = Namespace("review")


@tool
def echo(text: str) -> str:
    """Echo the text."""
    return text


def unanswered(messages: list[Message]) -> list[str]:
    """Ids of tool calls in a history that no tool result answers."""
    answered = {r.call_id for m in messages for r in m.tool_results}
    return [c.id for m in messages for c in m.tool_calls if c.id not in answered]


async def history(store: InMemoryStore, ns: Namespace = NS) -> list[Message]:
    session = await store.load(ns)
    assert session is not None
    return session.messages


# -- 1. a hook that replaces the call or the result leaves the call unanswered ------------


class RewriteCall(Hook):
    """A hook that returns a replacement call, as ``before_tool_call`` allows."""

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        return ToolCall(id=f"{call.id}-rewritten", name=call.name, arguments=call.arguments)


class RewriteResult(Hook):
    """A redacting hook that builds a fresh result, as ``after_tool_call`` allows."""

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        return ToolResult(call_id="redacted", content="[redacted]", is_error=result.is_error)


@pytest.mark.anyio
@pytest.mark.parametrize("hook", [RewriteCall(), RewriteResult()], ids=["before", "after"])
async def test_a_hook_replacing_the_call_or_result_still_answers_the_models_call(
    hook: Hook,
) -> None:
    store = InMemoryStore()
    llm = ScriptedProvider([tool_calls(call("echo", {"text": "a"}, id="c1")), reply("done")])
    rt = Runtime(llm, store, tools=[echo], hooks=[hook])
    result = await rt.run(NS, "go")
    assert [r.call_id for r in result.turns[0].tool_results] == ["c1"]
    assert unanswered(await history(store)) == []


# -- 2. a synchronous tool escapes tool_timeout and cancellation ------------------------


def blocking_tool(release: threading.Event) -> FunctionTool:
    def stuck() -> str:
        """Blocks its worker thread until released (at most 3 s)."""
        release.wait(3)
        return "late"

    return FunctionTool(stuck)


@pytest.mark.anyio
async def test_a_hanging_sync_tool_times_out() -> None:
    release = threading.Event()
    llm = ScriptedProvider([tool_calls(call("stuck", {})), reply("done")])
    rt = Runtime(
        llm, InMemoryStore(), tools=[blocking_tool(release)], config=RuntimeConfig(tool_timeout=0.1)
    )
    started = time.monotonic()
    try:
        result = await rt.run(NS, "go")
    finally:
        release.set()
    elapsed = time.monotonic() - started
    (res,) = result.turns[0].tool_results
    assert res.is_error and "timed out" in res.content, res
    assert elapsed < 1.5


@pytest.mark.anyio
async def test_a_cancelled_run_does_not_wait_for_a_sync_tool() -> None:
    release = threading.Event()
    store = InMemoryStore()
    llm = ScriptedProvider([tool_calls(call("stuck", {})), reply("done")])
    rt = Runtime(
        llm, store, tools=[blocking_tool(release)], config=RuntimeConfig(tool_timeout=None)
    )
    started = time.monotonic()
    try:
        with anyio.move_on_after(0.1):
            await rt.run(NS, "go")
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 1.5
    assert unanswered(await history(store)) == []


# -- 3. a tool's own TimeoutError is reported as the runtime's timeout ---------------------


@pytest.mark.anyio
async def test_a_tools_own_timeout_error_is_not_reported_as_the_tool_timeout() -> None:
    @tool
    async def query() -> str:
        """A database call whose driver raises TimeoutError."""
        raise TimeoutError("database did not answer within 5s")

    llm = ScriptedProvider([tool_calls(call("query", {})), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[query])
    (res,) = (await rt.run(NS, "go")).turns[0].tool_results
    assert res.is_error
    assert "database did not answer" in res.content, res.content


# -- 4. tool definitions are not counted against the input budget --------------------------


@pytest.mark.anyio
async def test_tool_definitions_count_against_the_input_budget() -> None:
    big = FunctionTool(echo._func, description="Echo. " + "x" * 2000)  # ~500 tokens of schema
    budget = ContextBudget(max_tokens=1000, reserved_for_output=0)
    store = InMemoryStore()
    await store.append(NS, [Message.user("u" * 400), Message.assistant("a" * 400)] * 4)
    llm = ScriptedProvider([reply("ok")])
    rt = Runtime(llm, store, tools=[big], config=RuntimeConfig(context_budget=budget))
    await rt.run(NS, "hi")
    (request,) = llm.requests
    count = CharEstimator().count_tokens
    messages = sum(rt.window.estimate_message_tokens(m) for m in request.messages)
    tools = count(json.dumps([t.model_dump() for t in request.tools], separators=(",", ":")))
    # Fitting is possible: the first user message, the new one and the tools take ~610.
    assert messages + tools <= budget.available_for_input, (messages, tools)


# -- 5. a stream that stops without StreamDone is saved as a complete answer ---------------


class CutStream:
    """A streaming provider whose connection drops mid-answer without an error."""

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise AssertionError("the runtime streams")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        yield TextDelta("The answer is")


@pytest.mark.anyio
async def test_a_stream_cut_before_stream_done_is_a_provider_error() -> None:
    store = InMemoryStore()
    rt = Runtime(CutStream(), store)
    with pytest.raises(ProviderError):
        async with rt.run_streaming(NS, "question") as events:
            async for _ in events:
                pass
    assert [m.role.value for m in await history(store)] == ["user"]


# -- 6. the offline TestModel reuses tool-call ids across turns -----------------------------


@pytest.mark.anyio
async def test_test_model_tool_call_ids_are_unique_within_a_session() -> None:
    store = InMemoryStore()
    rt = Runtime(TestModel(), store, tools=[echo])
    await rt.run(NS, "one")
    await rt.run(NS, "two")
    ids = [c.id for m in await history(store) for c in m.tool_calls]
    assert len(ids) == 2
    assert len(set(ids)) == len(ids), ids


# -- 7. the offline TestModel recurses forever on a recursive tool schema -------------------


class Node(BaseModel):
    name: str
    children: list[Node]


@pytest.mark.anyio
async def test_test_model_handles_a_recursive_argument_schema() -> None:
    @tool
    def walk(tree: Node) -> str:
        """Walk a tree."""
        return tree.name

    rt = Runtime(TestModel(), InMemoryStore(), tools=[walk])
    result = await rt.run(NS, "go")  # RecursionError today, outside the OrraError tree
    assert result.final_message.content


# -- 8. RuntimeMap silently lets a later profile shadow the default agent -------------------


def test_runtime_map_refuses_two_agents_with_the_same_key() -> None:
    profiles = [
        AgentProfile(name="Atlas", personality="first"),
        AgentProfile(name="atlas", personality="second"),
    ]
    with pytest.raises(ConfigurationError):
        RuntimeMap(profiles)


@pytest.mark.anyio
async def test_a_provider_stream_is_closed_when_the_run_stops_early() -> None:
    """Leaving a stream early must not leave the vendor's response open."""

    closed: list[bool] = []

    class Endless:
        async def complete(self, request: CompletionRequest) -> CompletionResponse:
            raise AssertionError("streaming only")

        async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
            try:
                while True:
                    yield TextDelta("x")
            finally:
                closed.append(True)

    rt = Runtime(Endless(), InMemoryStore())
    seen = 0
    async with rt.run_streaming(Namespace("s"), "go") as events:
        async for _ in events:
            seen += 1
            if seen == 3:
                break
    assert closed == [True]


def test_runtime_config_bounds_name_the_bad_value() -> None:
    assert RuntimeConfig(max_turns=1).max_turns == 1
    with pytest.raises(ConfigurationError, match="max_turns must be at least 1, got 0"):
        RuntimeConfig(max_turns=0)
    with pytest.raises(ConfigurationError, match="tool_timeout must be positive, got 0"):
        RuntimeConfig(tool_timeout=0)


@pytest.mark.anyio
async def test_a_failing_hook_answers_the_call_with_its_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall:
            raise RuntimeError("approval service down")

    @tool
    def lookup() -> str:
        return "never"

    llm = ScriptedProvider([tool_calls(call("lookup")), reply("sorry")])
    rt = Runtime(llm, InMemoryStore(), tools=[lookup], hooks=[Broken()])
    result = await rt.run("u", "go")
    (res,) = result.turns[0].tool_results
    assert res.is_error
    assert res.content == "execution failed: RuntimeError: approval service down"
    assert "hook failed around tool lookup" in [r.getMessage() for r in caplog.records]


@pytest.mark.anyio
async def test_session_hooks_are_told_which_namespace_they_run_for() -> None:
    seen: list[tuple[str, Namespace]] = []

    class Watch(Hook):
        async def after_session_load(self, namespace: Namespace, session: Session) -> None:
            seen.append(("load", namespace))

        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            seen.append(("save", namespace))

    rt = Runtime(ScriptedProvider([reply("hi")]), InMemoryStore(), hooks=[Watch()])
    await rt.run("acme:alice", "hello")
    ns = Namespace("acme", "alice")
    assert seen == [("load", ns), ("save", ns)]


@pytest.mark.anyio
async def test_run_with_model_asks_that_model() -> None:
    models: list[str | None] = []

    def answer(request: CompletionRequest) -> CompletionResponse:
        models.append(request.model)
        return reply("ok")

    rt = Runtime(ScriptedProvider(answer), InMemoryStore())
    result = await rt.run_with_model("u", "hello", "small-model")
    assert models == ["small-model"]
    assert result.final_message.content == "ok"


@pytest.mark.anyio
async def test_the_request_carries_the_configured_sampling_settings() -> None:
    seen: list[CompletionRequest] = []

    def answer(request: CompletionRequest) -> CompletionResponse:
        seen.append(request)
        return reply("ok")

    config = RuntimeConfig(max_tokens=123, temperature=0.25)
    await Runtime(ScriptedProvider(answer), InMemoryStore(), config=config).run("u", "hi")
    assert (seen[0].max_tokens, seen[0].temperature) == (123, 0.25)


@pytest.mark.anyio
async def test_calibration_learns_from_the_whole_request_estimate() -> None:
    # The estimate the provider's figure is compared with counts the system prompt too,
    # and a run without a model learns under "" (the key its next request reads).
    config = RuntimeConfig(system_prompt="You are terse. " * 20)
    rt = Runtime(
        ScriptedProvider([reply("ok", usage=Usage(input_tokens=100))]),
        InMemoryStore(),
        config=config,
    )
    estimate = sum(
        rt.window.estimate_message_tokens(m)
        for m in (Message.system(config.system_prompt or ""), Message.user("hello there"))
    )
    await rt.run("u", "hello there")
    assert rt.window.scale("") == pytest.approx(100 / estimate)


@pytest.mark.anyio
async def test_a_hook_that_renumbers_a_call_still_answers_the_models_call_id() -> None:
    seen: list[str] = []

    class Renumber(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall:
            return call.model_copy(update={"id": "hook-id"})

        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult:
            return result.model_copy(update={"call_id": "other", "content": result.content + "!"})

    @tool
    async def whoami(ctx: ToolContext) -> str:
        seen.append(ctx.call_id)
        return "me"

    llm = ScriptedProvider([tool_calls(call("whoami", id="model-id")), reply("done")])
    rt = Runtime(llm, InMemoryStore(), tools=[whoami], hooks=[Renumber()])
    result = await rt.run("u", "go")
    assert seen == ["model-id"]  # the tool is told the call id the model knows
    (res,) = result.turns[0].tool_results
    assert (res.call_id, res.content) == ("model-id", "me!")


@pytest.mark.anyio
async def test_a_tool_that_raises_is_logged_and_answered_with_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @tool
    def lookup() -> str:
        raise ValueError("no such key")

    llm = ScriptedProvider([tool_calls(call("lookup")), reply("sorry")])
    result = await Runtime(llm, InMemoryStore(), tools=[lookup]).run("u", "go")
    (res,) = result.turns[0].tool_results
    assert res.is_error
    assert res.content == "execution failed: ValueError: no such key"
    assert "tool lookup raised" in [r.getMessage() for r in caplog.records]


class CountingStore(InMemoryStore):
    """Counts full saves, and the metadata each append carries."""

    def __init__(self) -> None:
        super().__init__()
        self.saves = 0
        self.append_metadata: list[Mapping[str, Any] | None] = []

    async def save(self, session: Session) -> None:
        self.saves += 1
        await super().save(session)

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        self.append_metadata.append(metadata)
        await super().append(namespace, messages, metadata=metadata)


@pytest.mark.anyio
async def test_a_run_on_a_long_session_appends_its_steps_and_never_rewrites_it() -> None:
    store = CountingStore()
    await store.save(
        Session(namespace=Namespace("u"), messages=[Message.user("old")], metadata={"a": 1})
    )
    store.saves = 0
    rt = Runtime(ScriptedProvider([reply("one"), reply("two")]), store)
    await rt.run("u", "first")
    await rt.run("u", "second")
    assert store.saves == 0
    # Unchanged metadata is not sent again with each step.
    assert store.append_metadata == [None] * 4


@pytest.mark.anyio
async def test_session_state_is_saved_with_each_step_and_survives_a_failed_call() -> None:
    @tool
    def remember(key: str) -> str:
        current_run().set_state(key, True)
        return "noted"

    script = [
        tool_calls(call("remember", {"key": "a"})),
        tool_calls(call("remember", {"key": "b"})),
        ProviderUnavailableError("down"),
    ]
    store = InMemoryStore()
    rt = Runtime(ScriptedProvider(script), store, tools=[remember])
    with pytest.raises(ProviderError):
        await rt.run("u", "go")
    stored = await store.load("u")
    assert stored is not None
    assert stored.metadata["state"] == {"a": True, "b": True}


@pytest.mark.anyio
async def test_a_runtime_uses_the_registry_and_window_it_is_given() -> None:
    registry = ToolRegistry()
    window = ContextWindow(CharEstimator())
    rt = Runtime(
        ScriptedProvider([tool_calls(call("late")), reply("ok")]),
        InMemoryStore(),
        tools=registry,
        context=window,
    )

    @tool
    def late() -> str:
        return "registered after the runtime was built"

    registry.register(late)  # a shared registry: tools added later are seen
    result = await rt.run("u", "go")
    assert result.turns[0].tool_results[0].content == "registered after the runtime was built"
    assert rt.window is window


@pytest.mark.anyio
async def test_a_message_given_to_run_is_stored_as_it_is() -> None:
    store = InMemoryStore()
    message = Message.user("hi")
    await Runtime(ScriptedProvider([reply("ok")]), store).run("u", message)
    stored = await store.load("u")
    assert stored is not None
    assert stored.messages[0] == message


# -- async tools' timeouts share one timer per loop ------------------------------------


@pytest.mark.anyio
async def test_async_tool_timeouts_of_different_lengths_on_one_loop_each_fire_on_time() -> None:
    """One timer serves every async tool's timeout on a loop: set for the earliest
    deadline, it must still fire a shorter timeout that starts after a longer one,
    and a call that ended in time must leave a later call's timeout working."""

    @tool
    async def hang() -> str:
        """Hangs."""
        await anyio.sleep_forever()
        return ""

    @tool
    async def quick() -> str:
        """Answers at once."""
        return "done"

    def agent(timeout: float, name: str) -> Runtime:
        script = [tool_calls(call(name, id="c")), reply("over")]
        config = RuntimeConfig(tool_timeout=timeout)
        return Runtime(
            ScriptedProvider(script), InMemoryStore(), tools=[hang, quick], config=config
        )

    # A quick call sets the loop's timer for its own deadline, 0.4 s out, then ends.
    assert (await agent(0.4, "quick").run(NS, "go")).turns[0].tool_results[0].content == "done"
    outcomes: dict[str, tuple[str, float]] = {}

    async def timed(name: str, limit: float) -> None:
        started = time.monotonic()
        result = (await agent(limit, "hang").run(NS, "go")).turns[0].tool_results[0]
        outcomes[name] = (result.content, time.monotonic() - started)

    async with anyio.create_task_group() as tg:
        tg.start_soon(timed, "long", 0.5)  # due after the timer already set
        await anyio.sleep(0.01)
        tg.start_soon(timed, "short", 0.05)  # due before it: the timer moves earlier
    assert "timed out after 0.05s" in outcomes["short"][0]
    assert "timed out after 0.5s" in outcomes["long"][0]
    assert outcomes["short"][1] < 0.3  # not held to the earlier timer's 0.4 s
    assert 0.45 < outcomes["long"][1] < 3


@pytest.mark.anyio
async def test_cancelling_a_run_inside_a_timed_async_tool_records_it_interrupted() -> None:
    """An outer cancellation goes through the tool's timeout scope, is not taken for a
    timeout, and the call is answered as interrupted."""
    started = anyio.Event()

    @tool
    async def hang() -> str:
        """Hangs."""
        started.set()
        await anyio.sleep_forever()
        return ""

    store = InMemoryStore()
    script = [tool_calls(call("hang", id="c")), reply("never")]
    rt = Runtime(ScriptedProvider(script), store, tools=[hang], config=RuntimeConfig())
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run, NS, "go")
        await started.wait()
        tg.cancel_scope.cancel()
    stored = await history(store)
    assert stored[-1].tool_results[0].content == INTERRUPTED
    assert unanswered(stored) == []
