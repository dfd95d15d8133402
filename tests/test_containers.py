"""The container behaves the way dependency-injector users expect.

Selection of the LLM provider and the store from settings, overrides that reach
every runtime built afterwards (through the late-bound RuntimeMap), the
``reset_singletons`` pitfall, the RuntimeMap's laziness and the delegation
cycle it breaks, and :func:`lifespan`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from orra_di import (
    AgentProfile,
    CompletionRequest,
    ConfigurationError,
    Hook,
    InMemoryStore,
    Namespace,
    PolicyRegistry,
    Runtime,
    Session,
    StoreError,
    Tool,
    ToolPolicy,
    tool,
)
from orra_di.containers import Container, lifespan
from orra_di.providers.offline import OfflineModel
from orra_di.providers.resilience import RetryingProvider
from orra_di.runtime_set import RuntimeMap
from orra_di.settings import load_settings
from orra_di.stores.file import FileStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, TestModel, call, reply, tool_calls

TWO_AGENTS = [
    {"name": "Atlas", "personality": "calm"},
    {"name": "CodeBot", "personality": "terse", "model": "code-model"},
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORRA_* or vendor key from the developer's shell; no orra.toml or .env around."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def make_container(**settings: Any) -> Container:
    """A container whose settings are ``load_settings(**settings)``: in memory and with no
    built-in tools unless a test says otherwise, so tool lists show only what it adds."""
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", [])
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


def tool_names(runtime: Runtime) -> list[str]:
    return [d.name for d in runtime.tools.definitions()]


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


class Recorder(Hook):
    """Records the namespaces of the sessions it sees loaded."""

    def __init__(self) -> None:
        self.loaded: list[str] = []

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self.loaded.append(namespace.key)


class Tokens:
    """A tokenizer that counts words."""

    def count_tokens(self, text: str) -> int:
        return len(text.split())


# -- selecting the LLM provider ---------------------------------------------------------


def test_llm_kind_test_is_the_offline_test_model() -> None:
    container = make_container(llm={"kind": "test"})
    assert isinstance(container.llm(), TestModel)


def test_llm_without_kind_or_vendor_key_falls_back_to_the_offline_model() -> None:
    assert isinstance(make_container().llm(), OfflineModel)


def test_llm_kind_scripted_says_to_override_the_provider() -> None:
    container = make_container(llm={"kind": "scripted"})
    with pytest.raises(ConfigurationError, match=r"override container\.llm") as info:
        container.llm()
    assert "ScriptedProvider" in str(info.value)


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_a_vendor_kind_without_a_key_says_which_key_is_missing(kind: str) -> None:
    container = make_container(llm={"kind": kind})
    with pytest.raises(ConfigurationError, match=f"{kind.upper()}_API_KEY"):
        container.llm()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("variable", "kind", "adapter"),
    [
        ("ANTHROPIC_API_KEY", "anthropic", "AnthropicProvider"),
        ("OPENAI_API_KEY", "openai", "OpenAIProvider"),
    ],
)
async def test_a_vendor_key_in_the_environment_selects_that_vendor(
    monkeypatch: pytest.MonkeyPatch, variable: str, kind: str, adapter: str
) -> None:
    monkeypatch.setenv(variable, "sk-test-not-a-real-key")
    container = make_container(llm={"max_retries": 3, "max_retry_wait": 5})
    assert container.settings().llm.resolved_kind == kind
    llm = container.llm()
    assert isinstance(llm, RetryingProvider)
    assert type(llm.llm).__name__ == adapter
    assert (llm.max_retries, llm.max_wait) == (3, 5)
    assert "sk-test" not in repr(llm.llm)
    await llm.aclose()


@pytest.mark.anyio
async def test_a_base_url_alone_selects_an_openai_compatible_server() -> None:
    container = make_container(llm={"base_url": "http://127.0.0.1:11434/v1", "model": "llama3"})
    llm = container.llm()
    assert isinstance(llm, RetryingProvider)
    assert type(llm.llm).__name__ == "OpenAIProvider"
    assert "11434" in repr(llm.llm)
    await llm.aclose()


def test_llm_kind_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "scripted")
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    container = Container()  # settings read from the environment, no override
    with pytest.raises(ConfigurationError, match="scripted"):
        container.llm()


# -- selecting the store ----------------------------------------------------------------


def test_memory_url_is_the_in_memory_store() -> None:
    assert isinstance(make_container(store={"url": "memory://"}).store(), InMemoryStore)


@pytest.mark.anyio
async def test_sqlite_url_is_a_sqlite_store_at_that_path(tmp_path: Path) -> None:
    path = tmp_path / "data" / "sessions.sqlite3"
    path.parent.mkdir()
    container = make_container(store={"url": f"sqlite:///{path}"})  # absolute: four slashes
    store = container.store()
    assert isinstance(store, SQLiteStore)
    await store.append(Namespace("acme", "alice"), [])
    await store.aclose()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT key FROM sessions").fetchall() == [("acme:alice",)]


@pytest.mark.anyio
async def test_the_sqlite_durability_setting_reaches_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    store = make_container(store={"url": url, "sqlite_synchronous": "full"}).store()
    assert isinstance(store, SQLiteStore)
    await store.append(Namespace("acme", "alice"), [])
    assert store._conn is not None
    assert store._conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    await store.aclose()


@pytest.mark.anyio
async def test_the_run_durability_setting_reaches_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    store = make_container(store={"url": url, "sqlite_synchronous": "run"}).store()
    assert isinstance(store, SQLiteStore)
    assert store._synchronous == "RUN"
    await store.aclose()


@pytest.mark.anyio
async def test_relative_sqlite_url_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    store = make_container(store={"url": "sqlite:///relative.db"}).store()
    await store.append(Namespace("a"), [])
    await store.aclose()
    assert (tmp_path / "relative.db").is_file()


@pytest.mark.anyio
async def test_default_sqlite_store_creates_its_data_directory(tmp_path: Path) -> None:
    container = Container()  # no store URL anywhere: the default in $XDG_DATA_HOME
    async with lifespan(container):
        await container.store().append(Namespace("a"), [])
    assert (tmp_path / "xdg" / "orra-di" / "sessions.sqlite3").is_file()


def test_file_url_is_a_file_store_under_that_directory(tmp_path: Path) -> None:
    base = tmp_path / "sessions"
    store = make_container(store={"url": f"file://{base}"}).store()
    assert isinstance(store, FileStore)
    assert store.path_for(Namespace("acme", "alice")) == str(base / "acme" / "alice.jsonl")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("url", "cls", "options"),
    [
        ("postgresql://orra:secret@127.0.0.1/orra", "PostgresStore", {}),
        ("postgres://orra:secret@127.0.0.1/orra", "PostgresStore", {}),
        ("redis://127.0.0.1:6379/0", "RedisStore", {"session_ttl": 60}),
        ("rediss://:secret@127.0.0.1:6380/0", "RedisStore", {}),
    ],
)
async def test_server_stores_come_from_the_url_with_the_store_settings(
    url: str, cls: str, options: dict[str, Any]
) -> None:
    container = make_container(store={"url": url, "lease_seconds": 7, **options})
    store = container.store()
    assert type(store).__name__ == cls
    assert store is container.store()
    assert "secret" not in repr(store)
    await store.aclose()  # built lazily: nothing was connected


@pytest.mark.parametrize(
    "url", ["memory://", "sqlite:///s.db", "file:///tmp/orra-di-test-never-written"]
)
def test_the_store_is_a_singleton(url: str) -> None:
    container = make_container(store={"url": url})
    assert container.store() is container.store()


def test_llm_tokenizer_policies_and_settings_are_singletons() -> None:
    container = make_container()
    assert container.llm() is container.llm()
    assert container.tokenizer() is container.tokenizer()
    assert container.policies() is container.policies()
    assert container.settings() is container.settings()
    assert container.runtimes() is container.runtimes()


def test_each_agent_lookup_builds_a_fresh_runtime() -> None:
    """The runtime is a Factory: nothing an override could make stale is cached."""
    runtimes = make_container().runtimes()
    assert runtimes["atlas"] is not runtimes["atlas"]


def test_configured_policies_become_the_shared_registry() -> None:
    container = make_container(policies={"acme:viewers": {"allow": ["search"]}})
    runtime = container.runtimes()["atlas"]
    assert runtime.policies is container.policies()
    assert runtime.policies.is_allowed(Namespace("acme", "viewers", "bob"), "search")
    assert not runtime.policies.is_allowed(Namespace("acme", "viewers", "bob"), "delete")
    assert runtime.policies.is_allowed(Namespace("other"), "delete")


def test_runtime_settings_reach_the_runtime_config() -> None:
    container = make_container(
        runtime={"max_turns": 4, "temperature": 0.5, "on_busy": "refuse", "tool_timeout": 7}
    )
    config = container.runtimes()["atlas"].config
    assert (config.max_turns, config.temperature, config.busy_timeout) == (4, 0.5, 0.0)
    assert config.tool_timeout == 7


# -- overriding providers: the override reaches every runtime built afterwards --------


@pytest.mark.anyio
async def test_overriding_llm_reaches_the_map_and_runs_end_to_end() -> None:
    container = make_container()
    runtimes = container.runtimes()  # built before the override: the map is late-bound
    scripted = ScriptedProvider(["Hello from the script."])
    container.llm.override(scripted)

    runtime = runtimes["atlas"]
    assert runtime.llm is scripted
    result = await runtime.run(Namespace("acme", "alice"), "hi")

    assert result.final_message.content == "Hello from the script."
    (request,) = scripted.requests
    assert request.messages[0].content.startswith("You are Atlas, an AI assistant.")
    assert request.messages[-1].content == "hi"
    stored = await container.store().load(Namespace("acme", "alice"))
    assert stored is not None
    assert [m.content for m in stored.messages] == ["hi", "Hello from the script."]


def test_resetting_the_llm_override_restores_the_configured_model() -> None:
    container = make_container()
    with container.llm.override(ScriptedProvider([])):
        assert isinstance(container.runtimes()["atlas"].llm, ScriptedProvider)
    assert isinstance(container.runtimes()["atlas"].llm, OfflineModel)


@pytest.mark.anyio
async def test_overriding_store_reaches_the_map() -> None:
    container = make_container(store={"url": "sqlite:///never-opened.db"})
    runtimes = container.runtimes()
    store = InMemoryStore()
    container.store.override(providers.Object(store))

    runtime = runtimes["atlas"]
    assert runtime.store is store
    await runtime.run(Namespace("t"), "hi")
    assert await store.list() == [Namespace("t")]


def test_overriding_tokenizer_reaches_the_map() -> None:
    container = make_container()
    tokens = Tokens()
    container.tokenizer.override(providers.Object(tokens))
    assert container.runtimes()["atlas"].window.tokenizer is tokens


def test_overriding_tokenizer_after_a_runtime_was_built_reaches_new_runtimes() -> None:
    container = make_container()
    container.runtimes()["atlas"]
    tokens = Tokens()
    container.tokenizer.override(providers.Object(tokens))
    assert container.runtimes()["atlas"].window.tokenizer is tokens


def test_a_tokenizer_override_reaches_new_runtimes_after_reset_singletons() -> None:
    container = make_container()
    container.runtimes()["atlas"]
    tokens = Tokens()
    container.tokenizer.override(providers.Object(tokens))
    container.reset_singletons()
    assert container.runtimes()["atlas"].window.tokenizer is tokens


@pytest.mark.anyio
async def test_overriding_policies_reaches_the_map_and_is_enforced() -> None:
    container = make_container()
    container.tool_factory.override(providers.Object(lambda profile: [lookup]))
    registry = PolicyRegistry()
    registry.set_policy(Namespace("acme"), ToolPolicy.deny_all())
    container.policies.override(providers.Object(registry))
    scripted = ScriptedProvider([tool_calls(call("lookup", {"key": "k"})), "done"])
    container.llm.override(scripted)

    runtime = container.runtimes()["atlas"]
    assert runtime.policies is registry
    await runtime.run(Namespace("acme", "alice"), "look it up")

    assert scripted.requests[0].tools == []  # denied tools are not offered
    (result,) = scripted.requests[1].messages[-1].tool_results
    assert result.is_error
    assert "not allowed" in result.content


# -- overriding one agent's runtime, and the per-agent factories ---------------------


def override_one_agent(container: Container, name: str, runtime: Runtime) -> None:
    """The idiom: a Factory with the same injections, that falls back to the default.

    Calling ``container.agent_runtime(...)`` inside the override would call the
    override again; reusing the original Factory's ``provides`` and ``kwargs``
    builds the default runtime with every (possibly overridden) dependency.
    """
    default = container.agent_runtime
    build_default: Any = default.provides  # _agent_runtime

    def one_agent(profile: AgentProfile, **injected: Any) -> Runtime:
        if profile.key == name.lower():
            return runtime
        result: Runtime = build_default(profile, **injected)
        return result

    default.override(providers.Factory(one_agent, **default.kwargs))


@pytest.mark.anyio
async def test_overriding_one_agents_runtime_shows_through_the_map() -> None:
    container = make_container(agents=TWO_AGENTS)
    runtimes = container.runtimes()
    store = container.store()
    codebot_llm = ScriptedProvider(["code from the custom runtime"])
    custom = Runtime(codebot_llm, store)
    override_one_agent(container, "CodeBot", custom)
    atlas_llm = ScriptedProvider(
        [tool_calls(call("delegate_to_agent", {"agent": "CodeBot", "task": "write"})), "ok"]
    )
    container.llm.override(atlas_llm)

    assert runtimes["CodeBot"] is custom
    atlas = runtimes["atlas"]
    assert atlas is not custom
    assert atlas.llm is atlas_llm  # the fallback still sees the llm override
    assert "delegate_to_agent" in tool_names(atlas)

    await atlas.run(Namespace("acme"), "ask codebot")  # delegation resolves through the map
    assert len(codebot_llm.requests) == 1
    (result,) = atlas_llm.requests[1].messages[-1].tool_results
    assert "code from the custom runtime" in result.content

    container.agent_runtime.reset_override()
    assert runtimes["codebot"] is not custom


@pytest.mark.anyio
async def test_overriding_tool_factory_gives_agents_their_tools() -> None:
    container = make_container(agents=TWO_AGENTS)

    def tools_for(profile: AgentProfile) -> Sequence[Tool]:
        return [lookup] if profile.name == "CodeBot" else []

    container.tool_factory.override(providers.Object(tools_for))
    runtimes = container.runtimes()
    assert tool_names(runtimes["codebot"]) == ["lookup", "delegate_to_agent"]
    assert tool_names(runtimes["atlas"]) == ["delegate_to_agent"]

    # The test model calls every offered tool once.
    container.llm.override(TestModel())
    result = await runtimes["codebot"].run(Namespace("t"), "go")
    assert "value of a" in result.final_message.content


def test_an_app_tool_named_like_a_built_in_is_refused_with_both_sources() -> None:
    container = make_container(agents=TWO_AGENTS, tools=["calculate"])

    @tool
    def calculate(expression: str) -> str:
        """The app's own calculator."""
        return expression

    container.tool_factory.override(providers.Object(lambda profile: [calculate]))
    with pytest.raises(ConfigurationError) as caught:
        container.runtimes()["codebot"]
    message = str(caught.value)
    assert "two tools are named 'calculate'" in message
    assert "built-in tools" in message and "tool_factory" in message
    assert "[tools.calculate] enabled = false" in message


@pytest.mark.anyio
async def test_overriding_hook_factory_installs_hooks() -> None:
    container = make_container(agents=TWO_AGENTS)
    recorder = Recorder()
    container.hook_factory.override(
        providers.Object(lambda profile: [recorder] if profile.key == "atlas" else [])
    )
    container.llm.override(providers.Object(ScriptedProvider(lambda _request: reply("ok"))))
    runtimes = container.runtimes()
    await runtimes["atlas"].run(Namespace("a"), "hi")
    await runtimes["codebot"].run(Namespace("b"), "hi")
    assert recorder.loaded == ["a"]


@pytest.mark.anyio
async def test_overriding_policy_factory_gives_one_agent_its_own_policy() -> None:
    container = make_container(agents=TWO_AGENTS, policies={"acme": {"allow_all": True}})
    container.tool_factory.override(providers.Object(lambda profile: [lookup]))
    locked = PolicyRegistry()
    locked.set_policy(Namespace("x"), ToolPolicy.deny_list(["lookup"]))

    def policy_for(profile: AgentProfile, policies: PolicyRegistry) -> PolicyRegistry:
        return locked if profile.key == "codebot" else policies

    container.policy_factory.override(providers.Object(policy_for))
    runtimes = container.runtimes()
    assert runtimes["codebot"].policies is locked
    assert runtimes["atlas"].policies is container.policies()

    scripted = ScriptedProvider(["fine"])
    container.llm.override(scripted)
    await runtimes["codebot"].run(Namespace("x"), "hi")
    assert [t.name for t in scripted.requests[0].tools] == ["delegate_to_agent"]


@pytest.mark.anyio
async def test_a_registry_with_only_a_default_policy_is_kept() -> None:
    container = make_container()
    container.tool_factory.override(providers.Object(lambda profile: [lookup]))
    deny_everything = PolicyRegistry(ToolPolicy.deny_all())
    container.policies.override(providers.Object(deny_everything))
    scripted = ScriptedProvider(["fine"])
    container.llm.override(scripted)

    await container.runtimes()["atlas"].run(Namespace("x"), "hi")
    assert scripted.requests[0].tools == []


def test_policies_added_to_the_shared_registry_later_apply_to_built_runtimes() -> None:
    container = make_container()
    runtime = container.runtimes()["atlas"]  # built while no policy is configured
    container.policies().set_policy(Namespace("acme"), ToolPolicy.deny_all())
    assert runtime.policies is container.policies()
    assert not runtime.policies.is_allowed(Namespace("acme", "alice"), "lookup")


# -- the reset_singletons pitfall --------------------------------------------------------


class Assistant:
    """Something a host application builds once, capturing the LLM provider."""

    def __init__(self, llm: object) -> None:
        self.llm = llm


class AppContainer(Container):
    assistant = providers.Singleton(Assistant, llm=Container.llm)


def test_a_singleton_built_before_an_override_keeps_the_old_object() -> None:
    container = AppContainer()
    container.settings.override(providers.Object(load_settings(store={"url": "memory://"})))
    runtimes = container.runtimes()
    before = container.assistant()
    assert isinstance(before.llm, OfflineModel)

    scripted = ScriptedProvider([])
    container.llm.override(scripted)

    # The pitfall: the singleton built earlier still holds the OfflineModel ...
    assert container.assistant() is before
    assert isinstance(container.assistant().llm, OfflineModel)
    # ... while the late-bound map already builds runtimes with the override.
    assert runtimes["atlas"].llm is scripted

    container.reset_singletons()
    assert container.assistant() is not before
    assert container.assistant().llm is scripted
    assert container.settings().store.url == "memory://"  # the settings override survives


def test_a_store_built_before_a_settings_override_is_kept_until_reset(tmp_path: Path) -> None:
    container = make_container(store={"url": "sqlite:///first.db"})
    first = container.store()
    container.settings.override(providers.Object(load_settings(store={"url": "sqlite:///b.db"})))
    assert container.store() is first  # same scheme, same (already built) singleton

    container.reset_singletons()
    second = container.store()
    assert second is not first
    assert isinstance(second, SQLiteStore)


# -- the RuntimeMap: lazy, late-bound, the delegation cycle ------------------------------


def counting(container: Container) -> list[str]:
    """Override ``agent_runtime`` with a Factory that records which agents it builds."""
    built: list[str] = []
    default = container.agent_runtime
    build_default: Any = default.provides  # _agent_runtime

    def build(profile: AgentProfile, **injected: Any) -> Runtime:
        built.append(profile.name)
        result: Runtime = build_default(profile, **injected)
        return result

    default.override(providers.Factory(build, **default.kwargs))
    return built


def test_the_map_builds_no_runtime_until_an_agent_is_asked_for() -> None:
    container = make_container(agents=TWO_AGENTS)
    built = counting(container)

    runtimes = container.runtimes()
    assert isinstance(runtimes, RuntimeMap)
    assert len(runtimes) == 2
    assert list(runtimes) == ["atlas", "codebot"]
    assert "CODEBOT" in runtimes
    assert [p.name for p in runtimes.profiles] == ["Atlas", "CodeBot"]
    assert runtimes.route("@CodeBot fix it") == ("CodeBot", "fix it")
    assert built == []

    _ = runtimes["CodeBot"]
    assert built == ["CodeBot"]
    _ = runtimes.default
    assert built == ["CodeBot", "Atlas"]


def test_keys_are_lower_case_and_the_first_profile_is_the_default() -> None:
    runtimes = make_container(agents=TWO_AGENTS).runtimes()
    assert list(runtimes) == ["atlas", "codebot"]
    assert runtimes.default_agent == "Atlas"
    assert runtimes["ATLAS"].config.system_prompt == runtimes.default.config.system_prompt
    with pytest.raises(KeyError, match="Available agents: Atlas, CodeBot"):
        runtimes["nobody"]


def test_delegation_tool_needs_two_agents() -> None:
    assert tool_names(make_container().runtimes()["atlas"]) == []
    runtimes = make_container(agents=TWO_AGENTS).runtimes()
    assert tool_names(runtimes["atlas"]) == ["delegate_to_agent"]
    assert tool_names(runtimes["codebot"]) == ["delegate_to_agent"]


def test_delegation_can_be_disabled() -> None:
    container = make_container(agents=TWO_AGENTS, runtime={"enable_delegation": False})
    assert tool_names(container.runtimes()["atlas"]) == []


def test_enable_spawn_adds_spawn_agent() -> None:
    one = make_container(runtime={"enable_spawn": True}).runtimes()["atlas"]
    assert tool_names(one) == ["spawn_agent"]
    two = make_container(agents=TWO_AGENTS, runtime={"enable_spawn": True}).runtimes()
    assert tool_names(two["codebot"]) == ["delegate_to_agent", "spawn_agent"]


@pytest.mark.anyio
async def test_spawned_sub_agent_runs_under_a_child_namespace() -> None:
    container = make_container(runtime={"enable_spawn": True})
    container.llm.override(TestModel())  # calls spawn_agent once, then answers
    result = await container.runtimes()["atlas"].run(Namespace("acme"), "go")
    assert "Sub-agent responded" in result.final_message.content
    (child,) = [ns for ns in await container.store().list() if ns != Namespace("acme")]
    assert child.parent == Namespace("acme")
    assert child.segments[-1].startswith("spawn.")


def test_a_profiles_model_becomes_the_runtimes_default_model() -> None:
    runtimes = make_container(agents=TWO_AGENTS, llm={"model": "general-model"}).runtimes()
    assert runtimes["codebot"].config.model == "code-model"
    assert runtimes["atlas"].config.model == "general-model"
    assert make_container().runtimes()["atlas"].config.model is None


@pytest.mark.anyio
async def test_the_profiles_model_is_sent_to_the_provider() -> None:
    container = make_container(agents=TWO_AGENTS, llm={"model": "general-model"})
    scripted = ScriptedProvider(["a", "b"])
    container.llm.override(scripted)
    await container.runtimes()["codebot"].run(Namespace("x"), "hi")
    await container.runtimes()["atlas"].run(Namespace("y"), "hi")
    assert [r.model for r in scripted.requests] == ["code-model", "general-model"]


def test_prompts_come_from_the_prompt_builder_with_the_prompt_settings() -> None:
    container = make_container(
        agents=[*TWO_AGENTS, {"name": "Fixed", "system_prompt": "Only this."}],
        prompt={
            "channel_context": "the ACME support widget",
            "sections": ["Never promise refunds.", "Answer in English."],
        },
    )
    runtimes = container.runtimes()
    prompt = runtimes["codebot"].config.system_prompt
    assert prompt is not None
    assert prompt.startswith("You are CodeBot, an AI assistant. Your personality is: terse.")
    assert "You are chatting in the ACME support widget." in prompt
    assert prompt.endswith("Never promise refunds.\n\nAnswer in English.")
    assert runtimes["fixed"].config.system_prompt == "Only this."


# -- delegation end to end -------------------------------------------------------------


@pytest.mark.anyio
async def test_delegation_between_two_agents_through_the_container() -> None:
    container = make_container(agents=TWO_AGENTS)

    def answer(request: CompletionRequest) -> Any:
        system = request.messages[0].content
        if system.startswith("You are CodeBot,"):
            return reply("def add(a, b): return a + b")
        last = request.messages[-1]
        if last.tool_results:
            return reply(f"CodeBot says: {last.tool_results[0].content.splitlines()[-1]}")
        return tool_calls(call("delegate_to_agent", {"agent": "codebot", "task": "write add"}))

    scripted = ScriptedProvider(answer)
    container.llm.override(scripted)
    caller = Namespace("acme", "alice")

    result = await container.runtimes()["atlas"].run(caller, "I need an add function")

    assert result.final_message.content == "CodeBot says: def add(a, b): return a + b"
    assert len(result.turns) == 2
    store = container.store()
    child = next(ns for ns in await store.list(caller) if ns != caller)
    assert child.parent == caller
    assert child.segments[-1].startswith("delegation.atlas.codebot.")
    delegated = await store.load(child)
    assert delegated is not None
    assert [m.content for m in delegated.messages] == ["write add", "def add(a, b): return a + b"]
    # Erasing the caller's subtree erases the delegation too.
    assert await store.delete_tree(caller) == 2


# -- lifespan ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_lifespan_fails_at_entry_on_a_bad_store_path(tmp_path: Path) -> None:
    container = make_container(store={"url": f"sqlite:///{tmp_path}/missing/dir/s.db"})
    entered = False
    with pytest.raises(StoreError, match="cannot open the SQLite database"):
        async with lifespan(container):
            entered = True
    assert not entered
    assert not (tmp_path / "missing").exists()  # an explicit path is never created


@pytest.mark.anyio
async def test_lifespan_fails_at_entry_on_an_unavailable_llm() -> None:
    container = make_container(llm={"kind": "scripted"})
    with pytest.raises(ConfigurationError, match="scripted"):
        async with lifespan(container):
            pytest.fail("the block must not run")


@pytest.mark.anyio
async def test_lifespan_closes_the_store_at_exit(tmp_path: Path) -> None:
    container = make_container(store={"url": f"sqlite:///{tmp_path}/s.db"})
    async with lifespan(container) as entered:
        assert entered is container
        store = container.store()
        assert isinstance(store, SQLiteStore)
        await container.runtimes()["atlas"].run(Namespace("a"), "hi")
    with pytest.raises(StoreError, match="is closed"):
        await store.load(Namespace("a"))


@pytest.mark.anyio
async def test_lifespan_closes_the_store_when_the_block_fails(tmp_path: Path) -> None:
    container = make_container(store={"url": f"sqlite:///{tmp_path}/s.db"})
    with pytest.raises(RuntimeError, match="boom"):
        async with lifespan(container):
            store = container.store()
            raise RuntimeError("boom")
    with pytest.raises(StoreError, match="is closed"):
        await store.list()


@pytest.mark.anyio
async def test_lifespan_can_be_entered_again_with_a_fresh_store(tmp_path: Path) -> None:
    container = make_container(store={"url": f"sqlite:///{tmp_path}/s.db"})
    async with lifespan(container):
        first = container.store()
        await container.runtimes()["atlas"].run(Namespace("a"), "hi")
    async with lifespan(container):
        second = container.store()
        assert second is not first
        session = await second.load(Namespace("a"))
        assert session is not None
        assert len(session.messages) == 2


class ClosingLLM(ScriptedProvider):
    def __init__(self) -> None:
        super().__init__([])
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


@pytest.mark.anyio
async def test_lifespan_closes_an_llm_client_that_can_be_closed() -> None:
    container = make_container()
    llm = ClosingLLM()
    container.llm.override(providers.Object(llm))
    async with lifespan(container):
        assert not llm.closed
    assert llm.closed


def test_built_in_tools_come_from_settings_before_the_applications() -> None:
    container = make_container(tools=["current_time", "calculate"])
    container.tool_factory.override(providers.Object(lambda profile: [lookup]))
    assert tool_names(container.runtimes()["atlas"]) == ["current_time", "calculate", "lookup"]
    assert tool_names(make_container(tools=[]).runtimes()["atlas"]) == []
