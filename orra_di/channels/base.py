"""The transport abstraction: what a channel is and what travels through it.

orra's ``Channel`` trait with its ``TypingGuard`` becomes a protocol whose
``typing()`` is an async context manager; a channel also says how to shut it
down (``close()``), which orra left to a separate ``ShutdownSignal`` that its
own Discord channel did not implement (spec §5.5/24).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from orra_di.errors import OrraError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.runtime import RunResult

__all__ = [
    "Channel",
    "ChannelClosedError",
    "ChannelError",
    "ChannelSendError",
    "ChannelTimeoutError",
    "InboundMessage",
    "OutboundError",
    "OutboundMessage",
    "no_typing",
]


class ChannelError(OrraError):
    """A channel could not take, deliver or answer a message."""


class ChannelSendError(ChannelError):
    """A reply could not be delivered (orra's ``ChannelError::Send``)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"send error: {message}")


class ChannelClosedError(ChannelError):
    """The channel is closed (orra's ``ChannelError::Closed``)."""

    def __init__(self, what: str = "channel") -> None:
        super().__init__(f"{what} closed")


class ChannelTimeoutError(ChannelError):
    """No reply came in time; the run may still finish and be stored."""


@dataclass(frozen=True)
class InboundMessage:
    """A user's message as a channel received it.

    ``metadata`` carries the channel's context (the Discord channel id, the
    user, the ``agent`` to route to, a gateway request id...) and comes back
    unchanged on the reply.
    """

    namespace: Namespace
    message: Message
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def text(
        cls, namespace: NamespaceLike, content: str, metadata: Mapping[str, Any] | None = None
    ) -> InboundMessage:
        """A user text message at ``namespace`` (a :class:`Namespace` or its key)."""
        return cls(Namespace.coerce(namespace), Message.user(content), dict(metadata or {}))


@dataclass(frozen=True)
class OutboundMessage:
    """The answer to an inbound message.

    ``run_result`` is None when no run took place: the session was busy and
    the adapter answers with its busy reply (``busy`` is then true).
    """

    namespace: Namespace
    message: Message
    run_result: RunResult | None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def busy(self) -> bool:
        return self.run_result is None


@dataclass(frozen=True)
class OutboundError:
    """A failure to report to the user instead of an answer."""

    namespace: Namespace
    error: str
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Channel(Protocol):
    """A transport that brings user messages in and takes answers out.

    ``receive`` returns None once the channel is closed (after ``close()``, or
    when its source ends). ``typing`` is entered for the duration of each run
    (Discord shows "Bot is typing..."); channels without such a thing use
    :func:`no_typing`. ``send``/``send_error`` raise :class:`ChannelError`
    when they cannot deliver; the adapter logs it and carries on.
    """

    async def receive(self) -> InboundMessage | None: ...

    async def send(self, message: OutboundMessage) -> None: ...

    async def send_error(self, error: OutboundError) -> None: ...

    def typing(self, metadata: Mapping[str, Any]) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


@asynccontextmanager
async def no_typing() -> AsyncIterator[None]:
    """A ``typing()`` that shows nothing."""
    yield
