"""Round 14 review: docs/projects.md and docs/plugins.md beyond the CLI.

A project's prompt and tools reach runs started over the gateway (HTTP and the OpenAI
endpoint), a change applies from the next run, an inactive project refuses the run
and stores nothing; plugin discovery turns every broken entry point into a failed
plugin (the others load and start), and an unknown enabled name stops start-up.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import providers
from openai import AsyncOpenAI

from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError, PluginError
from orra_di.gateway import hash_api_key
from orra_di.plugins.registry import DiscoveredPlugin, registry_from_settings
from orra_di.plugins.settings import PluginSettings
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, tool_calls
from tests.gateway.live import live_server

pytestmark = pytest.mark.anyio

KEY = "orra_round14-project-key-000000000000000000000"


def both_tools(request: Any) -> Any:
    if not request.messages[-1].tool_results:
        return tool_calls(call("current_time"), call("calculate", {"expression": "6*7"}))
    return "done"


def project_container(model: ScriptedProvider) -> Container:
    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        agents=[{"name": "Atlas"}],
        tools=["calculate", "current_time"],
        gateway={
            "api_keys": [{"name": "p", "digest": hash_api_key(KEY), "tenant": "project:acme"}]
        },
    )
    container.settings.override(providers.Object(settings))
    container.llm.override(providers.Object(model))
    return container


async def test_a_projects_prompt_and_tools_apply_to_gateway_runs_and_follow_edits() -> None:
    model = ScriptedProvider(both_tools)
    container = project_container(model)
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        projects = container.projects()
        await projects.create(
            "acme", "Acme", system_prompt="You answer for Acme.", enabled_tools=["calculate"]
        )
        answer = await http.post(
            "/v1/chat",
            json={"message": "q", "namespace": "project:acme:user:bob"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert answer.status_code == 200
        calls = {c["name"]: c for c in answer.json()["tool_calls"]}
        assert calls["current_time"]["is_error"] is True
        assert "not allowed" in calls["current_time"]["content"]
        assert calls["calculate"]["content"] == "42"
        first = model.requests[0]
        assert [t.name for t in first.tools] == ["calculate"]
        assert first.messages[0].content.endswith("\n\nYou answer for Acme.")

        # an edit applies from the next run, also through the OpenAI endpoint
        await projects.edit("acme", system_prompt="Acme, second edition.", enabled_tools=[])
        seen = len(model.requests)
        async with AsyncOpenAI(base_url=base + "/v1", api_key=KEY) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="atlas", messages=[{"role": "user", "content": "q"}], user="user:bob"
            )
        assert raw.headers["x-orra-session"] == "project:acme:user:bob"
        later = model.requests[seen]
        assert list(later.tools) == []
        assert later.messages[0].content.endswith("\n\nAcme, second edition.")


async def test_an_inactive_project_refuses_gateway_runs_and_stores_nothing() -> None:
    container = project_container(ScriptedProvider(both_tools))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        projects = container.projects()
        await projects.create("acme", "Acme")
        await projects.deactivate("acme")
        body = {"message": "q", "namespace": "project:acme:user:bob"}
        plain = await http.post("/v1/chat", json=body, headers=headers)
        assert plain.status_code == 500 and plain.json()["code"] == "run_failed"
        assert "ProjectError" in plain.json()["error"] and "inactive" in plain.json()["error"]
        streamed = await http.post("/v1/chat/stream", json=body, headers=headers)
        assert "event: error" in streamed.text and "event: end" not in streamed.text
        assert await container.store().load("project:acme:user:bob") is None


PLUGINS = """
from orra_di.plugins import BasePlugin

class Good(BasePlugin):
    name = "good"

class Misnamed(BasePlugin):
    name = "other"

class Exploding(BasePlugin):
    name = "exploding"
    def __init__(self):
        raise RuntimeError("no licence")

NOT_A_PLUGIN = 42
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "round14_plugins.py").write_text(textwrap.dedent(PLUGINS))
    monkeypatch.syspath_prepend(str(tmp_path))
    return "round14_plugins"


async def test_every_broken_entry_point_is_a_failed_plugin_and_the_good_one_runs(
    plugin_module: str,
) -> None:
    found = [
        DiscoveredPlugin("good", f"{plugin_module}:Good", "good-dist", "1.0"),
        DiscoveredPlugin("missing", "round14_no_such_module:Plugin", "gone-dist", "0.1"),
        DiscoveredPlugin("misnamed", f"{plugin_module}:Misnamed"),
        DiscoveredPlugin("exploding", f"{plugin_module}:Exploding"),
        DiscoveredPlugin("number", f"{plugin_module}:NOT_A_PLUGIN"),
    ]
    enabled = ["missing", "misnamed", "exploding", "number", "good"]
    registry = registry_from_settings(PluginSettings(enabled=enabled), available=found)
    errors = registry.errors
    assert set(errors) == {"missing", "misnamed", "exploding", "number"}
    for name, error in errors.items():
        assert isinstance(error, PluginError) and error.plugin == name
    assert "round14_no_such_module" in str(errors["missing"])
    assert "'other'" in str(errors["misnamed"])
    assert "no licence" in str(errors["exploding"])
    assert "BasePlugin" in str(errors["number"])
    assert await registry.start() == ["good"]
    states = {info.name: info.state for info in registry.list()}
    assert states["good"] == "running"
    assert {states[n] for n in errors} == {"failed"}
    await registry.shutdown()


def test_an_enabled_name_nobody_declares_stops_start_up_naming_the_installed(
    plugin_module: str,
) -> None:
    found = [DiscoveredPlugin("good", f"{plugin_module}:Good", "good-dist", "1.0")]
    with pytest.raises(ConfigurationError) as caught:
        registry_from_settings(PluginSettings(enabled=["goood"]), available=found)
    assert "'goood'" in str(caught.value) and "installed: good" in str(caught.value)


async def test_a_failed_plugin_does_not_stop_the_container(plugin_module: str) -> None:
    container = Container()
    container.settings.override(
        providers.Object(load_settings(store={"url": "memory://"}, agents=[{"name": "Atlas"}]))
    )
    found = [DiscoveredPlugin("exploding", f"{plugin_module}:Exploding")]
    registry = registry_from_settings(PluginSettings(enabled=["exploding"]), available=found)
    container.plugins.override(providers.Object(registry))
    container.llm.override(providers.Object(ScriptedProvider(["hello"])))
    async with lifespan(container):
        result = await container.runtimes().default.run("acme:x", "hi")
        assert result.final_message.content == "hello"
        assert "exploding" in registry.errors
