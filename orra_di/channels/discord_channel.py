"""``DiscordChannel``: a Discord bot as a channel, on discord.py (``orra-di[discord]``).

orra spoke the gateway protocol itself and never reconnected (spec §5.5/24).
discord.py does the identify, the heartbeats (and answers the server's
heartbeat requests), reconnects with RESUME, and handles op 7 Reconnect and
op 9 Invalid Session; this module only turns its messages into
:class:`InboundMessage` and answers into Discord messages of at most 2,000
characters. discord.py runs on asyncio only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import anyio
from pydantic import SecretStr

from orra_di.channels.base import (
    ChannelError,
    ChannelSendError,
    InboundMessage,
    OutboundError,
    OutboundMessage,
)
from orra_di.channels.discord_text import (
    discord_namespace,
    leading_agent,
    split_message,
    strip_mention,
)
from orra_di.errors import ConfigurationError, install_hint
from orra_di.message import Message

try:
    import discord
    import yarl
    from discord.gateway import DiscordWebSocket
    from discord.http import Route
except ImportError as exc:  # pragma: no cover - exercised without the extra only
    raise ConfigurationError(
        f"the Discord channel needs discord.py: {install_hint('discord')}"
    ) from exc

__all__ = ["DiscordChannel", "MessageFilter"]

log = logging.getLogger("orra_di.channels.discord")

MessageFilter = Literal["mentions", "all", "dms"]
NO_TEXT = "(no text in the answer)"


def point_at(api_base: str | None = None, gateway_url: str | None = None) -> None:
    """Send discord.py's REST calls to ``api_base`` and its first connection to
    ``gateway_url`` (a proxy, a test fake). discord.py keeps both per process."""
    if api_base:
        Route.BASE = api_base.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class DiscordChannel:
    """Messages from a Discord bot's servers and DMs; answers posted back.

    Call :meth:`connect` (logs in, waits for READY), hand the channel to a
    :class:`~orra_di.channels.ChannelManager`, and :meth:`close` it at the end
    (the manager does on stop). Metadata of each message: ``channel_id``,
    ``message_id``, ``author_id``, ``author_username``, ``guild_id`` (servers
    only) and ``agent`` when it starts with ``@Name`` of one of ``agent_names``.
    """

    def __init__(
        self,
        token: SecretStr | str,
        *,
        filter: MessageFilter = "mentions",
        allowed_users: Sequence[str] = (),
        namespace_prefix: str = "discord",
        agent_names: Sequence[str] = (),
        api_base: str | None = None,
        gateway_url: str | None = None,
        connect_timeout: float = 30.0,
        max_queue: int = 256,
    ) -> None:
        if filter not in ("mentions", "all", "dms"):
            raise ConfigurationError(f"filter must be mentions, all or dms, got {filter!r}")
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        if not self._token.get_secret_value().strip():
            raise ConfigurationError("the Discord bot token is empty")
        self.filter: MessageFilter = filter
        self.allowed_users = frozenset(u.lower() for u in allowed_users)
        self.namespace_prefix = namespace_prefix
        self.agent_names = tuple(agent_names)
        self.connect_timeout = connect_timeout
        point_at(api_base, gateway_url)
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        intents.message_content = True
        # Direct messages are "messages the bot can read" for `all`, and all of `dms`.
        intents.dm_messages = filter in ("all", "dms")
        # The model writes the answers, and users can steer it: it may mention users,
        # never @everyone, @here or roles.
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
        self.client = _Client(self, intents=intents, allowed_mentions=mentions)
        self._send, self._receive = anyio.create_memory_object_stream[InboundMessage](max_queue)
        self._task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"DiscordChannel(filter={self.filter!r}, token=SecretStr('**********'))"

    @property
    def token_hint(self) -> str:
        """The token's last four characters, for status displays."""
        return "****" + self._token.get_secret_value()[-4:]

    async def connect(self) -> None:
        """Log in and connect; return once Discord said READY. Raises :class:`ChannelError`."""
        if self._task is not None:
            return
        task = self._task = asyncio.create_task(
            self.client.start(self._token.get_secret_value(), reconnect=True)
        )
        ready = asyncio.create_task(self.client.connected.wait())
        done, _ = await asyncio.wait(
            {task, ready}, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return
        ready.cancel()
        self._receive.close()  # a channel that never connected has nothing to hand out
        if task in done:
            self._task = None
            self._send.close()
            await self.client.close()
            raise _connect_error(task.exception()) from None
        await self.close()
        raise ChannelError(f"Discord sent no READY within {self.connect_timeout:g}s")

    def accept(self, message: discord.Message) -> InboundMessage | None:
        """The inbound message for a Discord message, or None when it is not for us."""
        me = self.client.user
        author = message.author
        if me is None or author.id == me.id or author.bot:
            return None
        guild_id = message.guild.id if message.guild is not None else None
        if guild_id is None and message.channel.type != discord.ChannelType.private:
            guild_id = getattr(message.channel, "guild_id", None)
        if self.filter == "mentions":
            if not any(user.id == me.id for user in message.mentions) and not (
                f"<@{me.id}>" in message.content or f"<@!{me.id}>" in message.content
            ):
                return None
        elif self.filter == "dms" and (
            guild_id is not None or author.name.lower() not in self.allowed_users
        ):
            return None
        content = strip_mention(message.content, me.id)
        agent, content = leading_agent(content, self.agent_names)
        content = content.strip()
        if not content:
            return None
        metadata: dict[str, Any] = {
            "channel_id": str(message.channel.id),
            "message_id": str(message.id),
            "author_id": str(author.id),
            "author_username": author.name,
        }
        if guild_id is not None:
            metadata["guild_id"] = str(guild_id)
        if agent is not None:
            metadata["agent"] = agent
        namespace = discord_namespace(
            self.namespace_prefix, guild_id, message.channel.id, author.id
        )
        return InboundMessage(namespace, Message.user(content), metadata)

    async def _deliver(self, inbound: InboundMessage) -> None:
        try:
            await self._send.send(inbound)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            log.debug("discord message after close dropped")

    # -- the Channel side ----------------------------------------------------

    async def receive(self) -> InboundMessage | None:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            return None

    async def send(self, message: OutboundMessage) -> None:
        await self._post(message.metadata, message.message.content or NO_TEXT)

    async def send_error(self, error: OutboundError) -> None:
        await self._post(error.metadata, f"Sorry, something went wrong: {error.error}")

    def typing(self, metadata: Mapping[str, Any]) -> AbstractAsyncContextManager[None]:
        return self._typing(metadata)

    @asynccontextmanager
    async def _typing(self, metadata: Mapping[str, Any]) -> AsyncIterator[None]:
        channel_id = metadata.get("channel_id")
        if channel_id is None:
            yield
            return
        # discord.py posts "typing" now and again every few seconds until the block ends.
        async with self.client.get_partial_messageable(int(channel_id)).typing():
            yield

    async def close(self) -> None:
        """Disconnect from Discord; ``receive`` returns None once the queue is drained."""
        self._send.close()
        task, self._task = self._task, None
        if not self.client.is_closed():
            await self.client.close()
        if task is not None:
            try:
                await task
            except Exception as exc:
                log.debug("discord client ended with %r", exc)

    async def _post(self, metadata: Mapping[str, Any], text: str) -> None:
        channel_id = metadata.get("channel_id")
        if channel_id is None:
            raise ChannelSendError("missing channel_id in metadata")
        target = self.client.get_partial_messageable(int(channel_id))
        for part in split_message(text):
            try:
                await target.send(part)
            except discord.HTTPException as exc:
                raise ChannelSendError(f"Discord API {exc.status}: {exc.text}") from None


class _Client(discord.Client):
    def __init__(self, channel: DiscordChannel, **options: Any) -> None:
        super().__init__(max_messages=None, chunk_guilds_at_startup=False, **options)
        self._channel = channel
        self.connected = asyncio.Event()
        """Set at the first READY (the guild cache may still be filling)."""

    async def on_socket_event_type(self, event: str) -> None:
        if event in ("READY", "RESUMED"):
            self.connected.set()

    async def on_message(self, message: discord.Message) -> None:
        inbound = self._channel.accept(message)
        if inbound is not None:
            await self._channel._deliver(inbound)


def _connect_error(exc: BaseException | None) -> ChannelError:
    if isinstance(exc, discord.LoginFailure):
        return ChannelError(
            "Discord refused the bot token (401 Unauthorized); check channels.discord.token"
        )
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return ChannelError(
            "Discord refused the message-content intent; enable MESSAGE CONTENT INTENT for "
            "the bot in the developer portal"
        )
    return ChannelError(f"cannot connect to Discord: {exc!r}")
