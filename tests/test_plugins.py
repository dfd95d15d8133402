"""Plugins: orra's plugin tests (spec §2E.4) as behaviour, then what orra lacked: start
failures isolated and named, dependency order, reverse shutdown, settings, and the
container handing plugins' tools, hooks and agents to the runtimes (orra bug 42)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from pydantic import BaseModel

from orra_di.agent import AgentProfile
from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError, OrraError, PluginError
from orra_di.hook import Hook
from orra_di.namespace import Namespace
from orra_di.plugins import (
    BasePlugin,
    DiscoveredPlugin,
    PluginConfig,
    PluginInfo,
    PluginRegistry,
    PluginState,
    registry_from_settings,
)
from orra_di.session import Session
from orra_di.settings import describe, load_settings
from orra_di.testing import ScriptedProvider, call, tool_calls
from orra_di.tool import Tool, tool

pytestmark = pytest.mark.anyio

EVENTS: list[str] = []


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    EVENTS.clear()


class Recording(BasePlugin):
    """Records its init and shutdown in EVENTS; may be told to fail."""

    version = "1.0.0"
    description = "records its life"

    def __init__(self, name: str, *, fail: bool = False, requires: Sequence[str] = ()) -> None:
        self.name = name  # type: ignore[misc]
        self.fail = fail
        self.requires = tuple(requires)  # type: ignore[misc]
        self.config: PluginConfig | None = None

    async def init(self, config: PluginConfig) -> None:
        if self.fail:
            raise RuntimeError("database unreachable")
        self.config = config
        EVENTS.append(f"init {self.name}")

    async def shutdown(self) -> None:
        EVENTS.append(f"shutdown {self.name}")


# -- orra's tests ------------------------------------------------------------------------


def test_plugin_config_get_set() -> None:
    config = PluginConfig()
    config.set("name", "x")
    config.set("on", True)
    config.set("count", 3)
    assert config.get_str("name") == "x"
    assert config.get_bool("on") is True
    assert config.get_int("count") == config.get_i64("count") == 3
    assert config.get_str("count") is None  # wrong type
    assert config.get_int("on") is None  # a bool is not a number
    assert config.get_str("missing") is None


async def test_registry_init_and_list() -> None:
    registry = PluginRegistry([Recording("a"), Recording("b")])
    assert await registry.init_all() == ["a", "b"]
    infos = registry.list()
    assert [(i.name, i.initialized, i.enabled) for i in infos] == [
        ("a", True, True),
        ("b", True, True),
    ]
    assert infos[0].version == "1.0.0"


async def test_disabled_plugin_not_initialized() -> None:
    registry = PluginRegistry([Recording("active"), Recording("inactive")])
    assert registry.set_enabled("inactive", False)
    assert await registry.start() == ["active"]
    assert EVENTS == ["init active"]
    assert registry.state("inactive") is PluginState.REGISTERED


async def test_shutdown_all_plugins() -> None:
    registry = PluginRegistry([Recording("a"), Recording("b")])
    await registry.start()
    outcomes = await registry.shutdown_all()
    assert outcomes == [("b", None), ("a", None)]  # reverse order, both fine


def test_empty_registry() -> None:
    registry = PluginRegistry()
    assert len(registry) == 0
    assert registry.list() == []


def test_set_enabled_returns_false_for_unknown() -> None:
    assert PluginRegistry().set_enabled("nope", True) is False


def test_plugin_info_serialization() -> None:
    text = PluginInfo(name="test", version="1.0.0").model_dump_json()
    assert '"name":"test"' in text
    assert '"version":"1.0.0"' in text


async def test_plugin_with_config() -> None:
    plugin = Recording("configured")
    registry = PluginRegistry([plugin])
    registry.configure("configured", {"api_url": "http://127.0.0.1:9"})
    await registry.start()
    assert plugin.config is not None
    assert plugin.config.get_str("api_url") == "http://127.0.0.1:9"


# -- failures are isolated and named -----------------------------------------------------


async def test_a_plugin_that_raises_in_init_fails_alone_and_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = PluginRegistry(
        [Recording("first"), Recording("broken", fail=True), Recording("last")]
    )
    with caplog.at_level(logging.ERROR, logger="orra_di.plugins"):
        started = await registry.start()
    assert started == ["first", "last"]  # orra stopped at the failure: "last" never started
    error = registry.errors["broken"]
    assert isinstance(error, PluginError)
    assert isinstance(error, OrraError)
    assert error.plugin == "broken"
    assert "plugin 'broken' failed" in str(error)
    assert "database unreachable" in str(error)
    assert "plugin 'broken' failed" in caplog.text
    info = {i.name: i for i in registry.list()}["broken"]
    assert info.state is PluginState.FAILED
    assert info.error is not None
    assert "database unreachable" in info.error
    assert await registry.shutdown() == [("last", None), ("first", None)]  # never the failed


async def test_plugins_start_after_what_they_require_and_stop_before_it() -> None:
    registry = PluginRegistry(
        [Recording("app", requires=["db"]), Recording("db"), Recording("cache", requires=["db"])]
    )
    assert await registry.start() == ["db", "app", "cache"]
    await registry.shutdown()
    assert EVENTS[3:] == ["shutdown cache", "shutdown app", "shutdown db"]


async def test_a_plugin_whose_requirement_failed_or_is_missing_fails_with_the_reason() -> None:
    registry = PluginRegistry(
        [
            Recording("db", fail=True),
            Recording("app", requires=["db"]),
            Recording("lonely", requires=["ghost"]),
            Recording("ok"),
        ]
    )
    assert await registry.start() == ["ok"]
    assert "requires 'db', which failed" in str(registry.errors["app"])
    assert "requires 'ghost', which is not installed or not enabled" in str(
        registry.errors["lonely"]
    )


async def test_a_dependency_cycle_fails_its_members_not_the_others() -> None:
    registry = PluginRegistry(
        [Recording("a", requires=["b"]), Recording("b", requires=["a"]), Recording("c")]
    )
    assert await registry.start() == ["c"]
    assert "cycle" in str(registry.errors["b"])


async def test_a_failing_shutdown_is_reported_and_the_others_still_stop() -> None:
    class BadStop(Recording):
        async def shutdown(self) -> None:
            raise OSError("socket already closed")

    registry = PluginRegistry([Recording("a"), BadStop("b")])
    await registry.start()
    outcomes = dict(await registry.shutdown())
    assert outcomes["a"] is None
    assert outcomes["b"] is not None
    assert "socket already closed" in str(outcomes["b"])
    assert EVENTS[-1] == "shutdown a"


class Units(BaseModel):
    units: str
    api_key: str


CONFIG = {"units": "K", "api_key": "sk-00000000"}


class Weather(BasePlugin):
    name = "weather"
    settings_model = Units

    async def init(self, config: PluginConfig) -> None:
        self.units = config.section(Units).units


async def test_invalid_plugin_settings_fail_that_plugin_naming_the_key_not_the_value() -> None:
    registry = PluginRegistry([Weather(), Recording("other")])
    registry.configure("weather", {"api_key": "sk-very-secret-value"})  # units missing
    assert await registry.start() == ["other"]
    message = str(registry.errors["weather"])
    assert "units" in message
    assert "sk-very-secret-value" not in message


def test_registering_something_that_is_not_a_plugin_says_what_a_plugin_needs() -> None:
    with pytest.raises(ConfigurationError, match="BasePlugin"):
        PluginRegistry().register(object())  # type: ignore[arg-type]
    registry = PluginRegistry([Recording("a")])
    with pytest.raises(ConfigurationError, match="two plugins are named 'a'"):
        registry.register(Recording("a"))


# -- settings ----------------------------------------------------------------------------


def test_orra_plugins_lists_the_enabled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_PLUGINS", '["weather", "audit"]')
    assert load_settings().plugins.enabled == ["weather", "audit"]


def test_plugin_settings_come_as_a_table_and_their_secrets_are_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ORRA_PLUGINS",
        json.dumps(
            {
                "enabled": ["weather"],
                "config": {
                    "weather": {
                        "units": "C",
                        "api_key": "sk-12345678",
                        "bearer": "b-secret-1",
                        "upstream": {"auth": "a-secret-2", "dsn": "postgres://u:p@h/db"},
                    }
                },
            }
        ),
    )
    settings = load_settings()
    assert settings.plugins.options("weather")["api_key"] == "sk-12345678"
    shown = json.dumps(describe(settings)) + repr(settings)
    for secret in ("sk-12345678", "b-secret-1", "a-secret-2", "u:p@h"):
        assert secret not in shown, secret
    assert '\\"units\\": \\"C\\"' in shown


def test_settings_for_a_plugin_that_is_not_enabled_are_an_error() -> None:
    with pytest.raises(ConfigurationError, match="settings are given for weather"):
        load_settings(plugins={"config": {"weather": {"units": "C"}}})


def test_the_list_form_beside_nested_variables_is_refused_not_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_PLUGINS", '["weather"]')
    monkeypatch.setenv("ORRA_PLUGINS__CONFIG", '{"weather": {"units": "C"}}')
    with pytest.raises(ConfigurationError, match="ORRA_PLUGINS__ENABLED"):
        load_settings()


def test_an_enabled_plugin_nobody_installed_is_a_configuration_error() -> None:
    settings = load_settings(plugins=["wether"])
    installed = [DiscoveredPlugin("weather", "tests.test_plugins:Weather")]
    with pytest.raises(ConfigurationError, match=r"'wether' is enabled.*installed: weather"):
        registry_from_settings(settings.plugins, installed)


def test_a_plugin_that_cannot_be_imported_is_recorded_as_failed_and_the_others_load() -> None:
    settings = load_settings(plugins=["broken", "weather"])
    installed = [
        DiscoveredPlugin("broken", "no_such_module_anywhere:Plugin"),
        DiscoveredPlugin("weather", f"{__name__}:Weather"),
    ]
    registry = registry_from_settings(settings.plugins, installed)
    assert registry.state("broken") is PluginState.FAILED
    assert "no_such_module_anywhere" in str(registry.errors["broken"])
    assert registry.state("weather") is PluginState.REGISTERED


async def test_an_entry_point_naming_a_class_gives_an_instance_that_starts() -> None:
    settings = load_settings(plugins={"enabled": ["weather"], "config": {"weather": CONFIG}})
    installed = [DiscoveredPlugin("weather", f"{__name__}:Weather")]
    registry = registry_from_settings(settings.plugins, installed)
    assert await registry.start() == ["weather"]
    plugin = registry.get("weather")
    assert isinstance(plugin, Weather)
    assert plugin.units == "K"


def test_an_entry_point_must_carry_the_plugins_own_name() -> None:
    settings = load_settings(plugins=["wx"])
    registry = registry_from_settings(
        settings.plugins, [DiscoveredPlugin("wx", f"{__name__}:Weather")]
    )
    assert "must carry the same name" in str(registry.errors["wx"])


# -- the container hands plugins' contributions to the runtimes ---------------------------


@tool
def forecast(city: str) -> str:
    """Tomorrow's weather in a city."""
    return f"sunny in {city}"


class SeenLoads(Hook):
    def __init__(self) -> None:
        self.loaded: list[str] = []

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self.loaded.append(namespace.key)


class Forecasts(BasePlugin):
    name = "forecasts"

    def __init__(self) -> None:
        self.hook = SeenLoads()

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        return [forecast]

    def hooks(self, agent: AgentProfile) -> Sequence[Hook]:
        return [self.hook]

    def agents(self) -> Sequence[AgentProfile]:
        return [AgentProfile(name="Meteo", personality="sunny")]


def container_with(registry: PluginRegistry, script: Any, **settings: Any) -> Container:
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", [])
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    container.plugins.override(providers.Object(registry))
    container.llm.override(ScriptedProvider(script))
    return container


async def test_a_plugins_tool_hook_and_agent_reach_the_runtimes() -> None:
    plugin = Forecasts()
    container = container_with(
        PluginRegistry([plugin]), [tool_calls(call("forecast", {"city": "Oslo"})), "Sunny."]
    )
    runtimes = container.runtimes()  # built before the start: refreshed by the lifespan
    async with lifespan(container):
        runtimes = container.runtimes()
        assert "meteo" in runtimes  # the plugin's agent, beside the configured one
        result = await runtimes["meteo"].run("acme:alice", "Weather in Oslo?")
    assert result.turns[0].tool_results[0].content == "sunny in Oslo"
    assert plugin.hook.loaded == ["acme:alice"]


async def test_a_failed_plugin_contributes_nothing_and_the_application_starts() -> None:
    class Broken(Forecasts):
        name = "broken"

        async def init(self, config: PluginConfig) -> None:
            raise RuntimeError("no licence")

    container = container_with(PluginRegistry([Broken()]), ["Hello."])
    async with lifespan(container):
        runtime = container.runtimes().default
        assert runtime.tools.get("forecast") is None
        assert (await runtime.run("acme", "hi")).final_message.content == "Hello."
        assert "no licence" in str(container.plugins().errors["broken"])


async def test_the_lifespan_stops_the_plugins_on_exit() -> None:
    registry = PluginRegistry([Recording("a"), Recording("b")])
    container = container_with(registry, [])
    async with lifespan(container):
        assert EVENTS == ["init a", "init b"]
    assert EVENTS[2:] == ["shutdown b", "shutdown a"]
