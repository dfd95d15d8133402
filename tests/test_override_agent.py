"""``override_agent``: one agent of a container replaced for a ``with`` block.

The README tells test writers to use it instead of overriding ``agent_runtime``
by hand, so what it promises is checked here: the other agents are still built
by the container (with its other overrides), the replacement is seen through a
map fetched before the block and by delegation, and leaving the block undoes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from orra_di import AgentProfile, ConfigurationError, InMemoryStore, Namespace, Runtime
from orra_di.containers import Container
from orra_di.containers import override_agent as from_containers
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, override_agent, tool_calls

TWO_AGENTS = [{"name": "Atlas"}, {"name": "CodeBot", "personality": "terse"}]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def make_container(**settings: Any) -> Container:
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", [])
    settings.setdefault("agents", TWO_AGENTS)
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


def test_testing_re_exports_the_containers_helper() -> None:
    assert override_agent is from_containers


@pytest.mark.anyio
async def test_one_agent_is_replaced_and_delegation_reaches_the_replacement() -> None:
    container = make_container()
    runtimes = container.runtimes()  # fetched before the block: the map is late-bound
    codebot_llm = ScriptedProvider(["code from the replacement"])
    replacement = Runtime(codebot_llm, container.store())
    atlas_llm = ScriptedProvider(
        [tool_calls(call("delegate_to_agent", {"agent": "CodeBot", "task": "write"})), "done"]
    )
    container.llm.override(providers.Object(atlas_llm))

    with override_agent(container, "codebot", replacement):  # names are case-insensitive
        assert runtimes["CodeBot"] is replacement
        atlas = runtimes["Atlas"]
        assert atlas is not replacement
        assert atlas.llm is atlas_llm  # still built by the container, other overrides in force
        result = await atlas.run(Namespace("acme"), "ask codebot")

    assert result.final_message.content == "done"
    assert len(codebot_llm.requests) == 1
    (answer,) = result.turns[0].tool_results
    assert not answer.is_error
    assert "code from the replacement" in answer.content
    assert runtimes["CodeBot"] is not replacement  # the block's end removed the override
    assert runtimes["CodeBot"].llm is atlas_llm


def test_a_factory_is_called_with_the_agents_profile() -> None:
    container = make_container()
    seen: list[AgentProfile] = []

    def build(profile: AgentProfile) -> Runtime:
        seen.append(profile)
        return Runtime(ScriptedProvider([]), InMemoryStore())

    with override_agent(container, "CodeBot", build):
        built = container.runtimes()["codebot"]
    assert isinstance(built, Runtime)
    assert [p.name for p in seen] == ["CodeBot"]
    assert seen[0].personality == "terse"


def test_an_unknown_agent_is_a_configuration_error_naming_the_agents() -> None:
    container = make_container()
    with (
        pytest.raises(ConfigurationError, match=r"no agent named 'Nobody'.*Atlas, CodeBot"),
        override_agent(container, "Nobody", Runtime(ScriptedProvider([]), InMemoryStore())),
    ):
        pass
