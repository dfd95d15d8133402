"""Round 8 review: channels and Discord, against docs/channels.md.

The 2,000-character split on line boundaries, the secrecy of the token, and what the
bot posts: a model's answer (which a user can steer) must not ping @everyone.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

pytest.importorskip("discord")

from discord.gateway import DiscordWebSocket
from discord.http import Route

from orra_di.channels import ChannelManager
from orra_di.channels.discord_channel import DiscordChannel
from orra_di.channels.discord_text import split_message
from orra_di.runtime import Runtime
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider
from tests.channels.discord_fake import BOT_ID, TOKEN, FakeDiscord

pytestmark = pytest.mark.anyio


def test_split_at_line_breaks_else_spaces_within_2000() -> None:
    rng = random.Random(8)
    for _ in range(200):
        lines = [
            " ".join("w" * rng.randint(1, 30) for _ in range(rng.randint(0, 40)))
            for _ in range(rng.randint(1, 60))
        ]
        text = "\n".join(lines)
        parts = split_message(text)
        assert all(0 < len(p) <= 2000 for p in parts)
        # nothing but the separators the cuts fell on is lost
        assert "".join(parts).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
            " ", ""
        )
        # every cut on a line break when the window held one: no line is broken in two
        # unless it is itself longer than the window
        for part in parts[:-1]:
            if all(len(line) <= 1000 for line in lines):
                assert part in text and (
                    text.find(part) + len(part) == len(text)
                    or text[text.find(part) + len(part)] == "\n"
                )


def test_split_counts_characters_not_bytes() -> None:
    parts = split_message("é" * 2000)
    assert parts == ["é" * 2000]
    assert split_message("") == []


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        yield server


async def test_the_bot_never_pings_everyone_or_roles(fake: FakeDiscord) -> None:
    channel = DiscordChannel(
        TOKEN, api_base=fake.api_base, gateway_url=fake.gateway_url, connect_timeout=10
    )
    assert TOKEN not in repr(channel)
    assert channel.token_hint == "****" + TOKEN[-4:]
    await channel.connect()
    runtime = Runtime(
        ScriptedProvider(lambda request: "@everyone @here <@&42> the release is out"),
        InMemoryStore(),
    )
    async with ChannelManager(runtime) as manager:
        await manager.start(channel, "discord")
        await fake.say(f"<@{BOT_ID}> announce it", mention_bot=True)
        (post,) = await fake.wait_posts(1)
    allowed = post.body.get("allowed_mentions")
    assert allowed is not None, post.body
    assert "everyone" not in allowed.get("parse", [])
    assert "roles" not in allowed.get("parse", []) and not allowed.get("roles")


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("get_channel_info", {"channel_id": "1/../../users/@me"}),
        ("get_messages", {"channel_id": "1/../../guilds/2/members"}),
        ("send_message", {"channel_id": "1/../../users/@me/channels", "content": "hi"}),
        ("reply_to_message", {"channel_id": "3", "message_id": "4?x=1", "content": "hi"}),
        ("get_guild_info", {"guild_id": "2/../../applications/@me"}),
        ("list_channels", {"guild_id": "%2e%2e"}),
    ],
)
async def test_discord_tools_take_ids_not_paths(
    httpserver: object, name: str, arguments: dict[str, str]
) -> None:
    # the model chooses the ids; one holding "/../" would reach any endpoint of the API
    # with the bot's token (httpx resolves the dot segments)
    from pydantic import SecretStr
    from pytest_httpserver import HTTPServer

    from orra_di import ToolContext, ToolInputError
    from orra_di.channels.discord_tools import DiscordConfig, discord_tools

    assert isinstance(httpserver, HTTPServer)
    config = DiscordConfig(SecretStr(TOKEN), api_base=httpserver.url_for("/api/v10"))
    tool = {t.definition.name: t for t in discord_tools(config)}[name]
    with pytest.raises(ToolInputError, match="id"):
        await tool.execute(arguments, ToolContext("t"))
    assert len(httpserver.log) == 0
