"""What the gateway does, apart from HTTP: runs, their events as JSON, tenants, approvals.

Nothing here imports Starlette; :mod:`orra_di.gateway.app` maps requests onto it.

Runs are tasks of the gateway, not of the request that started them: a client that
goes away mid-stream stops receiving events, but the run goes on to its end and is
stored (``drain`` lets the runs in flight finish at shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orra_di.errors import (
    ConfigurationError,
    NamespaceError,
    OrraError,
    ProviderError,
    SessionBusyError,
)
from orra_di.gateway.auth import Caller, KeyRing
from orra_di.gateway.bus import EventBus, bus_for
from orra_di.gateway.settings import GatewaySettings
from orra_di.message import Message, Role
from orra_di.namespace import MAX_KEY_LENGTH, Namespace, NamespaceLike
from orra_di.provider import TextDelta, Usage
from orra_di.runtime import (
    RunFinished,
    RunResult,
    Runtime,
    RuntimeStreamEvent,
    ToolCallCompleted,
    ToolCallStarted,
    TurnCompleted,
)
from orra_di.session import Session

if TYPE_CHECKING:
    from orra_di.approvals.model import ApprovalRecord
    from orra_di.approvals.stores import ApprovalStore
    from orra_di.containers import Container
    from orra_di.runtime_set import RuntimeMap

__all__ = ["Gateway", "GatewayError", "RunHandle"]

log = logging.getLogger("orra_di.gateway")

Event = tuple[str, dict[str, Any]]
"""A run's event as the wire sees it: its name and its JSON object."""


class GatewayError(OrraError):
    """A request the gateway refuses or could not serve: an HTTP status and a stable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.code}


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, "bad_request", message)


def not_found(message: str) -> GatewayError:
    return GatewayError(404, "not_found", message)


def as_gateway_error(exc: BaseException) -> GatewayError:
    """The error a client is told for what a run raised (no internals leak)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, SessionBusyError):
        return GatewayError(409, "session_busy", f"{exc}; try again when the other run ends")
    if isinstance(exc, ProviderError):
        return GatewayError(502, "provider_error", f"the model provider failed: {exc}")
    if isinstance(exc, TimeoutError):
        return GatewayError(504, "timeout", "the run took longer than gateway.request_timeout")
    if isinstance(exc, NamespaceError):
        return bad_request(str(exc))
    if isinstance(exc, OrraError):
        return GatewayError(500, "run_failed", f"{type(exc).__name__}: {exc}")
    return GatewayError(500, "internal_error", "internal error; the server log has the details")


# -- JSON shapes ----------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "role": message.role.value,
        "content": message.content,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ],
        "tool_results": [
            {"call_id": r.call_id, "content": r.content, "is_error": r.is_error}
            for r in message.tool_results
        ],
    }


def session_json(session: Session) -> dict[str, Any]:
    return {
        "namespace": session.namespace.key,
        "created_at": session.created_at.isoformat(),
        "updated_at": session.updated_at.isoformat(),
        "message_count": len(session.messages),
        "metadata": session.metadata,
        "messages": [message_json(m) for m in session.messages],
    }


def result_json(result: RunResult, namespace: Namespace, agent: str) -> dict[str, Any]:
    calls: list[dict[str, Any]] = []
    for turn in result.turns:
        results = {r.call_id: r for r in turn.tool_results}
        for call in turn.response.message.tool_calls:
            done = results.get(call.id)
            calls.append(
                {
                    "id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "content": done.content if done else None,
                    "is_error": done.is_error if done else None,
                }
            )
    return {
        "message": result.final_message.content,
        "namespace": namespace.key,
        "agent": agent,
        "usage": usage_json(result.total_usage),
        "turns": len(result.turns),
        "tool_calls": calls,
    }


def approval_json(record: ApprovalRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "call_id": record.call_id,
        "tool_name": record.tool,
        "arguments": record.arguments,
        "namespace": record.namespace,
        "agent": record.agent,
        "status": record.status.value,
        "expires_at": record.expires_at.isoformat(),
        "decided_by": record.decided_by,
        "reason": record.reason,
    }


# -- runs -----------------------------------------------------------------------------------


@dataclass
class RunHandle:
    """One run in flight: its events (for whoever listens) and, at the end, its outcome."""

    namespace: Namespace
    agent: str
    run: str
    store: object = field(repr=False)
    _send: MemoryObjectSendStream[Event] | None = field(repr=False)
    receive: MemoryObjectReceiveStream[Event] | None = field(repr=False)
    done: anyio.Event = field(default_factory=anyio.Event)
    result: dict[str, Any] | None = None
    error: GatewayError | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def emit(self, name: str, data: dict[str, Any]) -> None:
        """Hand an event to the listener; nobody listening (client gone) is fine."""
        if self._send is None:  # the run was started without events
            return
        with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._send.send_nowait((name, data))

    async def outcome(self) -> dict[str, Any]:
        """The run's result JSON once it ended; raises its GatewayError if it failed.

        The events are not wanted then: their stream is closed at once.
        """
        if self.receive is not None:
            self.receive.close()
        await self.done.wait()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    async def events(self) -> AsyncIterator[Event]:
        """Every event to the end: ``start`` first, ``end`` or ``error`` last."""
        if self.receive is None:
            raise ConfigurationError("this run was started without events (stream=False)")
        async with self.receive:
            async for event in self.receive:
                yield event


class Gateway:
    """The gateway's state for one container: keys, agents, runs in flight."""

    def __init__(self, container: Container, settings: GatewaySettings | None = None) -> None:
        self.container = container
        self.settings = settings if settings is not None else container.settings().gateway
        self.keys = KeyRing(self.settings.api_keys)
        self._tasks: set[asyncio.Task[None]] = set()
        self._runtimes: dict[str, Runtime] = {}
        self.approvals_on: bool = bool(container.settings().approval.enabled)
        self._bus: EventBus | None = None
        self._bus_store: object = None

    # -- lookups ----------------------------------------------------------------------------

    @property
    def agents(self) -> RuntimeMap:
        runtimes: RuntimeMap = self.container.runtimes()
        return runtimes

    def agent(self, name: str | None) -> tuple[str, Runtime]:
        """``(agent's configured name, its runtime)``; 404 ``unknown_agent`` for a bad name."""
        agents = self.agents
        if name is None:
            name = agents.default_agent
        if not isinstance(name, str) or name not in agents:
            known = ", ".join(p.name for p in agents.profiles)
            raise GatewayError(
                404, "unknown_agent", f"no agent named {name!r}; the agents are: {known}"
            )
        profile = agents.profile(name)
        runtime = self._runtimes.get(profile.key)
        if runtime is None:
            runtime = self._runtimes[profile.key] = agents[profile.name]
        return profile.name, runtime

    def store(self) -> Any:
        return self.container.store()

    def approval_store(self) -> ApprovalStore:
        store: ApprovalStore = self.container.approval_store()
        return store

    @staticmethod
    def parse_namespace(raw: object, what: str = "namespace") -> Namespace:
        if not isinstance(raw, str):
            raise bad_request(f"{what} must be a string like 'acme:alice'")
        if len(raw) > MAX_KEY_LENGTH:
            raise bad_request(f"{what} is longer than {MAX_KEY_LENGTH} characters")
        try:
            return Namespace.parse(raw)
        except NamespaceError as exc:
            raise bad_request(f"bad {what}: {exc}") from None

    def chat_namespace(self, caller: Caller, raw: object | None) -> Namespace:
        """Where a chat goes: the one asked for (inside the caller's subtree) or a new one."""
        if raw is None:
            fresh = os.urandom(16).hex()
            return Namespace.parse(f"{caller.tenant}:{fresh}" if caller.tenant else fresh)
        namespace = self.parse_namespace(raw)
        if not caller.owns(namespace):
            raise GatewayError(
                403,
                "namespace_forbidden",
                f"this key may only use namespaces under {caller.tenant!r}",
            )
        return namespace

    def owned_namespace(self, caller: Caller, raw: str) -> Namespace:
        """A namespace named in a URL; another tenant's is 'not found', like a missing one."""
        namespace = self.parse_namespace(raw)
        if not caller.owns(namespace):
            raise not_found(f"no session {raw!r}")
        return namespace

    # -- runs -------------------------------------------------------------------------------

    def start(
        self,
        caller: Caller,
        message: str,
        *,
        namespace: NamespaceLike,
        agent: str | None,
        stream: bool,
    ) -> RunHandle:
        """Start a run as a gateway task; its handle gives the events and the outcome.

        ``namespace`` must lie in ``caller``'s subtree (403 ``namespace_forbidden``).
        """
        if not isinstance(namespace, Namespace):
            namespace = self.parse_namespace(namespace)
        if not caller.owns(namespace):
            raise GatewayError(
                403,
                "namespace_forbidden",
                f"this key may only use namespaces under {caller.tenant!r}",
            )
        name, runtime = self.agent(agent)
        send: MemoryObjectSendStream[Event] | None = None
        receive: MemoryObjectReceiveStream[Event] | None = None
        if stream:
            send, receive = anyio.create_memory_object_stream[Event](math.inf)
        handle = RunHandle(
            namespace=namespace,
            agent=name,
            run=os.urandom(8).hex(),
            store=runtime.store,
            _send=send,
            receive=receive,
        )
        handle.emit("start", {"namespace": namespace.key, "agent": name})
        task = asyncio.get_running_loop().create_task(
            self._run(handle, runtime, message, stream), name=f"orra-gateway-run {namespace.key}"
        )
        handle.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    def bus(self, store: object | None = None) -> EventBus:
        """The event bus of ``store`` (default: the container's current one)."""
        if store is None:
            store = self.store()
        if self._bus is None or self._bus_store is not store:
            self._bus, self._bus_store = bus_for(store), store
        return self._bus

    async def publish(self, handle: RunHandle, name: str, data: dict[str, Any]) -> None:
        """Tell subscribers on every replica; a failure is logged, never the run's."""
        bus = self.bus(handle.store)
        message = {"namespace": handle.namespace.key, "run": handle.run,
                   "replica": bus.replica, "event": name, "data": data}  # fmt: skip
        try:
            await bus.publish(message)
        except Exception as exc:
            log.warning("could not publish a %s event: %s: %s", name, type(exc).__name__, exc)

    async def _run(self, handle: RunHandle, runtime: Runtime, message: str, stream: bool) -> None:
        await self.publish(
            handle, "start", {"namespace": handle.namespace.key, "agent": handle.agent}
        )
        try:
            async with asyncio.timeout(self.settings.request_timeout):  # runs are asyncio tasks
                if stream or self.approvals_on:
                    result = await self._streamed(handle, runtime, message)
                else:
                    result = await runtime.run(handle.namespace, message)
            handle.result = result_json(result, handle.namespace, handle.agent)
            handle.emit("end", handle.result)
            await self.publish(handle, "end", handle.result)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                handle.error = GatewayError(
                    503, "interrupted", "the server stopped before the run ended"
                )
            else:
                handle.error = as_gateway_error(exc)
                if handle.error.status >= 500 and handle.error.code == "internal_error":
                    log.exception("run in %s failed", handle.namespace.key)
            handle.emit("error", handle.error.body())
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await self.publish(handle, "error", handle.error.body())
            if not isinstance(exc, Exception):
                raise
        finally:
            if handle._send is not None:
                handle._send.close()
            handle.done.set()

    async def _streamed(self, handle: RunHandle, runtime: Runtime, message: str) -> RunResult:
        if not self.approvals_on:
            return await self._relay(handle, runtime, message)
        outcome: list[RunResult] = []
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch_approvals, handle)
                outcome.append(await self._relay(handle, runtime, message))
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:  # one failure at a time: the run's
            raise group.exceptions[0] from None
        return outcome[0]

    async def _relay(self, handle: RunHandle, runtime: Runtime, message: str) -> RunResult:
        turn = 0
        result: RunResult | None = None
        async with runtime.run_streaming(handle.namespace, message) as events:
            async for event in events:
                if isinstance(event, RunFinished):
                    result = event.result
                    continue
                name, data = event_json(event, turn)
                if name == "turn":
                    turn += 1
                handle.emit(name, data)
                if name != "text_delta":
                    await self.publish(handle, name, data)
        assert result is not None
        return result

    async def _watch_approvals(self, handle: RunHandle) -> None:
        """Announce each approval this run waits for (the only run of its session)."""
        store = self.approval_store()
        seen: set[str] = set()
        key = handle.namespace.key
        while True:
            record = await store.next_pending(handle.namespace, seen=seen)
            seen.add(record.id)
            if record.namespace == key:
                handle.emit("tool_approval_request", approval_json(record))
                await self.publish(handle, "tool_approval_request", approval_json(record))

    async def drain(self, grace: float) -> int:
        """Let the runs in flight end within ``grace`` seconds, then cancel the rest.

        Returns how many were cancelled (each recorded as interrupted by the runtime).
        """
        pending = set(self._tasks)
        if not pending:
            return 0
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=10)
        return len(late)

    async def wait_idle(self) -> None:
        """Return once no run is in flight (runs started meanwhile are waited for too)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # -- approvals --------------------------------------------------------------------------

    async def answer_approval(
        self, caller: Caller, approval_id: str, *, approved: bool, reason: str | None
    ) -> ApprovalRecord:
        store = self.approval_store()
        try:
            record = await store.get(approval_id)
        except OrraError:
            record = None
        if record is None or not caller.owns(record.namespace):
            raise not_found(f"no approval request {approval_id!r}")
        return await store.decide(approval_id, approved=approved, by=caller.by, reason=reason)


def event_json(event: RuntimeStreamEvent, turn: int) -> tuple[str, dict[str, Any]]:
    """A runtime stream event as ``(event name, JSON object)``."""
    if isinstance(event, TextDelta):
        return "text_delta", {"text": event.text}
    if isinstance(event, ToolCallStarted):
        return "tool_call_started", {"id": event.id, "name": event.name}
    if isinstance(event, ToolCallCompleted):
        return "tool_call_completed", {
            "id": event.id,
            "content": event.result.content,
            "is_error": event.result.is_error,
        }
    if isinstance(event, TurnCompleted):
        response = event.turn.response
        return "turn", {
            "index": turn,
            "finish_reason": str(response.finish_reason),
            "usage": usage_json(response.usage),
            "text": response.message.content,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments}
                for c in response.message.tool_calls
            ],
        }
    raise ConfigurationError(f"unknown stream event {type(event).__name__}")


def last_user_text(messages: list[Any]) -> str | None:
    """The content of the last ``user`` message of an OpenAI ``messages`` list."""
    for item in reversed(messages):
        if isinstance(item, dict) and item.get("role") == Role.USER.value:
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # content parts: keep the text ones
                texts = [
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                ]
                if all(isinstance(t, str) for t in texts) and texts:
                    return "".join(texts)
            return None
    return None
