"""The ``channels`` settings section (``ORRA_CHANNELS__*``), composed by ``OrraSettings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from orra_di.channels.adapter import DEFAULT_BUSY_REPLY
from orra_di.errors import NamespaceError
from orra_di.namespace import Namespace

__all__ = ["ChannelSettings", "DiscordSettings"]

DISCORD_API_BASE = "https://discord.com/api/v10"


class DiscordSettings(BaseModel):
    """The Discord bot (``orra-di[discord]``): runs when a token is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = None
    """The bot token from the Discord developer portal (``ORRA_CHANNELS__DISCORD__TOKEN``).
    With it, ``orra-di channels run`` connects the bot; never logged or shown."""
    filter: Literal["mentions", "all", "dms"] = "mentions"
    """Which messages the bot answers: ``mentions`` (those that @mention it), ``all``
    (every message it can read, other bots' aside), ``dms`` (only direct messages from
    ``allowed_users``; the only filter that subscribes to direct messages)."""
    allowed_users: tuple[str, ...] = ()
    """Usernames whose direct messages are answered with ``filter = "dms"``
    (ASCII case-insensitive)."""
    namespace_prefix: str = "discord"
    """First namespace segment of Discord sessions: ``<prefix>:<guild|dm>:<channel>:<user>``."""
    tools: bool = False
    """Give every agent the six Discord REST tools (``list_channels``, ``get_channel_info``,
    ``get_messages``, ``send_message``, ``reply_to_message``, ``get_guild_info``) with this
    bot's token."""
    api_base: str = DISCORD_API_BASE
    """Discord's REST API root, for the tools and the bot (a proxy, or a test fake)."""
    gateway_url: str | None = None
    """The WebSocket gateway the bot connects to first; unset: Discord's own. For proxies
    and test fakes."""
    connect_timeout: float = Field(30.0, gt=0, le=600, allow_inf_nan=False)
    """Seconds to wait for the first READY from Discord before giving up at start-up."""

    @field_validator("namespace_prefix")
    @classmethod
    def _one_segment(cls, value: str) -> str:
        try:
            Namespace(value)
        except NamespaceError as exc:
            raise ValueError(f"namespace_prefix must be one namespace segment: {exc}") from None
        return value

    @model_validator(mode="after")
    def _dms_need_users(self) -> DiscordSettings:
        if self.filter == "dms" and not self.allowed_users:
            raise ValueError(
                'filter = "dms" answers only allowed_users, and none is listed; '
                "set channels.discord.allowed_users"
            )
        return self


class ChannelSettings(BaseModel):
    """How channels (Discord, in-process gateway) hand messages to the agents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrency: int = Field(8, ge=1, le=10_000)
    """Runs at once across the channels of this process; more messages wait their turn."""
    on_busy: Literal["wait", "reply"] = "wait"
    """A message for a session that is still answering: ``wait`` runs it after the
    current run, ``reply`` answers at once with ``busy_reply`` and does not run it."""
    busy_reply: str = Field(DEFAULT_BUSY_REPLY, min_length=1)
    """What a busy session answers with ``on_busy = "reply"``."""
    max_waiting: int = Field(16, ge=0, le=10_000)
    """Messages one session may have waiting behind its run (``on_busy = "wait"``);
    past it they get the busy reply."""
    max_message_chars: int = Field(32_000, ge=1)
    """Longest message text accepted, in characters; a longer one gets an error reply."""
    shutdown_timeout: float = Field(5.0, ge=0, le=3600, allow_inf_nan=False)
    """Seconds a stopping channel lets runs in flight finish before cancelling them."""
    discord: DiscordSettings = Field(
        default_factory=DiscordSettings, description="a table of Discord bot settings"
    )
