"""Channels: transports that bring user messages to the agents and answers back.

The core (protocol, adapter, router, manager, the in-process gateway channel)
needs nothing beyond orra-di; the Discord channel lives in
:mod:`orra_di.channels.discord_channel` and needs ``orra-di[discord]``.
"""

from orra_di.channels.adapter import DEFAULT_BUSY_REPLY, ChannelAdapter, OnBusy, UnknownAgentError
from orra_di.channels.base import (
    Channel,
    ChannelClosedError,
    ChannelError,
    ChannelSendError,
    ChannelTimeoutError,
    InboundMessage,
    OutboundError,
    OutboundMessage,
    no_typing,
)
from orra_di.channels.gateway_channel import GatewayChannel, GatewayRunError
from orra_di.channels.manager import ChannelManager, ChannelState
from orra_di.channels.routing import NoChannelsError, Router, RoutingRule

__all__ = [
    "DEFAULT_BUSY_REPLY",
    "Channel",
    "ChannelAdapter",
    "ChannelClosedError",
    "ChannelError",
    "ChannelManager",
    "ChannelSendError",
    "ChannelState",
    "ChannelTimeoutError",
    "GatewayChannel",
    "GatewayRunError",
    "InboundMessage",
    "NoChannelsError",
    "OnBusy",
    "OutboundError",
    "OutboundMessage",
    "Router",
    "RoutingRule",
    "UnknownAgentError",
    "no_typing",
]
