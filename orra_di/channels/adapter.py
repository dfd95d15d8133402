"""Runs channel messages through agent runtimes: concurrently, one run per session.

orra's ``ChannelAdapter`` and ``Router`` took one message at a time, so one
slow answer held up every user (spec §5.4/21). Here each message is handled
in its own task, at most ``max_concurrency`` runs at once (an anyio
``CapacityLimiter``); messages for one session run one after another in the
order they arrived, and the store's lock keeps a session to one run across
processes too. A message for a session that is already running either waits
its turn (``on_busy="wait"``) or is answered at once with ``busy_reply``
(``on_busy="reply"``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup

from orra_di.channels.base import (
    Channel,
    ChannelError,
    InboundMessage,
    OutboundError,
    OutboundMessage,
)
from orra_di.errors import ConfigurationError, OrraError, SessionBusyError
from orra_di.message import Message
from orra_di.runtime import Runtime

__all__ = ["DEFAULT_BUSY_REPLY", "ChannelAdapter", "OnBusy", "UnknownAgentError"]

log = logging.getLogger("orra_di.channels")

OnBusy = Literal["wait", "reply"]
DEFAULT_BUSY_REPLY = (
    "I'm still answering your previous message. Send this one again once I have replied."
)

Route = Callable[[InboundMessage, str], Runtime]
"""Picks the runtime for a message from channel ``source``; may raise ``UnknownAgentError``."""


class UnknownAgentError(ChannelError):
    """A message asked for an agent that does not exist."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        super().__init__(f"unknown agent {name!r}; the agents are: {', '.join(known) or '(none)'}")


@dataclass
class _Session:
    """One session's messages waiting in this adapter, oldest first."""

    waiting: deque[tuple[Channel, str, InboundMessage, Runtime]] = field(default_factory=deque)


class ChannelAdapter:
    """Carries messages from channels to runtimes and the answers back.

    ``await adapter.run(channel, runtime)`` serves one channel until its
    ``receive()`` returns None, then waits for the runs in flight and returns.
    :class:`~orra_di.channels.Router` serves several channels and picks the
    runtime per message; both share this class's limits.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 8,
        on_busy: OnBusy = "wait",
        busy_reply: str = DEFAULT_BUSY_REPLY,
        max_message_chars: int = 32_000,
        max_waiting: int = 16,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if on_busy not in ("wait", "reply"):
            raise ConfigurationError(f"on_busy must be 'wait' or 'reply', got {on_busy!r}")
        if max_message_chars < 1 or max_waiting < 0:
            raise ConfigurationError("max_message_chars must be positive, max_waiting >= 0")
        self.limiter = anyio.CapacityLimiter(max_concurrency)
        self.on_busy: OnBusy = on_busy
        self.busy_reply = busy_reply
        self.max_message_chars = max_message_chars
        self.max_waiting = max_waiting
        # Received but not yet answered, all sessions together: past it, receiving pauses.
        self._backlog = anyio.Semaphore(max(64, 4 * max_concurrency))
        self._sessions: dict[str, _Session] = {}

    @property
    def active_sessions(self) -> int:
        """Sessions with a message running or waiting here now."""
        return len(self._sessions)

    async def run(self, channel: Channel, runtime: Runtime) -> None:
        """Serve ``channel`` with ``runtime`` until the channel closes."""
        await self.serve({"channel": channel}, lambda _message, _source: runtime)

    async def serve(self, channels: Mapping[str, Channel], route: Route) -> None:
        """Serve every channel (by name) until all have closed and their runs ended."""
        async with anyio.create_task_group() as tg:
            for name, channel in channels.items():
                tg.start_soon(self._pump, tg, name, channel, route)

    async def _pump(self, tg: TaskGroup, source: str, channel: Channel, route: Route) -> None:
        while True:
            await self._backlog.acquire()
            try:
                inbound = await channel.receive()
            except BaseException:
                self._backlog.release()
                raise
            if inbound is None:
                self._backlog.release()
                return
            try:
                self._dispatch(tg, channel, source, inbound, route)
            except BaseException:
                self._backlog.release()
                raise

    def _dispatch(
        self,
        tg: TaskGroup,
        channel: Channel,
        source: str,
        inbound: InboundMessage,
        route: Route,
    ) -> None:
        problem = self._refusal(inbound)
        runtime: Runtime | None = None
        if problem is None:
            try:
                runtime = route(inbound, source)
            except UnknownAgentError as exc:
                problem = str(exc)
        if problem is not None or runtime is None:
            tg.start_soon(self._answer_error, channel, inbound, problem or "no runtime")
            return
        key = inbound.namespace.key
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = _Session()
            session.waiting.append((channel, source, inbound, runtime))
            tg.start_soon(self._drain, key, session)
        elif self.on_busy == "reply" or len(session.waiting) >= self.max_waiting:
            tg.start_soon(self._answer_busy, channel, inbound)
        else:
            session.waiting.append((channel, source, inbound, runtime))

    def _refusal(self, inbound: InboundMessage) -> str | None:
        """Why a message is refused before any run, or None."""
        text = inbound.message.content
        if not text.strip() and not inbound.message.tool_results:
            return "the message is empty; send some text"
        if len(text) > self.max_message_chars:
            return (
                f"the message has {len(text):,} characters, more than the "
                f"{self.max_message_chars:,} allowed; send a shorter one"
            )
        return None

    async def _drain(self, key: str, session: _Session) -> None:
        try:
            while session.waiting:
                channel, _source, inbound, runtime = session.waiting.popleft()
                try:
                    async with self.limiter:
                        await self._handle(channel, inbound, runtime)
                finally:
                    self._backlog.release()
        finally:
            # Anything still queued when cancelled is released (cancellation ends the adapter).
            for _ in session.waiting:
                self._backlog.release()
            session.waiting.clear()
            del self._sessions[key]

    async def _handle(self, channel: Channel, inbound: InboundMessage, runtime: Runtime) -> None:
        if self.on_busy == "reply" and not await _free(runtime, inbound):
            await self._send(channel, self._busy_message(inbound), answer=False)
            return
        try:
            async with _typing(channel, inbound.metadata):
                result = await runtime.run(inbound.namespace, inbound.message)
        except SessionBusyError as exc:  # another process held it past the busy timeout
            if self.on_busy == "reply":
                await self._send(channel, self._busy_message(inbound), answer=False)
            else:
                await self._send_error(channel, inbound, str(exc))
        except OrraError as exc:
            await self._send_error(channel, inbound, str(exc))
        except Exception:
            log.exception("run for %s failed", inbound.namespace.key)
            await self._send_error(channel, inbound, "internal error; it has been logged")
        else:
            reply = OutboundMessage(
                inbound.namespace, result.final_message, result, inbound.metadata
            )
            await self._send(channel, reply, answer=True)

    def _busy_message(self, inbound: InboundMessage) -> OutboundMessage:
        return OutboundMessage(
            inbound.namespace, Message.assistant(self.busy_reply), None, inbound.metadata
        )

    async def _answer_busy(self, channel: Channel, inbound: InboundMessage) -> None:
        try:
            await self._send(channel, self._busy_message(inbound), answer=False)
        finally:
            self._backlog.release()

    async def _answer_error(self, channel: Channel, inbound: InboundMessage, error: str) -> None:
        try:
            await self._send_error(channel, inbound, error)
        finally:
            self._backlog.release()

    @staticmethod
    async def _send(channel: Channel, reply: OutboundMessage, *, answer: bool) -> None:
        try:
            await channel.send(reply)
        except Exception as exc:  # the run is stored; only the delivery failed
            what = "answer" if answer else "busy reply"
            log.warning("channel send error (%s for %s): %s", what, reply.namespace.key, exc)

    @staticmethod
    async def _send_error(channel: Channel, inbound: InboundMessage, error: str) -> None:
        try:
            await channel.send_error(OutboundError(inbound.namespace, error, inbound.metadata))
        except Exception as exc:
            log.warning("channel send_error error (for %s): %s", inbound.namespace.key, exc)


async def _free(runtime: Runtime, inbound: InboundMessage) -> bool:
    """Whether no other process holds the session now (a look, not a reservation)."""
    try:
        async with runtime.store.lock(inbound.namespace, timeout=0):
            return True
    except SessionBusyError:
        return False


@asynccontextmanager
async def _typing(channel: Channel, metadata: Mapping[str, Any]) -> AsyncIterator[None]:
    """The channel's typing indicator; one that fails is logged, never fails the run."""
    try:
        indicator = channel.typing(metadata)
        await indicator.__aenter__()
    except Exception as exc:
        log.warning("channel typing indicator failed: %s", exc)
        yield
        return
    try:
        yield
    except BaseException as exc:
        try:
            await indicator.__aexit__(type(exc), exc, exc.__traceback__)
        except Exception as close_exc:
            log.warning("channel typing indicator failed to stop: %s", close_exc)
        raise
    try:
        await indicator.__aexit__(None, None, None)
    except Exception as exc:
        log.warning("channel typing indicator failed to stop: %s", exc)
