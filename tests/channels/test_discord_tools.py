"""The six Discord REST tools against the loopback fake Discord (orra's tests as behaviour)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from orra_di.channels.discord_tools import (
    DiscordConfig,
    channel_type_name,
    discord_tools,
    register_tools,
    user_display_name,
)
from orra_di.errors import ConfigurationError, ToolExecutionError, ToolInputError
from orra_di.tool import Tool, ToolContext, ToolRegistry

from .discord_fake import TOKEN, FakeDiscord

pytestmark = pytest.mark.anyio
CTX = ToolContext("discord:100:300:500")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


def tools(fake: FakeDiscord, token: str = TOKEN) -> dict[str, Tool]:
    config = DiscordConfig.from_token(token, fake.api_base)
    return {t.definition.name: t for t in discord_tools(config)}


def test_discord_config_url_base_and_headers() -> None:
    config = DiscordConfig.from_token("tok")
    assert config.url("channels/1") == "https://discord.com/api/v10/channels/1"
    custom = DiscordConfig(SecretStr("s3cr3t"), "http://127.0.0.1:9/api/")
    assert custom.url("/guilds/2") == "http://127.0.0.1:9/api/guilds/2"
    assert custom.headers()["Authorization"] == "Bot s3cr3t"
    assert "s3cr3t" not in repr(custom)
    with pytest.raises(ConfigurationError, match="empty"):
        DiscordConfig.from_token("  ")


def test_channel_type_names_and_display_names() -> None:
    assert [channel_type_name(k) for k in (0, 2, 4, 5, 13, 15, 99)] == [
        "text", "voice", "category", "announcement", "stage", "forum", "other",
    ]  # fmt: skip
    assert user_display_name({"username": "bob", "global_name": "Bobby"}) == "Bobby"
    assert user_display_name({"username": "bob", "global_name": None}) == "bob"


def test_register_tools_adds_all_six_with_schemas() -> None:
    registry = ToolRegistry()
    register_tools(registry, DiscordConfig.from_token("tok"))
    names = [d.name for d in registry.definitions()]
    assert names == [
        "list_channels", "get_channel_info", "get_messages",
        "send_message", "reply_to_message", "get_guild_info",
    ]  # fmt: skip
    for definition in registry.definitions():
        assert definition.input_schema["type"] == "object" and definition.input_schema["required"]


@pytest.mark.parametrize(
    ("name", "arguments", "field"),
    [
        ("send_message", {"channel_id": "1"}, "content"),
        ("reply_to_message", {"channel_id": "1", "content": "x"}, "message_id"),
        ("list_channels", {}, "guild_id"),
        ("get_messages", {}, "channel_id"),
        ("get_channel_info", {"channel_id": "  "}, "channel_id"),
        ("get_guild_info", {}, "guild_id"),
    ],
)
async def test_missing_fields(
    fake: FakeDiscord, name: str, arguments: dict[str, str], field: str
) -> None:
    with pytest.raises(ToolInputError, match=field):
        await tools(fake)[name].execute(arguments, CTX)


@pytest.mark.parametrize("name", ["send_message", "reply_to_message"])
async def test_content_over_2000_characters_is_refused(fake: FakeDiscord, name: str) -> None:
    arguments = {"channel_id": "1", "message_id": "2", "content": "x" * 2001}
    with pytest.raises(ToolInputError, match="2000"):
        await tools(fake)[name].execute(arguments, CTX)
    assert fake.posts == []
    ok = {"channel_id": "1", "message_id": "2", "content": "é" * 2000}  # 4,000 bytes: fine
    assert "in channel 1" in await tools(fake)[name].execute(ok, CTX)


async def test_send_and_reply_post_to_discord(fake: FakeDiscord) -> None:
    sent = await tools(fake)["send_message"].execute({"channel_id": "7", "content": "hi"}, CTX)
    assert sent.startswith("Sent message ") and sent.endswith(" in channel 7.")
    arguments = {"channel_id": "7", "message_id": "42", "content": "yes"}
    replied = await tools(fake)["reply_to_message"].execute(arguments, CTX)
    assert replied.startswith("Replied to message 42 with message ")
    assert fake.posts[1].body == {"content": "yes", "message_reference": {"message_id": "42"}}


async def test_list_channels_groups_by_category(fake: FakeDiscord) -> None:
    fake.guild_channels["100"] = [
        {"id": "1", "type": 4, "name": "Talk"},
        {"id": "2", "type": 0, "name": "general", "parent_id": "1", "topic": "chat here"},
        {"id": "3", "type": 2, "name": "voice", "parent_id": "1"},
        {"id": "4", "type": 0, "name": "loose"},
    ]
    out = await tools(fake)["list_channels"].execute({"guild_id": "100"}, CTX)
    assert out == (
        "📁 Talk (id: 1)\n"
        "  # general [text] (id: 2) — chat here\n"
        "  🔊 voice [voice] (id: 3)\n"
        "\n(uncategorized)\n"
        "  #loose [text] (id: 4)"
    )
    fake.guild_channels["101"] = []
    empty = await tools(fake)["list_channels"].execute({"guild_id": "101"}, CTX)
    assert empty == "No channels found in this server."


async def test_channel_info_messages_and_guild_info(fake: FakeDiscord) -> None:
    fake.channels["300"] = {"id": "300", "type": 0, "name": "general", "topic": None}
    info = await tools(fake)["get_channel_info"].execute({"channel_id": "300"}, CTX)
    assert info == "#general (id: 300)\ntype: text\ntopic: (none)"
    newest = fake.message("second", username="bob") | {"pinned": True}
    newest["author"]["global_name"] = "Bobby"
    oldest = fake.message("first") | {"edited_timestamp": "2026-12-07T10:01:00+00:00"}
    fake.history["300"] = [newest, oldest]
    out = await tools(fake)["get_messages"].execute({"channel_id": "300", "limit": 500}, CTX)
    stamp = "2026-12-07T10:00:00.000000+00:00"
    assert out == f"[{stamp}] @alice (edited): first\n[{stamp}] @Bobby 📌: second"
    fake.guilds["100"] = {
        "id": "100",
        "name": "Acme",
        "owner_id": "9",
        "approximate_member_count": 12,
    }
    guild = await tools(fake)["get_guild_info"].execute({"guild_id": "100"}, CTX)
    assert guild == "Acme (id: 100)\nowner: 9\nmembers: ~12"


async def test_discord_errors_are_tool_errors_without_the_token(fake: FakeDiscord) -> None:
    with pytest.raises(ToolExecutionError, match="Discord API 404") as missing:
        await tools(fake)["get_channel_info"].execute({"channel_id": "404404"}, CTX)
    with pytest.raises(ToolExecutionError, match="Discord API 401") as refused:
        await tools(fake, "bad-token-xyz")["get_guild_info"].execute({"guild_id": "1"}, CTX)
    assert "bad-token" not in str(refused.value) and TOKEN not in str(missing.value)
