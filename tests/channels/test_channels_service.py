"""The configured channels through the container: settings, providers, channels_running, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers
from typer.testing import CliRunner

pytest.importorskip("discord")

from discord.gateway import DiscordWebSocket
from discord.http import Route

from orra_di.channels import ChannelManager
from orra_di.channels.service import channels_running, configured_channels
from orra_di.cli import app
from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError
from orra_di.provider import CompletionRequest
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

from .discord_fake import TOKEN, FakeDiscord

AGENTS = [{"name": "Atlas"}, {"name": "CodeBot"}]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def make_container(**settings: Any) -> Container:
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", [])
    settings.setdefault("agents", AGENTS)
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


def discord_settings(fake: FakeDiscord, **extra: Any) -> dict[str, Any]:
    section = {"token": TOKEN, "api_base": fake.api_base, "gateway_url": fake.gateway_url}
    return {"discord": section | extra}


def test_settings_validate_and_hide_the_token() -> None:
    settings = load_settings(channels={"discord": {"token": "abcdefgh-9999"}, "on_busy": "reply"})
    assert settings.channels.on_busy == "reply"
    assert "abcdefgh" not in repr(settings) and "abcdefgh" not in str(settings.channels)
    [found] = configured_channels(settings)
    assert found.name == "discord" and found.details["token"] == "****9999"
    with pytest.raises(ConfigurationError, match="allowed_users"):
        load_settings(channels={"discord": {"token": "t", "filter": "dms"}})
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        load_settings(channels={"max_concurrency": 0})
    with pytest.raises(ConfigurationError, match="namespace_prefix"):
        load_settings(channels={"discord": {"namespace_prefix": "a:b"}})
    assert configured_channels(load_settings()) == []


def test_container_builds_adapter_and_managers_from_settings() -> None:
    container = make_container(channels={"max_concurrency": 3, "on_busy": "reply"})
    adapter = container.channel_adapter()
    assert adapter.limiter.total_tokens == 3 and adapter.on_busy == "reply"
    manager = container.channel_manager()
    assert isinstance(manager, ChannelManager) and manager.shutdown_timeout == 5.0
    with pytest.raises(ConfigurationError, match=r"channels\.discord\.token is not set"):
        container.discord_channel()


def test_discord_tools_reach_every_agent_when_asked() -> None:
    container = make_container(channels={"discord": {"token": "t0k3n", "tools": True}})
    names = [d.name for d in container.runtimes()["codebot"].tools.definitions()]
    assert {"list_channels", "send_message", "get_guild_info"} <= set(names)
    plain = make_container()
    assert "send_message" not in [d.name for d in plain.runtimes()["atlas"].tools.definitions()]


@pytest.mark.anyio
async def test_no_channel_configured_is_a_clear_error() -> None:
    container = make_container()
    with pytest.raises(ConfigurationError, match="no channel is configured"):
        async with channels_running(container):
            pass
    async with channels_running(container, required=False) as running:
        assert running.managers == {}


@pytest.mark.anyio
async def test_channels_running_serves_discord_with_the_agents(fake: FakeDiscord) -> None:
    def answer(request: CompletionRequest) -> str:
        system = request.messages[0].content if request.messages else ""
        agent = "CodeBot" if "CodeBot" in system else "Atlas"
        return f"{agent} says hi"

    container = make_container(channels=discord_settings(fake, filter="all"))
    container.llm.override(providers.Object(ScriptedProvider(answer)))
    async with lifespan(container), channels_running(container) as running:
        assert running.connected() == {"discord": True}
        store = container.store()
        await fake.say("@codebot hello", author_id="42")
        posts = await fake.wait_posts(1)
    assert posts[0].body["content"] == "CodeBot says hi"
    session = await store.load("discord:100:300:42")
    assert session is not None and session.messages[0].content == "hello"


@pytest.mark.anyio
async def test_a_bad_token_fails_at_start_up(fake: FakeDiscord) -> None:
    settings = discord_settings(fake)
    settings["discord"]["token"] = "not-the-token"
    container = make_container(channels=settings)
    with pytest.raises(Exception, match="refused the bot token"):
        async with lifespan(container), channels_running(container):
            pass


def test_status_command_shows_the_configured_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["channels", "status"])
    assert result.exit_code == 0, result.output
    assert "no channel configured" in result.stdout
    monkeypatch.setenv("ORRA_CHANNELS__DISCORD__TOKEN", "secret-token-5678")
    result = CliRunner().invoke(app, ["channels", "status"])
    assert result.exit_code == 0 and "token=****5678" in result.stdout
    assert "secret-token" not in result.stdout and "on_busy=wait" in result.stdout


def test_run_without_a_channel_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    result = CliRunner().invoke(app, ["channels", "run"])
    assert result.exit_code == 1
    assert "error: no channel is configured" in result.stderr


@pytest.mark.anyio
async def test_channels_run_process_answers_and_stops_on_sigterm(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env |= {
        "ORRA_STORE__URL": f"sqlite:///{tmp_path}/s.sqlite3",
        "ORRA_TOOLS": "[]",
        "ORRA_CHANNELS__DISCORD__TOKEN": TOKEN,
        "ORRA_CHANNELS__DISCORD__FILTER": "all",
        "ORRA_CHANNELS__DISCORD__API_BASE": fake.api_base,
        "ORRA_CHANNELS__DISCORD__GATEWAY_URL": fake.gateway_url,
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    process = await anyio.open_process(
        [sys.executable, "-c", "from orra_di.cli import main; main()", "channels", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await fake.wait_connected(1)
        await fake.say("hello bot")
        posts = await fake.wait_posts(1)
        assert "hello bot" in posts[0].body["content"]  # the offline test model echoes
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            await process.wait()
        assert process.stderr is not None
        stderr = (await process.stderr.receive()).decode() if process.returncode else ""
        assert process.returncode == 0, stderr
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
