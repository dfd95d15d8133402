"""Round 15 review: delegation and sub-agents as docs/concepts/agents.md describes them.

The delegated run's namespace, cycles and the depth limit as error results the calling
model reads, the caller's policy inherited, erasure reaching the delegations, and the
container switches (``ORRA_RUNTIME__ENABLE_DELEGATION``, ``__ENABLE_SPAWN``,
``__MAX_DELEGATION_DEPTH``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import anyio
import pytest
from dependency_injector import providers

from orra_di import (
    AgentProfile,
    InMemoryStore,
    Namespace,
    Runtime,
    RuntimeConfig,
    RuntimeMap,
    build_runtime,
    delegate_to_agent_tool,
    tool,
)
from orra_di.containers import Container
from orra_di.delegation import delegation_chain
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

AGENTS = ["Atlas", "CodeBot", "Critic", "Scribe", "Proof"]


@tool
def secret_tool() -> str:
    """A tool viewers may not use."""
    return "secret"


def _agents(
    model: Callable[[CompletionRequest], CompletionResponse],
    *,
    names: list[str] = AGENTS,
    max_depth: int = 3,
    policies: PolicyRegistry | None = None,
) -> tuple[RuntimeMap, InMemoryStore]:
    """Agents on one scripted model; each agent's system prompt starts with its name."""
    store = InMemoryStore()
    llm = ScriptedProvider(model)
    runtimes = RuntimeMap([AgentProfile(name=n, system_prompt=n) for n in names])

    def build(profile: AgentProfile) -> Runtime:
        tools = [delegate_to_agent_tool(runtimes, profile.name, max_depth=max_depth), secret_tool]
        return build_runtime(
            profile, llm=llm, store=store, config=RuntimeConfig(), tools=tools, policies=policies
        )

    runtimes.bind(build)
    return runtimes, store


def _me(request: CompletionRequest) -> str:
    return request.messages[0].content


def _answer_with_result(request: CompletionRequest) -> CompletionResponse | None:
    last = request.messages[-1]
    if last.tool_results:
        return reply(f"{_me(request)} got: {last.tool_results[0].content}")
    return None


async def test_a_cycle_stops_with_an_error_result_the_calling_model_reads() -> None:
    """'Cycles (Atlas → CodeBot → Atlas) … stop with an error result the calling model
    reads.' The target name is matched case-insensitively, as the map is."""

    def model(request: CompletionRequest) -> CompletionResponse:
        done = _answer_with_result(request)
        if done is not None:
            return done
        target = "codebot" if _me(request) == "Atlas" else "ATLAS"
        return tool_calls(call("delegate_to_agent", {"agent": target, "task": "t"}))

    runtimes, _ = _agents(model, names=["Atlas", "CodeBot"])
    result = await runtimes["atlas"].run("acme:alice", "go")
    (handed_back,) = result.turns[0].tool_results
    assert not handed_back.is_error
    assert handed_back.content.startswith("[Agent 'CodeBot' responded (")  # as configured
    assert (
        "CodeBot got: execution failed: delegation cycle: atlas -> codebot -> atlas; "
        "answer the task yourself"
    ) in handed_back.content


async def test_chains_deeper_than_max_depth_stop_at_the_limit() -> None:
    """'chains deeper than max_depth (3 by default) stop with an error result': three
    hand-overs happen, the fourth is refused with a reason the model can act on."""

    def model(request: CompletionRequest) -> CompletionResponse:
        done = _answer_with_result(request)
        if done is not None:
            return done
        following = AGENTS[AGENTS.index(_me(request)) + 1]
        return tool_calls(call("delegate_to_agent", {"agent": following, "task": "t"}))

    runtimes, store = _agents(model)
    result = await runtimes["atlas"].run("acme:bob", "go")
    text = result.turns[0].tool_results[0].content
    assert "Scribe got: execution failed: delegation depth limit (3) reached; " in text
    assert "answer the task yourself" in text
    keys = [ns.key for ns in await store.list(Namespace("acme", "bob"))]
    assert len(keys) == 4  # the caller and three delegations, nested
    chain = delegation_chain(max(keys, key=len))
    assert chain == ["atlas", "codebot", "critic", "scribe"]


async def test_delegation_runs_under_a_child_namespace_that_inherits_the_policy() -> None:
    """'The delegated run happens under a child of the caller's namespace
    (acme:alice:delegation.atlas.codebot.<id>), so the caller's tool policy is inherited.'"""
    policies = PolicyRegistry()
    policies.set_policy("acme:viewers", ToolPolicy.deny_list(["secret_tool"]))

    def model(request: CompletionRequest) -> CompletionResponse:
        done = _answer_with_result(request)
        if done is not None:
            return done
        if _me(request) == "Atlas":
            return tool_calls(call("delegate_to_agent", {"agent": "CodeBot", "task": "t"}))
        assert "secret_tool" not in [d.name for d in request.tools]  # not even offered
        return tool_calls(call("secret_tool", {}))

    runtimes, store = _agents(model, names=["Atlas", "CodeBot"], policies=policies)
    result = await runtimes["atlas"].run("acme:viewers:eve", "go")
    assert (
        "CodeBot got: tool 'secret_tool' is not allowed in this session"
        in result.turns[0].tool_results[0].content
    )
    keys = [ns.key for ns in await store.list()]
    assert keys[0] == "acme:viewers:eve"
    assert re.fullmatch(r"acme:viewers:eve:delegation\.atlas\.codebot\.[0-9a-f]{8}", keys[1])
    assert await store.delete_tree("acme:viewers:eve") == 2  # erasure reaches it


@pytest.mark.parametrize(
    ("agent", "says"),
    [
        ("Nobody", "agent 'Nobody' not found. Available agents: Atlas, CodeBot"),
        ("atlas", "cannot delegate to yourself"),
    ],
)
async def test_delegating_to_an_unknown_agent_or_to_oneself_is_an_error_result(
    agent: str, says: str
) -> None:
    script = [tool_calls(call("delegate_to_agent", {"agent": agent, "task": "t"})), reply("ok")]
    runtimes, _ = _agents(lambda request: reply("unused"), names=["Atlas", "CodeBot"])
    llm = ScriptedProvider(script)
    tool_ = delegate_to_agent_tool(runtimes, "Atlas")
    runtime = Runtime(llm, InMemoryStore(), tools=[tool_])
    result = await runtime.run("acme:carl", "go")
    (refused,) = result.turns[0].tool_results
    assert refused.is_error and refused.content == f"execution failed: {says}"


def test_the_tool_offers_the_other_agents_by_name() -> None:
    runtimes, _ = _agents(lambda request: reply("unused"), names=["Atlas", "CodeBot", "Critic"])
    schema = delegate_to_agent_tool(runtimes, "atlas").definition.input_schema
    assert schema["properties"]["agent"]["enum"] == ["CodeBot", "Critic"]
    assert sorted(schema["required"]) == ["agent", "task"]


def _container(*names: str, **runtime: object) -> Container:
    container = Container()
    agents = [{"name": n} for n in names or ("Atlas", "CodeBot")]
    settings = load_settings(store={"url": "memory://"}, tools=[], agents=agents, runtime=runtime)
    container.settings.override(providers.Object(settings))
    return container


def test_the_container_gives_delegate_to_agent_only_with_several_agents_and_spawn_on_request() -> (
    None
):
    """'In the container it [spawn_agent] is off unless ORRA_RUNTIME__ENABLE_SPAWN=true;
    delegate_to_agent is on (ORRA_RUNTIME__ENABLE_DELEGATION) whenever more than one agent
    is configured.'"""
    assert _container().runtimes()["atlas"].tools.names() == ["delegate_to_agent"]
    assert _container(enable_delegation=False).runtimes()["atlas"].tools.names() == []
    spawn = _container(enable_spawn=True).runtimes()["atlas"].tools.names()
    assert spawn == ["delegate_to_agent", "spawn_agent"]

    alone = Container()
    settings = load_settings(store={"url": "memory://"}, tools=[], agents=[{"name": "Solo"}])
    alone.settings.override(providers.Object(settings))
    assert alone.runtimes()["solo"].tools.names() == []


def test_spawn_runs_a_sub_agent_under_a_spawn_child_with_the_prompt_the_model_wrote() -> None:
    container = _container(enable_spawn=True)
    prompts: list[str] = []

    def model(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply("parent done")
        if request.messages[0].content == "Count the words.":
            prompts.append(request.messages[0].content)
            return reply("three words")
        task = {"task": "count: a b c", "system_prompt": "Count the words."}
        return tool_calls(call("spawn_agent", task))

    container.llm.override(providers.Object(ScriptedProvider(model)))
    result = anyio.run(container.runtimes()["atlas"].run, "acme:dan", "go")
    (handed_back,) = result.turns[0].tool_results
    assert handed_back.content.startswith("[Sub-agent responded (1 turns,")
    assert handed_back.content.endswith("three words")
    assert prompts == ["Count the words."]
    keys = [ns.key for ns in anyio.run(container.store().list)]
    assert keys[0] == "acme:dan"
    assert re.fullmatch(r"acme:dan:spawn\.[0-9a-f]{8}", keys[1])


def test_the_container_applies_max_delegation_depth() -> None:
    container = _container("Atlas", "CodeBot", "Critic", max_delegation_depth=1)

    def model(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(last.tool_results[0].content)
        target = "CodeBot" if "You are Atlas" in request.messages[0].content else "Critic"
        return tool_calls(call("delegate_to_agent", {"agent": target, "task": "t"}))

    container.llm.override(providers.Object(ScriptedProvider(model)))
    result = anyio.run(container.runtimes()["atlas"].run, "acme:eli", "go")
    assert "delegation depth limit (1) reached" in result.final_message.content
