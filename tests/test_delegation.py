"""RuntimeMap and delegation between agents (spec §2A.10, §2C.1), in plain Python."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from orra_di import (
    AgentProfile,
    CompletionRequest,
    CompletionResponse,
    ConfigurationError,
    Hook,
    InMemoryStore,
    Namespace,
    PolicyRegistry,
    PromptBuilder,
    Runtime,
    RuntimeConfig,
    ToolCall,
    ToolPolicy,
    tool,
)
from orra_di.delegation import delegate_to_agent_tool, delegation_chain, spawn_agent_tool
from orra_di.runtime_set import RuntimeMap, build_runtime
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


def make_map(
    agents: list[AgentProfile],
    llm: Any,
    store: InMemoryStore | None = None,
    *,
    policies: PolicyRegistry | None = None,
    hooks: list[Hook] | None = None,
    max_depth: int = 3,
    max_turns: int = 10,
) -> RuntimeMap:
    store = store or InMemoryStore()
    runtimes = RuntimeMap(agents)

    def build(profile: AgentProfile) -> Runtime:
        tools = []
        if len(runtimes) > 1:
            tools.append(delegate_to_agent_tool(runtimes, profile.name, max_depth=max_depth))
        return build_runtime(
            profile,
            llm=llm,
            store=store,
            config=RuntimeConfig(max_turns=max_turns),
            tools=tools,
            policies=policies,
            hooks=hooks or [],
        )

    runtimes.bind(build)
    return runtimes


def by_agent(answers: dict[str, Any]) -> ScriptedProvider:
    """A model that answers according to which agent's system prompt it sees."""

    def answer(request: CompletionRequest) -> Any:
        system = request.messages[0].content
        for name, fn in answers.items():
            if system.startswith(f"You are {name},"):
                return fn(request)
        raise AssertionError(f"unexpected prompt {system[:40]}")

    return ScriptedProvider(answer)


# -- ported from runtime_set ------------------------------------------------------


def test_build_single_agent() -> None:
    runtimes = make_map([AgentProfile(name="Atlas")], ScriptedProvider([]))
    assert runtimes.default_agent == "Atlas"
    assert list(runtimes) == ["atlas"]
    assert runtimes["Atlas"].tools.names() == []


def test_build_multiple_agents_registers_delegation() -> None:
    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], ScriptedProvider([])
    )
    assert list(runtimes) == ["atlas", "codebot"]
    assert runtimes["codebot"].tools.names() == ["delegate_to_agent"]


def test_default_agent_is_first() -> None:
    runtimes = make_map(
        [AgentProfile(name="SecondBot"), AgentProfile(name="Atlas")], ScriptedProvider([])
    )
    assert runtimes.default_agent == "SecondBot"


def test_build_with_no_agents_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="at least one agent"):
        RuntimeMap([])


def test_build_with_custom_prompt_and_model() -> None:
    profile = AgentProfile(name="Atlas", model="small-model")
    builder = PromptBuilder().set_channel_context("a Discord server")
    rt = build_runtime(
        profile,
        llm=ScriptedProvider([]),
        store=InMemoryStore(),
        config=RuntimeConfig(),
        prompt_builder=builder,
    )
    assert rt.config.system_prompt is not None
    assert "a Discord server" in rt.config.system_prompt
    assert rt.config.model == "small-model"
    expected = PromptBuilder().set_channel_context("a Discord server").build(profile, date.today())
    assert rt.config.system_prompt == expected


def test_unknown_agent_lists_the_available_ones() -> None:
    runtimes = make_map([AgentProfile(name="Atlas")], ScriptedProvider([]))
    with pytest.raises(KeyError, match="Available agents: Atlas"):
        runtimes["nobody"]


def test_map_is_lazy_and_resolves_through_build_at_call_time() -> None:
    built: list[str] = []
    runtimes = RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")])

    def build(profile: AgentProfile) -> Runtime:
        built.append(profile.name)
        return Runtime(ScriptedProvider([]), InMemoryStore())

    runtimes.bind(build)
    assert built == []
    runtimes["codebot"]
    assert built == ["CodeBot"]


def test_route_by_mention() -> None:
    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], ScriptedProvider([])
    )
    assert runtimes.route("@codebot fix this") == ("CodeBot", "fix this")
    assert runtimes.route("hello") == ("Atlas", "hello")


# -- delegation end to end ---------------------------------------------------------


async def test_delegation_between_two_agents_end_to_end() -> None:
    store = InMemoryStore()

    def atlas(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"CodeBot says: {last.tool_results[0].content}")
        return tool_calls(call("delegate_to_agent", {"agent": "codebot", "task": "write hello"}))

    def codebot(request: CompletionRequest) -> CompletionResponse:
        return reply("print('hello')")

    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")],
        by_agent({"Atlas": atlas, "CodeBot": codebot}),
        store,
    )
    ns = Namespace("acme", "alice")
    result = await runtimes["atlas"].run(ns, "please code")
    (res,) = result.turns[0].tool_results  # the model wrote "codebot": labelled "CodeBot"
    assert not res.is_error
    assert res.content.startswith(
        "[Agent 'CodeBot' responded (1 turns, 0 tokens)]\n\nprint('hello')"
    )
    # The delegated session lives under the caller's namespace and is erased with it.
    listed = await store.list(ns)
    child = listed[1]
    assert child.parent == ns
    assert delegation_chain(child) == ["atlas", "codebot"]
    assert delegation_chain(child.key) == ["atlas", "codebot"]  # a key will do too
    assert await store.delete_tree(ns) == 2


async def test_delegating_to_yourself_or_an_unknown_agent_is_an_error_result() -> None:
    calls = [
        call("delegate_to_agent", {"agent": "atlas", "task": "x"}),
        call("delegate_to_agent", {"agent": "Ghost", "task": "x"}),
        call("delegate_to_agent", {"agent": "CodeBot"}),
    ]
    llm = ScriptedProvider([tool_calls(*calls), reply("ok")])
    runtimes = make_map([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], llm)
    results = (await runtimes["atlas"].run(Namespace("u"), "go")).turns[0].tool_results
    assert [r.content for r in results] == [
        "execution failed: cannot delegate to yourself",
        "execution failed: agent 'Ghost' not found. Available agents: Atlas, CodeBot",
        "invalid input: task: Field required",
    ]
    assert all(r.is_error for r in results)


async def test_a_delegation_cycle_stops_with_a_clear_error() -> None:
    """A asks B, B asks A back: the second hop is refused and B answers."""

    def atlas(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"atlas got: {last.tool_results[0].content}")
        return tool_calls(call("delegate_to_agent", {"agent": "codebot", "task": "t"}))

    def codebot(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"codebot saw: {last.tool_results[0].content}")
        return tool_calls(call("delegate_to_agent", {"agent": "atlas", "task": "back to you"}))

    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")],
        by_agent({"Atlas": atlas, "CodeBot": codebot}),
    )
    result = await runtimes["atlas"].run(Namespace("u"), "go")
    assert "delegation cycle: atlas -> codebot -> atlas" in result.final_message.content


async def test_the_depth_limit_stops_long_chains() -> None:
    agents = [AgentProfile(name=n) for n in ("A", "B", "C", "D")]
    nxt = {"A": "b", "B": "c", "C": "d", "D": "a"}

    def hop(name: str) -> Any:
        def answer(request: CompletionRequest) -> CompletionResponse:
            last = request.messages[-1]
            if last.tool_results:
                return reply(f"{name}<{last.tool_results[0].content}>")
            return tool_calls(call("delegate_to_agent", {"agent": nxt[name], "task": "t"}))

        return answer

    runtimes = make_map(agents, by_agent({n: hop(n) for n in nxt}), max_depth=2)
    result = await runtimes["a"].run(Namespace("u"), "go")
    assert "delegation depth limit (2) reached" in result.final_message.content


async def test_the_delegated_run_inherits_the_callers_policy() -> None:
    ran = False

    @tool
    def secret() -> str:
        """Secret."""
        nonlocal ran
        ran = True
        return "s"

    store = InMemoryStore()
    policies = PolicyRegistry()
    policies.set_policy(Namespace("acme"), ToolPolicy.deny_list(["secret"]))
    runtimes = RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="Helper")])
    seen_tools: list[list[str]] = []

    def answer(request: CompletionRequest) -> CompletionResponse:
        seen_tools.append([t.name for t in request.tools])
        last = request.messages[-1]
        if request.messages[0].content.startswith("You are Atlas,"):
            if last.tool_results:
                return reply("done")
            return tool_calls(call("delegate_to_agent", {"agent": "helper", "task": "t"}))
        if last.tool_results:
            return reply(last.tool_results[0].content)
        return tool_calls(call("secret"))

    llm = ScriptedProvider(answer)

    def build(profile: AgentProfile) -> Runtime:
        return build_runtime(
            profile,
            llm=llm,
            store=store,
            config=RuntimeConfig(),
            tools=[secret, delegate_to_agent_tool(runtimes, profile.name)],
            policies=policies,
        )

    runtimes.bind(build)
    result = await runtimes["atlas"].run(Namespace("acme", "alice"), "go")
    assert result.final_message.content == "done"
    assert not ran
    assert all("secret" not in tools for tools in seen_tools)


async def test_hooks_run_in_the_delegated_agent() -> None:
    seen: list[str] = []

    class Audit(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> None:
            seen.append(f"{namespace.depth}:{call.name}")

    def atlas(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply("done")
        return tool_calls(call("delegate_to_agent", {"agent": "b", "task": "t"}))

    def b(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply("b done")
        return tool_calls(call("nothing"))

    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="B")],
        by_agent({"Atlas": atlas, "B": b}),
        hooks=[Audit()],
    )
    await runtimes["atlas"].run(Namespace("u"), "go")
    assert seen == ["1:delegate_to_agent", "2:nothing"]


async def test_a_failing_delegate_comes_back_as_an_error_result() -> None:
    def atlas(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply(request.messages[-1].tool_results[0].content)
        return tool_calls(call("delegate_to_agent", {"agent": "b", "task": "t"}))

    def b(request: CompletionRequest) -> CompletionResponse:
        return tool_calls(call("nothing"))

    runtimes = make_map(
        [AgentProfile(name="Atlas"), AgentProfile(name="B")],
        by_agent({"Atlas": atlas, "B": b}),
        max_turns=2,
    )
    result = await runtimes["atlas"].run(Namespace("u"), "go")
    assert (
        result.final_message.content == "execution failed: agent 'B' failed: max turns (2) exceeded"
    )


# -- spawn_agent ---------------------------------------------------------------------


async def test_spawn_agent_runs_a_sub_agent_under_a_child_namespace() -> None:
    store = InMemoryStore()
    prompts: list[str] = []

    def answer(request: CompletionRequest) -> CompletionResponse:
        system = request.messages[0].content
        prompts.append(system)
        last = request.messages[-1]
        if system == "main":
            if last.tool_results:
                return reply(last.tool_results[0].content)
            return tool_calls(
                call("spawn_agent", {"task": "compute 6*7", "system_prompt": "be exact"})
            )
        return reply("42")

    llm = ScriptedProvider(answer)

    def sub(system_prompt: str) -> Runtime:
        return Runtime(llm, store, config=RuntimeConfig(system_prompt=system_prompt, max_turns=5))

    rt = Runtime(
        llm, store, tools=[spawn_agent_tool(sub)], config=RuntimeConfig(system_prompt="main")
    )
    ns = Namespace("u")
    result = await rt.run(ns, "go")
    assert result.final_message.content == "[Sub-agent responded (1 turns, 0 tokens)]\n\n42"
    assert prompts[1] == "be exact"
    listed = await store.list(ns)
    assert len(listed) == 2
    assert delegation_chain(listed[1]) == ["spawn"]


async def test_spawn_agent_depth_limit_stops_sub_agents_spawning_sub_agents() -> None:
    """Every sub-agent may spawn again; the chain stops at max_depth with an error result."""
    store = InMemoryStore()
    spawned = 0

    def answer(request: CompletionRequest) -> CompletionResponse:
        nonlocal spawned
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"<{last.tool_results[0].content}>")
        spawned += 1
        if spawned > 10:  # without a limit the chain would only end here
            return reply("unbounded")
        return tool_calls(call("spawn_agent", {"task": "go deeper"}))

    llm = ScriptedProvider(answer)

    def sub(system_prompt: str) -> Runtime:
        return Runtime(
            llm,
            store,
            tools=[spawn_agent_tool(sub, max_depth=2)],
            config=RuntimeConfig(system_prompt=system_prompt, max_turns=5),
        )

    ns = Namespace("u")
    result = await sub("main").run(ns, "go")

    assert spawned == 3  # the caller and two sub-agents asked; the third was refused
    assert "unbounded" not in result.final_message.content
    assert "delegation depth limit (2) reached" in result.final_message.content
    assert [delegation_chain(n) for n in await store.list(ns)] == [
        [],
        ["spawn"],
        ["spawn", "spawn"],
    ]


def test_spawn_agent_definition() -> None:
    definition = spawn_agent_tool(
        lambda _p: Runtime(ScriptedProvider([]), InMemoryStore())
    ).definition
    assert definition.name == "spawn_agent"
    assert definition.input_schema["required"] == ["task"]
    assert "sub-agent" in definition.description


async def test_agents_whose_names_differ_only_in_punctuation_are_not_a_cycle() -> None:
    def first(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply(request.messages[-1].tool_results[0].content)
        return tool_calls(call("delegate_to_agent", {"agent": "Code.Bot", "task": "t"}))

    def second(request: CompletionRequest) -> CompletionResponse:
        return reply("second answered")

    runtimes = make_map(
        [AgentProfile(name="Code Bot"), AgentProfile(name="Code.Bot")],
        by_agent({"Code Bot": first, "Code.Bot": second}),
    )
    result = await runtimes["code bot"].run(Namespace("u"), "go")
    assert result.final_message.content.endswith("second answered")
    assert "cycle" not in result.final_message.content


def test_the_agent_choice_offered_to_the_model_lists_the_others_only() -> None:
    runtimes = RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")])
    definition = delegate_to_agent_tool(runtimes, "Atlas").definition
    assert definition.input_schema["properties"]["agent"]["enum"] == ["CodeBot"]
    assert definition.input_schema["required"] == ["agent", "task"]


async def test_delegation_chains_stop_at_three_hops_by_default() -> None:
    agents = [AgentProfile(name=n) for n in ("A", "B", "C", "D", "E")]
    nxt = {"A": "b", "B": "c", "C": "d", "D": "e", "E": "a"}
    asked: list[str] = []

    def hop(name: str) -> Any:
        def answer(request: CompletionRequest) -> CompletionResponse:
            last = request.messages[-1]
            if last.tool_results:
                return reply(f"{name}<{last.tool_results[0].content}>")
            asked.append(name)
            return tool_calls(call("delegate_to_agent", {"agent": nxt[name], "task": "t"}))

        return answer

    store = InMemoryStore()
    runtimes = RuntimeMap(agents)
    llm = by_agent({n: hop(n) for n in nxt})
    runtimes.bind(
        lambda profile: build_runtime(
            profile,
            llm=llm,
            store=store,
            config=RuntimeConfig(),
            tools=[delegate_to_agent_tool(runtimes, profile.name)],
        )
    )
    result = await runtimes["a"].run(Namespace("u"), "go")
    assert asked == ["A", "B", "C", "D"]  # D's hop would be the fourth
    assert "delegation depth limit (3) reached" in result.final_message.content


async def test_spawned_sub_agents_stop_at_three_levels_by_default() -> None:
    spawned = 0

    def answer(request: CompletionRequest) -> CompletionResponse:
        nonlocal spawned
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"<{last.tool_results[0].content}>")
        spawned += 1
        return tool_calls(call("spawn_agent", {"task": "go deeper"}))

    llm = ScriptedProvider(answer)
    store = InMemoryStore()

    def sub(system_prompt: str) -> Runtime:
        return Runtime(llm, store, tools=[spawn_agent_tool(sub)])

    result = await sub("main").run(Namespace("u"), "go")
    assert spawned == 4
    assert "delegation depth limit (3) reached" in result.final_message.content


async def test_a_failing_sub_agent_comes_back_as_an_error_result() -> None:
    def answer(request: CompletionRequest) -> CompletionResponse:
        if request.messages[0].content == "main":
            if request.messages[-1].tool_results:
                return reply(request.messages[-1].tool_results[0].content)
            return tool_calls(call("spawn_agent", {"task": "t", "system_prompt": "sub"}))
        return tool_calls(call("nothing"))

    llm = ScriptedProvider(answer)

    def sub(system_prompt: str) -> Runtime:
        return Runtime(
            llm, InMemoryStore(), config=RuntimeConfig(system_prompt=system_prompt, max_turns=1)
        )

    rt = Runtime(
        llm,
        InMemoryStore(),
        tools=[spawn_agent_tool(sub)],
        config=RuntimeConfig(system_prompt="main"),
    )
    result = await rt.run(Namespace("u"), "go")
    assert (
        result.final_message.content == "execution failed: sub-agent failed: max turns (1) exceeded"
    )


async def test_agent_names_are_percent_encoded_in_the_chain() -> None:
    def first(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply(request.messages[-1].tool_results[0].content)
        return tool_calls(call("delegate_to_agent", {"agent": "R&D/Ops.v2", "task": "t"}))

    store = InMemoryStore()
    runtimes = make_map(
        [AgentProfile(name="Front Desk"), AgentProfile(name="R&D/Ops.v2")],
        by_agent({"Front Desk": first, "R&D/Ops.v2": lambda _r: reply("done")}),
        store,
    )
    ns = Namespace("u")
    await runtimes["front desk"].run(ns, "go")
    child = (await store.list(ns))[1]
    assert delegation_chain(child) == ["front%20desk", "r%26d%2Fops%2Ev2"]
