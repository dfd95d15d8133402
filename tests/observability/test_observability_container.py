"""Telemetry, logging and the working directory switched on from settings, through the container."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from orra_di import AgentProfile, Tool, tool
from orra_di.containers import Container
from orra_di.hooks.working_directory import set_working_directory
from orra_di.observability.metrics import MetricsCollector, names
from orra_di.observability.otel import OpenTelemetryInstrumentation
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@tool(name="exec")
def exec_tool(command: str, working_directory: str | None = None) -> str:
    """Pretend to run a command; report where."""
    return f"{command} in {working_directory}"


def container(script: Any, **settings: Any) -> Container:
    built = Container()
    built.settings.override(providers.Object(load_settings(store={"url": "memory://"}, **settings)))
    built.llm.override(providers.Object(ScriptedProvider(script)))

    def tools(profile: AgentProfile) -> Sequence[Tool]:
        return [exec_tool]

    built.tool_factory.override(providers.Object(tools))
    return built


def test_telemetry_is_off_by_default_and_on_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert container(["hi"]).instrumentation() is None
    monkeypatch.setenv("ORRA_TELEMETRY__ENABLED", "true")
    on = Container()
    instrumentation = on.instrumentation()
    assert isinstance(instrumentation, OpenTelemetryInstrumentation)
    assert instrumentation.provider_name == "offline"  # no key: the offline model
    assert on.runtimes().default.instrumentation is instrumentation


async def test_the_prometheus_setting_counts_standard_metrics_in_the_container() -> None:
    built = container(
        [tool_calls(call("exec", {"command": "ls"})), reply("done")], telemetry={"prometheus": True}
    )
    runtime = built.runtimes().default
    await runtime.run("acme:alice", "go")
    metrics = built.metrics()
    assert isinstance(metrics, MetricsCollector)
    assert metrics.get_counter(names.TOOL_CALLS, {"tool": "exec"}) == 1
    assert metrics.get_counter(names.REQUESTS_TOTAL, {"agent": "Atlas"}) == 1


async def test_the_logging_setting_adds_the_hook_and_hides_the_api_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = "sk-test-abcdefghijklmnop"

    @tool
    def leak() -> str:
        """Echo the key, as a careless tool might."""
        return f"using {key}"

    built = container(
        [tool_calls(call("leak")), reply("done")],
        logging={"enabled": True, "logger": "app.agents", "level": "DEBUG"},
        llm={"kind": "anthropic", "api_key": key},
    )
    built.tool_factory.override(providers.Object(lambda profile: [leak]))
    caplog.set_level(logging.DEBUG, logger="app.agents")
    runtime = built.runtimes().default
    await runtime.run("acme:alice", "go")
    messages = [r.getMessage() for r in caplog.records if r.name == "app.agents"]
    assert "[tool] leak → ok (using ***)" in messages
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "app.agents")
    assert key not in caplog.text


async def test_the_working_directory_setting_injects_and_offers_the_tool(tmp_path: Path) -> None:
    default = tmp_path / "default"
    default.mkdir()
    built = container(
        [tool_calls(call("exec", {"command": "ls"})), reply("done")],
        working_directory={"enabled": True, "default": str(default)},
    )
    runtime = built.runtimes().default
    assert "set_working_directory" in runtime.tools
    result = await runtime.run("acme:alice", "go")
    assert result.turns[0].tool_results[0].content == f"ls in {default}"

    await set_working_directory(runtime.store, "acme:bob", tmp_path)
    assert tmp_path != default
    built.llm.override(
        providers.Object(
            ScriptedProvider([tool_calls(call("exec", {"command": "ls"})), reply("ok")])
        )
    )
    runtime = built.runtimes().default
    result = await runtime.run("acme:bob", "go")
    assert result.turns[0].tool_results[0].content == f"ls in {tmp_path}"
