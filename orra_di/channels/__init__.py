"""Channels: transports that bring user messages to the agents and answers back.

The core (protocol, adapter, router, manager, the in-process gateway channel)
needs nothing beyond orra-di; the Discord channel lives in
:mod:`orra_di.channels.discord_channel` and needs ``orra-di[discord]``. Names are
loaded on first use (PEP 562), so ``orra-di --help``, which registers this
package's CLI, does not import the runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.channels.adapter import (
        DEFAULT_BUSY_REPLY,
        ChannelAdapter,
        OnBusy,
        UnknownAgentError,
    )
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

_ORIGIN = {
    "DEFAULT_BUSY_REPLY": "orra_di.channels.adapter",
    "ChannelAdapter": "orra_di.channels.adapter",
    "OnBusy": "orra_di.channels.adapter",
    "UnknownAgentError": "orra_di.channels.adapter",
    "Channel": "orra_di.channels.base",
    "ChannelClosedError": "orra_di.channels.base",
    "ChannelError": "orra_di.channels.base",
    "ChannelSendError": "orra_di.channels.base",
    "ChannelTimeoutError": "orra_di.channels.base",
    "InboundMessage": "orra_di.channels.base",
    "OutboundError": "orra_di.channels.base",
    "OutboundMessage": "orra_di.channels.base",
    "no_typing": "orra_di.channels.base",
    "GatewayChannel": "orra_di.channels.gateway_channel",
    "GatewayRunError": "orra_di.channels.gateway_channel",
    "ChannelManager": "orra_di.channels.manager",
    "ChannelState": "orra_di.channels.manager",
    "NoChannelsError": "orra_di.channels.routing",
    "Router": "orra_di.channels.routing",
    "RoutingRule": "orra_di.channels.routing",
}

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


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module 'orra_di.channels' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
