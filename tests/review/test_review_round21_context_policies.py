"""Round 21 review: what context trimming keeps, long tool output, and policies down
the namespace tree, from docs/concepts/context.md, tools.md, policies.md and agents.md.

Trimming always keeps the system prompt, the session's first user message, the latest
user message and the newest exchange; a tool call goes with its results; the stored
session keeps everything. A tool result longer than its share of the budget is cut.
A namespace gets its own policy or its nearest ancestor's (no merging), else the
registry's default; a delegated run, under a child namespace, inherits the caller's.
"""

from __future__ import annotations

from typing import Any

import pytest

from orra_di import (
    AgentProfile,
    CharEstimator,
    ContextBudget,
    ContextWindow,
    InMemoryStore,
    Message,
    Namespace,
    PolicyRegistry,
    Runtime,
    RuntimeConfig,
    RuntimeMap,
    ToolCall,
    ToolError,
    ToolPolicy,
    ToolResult,
    build_runtime,
    delegate_to_agent_tool,
    tool,
)
from orra_di.provider import CompletionRequest
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


def window(max_tokens: int, reserved: int = 0) -> ContextWindow:
    return ContextWindow(
        CharEstimator(), ContextBudget(max_tokens=max_tokens, reserved_for_output=reserved)
    )


def exchange(n: int, size: int = 200) -> list[Message]:
    return [
        Message.assistant("", [ToolCall(id=f"c{n}", name="ls", arguments={})]),
        Message.tool_result([ToolResult(call_id=f"c{n}", content="x" * size)]),
    ]


def pairs_whole(messages: list[Message]) -> bool:
    calls = {c.id for m in messages for c in m.tool_calls}
    results = {r.call_id for m in messages for r in m.tool_results}
    return calls == results


# -- trimming ----------------------------------------------------------------------------------


def test_a_call_answered_over_two_result_messages_is_kept_or_dropped_whole() -> None:
    history = [Message.system("sys"), Message.user("task")]
    history.append(
        Message.assistant(
            "",
            [ToolCall(id="a", name="ls", arguments={}), ToolCall(id="b", name="ls", arguments={})],
        )
    )
    history.append(Message.tool_result([ToolResult(call_id="a", content="x" * 400)]))
    history.append(Message.tool_result([ToolResult(call_id="b", content="y" * 400)]))
    for n in range(3):
        history += exchange(n, 40)
    history.append(Message.user("question"))
    w = window(200)
    kept = w.truncate_to_fit(history)
    assert w.estimate_total_tokens(kept) <= 200
    assert pairs_whole(kept)
    assert not {"a", "b"} & {c.id for m in kept for c in m.tool_calls}


def test_kept_exchanges_are_the_newest_contiguous_ones() -> None:
    """An old small exchange behind a big one that did not fit is not kept: the history
    the model sees has no gap in its recent part."""
    history = [Message.user("task")]
    history += exchange(0, 8)  # small, oldest
    history += exchange(1, 2_000)  # too big
    history += exchange(2, 8)
    history.append(Message.user("question"))
    kept = window(120).truncate_to_fit(history)
    ids = [c.id for m in kept for c in m.tool_calls]
    assert ids == ["c2"]
    assert kept[0].content == "task" and kept[-1].content == "question"


def test_when_the_pinned_part_alone_is_over_budget_it_is_returned_in_order() -> None:
    history = [Message.system("s" * 400), Message.user("t" * 400)]
    history += exchange(0, 40)
    history.append(Message.user("q" * 400))
    history += exchange(1, 40)
    kept = window(50).truncate_to_fit(history)
    assert kept == [history[0], history[1], history[4], history[5], history[6]]


def test_several_leading_system_messages_are_all_kept() -> None:
    history = [Message.system("one"), Message.system("two"), Message.user("task")]
    for n in range(10):
        history += exchange(n, 120)
    history.append(Message.user("question"))
    kept = window(150).truncate_to_fit(history)
    assert kept[:3] == history[:3] and kept[-1] == history[-1]
    assert pairs_whole(kept)


def test_the_first_task_is_the_first_plain_user_message_not_a_tool_result() -> None:
    """A session whose store trim left tool results first: the first plain user
    message after them is the task that is kept."""
    history = [Message.user("the task")]
    for n in range(8):
        history += exchange(n, 120)
        history.append(Message.user(f"q{n}"))
        history.append(Message.assistant(f"a{n}"))
    history.append(Message.user("last question"))
    kept = window(200).truncate_to_fit(history)
    assert kept[0].content == "the task"
    assert kept[-1].content == "last question"
    assert pairs_whole(kept)
    assert len(kept) < len(history)


async def test_the_runtime_request_keeps_prompt_task_question_and_newest_exchange() -> None:
    """Mid-run, the newest exchange is the tool round just answered: it is in the
    next request whole, with the system prompt, the task and the question."""
    store = InMemoryStore()
    ns = Namespace("round21", "trim")
    old = [Message.user("the task"), Message.assistant("ok")]
    for n in range(20):
        old += [Message.user(f"q{n} " + "p" * 200), Message.assistant(f"a{n} " + "p" * 200)]
    await store.append(ns, old)

    @tool
    def look() -> str:
        """Look around."""
        return "seen " + "z" * 100

    llm = ScriptedProvider([tool_calls(call("look", {}, id="L")), reply("answered")])
    config = RuntimeConfig(
        system_prompt="Be brief.",
        context_budget=ContextBudget(max_tokens=700, reserved_for_output=100),
    )
    await Runtime(llm, store, tools=[look], config=config).run(ns, "the question")
    second = llm.requests[1].messages
    assert second[0].role == "system" and second[0].content == "Be brief."
    assert second[1].content == "the task"
    assert [m.content for m in second[-3:-2]] == ["the question"]
    assert second[-2].tool_calls[0].id == "L"
    assert second[-1].tool_results[0].call_id == "L"
    assert len(second) < len(old) + 4
    session = await store.load(ns)
    assert session is not None and len(session.messages) == len(old) + 4  # all kept


async def test_a_learned_correction_trims_more_for_that_model_only() -> None:
    """After the provider billed 4x the estimate for model m, m's requests are trimmed
    to a quarter; another model's are not."""
    store = InMemoryStore()
    ns = Namespace("round21", "scale")
    history: list[Message] = [Message.user("task")]
    for n in range(10):
        history += [Message.user(f"q{n} " + "w" * 100), Message.assistant("a" * 100)]
    await store.append(ns, history)
    config = RuntimeConfig(context_budget=ContextBudget(max_tokens=1_000, reserved_for_output=0))
    w = ContextWindow(CharEstimator(), config.context_budget)
    w.calibrate("m", 100, 400)
    llm = ScriptedProvider(lambda request: reply("ok"))
    runtime = Runtime(llm, store, config=config, context=w)
    await runtime.run(ns, "for m", model="m")
    await runtime.run(ns, "for n", model="n")
    for_m, for_n = llm.requests[0].messages, llm.requests[1].messages
    assert w.estimate_total_tokens(for_m) * 4 <= 1_000 < w.estimate_total_tokens(for_m) * 4 + 400
    assert len(for_n) == len(history) + 3  # about 600 tokens: n's requests fit whole


# -- long tool output --------------------------------------------------------------------------


def budget_config() -> RuntimeConfig:
    return RuntimeConfig(
        context_budget=ContextBudget(max_tokens=1_000, reserved_for_output=0, tool_result_share=0.1)
    )


@tool
def big_error() -> str:
    """Fail with a very long message."""
    raise ToolError("bad " * 5_000)


@tool
def big_crash() -> str:
    """Crash with a very long message."""
    raise RuntimeError("boom " * 5_000)


@pytest.mark.parametrize("name", ["big_error", "big_crash"])
async def test_a_long_error_result_is_cut_to_its_share_too(name: str) -> None:
    """An error is a tool result like any other: a huge one must not fill the window
    (the newest exchange is always kept, so it would be sent on every later turn)."""
    llm = ScriptedProvider([tool_calls(call(name, {}, id="e")), reply("sorry")])
    runtime = Runtime(llm, InMemoryStore(), tools=[big_error, big_crash], config=budget_config())
    result = await runtime.run("round21:errors", "go")
    (error,) = result.turns[0].tool_results
    assert error.is_error
    assert CharEstimator().count_tokens(error.content) <= 100 + 20
    assert "[truncated — original was" in error.content


async def test_a_long_result_is_cut_to_the_share_of_the_budget_in_effect() -> None:
    @tool
    def dump() -> str:
        """Return a lot."""
        return "line of text\n" * 1_000

    llm = ScriptedProvider([tool_calls(call("dump", {}, id="d")), reply("ok")])
    result = await Runtime(llm, InMemoryStore(), tools=[dump], config=budget_config()).run(
        "round21:dump", "go"
    )
    (cut,) = result.turns[0].tool_results
    assert not cut.is_error
    body, marker = cut.content.split("\n\n[truncated — ")
    assert marker == "original was 3250 tokens, limit is 100]"
    assert body.endswith("line of text") and set(body.split("\n")) == {"line of text"}


# -- policies ----------------------------------------------------------------------------------


@tool
def read() -> str:
    """Read."""
    return "read"


@tool
def write() -> str:
    """Write."""
    return "written"


async def offered_and_results(
    policies: PolicyRegistry, ns: str, names: list[str]
) -> tuple[list[str], list[tuple[str, bool]]]:
    llm = ScriptedProvider([tool_calls(*(call(n, {}) for n in names)), reply("ok")])
    runtime = Runtime(llm, InMemoryStore(), tools=[read, write], policies=policies)
    result = await runtime.run(ns, "go")
    offered = [d.name for d in llm.requests[0].tools]
    return offered, [(r.content, r.is_error) for r in result.turns[0].tool_results]


async def test_a_deep_namespace_gets_the_nearest_ancestors_policy_at_run_time() -> None:
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_list(["write"]))
    offered, results = await offered_and_results(
        policies, "acme:alice:support:ticket-9", ["write", "read"]
    )
    assert offered == ["read"]
    assert results == [("tool 'write' is not allowed in this session", True), ("read", False)]


async def test_a_more_specific_allow_all_overrides_an_ancestors_deny_without_merging() -> None:
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_all())
    policies.set_policy("acme:admins", ToolPolicy.allow_all())
    offered, results = await offered_and_results(policies, "acme:admins:root", ["write"])
    assert offered == ["read", "write"]
    assert results == [("written", False)]
    offered, results = await offered_and_results(policies, "acme:users:bob", ["read"])
    assert offered == []
    assert results == [("tool 'read' is not allowed in this session", True)]


def test_removing_a_policy_falls_back_to_the_next_ancestor_then_the_default() -> None:
    policies = PolicyRegistry(default=ToolPolicy.deny_all())
    policies.set_policy("acme", ToolPolicy.allow_list(["read"]))
    policies.set_policy("acme:alice", ToolPolicy.allow_all())
    assert policies.is_allowed("acme:alice:x", "write")
    assert policies.remove_policy(Namespace("acme", "alice")) is True
    assert not policies.is_allowed("acme:alice:x", "write")
    assert policies.is_allowed("acme:alice:x", "read")
    assert policies.remove_policy("acme") is True
    assert not policies.is_allowed("acme:alice:x", "read")  # the registry's default
    assert policies.remove_policy("acme") is False


def test_policy_names_are_exact_and_case_sensitive_and_never_segment_prefixes() -> None:
    policies = PolicyRegistry()
    policies.set_policy("acme", ToolPolicy.deny_list(["Write"]))
    assert policies.is_allowed("acme:alice", "write")
    assert not policies.is_allowed("acme:alice", "Write")
    assert policies.is_allowed("acmeother:alice", "Write")  # not below acme


def test_a_policy_set_by_key_and_by_namespace_is_the_same_entry() -> None:
    policies = PolicyRegistry()
    policies.set_policy("acme:viewers", ToolPolicy.deny_all())
    policies.set_policy(Namespace("acme", "viewers"), ToolPolicy.allow_list(["read"]))
    assert len(policies) == 1
    assert policies.is_allowed(Namespace.parse("acme:viewers:eve"), "read")


async def test_a_delegated_agent_inherits_the_callers_exact_namespace_policy() -> None:
    """The policy is set on the caller's own namespace (not an ancestor of it): the
    delegate runs below it, so the same policy applies to the sub-agent's calls."""
    store = InMemoryStore()
    policies = PolicyRegistry()
    policies.set_policy("acme:alice", ToolPolicy.deny_list(["write"]))
    seen: list[CompletionRequest] = []

    def script(request: CompletionRequest) -> Any:
        seen.append(request)
        last = request.messages[-1]
        if last.content == "Delegate":
            return tool_calls(call("delegate_to_agent", {"agent": "Worker", "task": "write it"}))
        if last.content == "write it":
            return tool_calls(call("write", {}, id="w"))
        if last.tool_results and last.tool_results[0].call_id == "w":
            return reply(f"worker got: {last.tool_results[0].content}")
        return reply("boss done")

    llm = ScriptedProvider(script)
    runtimes = RuntimeMap([AgentProfile(name="Boss"), AgentProfile(name="Worker")])

    def build(profile: AgentProfile) -> Runtime:
        tools = [delegate_to_agent_tool(runtimes, profile.name), read, write]
        runtime = build_runtime(profile, llm=llm, store=store, config=RuntimeConfig(), tools=tools)
        runtime.policies = policies
        return runtime

    runtimes.bind(build)
    result = await runtimes["boss"].run("acme:alice", "Delegate")
    handed = result.turns[0].tool_results[0].content
    assert "worker got: tool 'write' is not allowed in this session" in handed
    worker_request = next(r for r in seen if r.messages[-1].content == "write it")
    assert "write" not in [d.name for d in worker_request.tools]
