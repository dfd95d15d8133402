"""A channel for the tests: messages fed in by the test, replies recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from orra_di.channels import (
    ChannelSendError,
    InboundMessage,
    OutboundError,
    OutboundMessage,
)


class QueueChannel:
    """``feed()`` messages in; ``replies``/``errors`` hold what came back, in order.

    ``fail_sends`` makes that many ``send`` calls raise first; ``typing_fails``
    makes the typing indicator raise on entry.
    """

    def __init__(self, *, fail_sends: int = 0, typing_fails: bool = False) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[InboundMessage](100)
        self.replies: list[OutboundMessage] = []
        self.errors: list[OutboundError] = []
        self.typing_entered = 0
        self.fail_sends = fail_sends
        self.typing_fails = typing_fails
        self.answered = anyio.Condition()

    def feed(self, *messages: InboundMessage) -> None:
        for message in messages:
            self._send.send_nowait(message)

    async def close(self) -> None:
        self._send.close()

    async def receive(self) -> InboundMessage | None:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._receive.close()
            return None

    async def send(self, message: OutboundMessage) -> None:
        if self.fail_sends:
            self.fail_sends -= 1
            raise ChannelSendError("the transport is down")
        self.replies.append(message)
        await self._notify()

    async def send_error(self, error: OutboundError) -> None:
        self.errors.append(error)
        await self._notify()

    def typing(self, metadata: Mapping[str, Any]) -> AbstractAsyncContextManager[None]:
        return self._typing()

    @asynccontextmanager
    async def _typing(self) -> AsyncIterator[None]:
        if self.typing_fails:
            raise RuntimeError("typing endpoint down")
        self.typing_entered += 1
        yield

    async def _notify(self) -> None:
        async with self.answered:
            self.answered.notify_all()

    async def wait_for(self, count: int) -> None:
        """Until ``count`` answers (replies + errors) have come back."""
        with anyio.fail_after(5):
            async with self.answered:
                while len(self.replies) + len(self.errors) < count:
                    await self.answered.wait()
