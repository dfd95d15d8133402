"""Round 11 review: the core a library user touches first, as docs/concepts/*.md
describe it: trimming, policies at execution, hooks, step-by-step persistence,
per-tool timeouts, ``ToolContext`` and delegation between agents.
"""

from __future__ import annotations

import random
import time
from typing import Annotated, Any

import anyio
import pytest
from pydantic import Field

from orra_di import (
    AgentProfile,
    CharEstimator,
    ContextBudget,
    ContextWindow,
    Hook,
    InMemoryStore,
    Message,
    Namespace,
    PolicyRegistry,
    Runtime,
    RuntimeConfig,
    RuntimeMap,
    ToolCall,
    ToolCallDenied,
    ToolContext,
    ToolDefinition,
    ToolPolicy,
    ToolResult,
    build_runtime,
    current_run,
    delegate_to_agent_tool,
    tool,
)
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.runtime import INTERRUPTED, ToolCallStarted
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


@tool
async def slow(ctx: ToolContext) -> str:
    """Take five seconds."""
    await anyio.sleep(5)
    return "slow done"


@tool
def slow_sync() -> str:
    """Block for a second."""
    time.sleep(1)
    return "sync done"


@tool
async def whoami(ctx: ToolContext, note: Annotated[str, Field(description="a note")] = "") -> str:
    """Say whose session this is."""
    return f"{ctx.namespace.key}|{ctx.call_id}|{note}"


@tool
def secret() -> str:
    """Must never run where it is denied."""
    raise AssertionError("secret ran")


class Stalls:
    """A tool of one's own (not @tool) that never finishes in time."""

    definition = ToolDefinition(
        name="stalls", description="Stall.", input_schema={"type": "object", "properties": {}}
    )

    async def execute(self, arguments: object, context: ToolContext) -> str:
        await anyio.sleep(5)
        return "late"


# -- context ----------------------------------------------------------------------------


def _history(rng: random.Random) -> list[Message]:
    history: list[Message] = []
    if rng.random() < 0.8:
        history.append(Message.system("sys " * rng.randint(1, 10)))
    next_id = 0
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.3:
            history.append(Message.user("u" * rng.randint(1, 200)))
        elif kind < 0.6:
            calls = [
                ToolCall(id=f"c{next_id + i}", name="t", arguments={"a": "x" * rng.randint(0, 40)})
                for i in range(rng.randint(1, 3))
            ]
            next_id += len(calls)
            history.append(Message.assistant("", calls))
            results = [ToolResult(call_id=c.id, content="r" * rng.randint(1, 300)) for c in calls]
            history.append(Message.tool_result(results))
        else:
            history.append(Message.assistant("a" * rng.randint(1, 200)))
    return history


def test_trimming_keeps_system_task_question_newest_and_whole_tool_exchanges() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        history = _history(rng)
        budget = ContextBudget(max_tokens=rng.randint(20, 400), reserved_for_output=10)
        kept = ContextWindow(CharEstimator(), budget).truncate_to_fit(history)
        where = [next(i for i, m in enumerate(history) if m is k) for k in kept]
        assert where == sorted(where)  # chronological, nothing invented
        leading = 0
        while leading < len(history) and history[leading].role == "system":
            assert any(k is history[leading] for k in kept)
            leading += 1
        questions = [m for m in history if m.role == "user" and not m.tool_results]
        if questions:
            assert any(k is questions[0] for k in kept)  # the task
            assert any(k is questions[-1] for k in kept)  # the question being answered
        assert any(k is history[-1] for k in kept)  # the newest exchange
        called: set[str] = set()
        for message in kept:
            for result in message.tool_results:
                assert result.call_id in called  # never a result without its call before it
            called.update(c.id for c in message.tool_calls)
        answered = {r.call_id for m in kept for r in m.tool_results}
        assert answered == called  # never a call without its results


async def test_the_runtime_trims_the_request_but_stores_every_message() -> None:
    store = InMemoryStore()
    llm = ScriptedProvider(lambda request: reply("ok " + "z" * 200))
    config = RuntimeConfig(
        system_prompt="You are terse.",
        context_budget=ContextBudget(max_tokens=400, reserved_for_output=100),
    )
    runtime = Runtime(llm, store, config=config)
    for n in range(8):
        await runtime.run("acme:alice", f"question {n} " + "q" * 200)
    last = llm.requests[-1].messages
    assert last[0].content == "You are terse."
    assert last[1].content.startswith("question 0 ")  # the task
    assert last[-1].content.startswith("question 7 ")  # the question
    assert len(last) < 17
    session = await store.load("acme:alice")
    assert session is not None and len(session.messages) == 16


# -- policies -------------------------------------------------------------------------------


class Asked(Hook):
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.asked.append(call.name)
        return None


async def test_policy_is_inherited_and_checked_before_and_after_the_hooks() -> None:
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_list(["secret"]))
    policies.set_policy("acme:viewers", ToolPolicy.allow_list(["whoami"]))

    class Rename(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            if call.name == "whoami" and call.arguments == {"note": "rename"}:
                return call.model_copy(update={"name": "secret", "id": "hook-made"})
            return None

    asked = Asked()
    script = [
        tool_calls(
            call("secret", {}, id="a"),  # refused before any hook is asked
            call("whoami", {"note": "rename"}, id="b"),  # renamed by a hook: refused after
            call("whoami", {"note": "fine"}, id="c"),
        ),
        reply("done"),
    ]
    llm = ScriptedProvider(script)
    runtime = Runtime(
        llm, InMemoryStore(), tools=[secret, whoami], policies=policies, hooks=[asked, Rename()]
    )
    result = await runtime.run("acme:bob:deep:down", "go")
    assert [d.name for d in llm.requests[0].tools] == ["whoami"]  # secret not offered
    refused, renamed, fine = result.turns[0].tool_results
    assert (refused.call_id, refused.is_error) == ("a", True)
    assert refused.content == "tool 'secret' is not allowed in this session"
    assert (renamed.call_id, renamed.is_error) == ("b", True)  # the model's own id
    assert renamed.content == "tool 'secret' is not allowed in this session"
    assert fine.content == "acme:bob:deep:down|c|fine" and not fine.is_error
    assert asked.asked == ["whoami", "whoami"]  # never asked about the refused call

    viewer = ScriptedProvider([tool_calls(call("secret", {}, id="v")), reply("no")])
    runtime = Runtime(viewer, InMemoryStore(), tools=[secret, whoami], policies=policies)
    result = await runtime.run("acme:viewers:eve", "go")
    assert [d.name for d in viewer.requests[0].tools] == ["whoami"]
    assert result.turns[0].tool_results[0].is_error


# -- hooks ------------------------------------------------------------------------------------


async def test_hooks_replace_a_call_deny_one_and_replace_a_result_in_order() -> None:
    class Replace(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            if call.name == "whoami":
                return call.model_copy(update={"arguments": {"note": "replaced"}})
            return None

        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
            return result.model_copy(update={"content": result.content + "|one"})

    class Deny(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            if call.name == "stalls":
                raise ToolCallDenied("not today")
            assert call.arguments == {"note": "replaced"}  # sees the first hook's change
            return None

        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
            return result.model_copy(update={"content": result.content + "|two"})

    class Boom(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            if call.arguments == {"note": "replaced"} and call.id == "x":
                raise RuntimeError("hook bug")
            return None

    script = [
        tool_calls(
            call("whoami", {"note": "model"}, id="w"),
            call("stalls", {}, id="s"),
            call("whoami", {}, id="x"),
        ),
        reply("done"),
    ]
    store = InMemoryStore()
    runtime = Runtime(
        ScriptedProvider(script),
        store,
        tools=[whoami, Stalls()],
        hooks=[Replace(), Deny(), Boom()],
    )
    result = await runtime.run("acme:alice", "go")
    replaced, denied, failed = result.turns[0].tool_results
    assert replaced.content == "acme:alice|w|replaced|one|two"
    assert denied.is_error and denied.content == "not today|one|two"
    assert failed.is_error and failed.content == "execution failed: RuntimeError: hook bug"
    assert result.final_message.content == "done"  # the run went on


async def test_run_state_is_per_session_and_persisted_with_the_next_step() -> None:
    class Counter(Hook):
        async def after_session_load(self, namespace: Namespace, session: Any) -> None:
            run = current_run()
            run.set_state("runs", run.state("runs", 0) + 1)

    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider(lambda r: reply("ok")), store, hooks=[Counter()])
    await runtime.run("acme:alice", "one")
    await runtime.run("acme:alice", "two")
    await runtime.run("acme:bob", "one")
    alice, bob = await store.load("acme:alice"), await store.load("acme:bob")
    assert alice is not None and alice.metadata["state"] == {"runs": 2}
    assert bob is not None and bob.metadata["state"] == {"runs": 1}


# -- persistence --------------------------------------------------------------------------------


async def test_a_provider_failure_after_a_tool_ran_leaves_the_result_saved() -> None:
    def script(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            raise RuntimeError("provider down")
        return tool_calls(call("whoami", {}, id="k"))

    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider(script), store, tools=[whoami])
    with pytest.raises(RuntimeError, match="provider down"):
        await runtime.run("acme:alice", "go")
    session = await store.load("acme:alice")
    assert session is not None
    assert [m.role for m in session.messages] == ["user", "assistant", "user"]
    assert session.messages[2].tool_results[0].content == "acme:alice|k|"


async def test_a_cancelled_run_records_interrupted_results_and_keeps_finished_ones() -> None:
    store = InMemoryStore()
    script = [tool_calls(call("slow", {}, id="a"), call("whoami", {}, id="b")), reply("x")]
    runtime = Runtime(ScriptedProvider(script), store, tools=[slow, whoami])
    with anyio.move_on_after(0.3):
        await runtime.run("acme:alice", "go")
    session = await store.load("acme:alice")
    assert session is not None
    (results,) = [m for m in session.messages if m.tool_results]
    assert [(r.call_id, r.content) for r in results.tool_results] == [
        ("a", INTERRUPTED),
        ("b", "acme:alice|b|"),
    ]


async def test_leaving_a_streaming_run_early_records_interrupted_results() -> None:
    store = InMemoryStore()
    script = [tool_calls(call("slow", {}, id="a")), reply("x")]
    runtime = Runtime(ScriptedProvider(script), store, tools=[slow])
    async with runtime.run_streaming("acme:alice", "go") as events:
        async for event in events:
            if isinstance(event, ToolCallStarted):
                break
    session = await store.load("acme:alice")
    assert session is not None
    assert session.messages[-1].tool_results[0].content == INTERRUPTED

    # The next run continues from a valid history.
    llm = ScriptedProvider(["back"])
    await Runtime(llm, store, tools=[slow]).run("acme:alice", "again")
    sent = llm.requests[0].messages
    assert [m.role for m in sent] == ["user", "assistant", "user", "user"]


async def test_a_crashed_runs_open_calls_are_answered_on_the_next_load() -> None:
    store = InMemoryStore()
    crashed = Message.assistant(
        "", [ToolCall(id="c1", name="lookup", arguments={}), ToolCall(id="c2", name="x")]
    )
    await store.append("acme:carol", [Message.user("look it up"), crashed])
    llm = ScriptedProvider(["where were we?"])
    await Runtime(llm, store).run("acme:carol", "hello again")
    session = await store.load("acme:carol")
    assert session is not None
    answers = session.messages[2].tool_results
    assert [(a.call_id, a.content, a.is_error) for a in answers] == [
        ("c1", INTERRUPTED, True),
        ("c2", INTERRUPTED, True),
    ]
    assert llm.requests[0].messages[2].tool_results == answers


# -- tools ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False])
async def test_per_tool_timeout_fails_only_the_slow_calls(parallel: bool) -> None:
    script = [
        tool_calls(
            call("slow", {}, id="a"),
            call("stalls", {}, id="b"),
            call("slow_sync", {}, id="c"),
            call("whoami", {"note": "n"}, id="d"),
        ),
        reply("ok"),
    ]
    config = RuntimeConfig(tool_timeout=0.2, parallel_tool_execution=parallel)
    runtime = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[slow, Stalls(), slow_sync, whoami],
        config=config,
    )
    started = time.monotonic()
    result = await runtime.run("acme:alice", "go")
    elapsed = time.monotonic() - started
    assert elapsed < (1.0 if parallel else 1.5)
    contents = [(r.call_id, r.content) for r in result.turns[0].tool_results]
    assert contents == [
        ("a", "execution failed: timed out after 0.2s"),
        ("b", "execution failed: timed out after 0.2s"),
        ("c", "execution failed: timed out after 0.2s"),
        ("d", "acme:alice|d|n"),
    ]


async def test_tool_context_is_hidden_from_the_model_and_cannot_be_claimed() -> None:
    schema = whoami.definition.input_schema
    assert list(schema["properties"]) == ["note"]
    script = [
        tool_calls(call("whoami", {"ctx": {"namespace": "evil:corp"}}, id="a")),
        reply("ok"),
    ]
    result = await Runtime(ScriptedProvider(script), InMemoryStore(), tools=[whoami]).run(
        "acme:alice", "go"
    )
    (claimed,) = result.turns[0].tool_results
    assert claimed.is_error and "evil" not in claimed.content.replace("'evil:corp'", "")


# -- delegation ------------------------------------------------------------------------------------


def _agents(store: InMemoryStore, llm: ScriptedProvider, policies: PolicyRegistry) -> RuntimeMap:
    runtimes = RuntimeMap([AgentProfile(name=n) for n in ("Atlas", "CodeBot", "Helper", "Scout")])

    def build(profile: AgentProfile) -> Runtime:
        tools = [delegate_to_agent_tool(runtimes, profile.name, max_depth=2), whoami, secret]
        return build_runtime(
            profile, llm=llm, store=store, config=RuntimeConfig(), tools=tools, policies=policies
        )

    runtimes.bind(build)
    return runtimes


def _agent_of(request: CompletionRequest) -> str:
    return request.messages[0].content.split(",")[0].removeprefix("You are ")


async def test_delegation_runs_in_a_child_namespace_inherits_policy_and_stops_cycles() -> None:
    def script(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"{_agent_of(request)} got: {last.tool_results[0].content}")
        hand_to = {"Atlas": "codebot", "CodeBot": "Atlas"}[_agent_of(request)]
        return tool_calls(
            call("delegate_to_agent", {"agent": hand_to, "task": "t"}),
            call("secret", {}),
            call("whoami", {}),
        )

    store = InMemoryStore()
    policies = PolicyRegistry()
    policies.set_policy("acme:alice", ToolPolicy.deny_list(["secret"]))
    llm = ScriptedProvider(script)
    runtimes = _agents(store, llm, policies)
    result = await runtimes["Atlas"].run("acme:alice", "go")

    delegated, denied, whoami_result = result.turns[0].tool_results
    assert denied.content == "tool 'secret' is not allowed in this session"
    assert whoami_result.content.startswith("acme:alice|")
    assert "delegation cycle: atlas -> codebot -> atlas" in delegated.content
    keys = [ns.key for ns in await store.list("acme:alice")]
    assert keys[0] == "acme:alice" and len(keys) == 2
    assert keys[1].startswith("acme:alice:delegation.atlas.codebot.")
    # CodeBot's run, in the child namespace, was refused 'secret' by the inherited policy.
    child = await store.load(keys[1])
    assert child is not None
    child_results = [r for m in child.messages for r in m.tool_results]
    assert any(r.content == "tool 'secret' is not allowed in this session" for r in child_results)
    assert any(r.content.startswith(keys[1] + "|") for r in child_results)
    assert await store.delete_tree("acme:alice") == 2


async def test_delegation_depth_is_limited() -> None:
    order = {"Atlas": "CodeBot", "CodeBot": "Helper", "Helper": "Scout"}

    def script(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(last.tool_results[0].content)
        return tool_calls(
            call("delegate_to_agent", {"agent": order[_agent_of(request)], "task": "t"})
        )

    store = InMemoryStore()
    runtimes = _agents(store, ScriptedProvider(script), PolicyRegistry())
    result = await runtimes["Atlas"].run("acme:alice", "go")
    assert "delegation depth limit (2) reached" in result.final_message.content
    assert len(await store.list("acme:alice")) == 3  # alice, then two hops
