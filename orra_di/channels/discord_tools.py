"""The six Discord REST tools and their shared :class:`DiscordConfig` (``orra-di[discord]``).

``list_channels``, ``get_channel_info``, ``get_messages``, ``send_message``,
``reply_to_message`` and ``get_guild_info``, with orra's outputs (spec
§2C.13). Sent text is limited to 2,000 *characters* (orra counted bytes,
spec §5.6/26). Requests go through httpx with a timeout; the token is sent as
``Authorization: Bot <token>`` and never appears in an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import SecretStr

from orra_di.channels.discord_text import DISCORD_MESSAGE_LIMIT
from orra_di.errors import ConfigurationError, ToolExecutionError, ToolInputError, install_hint
from orra_di.message import JsonValue
from orra_di.tool import Tool, ToolContext, ToolDefinition, ToolRegistry

__all__ = [
    "DiscordConfig",
    "channel_type_name",
    "discord_tools",
    "register_tools",
    "user_display_name",
]

DEFAULT_API_BASE = "https://discord.com/api/v10"

_TYPE_NAMES = {0: "text", 2: "voice", 4: "category", 5: "announcement", 13: "stage", 15: "forum"}
_TYPE_PREFIX = {0: "#", 2: "🔊", 5: "📢", 13: "🎤", 15: "💬"}


@dataclass(frozen=True)
class DiscordConfig:
    """A bot token and where Discord's REST API is (``api_base``), for tools and hooks."""

    token: SecretStr
    api_base: str = DEFAULT_API_BASE
    timeout: float = 30.0
    user_agent: str = field(default="orra-di")

    def __post_init__(self) -> None:
        if not self.token.get_secret_value().strip():
            raise ConfigurationError("the Discord bot token is empty")
        object.__setattr__(self, "api_base", self.api_base.rstrip("/"))

    @classmethod
    def from_token(cls, token: str, api_base: str = DEFAULT_API_BASE) -> DiscordConfig:
        return cls(SecretStr(token), api_base)

    def url(self, path: str) -> str:
        return f"{self.api_base}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bot {self.token.get_secret_value()}",
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """The JSON answer of one call; :class:`ToolExecutionError` on failure."""
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - only without the extra
            hint = install_hint("discord")
            raise ConfigurationError(f"the Discord tools need httpx: {hint}") from exc
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.request(
                    method, self.url(path), headers=self.headers(), json=body, params=params
                )
        except httpx.HTTPError as exc:
            raise ToolExecutionError(f"Discord request failed: {type(exc).__name__}") from None
        if not response.is_success:
            raise ToolExecutionError(f"Discord API {response.status_code}: {response.text[:500]}")
        try:
            return response.json()
        except ValueError as exc:
            raise ToolExecutionError(f"parse error: {exc}") from None


def channel_type_name(kind: int) -> str:
    return _TYPE_NAMES.get(kind, "other")


def user_display_name(user: Mapping[str, Any]) -> str:
    """``global_name`` when set, else ``username``."""
    return str(user.get("global_name") or user.get("username") or "unknown")


def _required(arguments: JsonValue, *names: str) -> list[str]:
    if not isinstance(arguments, dict):
        raise ToolInputError("arguments must be an object")
    values = []
    for name in names:
        value = arguments.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ToolInputError(f"missing required field: {name}")
        value = value.strip()
        if name.endswith("_id") and not (value.isascii() and value.isdigit()):
            # ids go into the URL's path: "1/../../users/@me" would reach another endpoint
            raise ToolInputError(f"{name} must be a Discord id (digits only), got {value!r}")
        values.append(value)
    return values


def _check_length(content: str) -> None:
    if len(content) > DISCORD_MESSAGE_LIMIT:
        raise ToolInputError(
            f"message content exceeds {DISCORD_MESSAGE_LIMIT} character limit "
            f"({len(content)} characters)"
        )


def _schema(properties: dict[str, Any], required: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_STR = {"type": "string"}
_GUILD_ID = {**_STR, "description": "The server (guild) id"}


class _DiscordTool:
    name = ""
    description = ""
    properties: ClassVar[dict[str, Any]] = {}
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: DiscordConfig) -> None:
        self.config = config

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(
            name=self.name,
            description=self.description,
            input_schema=_schema(self.properties, self.required),
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        raise NotImplementedError


class ListChannelsTool(_DiscordTool):
    name = "list_channels"
    description = "List the channels of a Discord server (guild), grouped by category."
    properties: ClassVar[dict[str, Any]] = {"guild_id": _GUILD_ID}
    required: ClassVar[tuple[str, ...]] = ("guild_id",)

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        (guild_id,) = _required(arguments, "guild_id")
        channels = await self.config.request("GET", f"guilds/{guild_id}/channels")
        if not channels:
            return "No channels found in this server."
        lines: list[str] = []
        for category in (c for c in channels if c.get("type") == 4):
            lines.append(f"\n📁 {category.get('name') or 'unnamed'} (id: {category['id']})")
            for child in (c for c in channels if c.get("parent_id") == category["id"]):
                kind = int(child.get("type", -1))
                prefix = _TYPE_PREFIX.get(kind, "·")
                topic = f" — {child['topic']}" if child.get("topic") else ""
                lines.append(
                    f"  {prefix} {child.get('name')} [{channel_type_name(kind)}] "
                    f"(id: {child['id']}){topic}"
                )
        loose = [c for c in channels if c.get("type") != 4 and not c.get("parent_id")]
        if loose:
            lines.append("\n(uncategorized)")
            for channel in loose:
                kind = int(channel.get("type", -1))
                lines.append(
                    f"  #{channel.get('name')} [{channel_type_name(kind)}] (id: {channel['id']})"
                )
        return "\n".join(lines).lstrip()


class GetChannelInfoTool(_DiscordTool):
    name = "get_channel_info"
    description = "Get a Discord channel's name, type and topic."
    properties: ClassVar[dict[str, Any]] = {"channel_id": {**_STR, "description": "The channel id"}}
    required: ClassVar[tuple[str, ...]] = ("channel_id",)

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        (channel_id,) = _required(arguments, "channel_id")
        channel = await self.config.request("GET", f"channels/{channel_id}")
        kind = channel_type_name(int(channel.get("type", -1)))
        topic = channel.get("topic") or "(none)"
        return f"#{channel.get('name')} (id: {channel['id']})\ntype: {kind}\ntopic: {topic}"


class GetMessagesTool(_DiscordTool):
    name = "get_messages"
    description = "Read recent messages of a Discord channel, oldest first."
    properties: ClassVar[dict[str, Any]] = {
        "channel_id": {**_STR, "description": "The channel id"},
        "limit": {"type": "integer", "description": "How many (1-100, default 20)"},
        "before": {**_STR, "description": "Only messages before this message id"},
    }
    required: ClassVar[tuple[str, ...]] = ("channel_id",)

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        (channel_id,) = _required(arguments, "channel_id")
        assert isinstance(arguments, dict)
        limit = arguments.get("limit", 20)
        limit = max(1, min(100, limit)) if isinstance(limit, int) else 20
        params = {"limit": str(limit)}
        before = arguments.get("before")
        if isinstance(before, str) and before:
            params["before"] = before
        path = f"channels/{channel_id}/messages"
        messages = await self.config.request("GET", path, params=params)
        if not messages:
            return "No messages found in this channel."
        lines = []
        for message in reversed(messages):  # Discord answers newest first
            pinned = " 📌" if message.get("pinned") else ""
            edited = " (edited)" if message.get("edited_timestamp") else ""
            author = user_display_name(message.get("author") or {})
            lines.append(
                f"[{message.get('timestamp')}] @{author}{pinned}{edited}: {message.get('content')}"
            )
        return "\n".join(lines)


class SendMessageTool(_DiscordTool):
    name = "send_message"
    description = "Send a message (at most 2000 characters) to a Discord channel."
    properties: ClassVar[dict[str, Any]] = {
        "channel_id": {**_STR, "description": "The channel id"},
        "content": {**_STR, "description": "The text to send"},
    }
    required: ClassVar[tuple[str, ...]] = (
        "channel_id",
        "content",
    )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        channel_id, content = _required(arguments, "channel_id", "content")
        _check_length(content)
        sent = await self.config.request(
            "POST", f"channels/{channel_id}/messages", body={"content": content}
        )
        return f"Sent message {sent.get('id')} in channel {channel_id}."


class ReplyToMessageTool(_DiscordTool):
    name = "reply_to_message"
    description = "Reply to a message in a Discord channel (at most 2000 characters)."
    properties: ClassVar[dict[str, Any]] = {
        "channel_id": {**_STR, "description": "The channel id"},
        "message_id": {**_STR, "description": "The message to reply to"},
        "content": {**_STR, "description": "The text of the reply"},
    }
    required: ClassVar[tuple[str, ...]] = (
        "channel_id",
        "message_id",
        "content",
    )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        channel_id, message_id, content = _required(
            arguments, "channel_id", "message_id", "content"
        )
        _check_length(content)
        body = {"content": content, "message_reference": {"message_id": message_id}}
        sent = await self.config.request("POST", f"channels/{channel_id}/messages", body=body)
        return (
            f"Replied to message {message_id} with message {sent.get('id')} "
            f"in channel {channel_id}."
        )


class GetGuildInfoTool(_DiscordTool):
    name = "get_guild_info"
    description = "Get a Discord server's (guild's) name, owner and member count."
    properties: ClassVar[dict[str, Any]] = {"guild_id": _GUILD_ID}
    required: ClassVar[tuple[str, ...]] = ("guild_id",)

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        (guild_id,) = _required(arguments, "guild_id")
        guild = await self.config.request(
            "GET", f"guilds/{guild_id}", params={"with_counts": "true"}
        )
        text = f"{guild.get('name')} (id: {guild['id']})\nowner: {guild.get('owner_id')}"
        members = guild.get("approximate_member_count")
        if members is not None:
            text += f"\nmembers: ~{members}"
        return text


def discord_tools(config: DiscordConfig) -> list[Tool]:
    """The six tools, in orra's order."""
    kinds: list[type[_DiscordTool]] = [
        ListChannelsTool,
        GetChannelInfoTool,
        GetMessagesTool,
        SendMessageTool,
        ReplyToMessageTool,
        GetGuildInfoTool,
    ]
    return [kind(config) for kind in kinds]


def register_tools(registry: ToolRegistry, config: DiscordConfig) -> None:
    for t in discord_tools(config):
        registry.register(t)
