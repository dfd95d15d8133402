"""Hooks and tools know their run: ``current_run()`` and per-session state (orra bug 11)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from orra_di import (
    AgentProfile,
    Hook,
    OrraError,
    RunContext,
    Runtime,
    RuntimeMap,
    build_runtime,
    current_run,
    tool,
)
from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse, Usage
from orra_di.run_context import STATE_KEY
from orra_di.runtime import RuntimeConfig
from orra_di.session import Session
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


class Recorder(Hook):
    """Records the run it sees at every point."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, RunContext]] = []
        self.usage_after_call: list[int] = []

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self.seen.append(("after_session_load", current_run()))

    async def before_provider_call(self, request: CompletionRequest) -> None:
        self.seen.append(("before_provider_call", current_run()))

    async def after_provider_call(self, response: CompletionResponse) -> None:
        self.seen.append(("after_provider_call", current_run()))
        self.usage_after_call.append(current_run().usage.output_tokens)

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.seen.append(("before_tool_call", current_run()))
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        self.seen.append(("after_tool_call", current_run()))
        return None

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        self.seen.append(("before_session_save", current_run()))


@tool
def echo(text: str) -> str:
    """Echo the text, naming the run's agent."""
    return f"{current_run().agent}:{text}"


async def test_every_hook_point_sees_one_run_with_its_namespace_agent_and_usage() -> None:
    hook = Recorder()
    llm = ScriptedProvider(
        [
            tool_calls(call("echo", {"text": "a"}), usage=Usage(input_tokens=5, output_tokens=3)),
            reply("done", usage=Usage(input_tokens=9, output_tokens=4)),
        ]
    )
    runtime = Runtime(
        llm,
        InMemoryStore(),
        tools=[echo],
        hooks=[hook],
        config=RuntimeConfig(name="Atlas", model="m-1"),
    )
    result = await runtime.run("acme:alice", "hi")

    points = [point for point, _ in hook.seen]
    assert set(points) == {
        "after_session_load",
        "before_provider_call",
        "after_provider_call",
        "before_tool_call",
        "after_tool_call",
        "before_session_save",
    }
    runs = {id(run) for _, run in hook.seen}
    assert len(runs) == 1
    run = hook.seen[0][1]
    assert run.namespace == Namespace("acme", "alice")
    assert run.agent == "Atlas"
    assert run.model == "m-1"
    assert len(run.run_id) == 32
    assert hook.usage_after_call == [3, 7]  # usage so far, not per call
    assert result.turns[0].tool_results[0].content == "Atlas:a"


async def test_each_run_gets_its_own_id_and_no_run_is_current_outside() -> None:
    hook = Recorder()
    runtime = Runtime(ScriptedProvider([reply("a"), reply("b")]), InMemoryStore(), hooks=[hook])
    await runtime.run("acme:alice", "1")
    await runtime.run("acme:alice", "2")
    assert len({run.run_id for _, run in hook.seen}) == 2
    with pytest.raises(OrraError, match="no run is in progress"):
        current_run()


class AutoApproveSwitch(Hook):
    """A per-session switch like orra's approval "chaos mode", kept in the session."""

    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = current_run()
        text = str(request.messages[-1].content)
        if text == "auto on":
            run.set_state("auto", True)
        elif text == "auto off":
            run.set_state("auto", None)

    async def after_provider_call(self, response: CompletionResponse) -> None:
        run = current_run()
        run.set_state("calls", run.state("calls", 0) + 1)


async def test_state_is_per_session_persisted_and_never_on_the_hook(tmp_path: Any) -> None:
    url = tmp_path / "s.db"
    hook = AutoApproveSwitch()
    store = SQLiteStore(url)
    runtime = Runtime(ScriptedProvider(lambda request: reply("ok")), store, hooks=[hook])
    await runtime.run("acme:alice", "auto on")
    await runtime.run("acme:alice", "hello")
    await runtime.run("acme:bob", "hello")
    await store.aclose()

    reopened = SQLiteStore(url)  # what another process would read
    alice = await reopened.load("acme:alice")
    bob = await reopened.load("acme:bob")
    await reopened.aclose()
    assert alice is not None
    assert bob is not None
    assert alice.metadata[STATE_KEY] == {"auto": True, "calls": 2}
    assert bob.metadata[STATE_KEY] == {"calls": 1}  # alice's switch did not leak
    assert not vars(hook)  # nothing kept on the shared hook object


async def test_metadata_is_the_session_as_loaded_and_read_only() -> None:
    store = InMemoryStore()
    await store.save(Session(namespace=Namespace("acme", "alice"), metadata={"plan": "pro"}))
    seen: list[RunContext] = []

    class Look(Hook):
        async def before_provider_call(self, request: CompletionRequest) -> None:
            run = current_run()
            run.set_state("x", 1)  # the state changes, the loaded snapshot does not
            seen.append(run)

    await Runtime(ScriptedProvider([reply("a")]), store, hooks=[Look()]).run("acme:alice", "hi")
    assert seen[0].metadata == {"plan": "pro"}
    with pytest.raises(TypeError):
        seen[0].metadata["plan"] = "free"  # type: ignore[index]
    assert "x" not in seen[0].metadata


async def test_parallel_tools_each_see_the_run() -> None:
    seen: list[str] = []

    @tool
    async def slow(n: int) -> str:
        """Sleep a little and report the run's namespace."""
        await anyio.sleep(0.01)
        seen.append(current_run().namespace.key)
        return str(n)

    llm = ScriptedProvider(
        [tool_calls(call("slow", {"n": 1}), call("slow", {"n": 2})), reply("done")]
    )
    await Runtime(llm, InMemoryStore(), tools=[slow]).run("acme:alice", "go")
    assert seen == ["acme:alice", "acme:alice"]


async def test_agents_from_a_runtime_map_name_the_agent_as_written() -> None:
    llm = ScriptedProvider(lambda request: reply("ok"))
    store = InMemoryStore()
    hook = Recorder()
    agents = RuntimeMap(
        [AgentProfile(name="CodeBot", personality="helpful")],
        build=lambda profile: build_runtime(
            profile, llm=llm, store=store, config=RuntimeConfig(), hooks=[hook]
        ),
    )
    await agents["codebot"].run("acme:alice", "hi")
    assert hook.seen[0][1].agent == "CodeBot"


def test_a_non_mapping_state_section_is_a_clear_error() -> None:
    session = Session(namespace=Namespace("acme"), metadata={STATE_KEY: "oops"})
    run = RunContext(namespace=session.namespace, run_id="r", session=session)
    with pytest.raises(OrraError, match="reserved for per-session hook state"):
        run.set_state("k", 1)
    assert "secret" not in repr(run)
