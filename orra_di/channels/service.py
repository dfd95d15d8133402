"""The configured channels of a container, served for the length of a block.

``async with channels_running(container):`` builds every channel the settings
configure (today: the Discord bot when ``channels.discord.token`` is set),
connects it and serves it through a :class:`ChannelManager` on the container's
agents, all sharing one :class:`ChannelAdapter` (one concurrency bound). On
exit each channel is closed and its runs in flight get
``channels.shutdown_timeout`` seconds to finish. ``orra-di channels run`` is
this block held until SIGINT/SIGTERM; ``orra-di serve`` can enter it too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from orra_di.channels.adapter import ChannelAdapter
from orra_di.channels.base import Channel
from orra_di.channels.manager import ChannelManager
from orra_di.errors import ConfigurationError

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.settings import OrraSettings

__all__ = ["ConfiguredChannel", "RunningChannels", "channels_running", "configured_channels"]

NO_CHANNEL = (
    "no channel is configured: set channels.discord.token (ORRA_CHANNELS__DISCORD__TOKEN) "
    "and install orra-di[discord]; see docs/channels.md"
)


@dataclass(frozen=True)
class ConfiguredChannel:
    """A channel the settings ask for, with what ``status`` shows of it."""

    name: str
    details: dict[str, str]


def configured_channels(settings: OrraSettings) -> list[ConfiguredChannel]:
    """The channels ``settings`` configure, without building or connecting them."""
    found = []
    discord = settings.channels.discord
    if discord.token is not None:
        secret = discord.token.get_secret_value()
        details = {
            "token": "****" + secret[-4:] if len(secret) > 8 else "****",
            "filter": discord.filter,
            "namespace_prefix": discord.namespace_prefix,
        }
        if discord.filter == "dms":
            details["allowed_users"] = ", ".join(discord.allowed_users)
        if discord.tools:
            details["tools"] = "on"
        found.append(ConfiguredChannel("discord", details))
    return found


@dataclass
class RunningChannels:
    """What :func:`channels_running` started: one manager per channel, by name."""

    adapter: ChannelAdapter
    managers: dict[str, ChannelManager]

    def connected(self) -> dict[str, bool]:
        return {name: manager.is_connected() for name, manager in self.managers.items()}


@asynccontextmanager
async def channels_running(
    container: Container, *, required: bool = True
) -> AsyncIterator[RunningChannels]:
    """Serve the configured channels for the block (see the module doc).

    ``required=False`` makes "nothing configured" an empty result instead of a
    :class:`ConfigurationError` (for ``orra-di serve``, where channels are optional).
    """
    settings: OrraSettings = container.settings()
    wanted = configured_channels(settings)
    if not wanted and required:
        raise ConfigurationError(NO_CHANNEL)
    adapter: ChannelAdapter = container.channel_adapter()
    running = RunningChannels(adapter, {})
    async with AsyncExitStack() as stack:
        for configured in wanted:
            channel: Channel = getattr(container, f"{configured.name}_channel")()
            connect = getattr(channel, "connect", None)
            if connect is not None:
                try:
                    await connect()
                except BaseException:
                    await channel.close()
                    raise
            manager: ChannelManager = container.channel_manager(adapter=adapter)
            await stack.enter_async_context(manager)
            await manager.start(channel, configured.name, configured.details)
            running.managers[configured.name] = manager
        yield running
