"""Round 15 review: the hook contract of docs/concepts/hooks.md, checked from outside.

Each test names the sentence of the page it holds to: the order hooks run in, what each
point may change and whether the change is saved, what a failing hook does to the run,
where the policy is checked around the hooks, and what ``current_run()`` offers.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from orra_di import (
    Hook,
    InMemoryStore,
    Message,
    Namespace,
    OrraError,
    Runtime,
    RuntimeConfig,
    Session,
    ToolCall,
    ToolCallDenied,
    ToolResult,
    current_run,
    tool,
)
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.provider import CompletionRequest, CompletionResponse, Usage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ran: list[str] = []


@tool
def echo(text: str) -> str:
    """Repeat the text."""
    ran.append(text)
    return f"echo {text}"


@tool
def wipe() -> str:
    """Delete everything."""
    raise AssertionError("a refused call must never run")


class Failing(Hook):
    """A hook with a bug in ``before_tool_call`` or ``after_tool_call``."""

    def __init__(self, where: str) -> None:
        self.where = where

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if self.where == "before":
            raise RuntimeError("the hook has a bug")
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        if self.where == "after":
            raise RuntimeError("the hook has a bug")
        return None


@pytest.mark.parametrize("where", ["before", "after"])
async def test_a_hook_that_raises_around_a_tool_call_gives_an_error_result_and_is_logged(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    """'A hook that raises anything other than ToolCallDenied around a tool call does not
    stop the run: the call gets an `execution failed: …` error result and the failure is
    logged.'"""
    script = [tool_calls(call("echo", {"text": "hi"})), reply("carried on")]
    runtime = Runtime(
        ScriptedProvider(script), InMemoryStore(), tools=[echo], hooks=[Failing(where)]
    )
    with caplog.at_level(logging.ERROR, logger="orra_di"):
        result = await runtime.run("acme:alice", "go")

    (failed,) = result.turns[0].tool_results
    assert failed.is_error
    assert failed.content.startswith("execution failed: ")
    assert "the hook has a bug" in failed.content
    assert result.final_message.content == "carried on"  # the run went on
    assert any("echo" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


class Tagger(Hook):
    """Adds its name to the call's arguments, so the order shows in what the tool gets."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        text = f"{call.arguments['text']}+{self.name}"
        return call.model_copy(update={"arguments": {"text": text}})


async def test_hooks_run_in_registration_order_each_seeing_the_previous_change() -> None:
    """'Hooks run one after the other in registration order, each seeing the previous
    one's changes.' A replacement call is what the tool runs with."""
    script = [tool_calls(call("echo", {"text": "x"})), reply("ok")]
    hooks = [Tagger("first"), Tagger("second")]
    runtime = Runtime(ScriptedProvider(script), InMemoryStore(), tools=[echo], hooks=hooks)
    result = await runtime.run("acme:order", "go")
    assert result.turns[0].tool_results[0].content == "echo x+first+second"


class Renamer(Hook):
    """A hook that renames every call to ``wipe`` (the tool the policy forbids)."""

    asked: list[str]

    def __init__(self) -> None:
        self.asked = []

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.asked.append(call.name)
        return call.model_copy(update={"name": "wipe"})


async def test_the_policy_is_checked_before_the_hooks_and_again_after_them() -> None:
    """docs/concepts/policies.md: 'The policy is checked before the before_tool_call hooks,
    so an approval hook is never asked about a call that is refused anyway, and again
    after them' (a hook that renames a call to a forbidden tool)."""
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_list(["wipe"]))
    renamer = Renamer()
    script = [tool_calls(call("wipe", {}), call("echo", {"text": "y"})), reply("ok")]
    runtime = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[echo, wipe],
        hooks=[renamer],
        policies=policies,
    )
    result = await runtime.run("acme:bob", "go")

    refused_first, refused_after = result.turns[0].tool_results
    assert renamer.asked == ["echo"]  # never asked about the call refused up front
    for refused in (refused_first, refused_after):
        assert refused.is_error
        assert refused.content == "tool 'wipe' is not allowed in this session"


class SeesRefusals(Hook):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if call.arguments.get("text") == "deny":
            raise ToolCallDenied("not today")
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        self.seen.append((call.name, result.content))
        return None


async def test_after_tool_call_sees_refusals_too() -> None:
    """Hook.after_tool_call's docstring: it sees every call's result, refusals by the
    policy and by ToolCallDenied too."""
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_list(["wipe"]))
    hook = SeesRefusals()
    script = [
        tool_calls(call("wipe", {}), call("echo", {"text": "deny"}), call("echo", {"text": "ok"})),
        reply("done"),
    ]
    runtime = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[echo, wipe],
        hooks=[hook],
        policies=policies,
    )
    await runtime.run("acme:carol", "go")
    assert sorted(hook.seen) == [
        ("echo", "echo ok"),
        ("echo", "not today"),
        ("wipe", "tool 'wipe' is not allowed in this session"),
    ]


class LoadAndSave(Hook):
    def __init__(self) -> None:
        self.loaded_with: list[int] = []

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self.loaded_with.append(len(session.messages))
        session.metadata["loads"] = session.metadata.get("loads", 0) + 1

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        last = session.messages[-1]
        session.messages[-1] = Message.assistant(last.content.upper())


async def test_session_load_and_save_hooks_change_what_is_stored() -> None:
    """after_session_load runs 'before the user message is added' and may change
    session.metadata; before_session_save may change 'this run's messages; what changed
    is saved'."""
    store = InMemoryStore()
    hook = LoadAndSave()
    runtime = Runtime(ScriptedProvider(lambda request: reply("quiet")), store, hooks=[hook])
    await runtime.run("acme:dora", "one")
    await runtime.run("acme:dora", "two")

    assert hook.loaded_with == [0, 2]  # the user message is not there yet
    session = await store.load("acme:dora")
    assert session is not None
    assert session.metadata == {"loads": 2}
    assert [m.content for m in session.messages] == ["one", "QUIET", "two", "QUIET"]


class Observer(Hook):
    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def after_provider_call(self, response: CompletionResponse) -> None:
        run = current_run()
        self.seen.append((run.namespace.key, run.agent, run.model, run.usage.input_tokens))
        with pytest.raises(TypeError):
            run.metadata["plan"] = "free"  # type: ignore[index]


async def test_current_run_describes_the_run_and_its_metadata_is_read_only() -> None:
    """'current_run() returns the RunContext of the run in progress — its namespace,
    agent (the profile's name as written), run_id, model, usage billed so far (the current
    call included in after_provider_call), and metadata, … (read-only).'"""
    store = InMemoryStore()
    await store.append(Namespace("acme", "eve"), [], metadata={"plan": "pro"})
    observer = Observer()
    script = [reply("hi", usage=Usage(input_tokens=7, output_tokens=1))]
    runtime = Runtime(
        ScriptedProvider(script),
        store,
        hooks=[observer],
        config=RuntimeConfig(name="AtLas", model="m-1"),
    )
    await runtime.run("acme:eve", "hello")
    assert observer.seen == [("acme:eve", "AtLas", "m-1", 7)]


def test_current_run_outside_a_run_says_where_it_works() -> None:
    with pytest.raises(OrraError, match=r"current_run\(\) works inside hooks and tools"):
        current_run()


class Stateful(Hook):
    def __init__(self, value: Any) -> None:
        self.value = value
        self.error: Exception | None = None

    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = current_run()
        try:
            run.set_state("flag", self.value)
        except OrraError as exc:
            self.error = exc


async def test_set_state_none_removes_the_key_and_a_non_json_value_is_refused_by_name() -> None:
    """'set_state(key, None) removes the key.' A value the store cannot keep is refused
    where it is set, naming the key."""
    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider(lambda r: reply("ok")), store, hooks=[Stateful(True)])
    await runtime.run("acme:finn", "on")
    session = await store.load("acme:finn")
    assert session is not None and session.metadata["state"] == {"flag": True}

    runtime = Runtime(ScriptedProvider(lambda r: reply("ok")), store, hooks=[Stateful(None)])
    await runtime.run("acme:finn", "off")
    session = await store.load("acme:finn")
    assert session is not None and session.metadata["state"] == {}

    bad = Stateful({1, 2})
    runtime = Runtime(ScriptedProvider(lambda r: reply("ok")), store, hooks=[bad])
    await runtime.run("acme:finn", "a set")
    assert bad.error is not None and "'flag' must be JSON-serialisable" in str(bad.error)


class CountsThenFails(Hook):
    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = current_run()
        run.set_state("calls", run.state("calls", 0) + 1)


async def test_state_set_in_a_failed_step_is_saved_with_the_next_step_that_succeeds() -> None:
    """'State set in a step that then fails (the provider raises) is saved with the next
    step that succeeds, or not at all.'"""
    store = InMemoryStore()
    runtime = Runtime(
        ScriptedProvider([RuntimeError("provider down"), reply("back")]),
        store,
        hooks=[CountsThenFails()],
    )
    with pytest.raises(Exception, match="provider down"):
        await runtime.run("acme:gus", "first")
    session = await store.load("acme:gus")
    assert session is not None and "state" not in session.metadata  # not saved on its own

    await runtime.run("acme:gus", "second")
    session = await store.load("acme:gus")
    assert session is not None
    assert session.metadata["state"] == {"calls": 1}  # the failed step's count is gone
