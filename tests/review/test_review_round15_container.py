"""Round 15 review: docs/container.md's provider table and its three ways of use.

What each provider is and gives, that the shared singletons are shared, that overrides
show through the map of runtimes at once, what ``override_agent`` and ``lifespan`` do,
and that a bad setting stops start-up with one message that hides secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from dependency_injector import providers

from orra_di import (
    AgentProfile,
    ConfigurationError,
    Namespace,
    PolicyRegistry,
    Runtime,
    StoreError,
    ToolPolicy,
)
from orra_di.containers import Container, lifespan
from orra_di.providers.offline import OfflineModel
from orra_di.providers.resilience import RetryingProvider
from orra_di.settings import load_settings
from orra_di.stores import SQLiteStore
from orra_di.testing import ScriptedProvider, TestModel, call, override_agent, reply, tool_calls

TWO = [{"name": "Atlas"}, {"name": "CodeBot"}]


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the developer's shell decides what the container builds."""
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def _container(**values: object) -> Container:
    container = Container()
    settings = load_settings(**{"store": {"url": "memory://"}, "tools": [], **values})
    container.settings.override(providers.Object(settings))
    return container


def test_the_providers_are_of_the_kinds_the_table_says() -> None:
    container = Container()
    kinds = {
        "settings": providers.Singleton,
        "llm": providers.Selector,
        "store": providers.Selector,
        "tokenizer": providers.Singleton,
        "context_memory": providers.Singleton,
        "policies": providers.Singleton,
        "prompt_builder": providers.Factory,
        "tool_factory": providers.Object,
        "hook_factory": providers.Object,
        "policy_factory": providers.Object,
        "agent_runtime": providers.Factory,
        "runtimes": providers.Singleton,
        "metrics": providers.Singleton,
        "instrumentation": providers.Singleton,
    }
    for name, kind in kinds.items():
        assert isinstance(getattr(container, name), kind), name


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, OfflineModel),
        ({"ORRA_LLM__KIND": "test"}, TestModel),
        ({"OPENAI_API_KEY": "sk-test-not-real"}, RetryingProvider),
    ],
)
def test_llm_is_chosen_by_the_resolved_kind(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: type
) -> None:
    """'the model, chosen by the resolved llm.kind: OfflineModel (nothing configured),
    TestModel (test), or the Anthropic or OpenAI adapter inside a RetryingProvider'."""
    if "OPENAI_API_KEY" in environment:
        pytest.importorskip("openai")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    llm = Container().llm()
    assert isinstance(llm, expected)
    if isinstance(llm, RetryingProvider):
        assert type(llm.llm).__name__ == "OpenAIProvider"


def test_tokenizer_context_memory_and_policies_are_shared_by_every_agent() -> None:
    runtimes = _container(agents=TWO).runtimes()
    atlas, codebot = runtimes["atlas"], runtimes["codebot"]
    assert atlas.window.tokenizer is codebot.window.tokenizer
    assert atlas.window.memory is codebot.window.memory
    assert atlas.policies is codebot.policies


def test_policies_overridden_after_the_map_was_built_show_through_at_once() -> None:
    """'llm, store, tokenizer, policies and the factories can be overridden at any time and
    show through the map at once.'"""
    container = _container(agents=TWO)
    runtimes = container.runtimes()
    assert runtimes["atlas"].policies.is_allowed(Namespace("acme"), "calculate")

    strict = PolicyRegistry(ToolPolicy.deny_all())
    container.policies.override(providers.Object(strict))
    assert runtimes["atlas"].policies is strict  # the same map, fetched before
    script = [tool_calls(call("delegate_to_agent", {"agent": "CodeBot", "task": "t"})), reply("ok")]
    container.llm.override(providers.Object(ScriptedProvider(script)))
    result = anyio.run(runtimes["atlas"].run, "acme:alice", "go")
    (refused,) = result.turns[0].tool_results
    assert refused.content == "tool 'delegate_to_agent' is not allowed in this session"


def test_override_agent_names_the_agents_when_the_name_is_unknown_and_takes_a_function() -> None:
    container = _container(agents=TWO)
    replacement = Runtime(TestModel(), container.store())
    with (
        pytest.raises(ConfigurationError) as caught,
        override_agent(container, "Nobody", replacement),
    ):
        pass
    assert (
        str(caught.value) == "no agent named 'Nobody' to override; the agents are: Atlas, CodeBot"
    )

    built: list[str] = []

    def build(profile: AgentProfile) -> Runtime:
        built.append(profile.name)
        return Runtime(ScriptedProvider(["from the function"]), container.store())

    with override_agent(container, "codebot", build):
        result = anyio.run(container.runtimes()["CodeBot"].run, "acme:bob", "hi")
    assert built == ["CodeBot"]
    assert result.final_message.content == "from the function"


def test_lifespan_fails_at_start_up_on_a_store_it_cannot_open(tmp_path: Path) -> None:
    """'lifespan opens the store (and reads from it once, so a bad URL … fails at start-up,
    not on the first message)'."""
    (tmp_path / "not-a-dir").write_text("a file where a directory should be")
    container = _container(store={"url": f"sqlite:///{tmp_path}/not-a-dir/sessions.db"})

    async def start() -> None:
        async with lifespan(container):
            raise AssertionError("the lifespan must not start")

    with pytest.raises(StoreError, match="not-a-dir"):
        anyio.run(start)


def test_lifespan_closes_the_store_on_exit_and_opens_a_fresh_one_next_time(
    tmp_path: Path,
) -> None:
    container = _container(store={"url": f"sqlite:///{tmp_path}/sessions.db"})
    seen = []

    async def once() -> None:
        async with lifespan(container):
            store = container.store()
            seen.append(store)
            await container.runtimes().default.run("web:u1", "hello")

    anyio.run(once)
    with pytest.raises(StoreError, match="closed"):
        anyio.run(seen[0].list)
    anyio.run(once)
    assert seen[1] is not seen[0]  # a fresh store, which the second exit closed too
    with pytest.raises(StoreError, match="closed"):
        anyio.run(seen[1].list)
    reopened = SQLiteStore(tmp_path / "sessions.db")
    assert [ns.key for ns in anyio.run(reopened.list)] == ["web:u1"]  # both runs were saved
    anyio.run(reopened.aclose)
