"""An in-process channel for applications that keep their own web server.

``reply = await gateway.submit("hello", namespace="acme:alice")`` queues the
message for the adapter serving this channel and waits for its answer. orra's
``submit_and_wait`` waited forever (spec §5.5/23); here it waits ``timeout``
seconds, after which :class:`ChannelTimeoutError` is raised: the run goes on
and is stored, only its answer is dropped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from orra_di.channels.base import (
    ChannelClosedError,
    ChannelError,
    ChannelSendError,
    ChannelTimeoutError,
    InboundMessage,
    OutboundError,
    OutboundMessage,
)
from orra_di.errors import ConfigurationError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike

__all__ = ["REQUEST_ID", "GatewayChannel", "GatewayRunError"]

REQUEST_ID = "_gateway_request_id"
"""The metadata key that ties an answer to the request waiting for it."""


class GatewayRunError(ChannelError):
    """The run behind a submitted message failed; the text is the run's error."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(f"runtime error: {error}")


@dataclass
class _Waiter:
    done: anyio.Event = field(default_factory=anyio.Event)
    reply: OutboundMessage | None = None
    error: str | None = None


class GatewayChannel:
    """Messages submitted in-process; answers handed back to the waiting caller."""

    def __init__(self, *, max_queue: int = 256, timeout: float | None = 120.0) -> None:
        if max_queue < 1:
            raise ConfigurationError(f"max_queue must be at least 1, got {max_queue}")
        self.timeout = timeout
        self._send, self._receive = anyio.create_memory_object_stream[InboundMessage](max_queue)
        self._waiting: dict[str, _Waiter] = {}

    @property
    def pending(self) -> int:
        """Submitted messages still waiting for their answer."""
        return len(self._waiting)

    async def submit(
        self,
        message: str | Message,
        *,
        namespace: NamespaceLike | None = None,
        agent: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a default of its own, and its error
    ) -> OutboundMessage:
        """Queue ``message`` and return its answer.

        Without ``namespace`` a fresh one (a random hex id) is used. ``agent``
        names the agent (``metadata["agent"]``). Raises
        :class:`GatewayRunError` when the run fails, :class:`ChannelTimeoutError`
        after ``timeout`` seconds (default: the channel's), and
        :class:`ChannelClosedError` once the channel is closed. A busy session
        (``on_busy="reply"``) comes back as a reply whose ``busy`` is true.
        """
        ns = Namespace.coerce(namespace) if namespace is not None else Namespace(uuid.uuid4().hex)
        request_id = uuid.uuid4().hex
        data = dict(metadata or {})
        if agent is not None:
            data["agent"] = agent
        data[REQUEST_ID] = request_id
        user = message if isinstance(message, Message) else Message.user(message)
        waiter = self._waiting[request_id] = _Waiter()
        limit = self.timeout if timeout is None else timeout
        try:
            with anyio.fail_after(limit):
                try:
                    await self._send.send(InboundMessage(ns, user, data))
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    raise ChannelClosedError("gateway channel") from None
                await waiter.done.wait()
        except TimeoutError:
            raise ChannelTimeoutError(
                f"no answer for {ns.key!r} within {limit:g}s; the run may still finish "
                "and be stored"
            ) from None
        finally:
            self._waiting.pop(request_id, None)
        if waiter.error is not None:
            raise GatewayRunError(waiter.error)
        assert waiter.reply is not None
        return waiter.reply

    # -- the Channel side ----------------------------------------------------

    async def receive(self) -> InboundMessage | None:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            return None

    async def send(self, message: OutboundMessage) -> None:
        waiter = self._waiter(message.metadata)
        waiter.reply = message
        waiter.done.set()

    async def send_error(self, error: OutboundError) -> None:
        waiter = self._waiter(error.metadata)
        waiter.error = error.error
        waiter.done.set()

    def typing(self, metadata: Mapping[str, Any]) -> AbstractAsyncContextManager[None]:
        return _nothing()

    async def close(self) -> None:
        """Refuse new messages; those already queued are still served."""
        self._send.close()

    def _waiter(self, metadata: Mapping[str, Any]) -> _Waiter:
        request_id = metadata.get(REQUEST_ID)
        if not isinstance(request_id, str):
            raise ChannelSendError("missing gateway request ID in metadata")
        waiter = self._waiting.get(request_id)
        if waiter is None:
            raise ChannelSendError(f"no waiting request for ID: {request_id} (timed out?)")
        return waiter


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
