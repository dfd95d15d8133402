"""Connections to MCP servers, on the official ``mcp`` SDK (``pip install "orra-di[mcp]"``).

:class:`McpClients` opens every server of :class:`~orra_di.mcp.settings.McpSettings`
(the container's ``lifespan`` does it), lists their tools (every page) and hands
out one :class:`~orra_di.mcp.tool.McpTool` per tool. Each server's connection is
owned by a task of its own in the clients' task group, because the SDK's transports
must be entered and left in one task; a call from any task just uses the session.

What can go wrong, and what happens:

- a server that does not start, initialize and list its tools within its start
  timeout is stopped and reported (a :class:`McpServerError` at start-up, unless the
  server is ``optional``);
- a call that takes longer than the call timeout becomes an error result;
- a stdio server that exits (or an HTTP connection that ends) fails the calls in
  flight at once and is started again on the next call;
- lines on a stdio server's stdout that are not JSON-RPC are logged and skipped,
  bytes that are not UTF-8 become U+FFFD, the server's stderr goes to logging
  (logger ``orra_di.mcp.server``);
- ``notifications/tools/list_changed`` lists the tools again; agents built before see
  the new list (registries given to :meth:`McpClients.attach`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from orra_di.errors import ConfigurationError, OrraError, ToolExecutionError, install_hint
from orra_di.mcp.settings import McpServerSettings, McpSettings
from orra_di.mcp.tool import McpTool
from orra_di.redaction import redact

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult
    from mcp.types import Tool as RemoteTool

    from orra_di.tool import Tool, ToolRegistry

__all__ = ["McpClients", "McpServer", "McpServerError", "ServerStatus", "ServerView"]

logger = logging.getLogger("orra_di.mcp")
stderr_logger = logging.getLogger("orra_di.mcp.server")

_MAX_PAGES = 1000  # a server whose cursor never ends cannot keep a start-up busy forever
_STDERR_LINE = 4000  # characters of one stderr line logged


class McpServerError(OrraError):
    """An MCP server could not be started, or stopped answering."""


def _sdk() -> ModuleType:
    try:
        import mcp
    except ImportError as exc:
        raise ConfigurationError(f"MCP servers need the mcp SDK: {install_hint('mcp')}") from exc
    return mcp


class ServerStatus(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    CRASHED = "crashed"


@dataclass(frozen=True)
class ServerView:
    """What ``orra-di mcp list`` shows of one server."""

    name: str
    transport: str
    target: str
    status: ServerStatus
    error: str | None
    tools: list[tuple[str, str]]  # (name as the agents see it, description)


def _describe(exc: BaseException) -> str:
    """One line for an exception, looking inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError) and exc.filename:  # a stdio server's program
        return (
            f"command {exc.filename!r} not found: install it, or give its full path as the "
            "server's command"
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class McpServer:
    """One configured server and its connection (started and restarted as needed)."""

    def __init__(
        self,
        name: str,
        settings: McpServerSettings,
        *,
        start_timeout: float,
        call_timeout: float,
        on_tools_changed: Any = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.start_timeout = settings.start_timeout or start_timeout
        self.call_timeout = settings.call_timeout or call_timeout
        self.status = ServerStatus.STOPPED
        self.error: str | None = None
        self.tools: list[RemoteTool] = []
        self.restarts = 0
        self._on_tools_changed = on_tools_changed
        self._session: ClientSession | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()
        self._end: anyio.Event | None = None
        self._done: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopping = False
        self._refreshing = False

    @property
    def target(self) -> str:
        s = self.settings
        if s.command is not None:
            return " ".join([s.command, *s.args])
        assert s.url is not None
        from orra_di.redaction import mask_url

        return mask_url(s.url)

    # -- lifetime ------------------------------------------------------------------

    async def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Connect, initialize and list the tools, within the start timeout.

        Raises :class:`McpServerError` with the reason when that fails; the server is
        then ``failed`` and nothing of it is left running.
        """
        _sdk()
        self._tg = tg
        async with self._lock:
            await self._start_locked()

    async def _start_locked(self) -> None:
        assert self._tg is not None
        self._stopping = False
        ready, done, end = anyio.Event(), anyio.Event(), anyio.Event()
        scope = anyio.CancelScope()
        self._end, self._done, self._scope = end, done, scope
        self.status, self.error = ServerStatus.STARTING, None
        self._tg.start_soon(self._run, ready, done, end, scope)
        with anyio.move_on_after(self.start_timeout) as waited:
            await ready.wait()
        if waited.cancelled_caught:
            scope.cancel()
            with anyio.CancelScope(shield=True):
                await done.wait()
            self.status = ServerStatus.FAILED
            self.error = f"did not start within {self.start_timeout:g} s"
        if self.status is not ServerStatus.READY:
            raise McpServerError(f"MCP server {self.name!r} ({self.target}): {self.error}")

    async def stop(self) -> None:
        """Close the connection (a stdio server's process is ended) and wait for it."""
        self._stopping = True
        if self._end is not None:
            self._end.set()
        if self._done is not None:
            with anyio.CancelScope(shield=True):
                await self._done.wait()
        self.status = ServerStatus.STOPPED

    async def _run(
        self,
        ready: anyio.Event,
        done: anyio.Event,
        end: anyio.Event,
        scope: anyio.CancelScope,
    ) -> None:
        """Own the connection: open it, serve until told to stop or the server goes away.

        Never raises (it runs in the clients' task group, which one server must not
        bring down): what went wrong is kept in ``status`` and ``error``.
        """
        try:
            with scope:
                async with contextlib.AsyncExitStack() as stack:
                    await self._connect(stack, end)
                    assert self._session is not None
                    self.status = ServerStatus.READY
                    ready.set()
                    await end.wait()
                    if not self._stopping:
                        self.status = ServerStatus.CRASHED
                        self.error = "the connection ended (the server exited or hung up)"
                        logger.warning("MCP server %r: %s", self.name, self.error)
        except Exception as exc:
            if self.status is not ServerStatus.CRASHED:  # not what its teardown raised
                self.status = ServerStatus.FAILED
                self.error = _describe(exc)
            logger.debug("MCP server %r failed", self.name, exc_info=True)
        finally:
            self._session = None
            ready.set()
            done.set()

    async def _connect(self, stack: contextlib.AsyncExitStack, end: anyio.Event) -> None:
        from mcp import ClientSession
        from mcp.shared.message import SessionMessage
        from mcp.types import Implementation

        read, write = await self._open_transport(stack)
        to_session, session_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)  # runs before the task group is left
        tg.start_soon(self._pump, read, to_session, end)
        session = await stack.enter_async_context(
            ClientSession(
                session_read,
                write,
                message_handler=self._on_message,
                client_info=Implementation(name="orra-di", version=_version()),
            )
        )
        await session.initialize()  # initialize, then the initialized notification
        self.tools = await self._list_tools(session)
        self._session = session

    async def _open_transport(self, stack: contextlib.AsyncExitStack) -> tuple[Any, Any]:
        s = self.settings
        if s.command is not None:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=s.command,
                args=list(s.args),
                env={k: v.get_secret_value() for k, v in s.env.items()},
                cwd=s.cwd,
                encoding_error_handler="replace",  # a stray byte must not end the session
            )
            rfd, wfd = os.pipe()
            errlog = os.fdopen(wfd, "w")
            try:
                streams = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            except BaseException:
                os.close(rfd)
                raise
            finally:
                errlog.close()  # the child holds its own copy
            stack.push_async_callback(_close_quietly, rfd)
            tg = await stack.enter_async_context(anyio.create_task_group())
            stack.callback(tg.cancel_scope.cancel)
            secrets = [v.get_secret_value() for v in s.env.values()]
            tg.start_soon(_log_stderr, self.name, rfd, secrets)
            return streams[0], streams[1]
        import httpx2
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        assert s.url is not None
        headers = {k: v.get_secret_value() for k, v in s.headers.items()}
        client = create_mcp_http_client(
            headers=headers,
            timeout=httpx2.Timeout(self.start_timeout, read=max(self.call_timeout, 300.0)),
        )
        await stack.enter_async_context(client)
        streams = await stack.enter_async_context(streamable_http_client(s.url, http_client=client))
        return streams[0], streams[1]

    async def _pump(self, source: Any, sink: Any, end: anyio.Event) -> None:
        """Forward the transport's messages to the session; when the transport ends,
        close the session's stream (its calls in flight fail at once) and say so."""
        try:
            async with sink:
                async for item in source:
                    if isinstance(item, Exception):
                        logger.warning(
                            "MCP server %r sent something that is not JSON-RPC (skipped): %s",
                            self.name,
                            _describe(item),
                        )
                        continue
                    await sink.send(item)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass
        finally:
            end.set()

    # -- tools ---------------------------------------------------------------------

    async def _list_tools(self, session: ClientSession) -> list[RemoteTool]:
        from mcp.types import PaginatedRequestParams

        tools: list[RemoteTool] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            params = PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools
        raise McpServerError(f"MCP server {self.name!r} listed more than {_MAX_PAGES} pages")

    async def _on_message(self, message: Any) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification) and self._tg is not None:
            # Not here: this handler runs in the session's read loop, which the listing needs.
            self._tg.start_soon(self.refresh)
        elif isinstance(message, Exception):
            logger.warning("MCP server %r: %s", self.name, _describe(message))

    async def refresh(self) -> None:
        """List the tools again (after ``notifications/tools/list_changed``)."""
        session = self._session
        if session is None or self._refreshing:
            return
        self._refreshing = True
        try:
            with anyio.fail_after(self.start_timeout):
                tools = await self._list_tools(session)
        except Exception as exc:
            logger.warning("MCP server %r: listing its tools again failed: %s", self.name, exc)
            return
        finally:
            self._refreshing = False
        self.tools = tools
        logger.info("MCP server %r: the tool list changed (%d tools)", self.name, len(tools))
        if self._on_tools_changed is not None:
            self._on_tools_changed()

    async def call(self, tool: str, arguments: dict[str, Any]) -> CallToolResult:
        """Call ``tool``; a server that is not running is started first (a crashed stdio
        server is started again here). Raises :class:`ToolExecutionError` for a server
        that cannot be reached, that hangs past the call timeout or that goes away."""
        from mcp import MCPError
        from mcp.types import CONNECTION_CLOSED

        session = await self._session_for_call()
        try:
            with anyio.fail_after(self.call_timeout):
                return await session.call_tool(tool, arguments)
        except TimeoutError:
            raise ToolExecutionError(
                f"MCP server {self.name!r} did not answer {tool!r} within {self.call_timeout:g} s"
            ) from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                self._lost()
                raise ToolExecutionError(
                    f"MCP server {self.name!r} went away during the call to {tool!r} "
                    "(it is started again on the next call)"
                ) from None
            raise ToolExecutionError(f"MCP server {self.name!r}: {exc.message}") from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._lost()
            raise ToolExecutionError(
                f"MCP server {self.name!r} went away during the call to {tool!r} "
                "(it is started again on the next call)"
            ) from None
        except Exception as exc:  # e.g. a result that does not match the tool's output schema
            raise ToolExecutionError(f"MCP server {self.name!r}: {_describe(exc)}") from None

    def _lost(self) -> None:
        """The connection is gone (an HTTP server may be unreachable while the transport
        lives on): end it, so the next call connects afresh."""
        self._session = None
        if self.status is ServerStatus.READY:
            self.status = ServerStatus.CRASHED
            self.error = "the connection was lost"
        if self._end is not None:
            self._end.set()
        if self._scope is not None:
            self._scope.cancel()  # do not wait on a transport that cannot close cleanly

    async def _session_for_call(self) -> ClientSession:
        session = self._session
        if session is not None and self.status is ServerStatus.READY:
            return session
        if self._tg is None:
            raise ToolExecutionError(f"MCP server {self.name!r} is not running (no lifespan)")
        async with self._lock:
            if self._session is None or self.status is not ServerStatus.READY:
                if self._done is not None:  # let the old connection finish closing
                    with anyio.CancelScope(shield=True):
                        await self._done.wait()
                logger.info("MCP server %r is %s; starting it again", self.name, self.status.value)
                try:
                    await self._start_locked()
                except McpServerError as exc:
                    raise ToolExecutionError(str(exc)) from None
                self.restarts += 1
                if self._on_tools_changed is not None:
                    self._on_tools_changed()
            assert self._session is not None
            return self._session


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("orra-di")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


async def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


async def _log_stderr(name: str, fd: int, secrets: list[str]) -> None:
    """Log a stdio server's stderr line by line until it closes, the values of its
    ``env`` masked: a server that fails to authenticate often prints the token it sent."""
    os.set_blocking(fd, False)
    buffer = b""
    try:
        while True:
            await anyio.wait_readable(fd)
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                break
            *lines, buffer = (buffer + chunk).split(b"\n")
            for line in lines:
                _log_line(name, line, secrets)
            if len(buffer) > _STDERR_LINE * 4:
                _log_line(name, buffer, secrets)
                buffer = b""
    except OSError:
        pass
    if buffer:
        _log_line(name, buffer, secrets)


def _log_line(name: str, line: bytes, secrets: list[str]) -> None:
    text = redact(line.decode("utf-8", "replace").rstrip(), secrets)
    if text:
        stderr_logger.info("[%s] %s", name, text[:_STDERR_LINE])


class McpClients:
    """Every configured MCP server, opened for an ``async with`` block.

    ``tools()`` are the :class:`McpTool` of every ready server, named with each
    server's prefix; two servers offering one name is a :class:`ConfigurationError`
    at start-up (give one a ``prefix``).
    """

    def __init__(self, settings: McpSettings, *, strict: bool = True) -> None:
        """``strict=False`` starts every server as if ``optional`` (``orra-di mcp list``
        wants to show a broken server's reason, not stop at it)."""
        self.settings = settings
        self._strict = strict
        self.servers = {
            name: McpServer(
                name,
                server,
                start_timeout=settings.start_timeout,
                call_timeout=settings.call_timeout,
                on_tools_changed=self._rebuild,
            )
            for name, server in settings.servers.items()
        }
        self._tools: dict[str, McpTool] = {}
        self._registries: weakref.WeakSet[ToolRegistry] = weakref.WeakSet()
        self._tg: anyio.abc.TaskGroup | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> McpClients:
        if not self.servers:
            return self
        _sdk()
        stack = contextlib.AsyncExitStack()
        try:
            self._tg = await stack.enter_async_context(anyio.create_task_group())
            stack.push_async_callback(self._stop_all)
            errors: list[str] = []

            async def start(server: McpServer) -> None:
                assert self._tg is not None
                try:
                    await server.start(self._tg)
                except McpServerError as exc:
                    if self._strict and not server.settings.optional:
                        errors.append(str(exc))
                    else:
                        why = "optional: " if server.settings.optional else ""
                        logger.warning("%s (%sgoing on without it)", exc, why)

            async with anyio.create_task_group() as starting:
                for server in self.servers.values():
                    starting.start_soon(start, server)
            if errors:
                raise McpServerError("; ".join(errors))
            self._rebuild(initial=True)
        except BaseException:
            await stack.aclose()  # not in a shield: a task group's exit must be innermost
            raise
        self._stack = stack
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()  # each server's stop is shielded inside

    async def _stop_all(self) -> None:
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for server in self.servers.values():
                    tg.start_soon(server.stop)
        for tool in self._tools.values():
            tool.gone = True

    def tools(self) -> list[McpTool]:
        """The tools of every ready server, in settings order."""
        return [t for t in self._tools.values() if not t.gone]

    def attach(self, registry: ToolRegistry) -> None:
        """Keep ``registry`` (an agent's) in step when a server's tool list changes."""
        self._registries.add(registry)

    def views(self) -> list[ServerView]:
        return [
            ServerView(
                name=server.name,
                transport=server.settings.transport,
                target=server.target,
                status=server.status,
                error=server.error,
                tools=[
                    (t.definition.name, t.definition.description)
                    for t in self._tools.values()
                    if t.server is server and not t.gone
                ],
            )
            for server in self.servers.values()
        ]

    def _rebuild(self, initial: bool = False) -> None:
        """Match ``_tools`` to the servers' lists: update, add, and mark gone."""
        wanted: dict[str, tuple[McpServer, RemoteTool]] = {}
        for server in self.servers.values():
            for remote in server.tools:
                full = server.settings.prefix + remote.name
                if full in wanted:
                    other = wanted[full][0].name
                    message = (
                        f"MCP servers {other!r} and {server.name!r} both offer a tool named "
                        f"{full!r}; give one of them a prefix (mcp.servers.{server.name}.prefix)"
                    )
                    if initial:
                        raise ConfigurationError(message)
                    logger.error("%s; keeping %r's", message, other)
                    continue
                wanted[full] = (server, remote)
        for name, tool in self._tools.items():
            if name not in wanted:
                tool.gone = True
        for name, (server, remote) in wanted.items():
            existing = self._tools.get(name)
            if existing is not None and existing.server is server:
                existing.update(remote)
            else:
                if existing is not None:  # another server's now: the old one calls no one
                    existing.gone = True
                self._tools[name] = McpTool(
                    server, remote, name=name, max_chars=self.settings.max_result_chars
                )
        self._tools = {
            **{n: t for n, t in self._tools.items() if n in wanted},
            **{n: t for n, t in self._tools.items() if n not in wanted},
        }
        for registry in list(self._registries):
            _sync_registry(registry, self._tools.values())


def _sync_registry(registry: ToolRegistry, tools: Iterable[McpTool]) -> None:
    """Add the new tools, drop the gone ones, and replace a gone ``McpTool`` by the live
    one of its name (a tool that moved to another server: the old one would call a
    server that no longer has it). Another kind of tool of that name is left alone."""
    for tool in tools:
        current = registry.get(tool.definition.name)
        if tool.gone:
            if current is tool:
                registry.remove(tool.definition.name)
        elif current is None or (isinstance(current, McpTool) and current.gone):
            registry.register(tool)


def refuse_shadowing(mcp_tools: Iterable[Tool], others: Iterable[Tool]) -> None:
    """:class:`ConfigurationError` when an MCP server's tool has the name of another tool
    of the agent (the application's, a built-in): it would replace it without a word."""
    taken = {t.definition.name for t in others}
    for tool in mcp_tools:
        name = tool.definition.name
        if name in taken:
            server = tool.server.name if isinstance(tool, McpTool) else "?"
            raise ConfigurationError(
                f"the MCP server {server!r} offers a tool named {name!r}, which the agent "
                f"already has; give the server a prefix (mcp.servers.{server}.prefix)"
            )


@contextlib.asynccontextmanager
async def open_clients(settings: McpSettings, *, strict: bool = True) -> AsyncIterator[McpClients]:
    """``async with open_clients(settings.mcp) as clients:`` — the servers for a block."""
    async with McpClients(settings, strict=strict) as clients:
        yield clients
