"""Round 20: docs/plugins.md and docs/channels.md, claims earlier rounds left untested.

Plugins: which keys are secret-looking (every listed word, any case, any depth),
what an error may show, the order of a plugin's hooks against the application's, and
that only running plugins contribute. Channels: the documented defaults and that
the ``ORRA_CHANNELS__*`` limits reach the container's adapter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers
from pydantic import BaseModel

from orra_di import AgentProfile, Tool, tool
from orra_di.channels import GatewayChannel
from orra_di.channels.adapter import DEFAULT_BUSY_REPLY
from orra_di.channels.gateway_channel import GatewayRunError
from orra_di.channels.settings import ChannelSettings, DiscordSettings
from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError
from orra_di.hook import Hook
from orra_di.plugins import BasePlugin, PluginConfig, PluginRegistry
from orra_di.plugins.base import mask_secret_values
from orra_di.plugins.settings import PluginSettings
from orra_di.provider import CompletionRequest
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio

SECRET = "plugin-secret-value-4711"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No .env, orra.toml or secrets directory from the host."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(tmp_path_factory.mktemp("secrets")))
    monkeypatch.delenv("ORRA_CONFIG_FILE", raising=False)


# -- plugins: secrets -----------------------------------------------------------------

SECRET_KEYS = [
    "API_KEY",
    "Token",
    "client_secret",
    "PASSWORD",
    "db_passwd",
    "Credentials",
    "AUTHORIZATION",
    "x_bearer",
    "session_cookie",
    "hmacSignature",
    "DSN",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_every_listed_word_in_any_case_at_any_depth_is_masked(key: str) -> None:
    """docs/plugins.md: any key containing key, token, secret, password, passwd,
    credential, auth, bearer, cookie, signature or dsn, in any case, at any depth."""
    settings = {"servers": [{"name": "eu", "options": {key: SECRET}}], "units": "F"}
    masked = mask_secret_values(settings)
    assert SECRET not in repr(masked)
    assert masked["units"] == "F"
    assert masked["servers"][0]["name"] == "eu"
    assert SECRET not in repr(PluginConfig(settings))


def test_a_secret_given_as_a_list_or_table_is_masked_whole() -> None:
    """The value under a secret-looking key is hidden whatever it is, not only a string."""
    settings = {"tokens": [SECRET, "second"], "auth": {"user": "u", "pass": SECRET}}
    text = repr(mask_secret_values(settings))
    assert SECRET not in text and "second" not in text


def test_plugin_settings_dump_and_repr_hide_nested_secrets() -> None:
    """docs/plugins.md: masked by `orra-di config` (the settings dump) and in reprs."""
    plugins = PluginSettings.model_validate(
        {"enabled": ["weather"], "config": {"weather": {"upstream": {"Api-Key": SECRET}}}}
    )
    assert SECRET not in plugins.model_dump_json()
    assert SECRET not in repr(plugins)
    assert plugins.options("weather") == {"upstream": {"Api-Key": SECRET}}


class _Leaky(BasePlugin):
    """A plugin whose init fails with an error that repeats its own secret setting,
    as a client library's error often does (a URL with the key, a bad login)."""

    name = "leaky"

    async def init(self, config: PluginConfig) -> None:
        raise RuntimeError(f"login refused for key {config.get('api_key')}")


async def test_a_plugins_error_does_not_repeat_its_secret_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/plugins.md: values under secret-looking keys are masked "in errors": the
    PluginError shown by `orra-di plugins list` and logged must not carry them."""
    registry = PluginRegistry([_Leaky()])
    registry.configure("leaky", {"api_key": SECRET})
    assert await registry.start() == []
    error = registry.errors["leaky"]
    assert "login refused" in str(error)
    assert SECRET not in str(error)
    assert SECRET not in (registry.list()[0].error or "")
    assert SECRET not in caplog.text


# -- plugins: contributions -------------------------------------------------------------


class _Recorder(Hook):
    """Writes its label into a shared list before each provider call."""

    def __init__(self, label: str, seen: list[str]) -> None:
        self.label = label
        self.seen = seen

    async def before_provider_call(self, request: CompletionRequest) -> None:
        self.seen.append(self.label)


class _Contributor(BasePlugin):
    """A plugin with a tool, a hook and an agent, counting who asked for its tools."""

    name = "contrib"

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen
        self.asked_for: list[str] = []

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        self.asked_for.append(agent.name)

        @tool
        def plugin_echo(text: str) -> str:
            """Echo the text back."""
            return text

        return [plugin_echo]

    def hooks(self, agent: AgentProfile) -> Sequence[Hook]:
        return [_Recorder("plugin", self.seen)]

    def agents(self) -> Sequence[AgentProfile]:
        return [AgentProfile(name="PluginAgent")]


def _container(registry: PluginRegistry, seen: list[str], **settings: Any) -> Container:
    container = Container()
    loaded = load_settings(store={"url": "memory://"}, tools=[], **settings)
    container.settings.override(providers.Object(loaded))
    container.plugins.override(providers.Object(registry))
    container.llm.override(ScriptedProvider(lambda request: "done"))
    container.hook_factory.override(
        providers.Object(lambda profile: [_Recorder("application", seen)])
    )
    return container


async def test_a_plugins_hooks_run_after_the_applications_own() -> None:
    """docs/plugins.md: "A plugin's hooks run after the application's own"."""
    seen: list[str] = []
    registry = PluginRegistry([_Contributor(seen)])
    container = _container(registry, seen)
    async with lifespan(container):
        runtimes = container.runtimes()
        await runtimes.default.run("acme:alice", "hello")
    assert seen[:2] == ["application", "plugin"]


async def test_the_plugins_agent_stands_beside_the_configured_ones_and_tools_reach_each() -> None:
    """docs/plugins.md: `agents()` adds agents beside the configured ones, and
    `tools(agent)` is asked for each agent's runtime."""
    seen: list[str] = []
    plugin = _Contributor(seen)
    registry = PluginRegistry([plugin])
    container = _container(registry, seen, agents=[{"name": "Atlas"}, {"name": "CodeBot"}])
    async with lifespan(container):
        runtimes = container.runtimes()
        names = {p.name for p in runtimes.profiles}
        assert {"Atlas", "CodeBot", "PluginAgent"} <= names
        for name in ("atlas", "codebot", "pluginagent"):
            assert "plugin_echo" in {t.definition.name for t in runtimes[name].tools}
    assert {"Atlas", "CodeBot", "PluginAgent"} <= set(plugin.asked_for)


async def test_a_disabled_or_stopped_plugin_contributes_nothing() -> None:
    """docs/plugins.md: "Only running plugins contribute"."""
    seen: list[str] = []
    plugin = _Contributor(seen)
    registry = PluginRegistry([plugin])
    profile = AgentProfile(name="Atlas")
    assert registry.tools(profile) == [] and registry.agents() == []  # registered only
    registry.set_enabled("contrib", False)
    assert await registry.start() == []
    assert registry.tools(profile) == [] and registry.hooks(profile) == []
    registry.set_enabled("contrib", True)
    assert await registry.start() == ["contrib"]
    assert [t.definition.name for t in registry.tools(profile)] == ["plugin_echo"]
    await registry.shutdown()
    assert registry.tools(profile) == [] and registry.agents() == []


class _Units(BaseModel):
    units: str = "C"


class _Typed(BasePlugin):
    name = "typed"
    settings_model = _Units

    def __init__(self) -> None:
        self.initialised = False

    async def init(self, config: PluginConfig) -> None:
        self.initialised = True


async def test_settings_model_is_checked_before_init_runs() -> None:
    """docs/plugins.md: `settings_model` is "checked before `init`": a bad section
    fails the plugin without calling `init`."""
    plugin = _Typed()
    registry = PluginRegistry([plugin])
    registry.configure("typed", {"units": ["not", "a", "string"]})
    assert await registry.start() == []
    assert plugin.initialised is False
    assert "units" in str(registry.errors["typed"])


# -- channels ---------------------------------------------------------------------------


def test_the_channel_defaults_are_the_documented_ones() -> None:
    """docs/channels.md's two tables, default column."""
    section = load_settings().channels
    assert section.max_concurrency == 8
    assert section.on_busy == "wait"
    assert section.busy_reply == DEFAULT_BUSY_REPLY
    assert section.busy_reply.startswith("I'm still answering")
    assert section.max_waiting == 16
    assert section.max_message_chars == 32_000
    assert section.shutdown_timeout == 5
    discord = section.discord
    assert discord.token is None
    assert discord.filter == "mentions"
    assert discord.allowed_users == ()
    assert discord.namespace_prefix == "discord"
    assert discord.tools is False
    assert discord.connect_timeout == 30


def test_the_dms_filter_without_allowed_users_is_refused() -> None:
    """docs/channels.md: `dms` answers "only direct messages from `allowed_users`", so
    an empty list would answer nobody: a configuration mistake said at load."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(channels={"discord": {"filter": "dms"}})
    assert "allowed_users" in str(caught.value)


def test_a_namespace_prefix_must_be_one_segment() -> None:
    """docs/channels.md: `namespace_prefix` is the *first segment* of the namespaces."""
    with pytest.raises(ValueError, match="segment"):
        DiscordSettings(namespace_prefix="team:discord")
    assert ChannelSettings(discord={"namespace_prefix": "chat"}).discord.namespace_prefix == "chat"


async def test_max_message_chars_from_the_environment_reaches_the_container_adapter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/channels.md: `ORRA_CHANNELS__MAX_MESSAGE_CHARS`: longer messages get an
    error answer and start no run."""
    monkeypatch.setenv("ORRA_CHANNELS__MAX_MESSAGE_CHARS", "10")
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    calls: list[CompletionRequest] = []

    def answer(request: CompletionRequest) -> str:
        calls.append(request)
        return "ok"

    container = Container()
    container.llm.override(ScriptedProvider(answer))
    async with lifespan(container):
        gateway = GatewayChannel(timeout=30)
        async with container.channel_manager() as manager:
            await manager.start(gateway, "web")
            with pytest.raises(GatewayRunError) as caught:
                await gateway.submit("x" * 11, namespace="acme:alice")
            assert "10" in str(caught.value)
            reply = await gateway.submit("x" * 10, namespace="acme:alice")
            assert reply.message.content == "ok"
    assert len(calls) == 1


async def test_on_busy_reply_from_the_environment_answers_a_busy_session_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/channels.md: `on_busy = "reply"` answers a busy session at once with
    `busy_reply` (here set through ORRA_CHANNELS__BUSY_REPLY) and does not run it."""
    monkeypatch.setenv("ORRA_CHANNELS__ON_BUSY", "reply")
    monkeypatch.setenv("ORRA_CHANNELS__BUSY_REPLY", "hold on")
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    release = anyio.Event()
    started = anyio.Event()
    calls: list[str] = []

    class Slow(ScriptedProvider):
        async def complete(self, request: CompletionRequest) -> Any:  # type: ignore[override]
            calls.append("run")
            started.set()
            await release.wait()
            return await super().complete(request)

    container = Container()
    container.llm.override(Slow(lambda request: "first answer"))
    async with lifespan(container):
        gateway = GatewayChannel(timeout=30)
        async with container.channel_manager() as manager:
            await manager.start(gateway, "web")
            first: list[str] = []

            async def ask_first() -> None:
                reply = await gateway.submit("one", namespace="acme:alice")
                first.append(str(reply.message.content))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(ask_first)
                await started.wait()
                busy = await gateway.submit("two", namespace="acme:alice")
                assert busy.busy is True
                assert busy.message.content == "hold on"
                release.set()
    assert first == ["first answer"]
    assert calls == ["run"]


class _LeakyTools(BasePlugin):
    """Starts, then fails to give its tools and to stop, quoting its token each time."""

    name = "leakytools"

    async def init(self, config: PluginConfig) -> None:
        self.token = config.get("token")

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        raise RuntimeError(f"upstream refused token {self.token}")

    async def shutdown(self) -> None:
        raise RuntimeError(f"could not revoke {self.token}")


async def test_tools_and_shutdown_errors_do_not_repeat_a_secret_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/plugins.md: masked in errors, whichever of the plugin's methods raised."""
    registry = PluginRegistry([_LeakyTools()])
    registry.configure("leakytools", {"token": SECRET})
    assert await registry.start() == ["leakytools"]
    assert registry.tools(AgentProfile(name="Atlas")) == []
    assert "upstream refused" in str(registry.errors["leakytools"])
    assert SECRET not in str(registry.errors["leakytools"])
    [(name, error)] = await registry.shutdown()
    assert name == "leakytools" and error is not None
    assert "could not revoke" in str(error)
    assert SECRET not in str(error)
    assert SECRET not in caplog.text


LEAKY_MODULE = """\
from orra_di.plugins import BasePlugin


class LeakyPlugin(BasePlugin):
    name = "leaky"
    description = "Fails to log in, quoting its key"

    async def init(self, config):
        raise RuntimeError("login refused for key " + str(config.get("api_key")))
"""


def test_plugins_list_shows_a_failed_plugins_reason_with_its_secret_masked(tmp_path: Path) -> None:
    """docs/plugins.md: `orra-di plugins list` shows a failed plugin "and why", and
    values under secret-looking keys are masked in errors. The plugin is installed as
    a distribution is found: a ``.dist-info`` with its entry point on the path."""
    site = tmp_path / "site"
    dist = site / "orra_leaky-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: orra-leaky\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[orra_di.plugins]\nleaky = orra_leaky:LeakyPlugin\n")
    (site / "orra_leaky.py").write_text(LEAKY_MODULE)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        COLUMNS="400",
        PYTHONPATH=os.pathsep.join([str(ROOT), str(site)]),
        ORRA_STORE__URL="memory://",
        ORRA_PLUGINS=json.dumps({"enabled": ["leaky"], "config": {"leaky": {"api_key": SECRET}}}),
    )
    done = subprocess.run(
        [sys.executable, "-m", "orra_di", "plugins", "list"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    shown = done.stdout + done.stderr
    assert "leaky" in shown
    assert "login refused" in shown, shown
    assert SECRET not in shown
