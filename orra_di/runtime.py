"""The agent loop: load the session, ask the model, run its tools, repeat, persist.

The order of steps is orra 0.0.2's (spec §2A.9), with its bugs fixed:

1. the tool policy is checked again when a call is executed (§5.1/1);
2. every step is persisted as it happens, so a provider failure, a cancelled
   run or a crash loses nothing already done (§5.1/3);
3. tool calls are answered whatever the finish reason (§5.1/2), and a session
   never keeps an unanswered call: a cancelled run records "interrupted"
   results, and a crash's leftovers are answered on the next load;
4. parallel tools keep call order, and one tool's failure or hang (per-tool
   timeout) does not stop the others;
5. one writer per session, through the store's lock (§5.1/6);
6. streaming runs the whole loop, tools included, and saves like ``run`` (§5.1/5).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import os
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream

from orra_di.context import CharEstimator, ContextBudget, ContextWindow, Tokenizer
from orra_di.errors import (
    ConfigurationError,
    MaxTurnsExceeded,
    ProviderUnavailableError,
    StoreError,
    ToolError,
)
from orra_di.hook import Hook, HookRegistry, ToolCallDenied
from orra_di.message import Message, ToolCall, ToolResult, storable_text, trusted
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.observability.instrumentation import Instrumentation
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    Provider,
    StreamDone,
    StreamingProvider,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    closing_stream,
    parse_tool_arguments,
)
from orra_di.run_context import RunContext, running
from orra_di.session import Session
from orra_di.store import SessionStore, dump_messages, dump_metadata
from orra_di.tool import (
    FunctionTool,
    Tool,
    ToolContext,
    ToolDefinition,
    ToolRegistry,
    ToolTimedOut,
)

_get_async_backend: Callable[[], Any] | None
try:  # anyio's backend class for the running loop, looked up once per run (see _scopes)
    from anyio._core._eventloop import get_async_backend as _get_async_backend
except ImportError:  # pragma: no cover - another anyio layout: its public calls then
    _get_async_backend = None

__all__ = [
    "INTERRUPTED",
    "RunFinished",
    "RunResult",
    "RunStream",
    "Runtime",
    "RuntimeConfig",
    "RuntimeStreamEvent",
    "ToolCallCompleted",
    "ToolCallStarted",
    "TurnCompleted",
    "TurnResult",
]

log = logging.getLogger("orra_di.runtime")

INTERRUPTED = "execution failed: interrupted before the tool finished"
"""The result recorded for a call whose run was cancelled or crashed."""


@dataclass(frozen=True)
class RuntimeConfig:
    """How one runtime behaves. Defaults are orra's, plus the new knobs."""

    system_prompt: str | None = None
    name: str | None = None
    """The agent this runtime serves (``RunContext.agent``); set from its profile."""
    max_turns: int = 10
    """Provider calls allowed per run (must be at least 1)."""
    max_tokens: int | None = None
    temperature: float | None = None
    model: str | None = None
    """Default model for this runtime; ``run(..., model=)`` overrides it."""
    context_budget: ContextBudget = field(default_factory=ContextBudget)
    parallel_tool_execution: bool = True
    tool_timeout: float | None = 120.0
    """Seconds one tool call may take before it becomes an error result."""
    busy_timeout: float | None = None
    """Seconds to wait for a session another run holds: None waits, 0 refuses at once."""

    def __post_init__(self) -> None:
        def whole(name: str, value: object) -> None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigurationError(
                    f"{name} must be an integer, got {type(value).__name__} {value!r}"
                )
            if value < 1:
                raise ConfigurationError(f"{name} must be at least 1, got {value}")

        def seconds(name: str, value: object, *, zero: bool) -> None:
            if value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(
                    f"{name} must be a number of seconds or None, got "
                    f"{type(value).__name__} {value!r}"
                )
            if not (value >= 0 if zero else value > 0):  # NaN fails both
                rule = "0 or more (0 refuses at once)" if zero else "positive"
                raise ConfigurationError(f"{name} must be {rule}, got {value}")

        whole("max_turns", self.max_turns)
        if self.max_tokens is not None:
            whole("max_tokens", self.max_tokens)
        seconds("tool_timeout", self.tool_timeout, zero=False)
        seconds("busy_timeout", self.busy_timeout, zero=True)


@dataclass(frozen=True)
class TurnResult:
    """One provider call and the results of the tools it asked for."""

    response: CompletionResponse
    tool_results: tuple[ToolResult, ...] = ()


@dataclass(frozen=True)
class RunResult:
    final_message: Message
    turns: tuple[TurnResult, ...]
    total_usage: Usage


@dataclass(frozen=True)
class ToolCallStarted:
    id: str
    name: str


@dataclass(frozen=True)
class ToolCallCompleted:
    id: str
    result: ToolResult


@dataclass(frozen=True)
class TurnCompleted:
    turn: TurnResult


@dataclass(frozen=True)
class RunFinished:
    result: RunResult


RuntimeStreamEvent = TextDelta | ToolCallStarted | ToolCallCompleted | TurnCompleted | RunFinished
Emit = Callable[[RuntimeStreamEvent], Awaitable[None]]


class Runtime:
    """Runs conversations for one agent against a provider, a store and tools."""

    def __init__(
        self,
        llm: Provider,
        store: SessionStore,
        *,
        tools: ToolRegistry | Iterable[Tool] = (),
        policies: PolicyRegistry | None = None,
        tokenizer: Tokenizer | None = None,
        hooks: HookRegistry | Iterable[Hook] = (),
        config: RuntimeConfig | None = None,
        context: ContextWindow | None = None,
        instrumentation: Instrumentation | None = None,
    ) -> None:
        """``context`` may be shared between runtimes (the container does), so token
        estimates and the usage calibration learned by one agent serve all;
        without it, one is made from ``tokenizer`` and ``config.context_budget``.
        ``instrumentation`` (telemetry, metrics) wraps each run, model call and tool
        call; see :mod:`orra_di.observability`."""
        self.instrumentation = instrumentation
        self.llm = llm
        self.store = store
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(list(tools))
        self.policies = policies if policies is not None else PolicyRegistry()
        self.hooks = hooks if isinstance(hooks, HookRegistry) else HookRegistry(hooks)
        self.config = config or RuntimeConfig()
        self.window = (
            context
            if context is not None
            else ContextWindow(tokenizer or CharEstimator(), self.config.context_budget)
        )
        system = self.config.system_prompt
        self._system = [Message.system(system)] if system else []
        self._tools_cache: (
            tuple[
                ToolPolicy,
                object,
                tuple[ToolDefinition, ...],
                tuple[ToolDefinition, ...],
                int,
            ]
            | None
        ) = None

    async def run(
        self, namespace: NamespaceLike, message: Message | str, *, model: str | None = None
    ) -> RunResult:
        """Add ``message`` to the session and loop until the model answers.

        ``namespace`` is a :class:`Namespace` or its key (``"acme:alice"``).
        """
        return await self._run(Namespace.coerce(namespace), _as_message(message), model, None)

    async def run_with_model(
        self, namespace: NamespaceLike, message: Message | str, model: str | None
    ) -> RunResult:
        """orra's name for ``run(..., model=model)``."""
        return await self._run(Namespace.coerce(namespace), _as_message(message), model, None)

    @asynccontextmanager
    async def run_streaming(
        self, namespace: NamespaceLike, message: Message | str, *, model: str | None = None
    ) -> AsyncIterator[RunStream]:
        """Run the full loop, yielding events as they happen.

        ``async with runtime.run_streaming(ns, "hi") as events:`` then
        ``async for event in events``. Leaving the block early cancels the
        run; what it already did stays persisted.
        """
        ns = Namespace.coerce(namespace)  # a bad key fails here, not inside the stream
        send, receive = anyio.create_memory_object_stream[RuntimeStreamEvent | BaseException](
            max_buffer_size=64
        )
        user = _as_message(message)

        async def produce() -> None:
            async with send:
                try:
                    await self._run(ns, user, model, send.send)
                except anyio.get_cancelled_exc_class():
                    raise
                except Exception as exc:
                    await send.send(exc)

        failure: Exception | None = None
        async with receive, anyio.create_task_group() as tg:
            tg.start_soon(produce)
            stream = RunStream(receive)
            try:
                yield stream
            except Exception as exc:  # re-raised below, not wrapped in an ExceptionGroup
                failure = exc
            if failure is not None or (stream.result is None and not stream.finished):
                tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    # -- the loop ------------------------------------------------------------

    async def _run(
        self, namespace: Namespace, user: Message, model: str | None, emit: Emit | None
    ) -> RunResult:
        observe = self.instrumentation
        if observe is None:
            return await self._run_locked(namespace, user, model, emit)
        step = self._run_locked(namespace, user, model, emit)
        return await observe.run(namespace, self.config.name, model or self.config.model, step)

    async def _run_locked(
        self, namespace: Namespace, user: Message, model: str | None, emit: Emit | None
    ) -> RunResult:
        async with self.store.lock(namespace, timeout=self.config.busy_timeout):
            session = await self.store.load(namespace) or Session(namespace=namespace)
            await self._answer_leftover_calls(session)
            run = RunContext(
                namespace=namespace,
                run_id=os.urandom(16).hex(),  # uuid4().hex's form, without the UUID object
                session=session,
                agent=self.config.name,
                model=model or self.config.model,
            )
            with running(run):
                return await self._loop(run, session, user, model, emit)

    async def _loop(
        self,
        run: RunContext,
        session: Session,
        user: Message,
        model: str | None,
        emit: Emit | None,
    ) -> RunResult:
        """The turns of one run, with the session locked and ``run`` current."""
        namespace = session.namespace
        writer = _SessionWriter(self.store, session)
        hooks = self.hooks
        if hooks:
            await hooks.after_session_load(namespace, session)
        await writer.append(user)
        turns: list[TurnResult] = []
        usage = run.usage
        scopes = _Scopes()
        for _ in range(self.config.max_turns):
            policy = self.policies.resolve(namespace)
            request, estimated = self._request(session, policy, model)
            if hooks:
                await hooks.before_provider_call(request)
            if self.instrumentation is None:
                response = await self._complete(request, emit)
            else:
                step = self._complete(request, emit)
                response = await self.instrumentation.model_call(request, step)
            usage += response.usage
            run.usage = usage  # the after hook sees this call counted
            if hooks:
                await hooks.after_provider_call(response)
            if response.usage.input_tokens:
                self.window.calibrate(request.model or "", estimated, response.usage.input_tokens)
            calls = response.message.tool_calls
            if not calls:
                await self._finish(namespace, writer, response.message)
                turn = TurnResult(response)
                turns.append(turn)
                if emit:
                    await emit(TurnCompleted(turn))
                result = RunResult(response.message, tuple(turns), usage)
                if emit:
                    await emit(RunFinished(result))
                return result
            await writer.append(response.message)
            results = await self._answer(namespace, calls, policy, writer, emit, scopes)
            turn = TurnResult(response, results)
            turns.append(turn)
            if emit:
                await emit(TurnCompleted(turn))
        await self._finish(namespace, writer)
        raise MaxTurnsExceeded(self.config.max_turns)

    def _request(
        self, session: Session, policy: ToolPolicy, model: str | None
    ) -> tuple[CompletionRequest, int]:
        """The next request, trimmed to the budget, and our estimate of its size."""
        model = model or self.config.model
        tools, reserved = self._tools_for(policy)
        history = session.messages
        if self._system:
            messages = self._system + history
        else:  # list.copy: list() walks a list subclass (a History) item by item, 2x slower
            messages = list.copy(history) if isinstance(history, list) else list(history)
        used = self.window.history_tokens(session) + reserved
        if self._system:
            used += self.window.estimate_message_tokens(self._system[0])
        scale = self.window.scale(model or "")
        if used * scale > self.window.budget.available_for_input:
            messages = self.window.truncate_to_fit(messages, scale=scale, reserved=reserved)
            used = self.window.estimate_total_tokens(messages) + reserved
        request = _trusted_request(
            messages=messages,
            tools=list(tools),  # the request's own list: a hook may change it in place
            max_tokens=self.config.max_tokens,
            temperature=self.config.temperature,
            model=model,
        )
        return request, used

    def _tools_for(self, policy: ToolPolicy) -> tuple[tuple[ToolDefinition, ...], int]:
        """The definitions ``policy`` lets the model see and their estimated tokens.

        Remembered for the last (definitions, policy, tokenizer) seen: the
        definitions are read from the registry on every call (a tool's
        ``definition`` may change, a tool may be added or removed) and compared
        by identity, so any change to them, the policy or the tokenizer is a
        new entry; only the filtering and the estimate are saved.
        """
        definitions = tuple([t.definition for t in self.tools])
        cached = self._tools_cache
        tokenizer = self.window.tokenizer
        if (
            cached is not None
            and cached[0] is policy
            and cached[1] is tokenizer
            and len(cached[2]) == len(definitions)
            and all(a is b for a, b in zip(cached[2], definitions, strict=True))
        ):
            return cached[3], cached[4]
        allowed = tuple(policy.filter_definitions(definitions))
        reserved = self.window.estimate_tools_tokens(allowed)
        self._tools_cache = (policy, tokenizer, definitions, allowed, reserved)
        return allowed, reserved

    async def _finish(
        self, namespace: Namespace, writer: _SessionWriter, answer: Message | None = None
    ) -> None:
        """Store the run's last step with what ``before_session_save`` hooks changed.

        The answer is in the session while the hooks run and stored after them in
        one write, which also releases the lock where the store can
        (``_SessionWriter.finish``); if a hook fails or the run is cancelled
        meanwhile, it is stored anyway before the error goes on.
        """
        if answer is not None:
            writer.stage(answer)
        try:
            if self.hooks:
                await self.hooks.before_session_save(namespace, writer.session)
        except BaseException:
            await writer.flush_staged()
            raise
        await writer.finish()

    async def _answer_leftover_calls(self, session: Session) -> None:
        """Answer calls a crashed run left open, so the history stays valid for providers."""
        if not session.messages:
            return
        last = session.messages[-1]
        if last.tool_calls:
            results = [
                ToolResult(call_id=c.id, content=INTERRUPTED, is_error=True)
                for c in last.tool_calls
            ]
            leftover = Message.tool_result(results)
            await self.store.append(session.namespace, [leftover])
            session.messages.append(leftover)

    # -- provider calls ------------------------------------------------------

    async def _complete(self, request: CompletionRequest, emit: Emit | None) -> CompletionResponse:
        if emit is None:
            return await self.llm.complete(request)
        if not isinstance(self.llm, StreamingProvider):
            response = await self.llm.complete(request)
            if response.message.content:
                await emit(TextDelta(response.message.content))
            for call in response.message.tool_calls:
                await emit(ToolCallStarted(call.id, call.name))
            return response
        return await self._stream(self.llm, request, emit)

    @staticmethod
    async def _stream(
        llm: StreamingProvider, request: CompletionRequest, emit: Emit
    ) -> CompletionResponse:
        text: list[str] = []
        names: dict[str, str] = {}
        arguments: dict[str, list[str]] = {}
        done: StreamDone | None = None
        async with closing_stream(llm.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    text.append(event.text)
                    await emit(event)
                elif isinstance(event, ToolCallStart):
                    names[event.id] = event.name
                    arguments[event.id] = []
                    await emit(ToolCallStarted(event.id, event.name))
                elif isinstance(event, ToolCallDelta):
                    if event.id in arguments:
                        arguments[event.id].append(event.arguments_delta)
                elif isinstance(event, StreamDone):
                    done = event
        if done is None:  # a cut stream must not be saved as a finished answer
            raise ProviderUnavailableError("the stream ended before the model finished its answer")
        calls = [
            ToolCall(id=i, name=names[i], arguments=parse_tool_arguments("".join(arguments[i])))
            for i in names
        ]
        return CompletionResponse(
            message=Message.assistant("".join(text), calls, vendor_data=done.vendor_data),
            usage=done.usage,
            finish_reason=done.finish_reason if not calls else FinishReason.TOOL_USE,
        )

    # -- tools ---------------------------------------------------------------

    async def _answer(
        self,
        namespace: Namespace,
        calls: Sequence[ToolCall],
        policy: ToolPolicy,
        writer: _SessionWriter,
        emit: Emit | None,
        scopes: _Scopes,
    ) -> tuple[ToolResult, ...]:
        """Run the calls and persist their results; on cancellation record them interrupted."""
        results: list[ToolResult | None] = [None] * len(calls)
        try:

            async def one(i: int) -> None:
                try:
                    if self.instrumentation is None:
                        results[i] = await self._execute(namespace, calls[i], policy, scopes)
                    else:
                        step = self._execute(namespace, calls[i], policy, scopes)
                        results[i] = await self.instrumentation.tool_call(calls[i], step)
                except Exception as exc:  # a hook failed: still answer the call
                    log.exception("hook failed around tool %s", calls[i].name)
                    results[i] = _error(calls[i], f"execution failed: {type(exc).__name__}: {exc}")

            if self.config.parallel_tool_execution and len(calls) > 1:
                async with anyio.create_task_group() as tg:
                    for i in range(len(calls)):
                        tg.start_soon(one, i)
            else:
                for i in range(len(calls)):
                    await one(i)
        finally:
            done = tuple(r or _error(c, INTERRUPTED) for c, r in zip(calls, results, strict=True))
            with scopes.shield():
                await writer.append(Message.tool_result(done))
        if emit:
            for result in done:
                await emit(ToolCallCompleted(result.call_id, result))
        return done

    async def _execute(
        self, namespace: Namespace, call: ToolCall, policy: ToolPolicy, scopes: _Scopes
    ) -> ToolResult:
        """One call's result, always answering the model's own call id.

        The policy is checked before the hooks (an approval hook should not ask a
        human about a call that is refused anyway) and again after them (a hook
        may rename the call). ``after_tool_call`` sees every result, refusals too.
        """
        model_id = call.id
        if not policy.is_allowed(call.name):
            result = _error(call, f"tool '{call.name}' is not allowed in this session")
            return await self._after(call, result, model_id)
        try:
            if self.hooks:
                call = await self.hooks.before_tool_call(namespace, call)
        except ToolCallDenied as denied:  # a refusal like the policy's: the after hooks see it
            return await self._after(call, _error(call, denied.reason), model_id)
        call = call if call.id == model_id else call.model_copy(update={"id": model_id})
        tool = self.tools.get(call.name)
        if not policy.is_allowed(call.name):
            result = _error(call, f"tool '{call.name}' is not allowed in this session")
        elif tool is None:
            result = _error(call, f"unknown tool: {call.name}")
        else:
            result = await self._call_tool(namespace, call, tool, scopes)
        return await self._after(call, result, model_id)

    async def _call_tool(
        self, namespace: Namespace, call: ToolCall, tool: Tool, scopes: _Scopes
    ) -> ToolResult:
        limit = self.config.tool_timeout
        try:
            context = ToolContext(namespace, call.id)
            if isinstance(tool, FunctionTool) and (limit is None or not tool.is_coroutine):
                # No cancel scope: an inline function cannot be interrupted, and a
                # blocking one's wait for its thread carries the timeout itself.
                content = await tool.execute_within(call.arguments, context, limit)
            elif limit is None:
                content = await tool.execute(call.arguments, context)
            else:
                scope, deadlines = scopes.timeout_scope(limit)
                with scope:
                    if deadlines is None:  # anyio's own deadline (not asyncio)
                        content = await tool.execute(call.arguments, context)
                    else:
                        deadlines.add(scope, limit)
                        try:
                            if isinstance(tool, FunctionTool):
                                content = await tool.execute_within(call.arguments, context, None)
                            else:
                                content = await tool.execute(call.arguments, context)
                        finally:
                            deadlines.discard(scope)
                if scope.cancelled_caught:
                    raise ToolTimedOut
            if not isinstance(content, str):  # a Tool (not a FunctionTool) must return text
                return _error(call, _not_text(call.name, content))
            # Tool output enters the run here: cleaned once, before it is measured.
            content = self.window.truncate_tool_result(storable_text(content))
            return ToolResult.trusted(call.id, content)
        except ToolTimedOut:
            return _error(call, f"execution failed: timed out after {limit:g}s")
        except ToolError as exc:
            return self._long_error(call, str(exc))
        except Exception as exc:
            log.exception("tool %s raised", call.name)
            return self._long_error(call, f"execution failed: {type(exc).__name__}: {exc}")

    def _long_error(self, call: ToolCall, content: str) -> ToolResult:
        """An error result from a tool's own message, cut to a tool result's share.

        The message is the tool's output like any other (an exception may carry a
        whole response body or traceback): uncut, it would fill the window, and the
        newest exchange is kept whole on every later turn of the run.
        """
        return _error(call, self.window.truncate_tool_result(storable_text(content)))

    async def _after(self, call: ToolCall, result: ToolResult, model_id: str) -> ToolResult:
        if self.hooks:
            result = await self.hooks.after_tool_call(call, result)
        if result.call_id != model_id:  # a hook's replacement still answers the model's call
            result = result.model_copy(update={"call_id": model_id})
        return result


class RunStream:
    """The events of a streaming run; ``result`` is set once the run finished."""

    def __init__(self, receive: ObjectReceiveStream[RuntimeStreamEvent | BaseException]) -> None:
        self._receive = receive
        self.result: RunResult | None = None
        self.finished = False

    def __aiter__(self) -> RunStream:
        return self

    async def __anext__(self) -> RuntimeStreamEvent:
        try:
            item = await self._receive.receive()
        except anyio.EndOfStream:
            self.finished = True
            raise StopAsyncIteration from None
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        if isinstance(item, RunFinished):
            self.result = item.result
        return item


class _SessionWriter:
    """Appends each step to the store as it happens and tracks what this run wrote.

    The persistence of a run, kept apart from the loop: one write per step,
    the last one (the answer, with the hooks' metadata) staged in the session
    until ``before_session_save`` hooks ran, then written by ``finish`` through
    the store's ``append_last`` where it has one (SQLite: the lock's lease goes
    in the same transaction), else ``append``.
    """

    def __init__(self, store: SessionStore, session: Session) -> None:
        self.store = store
        self.session = session
        self._start = len(session.messages)
        self._written: list[Message] = []
        self._staged: list[Message] = []  # in the session, not stored yet
        self._metadata = copy.deepcopy(session.metadata) if session.metadata else {}  # as stored
        self._last_write: Callable[..., Awaitable[None]] = getattr(
            store, "append_last", store.append
        )

    async def append(self, message: Message) -> None:
        await self.store.append(
            self.session.namespace, [message], metadata=self._changed_metadata()
        )
        self.session.push_message(message)
        self._written.append(message)

    def stage(self, message: Message) -> None:
        """Put ``message`` in the session now; ``finish`` (or ``flush_staged``) stores it."""
        self.session.push_message(message)
        self._written.append(message)
        self._staged.append(message)

    async def flush_staged(self) -> None:
        """Store what is staged, shielded: the run ends by an error or a cancellation."""
        staged, self._staged = self._staged, []
        if staged:
            with anyio.CancelScope(shield=True):
                await self.store.append(
                    self.session.namespace, staged, metadata=self._changed_metadata()
                )

    async def finish(self) -> None:
        """The run's last write: what is staged and what hooks changed (metadata, a rewrite).

        What the hooks changed is checked first with the stores' own rules: when
        it cannot be stored (metadata that is not JSON, something that is no
        Message in the history), the staged answer is stored without it before
        the StoreError goes on, as when a ``before_session_save`` hook raises, so
        the model's answer is not lost. (Checked before writing, not by catching
        the write's error: a write that failed on the way back may have landed.)
        """
        ours = self.session.messages[self._start :]
        rewritten = len(ours) != len(self._written) or any(
            a is not b for a, b in zip(ours, self._written, strict=True)
        )
        metadata = None if rewritten else self._changed_metadata()
        key = self.session.namespace.key
        try:
            if rewritten:
                dump_messages(self.session.messages)
                dump_metadata(self.session.metadata, f"save session {key!r}")
            elif metadata is not None:
                dump_metadata(metadata, f"append to session {key!r}")
        except StoreError:
            await self.flush_plain()
            raise
        if rewritten:
            self._staged = []
            await self.store.save(self.session)
            return
        staged, self._staged = self._staged, []
        if staged or metadata is not None:
            await self._last_write(self.session.namespace, staged, metadata=metadata)

    async def flush_plain(self) -> None:
        """Store what is staged without the session's metadata, shielded; a failure of
        that write is left to the error already on its way."""
        staged, self._staged = self._staged, []
        if staged:
            with anyio.CancelScope(shield=True), contextlib.suppress(StoreError):
                await self.store.append(self.session.namespace, staged)

    def _changed_metadata(self) -> dict[str, Any] | None:
        current = self.session.metadata
        if current == self._metadata:
            return None
        self._metadata = copy.deepcopy(current)
        return self._metadata


def _trusted_request(**fields: Any) -> CompletionRequest:
    """A request from values the runtime built and validated already, every field given.

    Re-validating a long history on every step would make a turn's cost grow
    with it, and ``model_construct`` (which walks every field's aliases and
    defaults) costs more than validating a short one; this sets what it would.
    """
    return trusted(CompletionRequest, fields, set(fields))


class _Scopes:
    """anyio's cancel scopes for one run, the async backend looked up once.

    ``anyio.CancelScope(...)`` and ``anyio.move_on_after`` look the backend up on
    every call (sniffio, then a dict); a run stays on one event loop, so the run
    asks once and calls the backend's own ``create_cancel_scope``: the very
    scope class anyio would have made, with its semantics. On asyncio the
    backend is remembered per loop, with the loop's :class:`_Deadlines`.

    There, a per-tool timeout is such a scope without a deadline, which the
    loop's :class:`_Deadlines` cancels when it is due: anyio's own deadline
    schedules a timer on the loop when the scope is entered and cancels it when
    the scope is left, the cost of a timeout that almost never fires.
    """

    __slots__ = ("_backend", "_deadlines")

    def __init__(self) -> None:
        self._backend: Any = None  # looked up on first use: a run without tools needs none
        self._deadlines: _Deadlines | None = None

    def _lookup(self) -> Any:
        if self._backend is None and _get_async_backend is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not asyncio (trio): anyio's deadlines
                self._backend = _get_async_backend()
                return self._backend
            deadlines = _deadlines.get(loop)
            if deadlines is None:
                deadlines = _deadlines[loop] = _Deadlines(loop, _get_async_backend())
            self._backend, self._deadlines = deadlines.backend, deadlines
        return self._backend

    def shield(self) -> anyio.CancelScope:
        backend = self._lookup()
        if backend is None:
            return anyio.CancelScope(shield=True)
        scope: anyio.CancelScope = backend.create_cancel_scope(shield=True)
        return scope

    def timeout_scope(self, delay: float) -> tuple[anyio.CancelScope, _Deadlines | None]:
        """A scope for a call that may take ``delay`` seconds, and the deadlines to
        register it with once entered (then it has no deadline of its own); None
        off asyncio, where the scope carries anyio's deadline."""
        backend = self._lookup()
        if backend is None:
            return anyio.move_on_after(delay), None
        deadlines = self._deadlines
        if deadlines is None:
            scope: anyio.CancelScope = backend.create_cancel_scope(
                deadline=backend.current_time() + delay
            )
            return scope, None
        return backend.create_cancel_scope(), deadlines


class _Deadlines:
    """The per-tool timeouts of async tools on one asyncio loop, one timer for all.

    A scope's entry is a dict item (added when the tool starts, removed when it
    ends); the loop holds one timer, for the earliest deadline known when it
    was set, which cancels the scopes that are due and sets itself for the next.
    A tool that ends in time leaves the timer alone: it fires later, finds
    nothing or later deadlines, and moves on. The loop is held weakly.
    """

    __slots__ = ("__weakref__", "_due", "_loop", "_timer", "_timer_at", "backend")

    def __init__(self, loop: asyncio.AbstractEventLoop, backend: Any) -> None:
        self.backend = backend  # anyio's backend class for this loop
        self._loop = weakref.ref(loop)
        self._due: dict[anyio.CancelScope, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def add(self, scope: anyio.CancelScope, delay: float) -> None:
        loop = self._loop()
        if loop is None:  # pragma: no cover - a run on a loop that is gone
            return
        deadline = self._due[scope] = loop.time() + delay
        if deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = loop.call_at(deadline, self._expire_due)

    def discard(self, scope: anyio.CancelScope) -> None:
        self._due.pop(scope, None)

    def _expire_due(self) -> None:
        self._timer, self._timer_at = None, math.inf
        loop = self._loop()
        if loop is None or not self._due:
            return
        now, earliest = loop.time(), math.inf
        for scope, deadline in list(self._due.items()):
            if deadline <= now:
                del self._due[scope]
                scope.cancel()
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._timer_at = earliest
            self._timer = loop.call_at(earliest, self._expire_due)


_deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
    weakref.WeakKeyDictionary()
)


def _as_message(message: Message | str) -> Message:
    return Message.user(message) if isinstance(message, str) else message


def _not_text(name: str, content: object) -> str:
    """The error result of a tool whose ``execute`` returned something other than text.

    Without the check, bytes would ride into the stored result unvalidated (and
    reach the vendor as ``b'...'`` or fail its JSON encoder), and None or a dict
    would fail with an AttributeError that names neither the tool nor the fix.
    """
    return (
        f"execution failed: tool {name!r} returned {type(content).__name__}, not text; "
        "its execute() must return a str (e.g. json.dumps of the data)"
    )


def _error(call: ToolCall, content: str) -> ToolResult:
    return ToolResult(call_id=call.id, content=content, is_error=True)
