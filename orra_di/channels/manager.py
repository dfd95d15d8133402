"""Start, stop and hot-restart a channel while the process runs.

A :class:`ChannelManager` is an async context manager (it owns the task the
channel is served in): ``async with ChannelManager(runtimes) as manager:``
then ``await manager.start(channel, "discord")``. With a ``RuntimeMap`` (or
any mapping of agents) messages are routed on their ``agent`` metadata,
whatever its case (spec §5.4/20), falling back to the default agent when
none is named.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from orra_di.channels.adapter import ChannelAdapter, Route
from orra_di.channels.base import Channel, InboundMessage
from orra_di.channels.routing import Router, RoutingRule
from orra_di.errors import ConfigurationError
from orra_di.runtime import Runtime

__all__ = ["ChannelManager", "ChannelState"]

log = logging.getLogger("orra_di.channels")


@dataclass(frozen=True)
class ChannelState:
    """Whether the channel is connected, and what its starter said about it."""

    connected: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Connection:
    name: str
    channel: Channel
    scope: anyio.CancelScope
    done: anyio.Event


class ChannelManager:
    """Runs one channel at a time against the agents; ``start`` again to hot-restart.

    ``shutdown_timeout`` is how long ``stop()`` lets runs in flight finish after
    closing the channel; past it they are cancelled (a run cancelled mid-tool
    records the call as interrupted, see the runtime).
    """

    def __init__(
        self,
        runtimes: Runtime | Mapping[str, Runtime],
        *,
        default_agent: str | None = None,
        adapter: ChannelAdapter | None = None,
        shutdown_timeout: float = 5.0,
    ) -> None:
        if shutdown_timeout < 0:
            raise ConfigurationError(f"shutdown_timeout must be >= 0, got {shutdown_timeout}")
        self.adapter = adapter or ChannelAdapter()
        self.shutdown_timeout = shutdown_timeout
        self._runtimes: Runtime | Mapping[str, Runtime] = runtimes
        self._default_agent = default_agent
        self._state = ChannelState()
        self._connection: _Connection | None = None
        self._tg: TaskGroup | None = None

    def with_shutdown_timeout(self, seconds: float) -> ChannelManager:
        self.shutdown_timeout = seconds
        return self

    def set_runtimes(
        self, runtimes: Runtime | Mapping[str, Runtime], default_agent: str | None = None
    ) -> None:
        """Use these agents for channels started from now on."""
        self._runtimes = runtimes
        self._default_agent = default_agent

    def state(self) -> ChannelState:
        return self._state

    def is_connected(self) -> bool:
        return self._state.connected

    async def __aenter__(self) -> ChannelManager:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self._stop()
        finally:
            result = await tg.__aexit__(exc_type, exc, tb)
        return result

    async def start(
        self, channel: Channel, name: str = "channel", metadata: Mapping[str, str] | None = None
    ) -> None:
        """Serve ``channel``, stopping the one served before (hot restart)."""
        if self._tg is None:
            raise ConfigurationError(
                "ChannelManager.start needs the manager entered: "
                "async with ChannelManager(runtimes) as manager: ..."
            )
        await self._stop()
        route = self._route()
        connection = _Connection(name, channel, anyio.CancelScope(), anyio.Event())
        self._tg.start_soon(self._serve, connection, route)
        self._connection = connection
        self._state = ChannelState(True, dict(metadata or {}))

    async def stop(self) -> None:
        """Close the channel, let its runs finish (up to the timeout), then cancel the rest."""
        await self._stop()

    async def wait(self) -> None:
        """Return when the channel being served closes by itself (or at once if none)."""
        connection = self._connection
        if connection is not None:
            await connection.done.wait()

    async def _stop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        # One shutdown_timeout for the whole stop: a close that hangs (a dead network)
        # must not keep the process from stopping.
        deadline = anyio.current_time() + self.shutdown_timeout
        try:
            with anyio.fail_after(self.shutdown_timeout):
                await connection.channel.close()
        except TimeoutError:
            log.warning(
                "[channel-manager] closing %r took over %gs; going on without it",
                connection.name,
                self.shutdown_timeout,
            )
        except Exception as exc:
            log.warning("[channel-manager] closing %r failed: %s", connection.name, exc)
        with anyio.move_on_after(max(deadline - anyio.current_time(), 0)):
            await connection.done.wait()
        if not connection.done.is_set():
            log.warning(
                "[channel-manager] %r: runs still going after %gs; cancelling them",
                connection.name,
                self.shutdown_timeout,
            )
            connection.scope.cancel()
            await connection.done.wait()
        self._state = ChannelState(False, self._state.metadata)

    def _route(self) -> Route:
        runtimes = self._runtimes
        if isinstance(runtimes, Runtime):
            single = runtimes

            def one(_message: InboundMessage, _source: str) -> Runtime:
                return single

            return one
        default = self._default_agent or getattr(runtimes, "default_agent", None)
        if default is None and runtimes:
            default = next(iter(runtimes))
        router = Router(RoutingRule.metadata_key("agent"), adapter=self.adapter)
        mapping = runtimes

        def routed(message: InboundMessage, source: str) -> Runtime:
            return router.runtime_for(message, source, mapping, default)

        return routed

    async def _serve(self, connection: _Connection, route: Route) -> None:
        try:
            with connection.scope:
                await self.adapter.serve({connection.name: connection.channel}, route)
        except Exception:
            log.exception("[channel-manager] error on %r", connection.name)
        finally:
            log.info("[channel-manager] channel %r stopped", connection.name)
            connection.done.set()
            if self._connection is connection:  # closed by itself, not by stop()
                self._connection = None
                self._state = ChannelState(False, self._state.metadata)
