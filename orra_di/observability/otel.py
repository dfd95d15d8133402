"""Spans and metrics on the OpenTelemetry API (``pip install "orra-di[otel]"``).

Only ``opentelemetry-api`` is needed: the application brings the SDK and its
exporter (OTLP, console, an in-memory one in tests) and either installs them
globally (``trace.set_tracer_provider``, ``metrics.set_meter_provider``) or
hands its providers to :class:`OpenTelemetryInstrumentation`.

What is emitted follows the OpenTelemetry semantic conventions for generative
AI (``gen_ai.*``):

- a span ``invoke_agent {agent}`` per run (``gen_ai.agent.name``,
  ``gen_ai.conversation.id`` = the namespace key, the run's token totals), the
  parent of
- a span ``chat {model}`` (kind CLIENT) per model call: ``gen_ai.request.model``,
  ``gen_ai.provider.name``,
  ``gen_ai.usage.input_tokens`` / ``output_tokens``,
  ``gen_ai.response.finish_reasons``; and
- a span ``execute_tool {tool}`` per tool call: ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id``.

A failure sets ``error.type`` (the exception's class, ``tool_error`` for a tool
call answered with an error result) and the span's status. Message text, tool
arguments and tool output are never recorded: they are the users' data.

Metrics: the histograms ``gen_ai.client.token.usage`` (by ``gen_ai.token.type``)
and ``gen_ai.client.operation.duration`` (seconds per model call),
``orra.run.duration``, and the counters ``orra.tool.calls``, ``orra.errors`` and
``orra.session.busy_refusals``.

Cost: with no SDK installed globally (the API's proxy providers) a run records
nothing and pays an ``is None`` test and a clock read (the providers are looked
up again at most every :data:`RECHECK_SECONDS`); with an SDK, the SDK's own cost
(``benchmarks/bench_telemetry.py`` prints it as a floor) and a small share above it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from orra_di.errors import ConfigurationError, SessionBusyError
from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ConfigurationError(
        'OpenTelemetry instrumentation needs opentelemetry-api: pip install "orra-di[otel]"'
    ) from exc

__all__ = [
    "CANCELLED",
    "ERRORS",
    "INSTRUMENTATION_NAME",
    "OPERATION_DURATION",
    "RECHECK_SECONDS",
    "RUN_DURATION",
    "SESSION_BUSY_REFUSALS",
    "TOKEN_USAGE",
    "TOOL_CALLS",
    "OpenTelemetryInstrumentation",
    "error_type",
]

INSTRUMENTATION_NAME = "orra_di"
TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
RUN_DURATION = "orra.run.duration"
TOOL_CALLS = "orra.tool.calls"
ERRORS = "orra.errors"
SESSION_BUSY_REFUSALS = "orra.session.busy_refusals"

# The semantic conventions' attribute names (kept here rather than depending on
# the still-experimental opentelemetry-semantic-conventions package).
OPERATION = "gen_ai.operation.name"
PROVIDER = "gen_ai.provider.name"
REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
FINISH_REASONS = "gen_ai.response.finish_reasons"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
TOKEN_TYPE = "gen_ai.token.type"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
AGENT_NAME = "gen_ai.agent.name"
CONVERSATION_ID = "gen_ai.conversation.id"
ERROR_TYPE = "error.type"
TOOL_ERROR = "tool_error"
"""``error.type`` of a tool call answered with an error result (refused, failed, timed out)."""

# The bucket boundaries the conventions advise for the two gen_ai histograms.
_TOKEN_BUCKETS = [4.0**i for i in range(14)]  # 1, 4, 16, ... 67,108,864
_DURATION_BUCKETS = [0.01 * 2**i for i in range(14)]  # 0.01 s ... 81.92 s

_T = TypeVar("_T")
_V = TypeVar("_V")


CANCELLED = "cancelled"
"""``error.type`` of a run or call cancelled from outside (asyncio's or trio's cancellation)."""


def error_type(exc: BaseException) -> str:
    """``error.type`` for an exception: its class, qualified by module unless built in;
    :data:`CANCELLED` for a cancellation, whatever the event loop."""
    cls = type(exc)
    if isinstance(exc, asyncio.CancelledError) or cls.__qualname__ == "Cancelled":
        return CANCELLED
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


@dataclass(frozen=True, slots=True)
class _Instruments:
    token_usage: metrics.Histogram
    operation_duration: metrics.Histogram
    run_duration: metrics.Histogram
    tool_calls: metrics.Counter
    errors: metrics.Counter
    busy: metrics.Counter

    @classmethod
    def create(cls, meter: metrics.Meter) -> _Instruments:
        return cls(
            token_usage=meter.create_histogram(
                TOKEN_USAGE,
                unit="{token}",
                description="Tokens used per model call, by gen_ai.token.type",
                explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
            ),
            operation_duration=meter.create_histogram(
                OPERATION_DURATION,
                unit="s",
                description="Duration of model calls",
                explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
            ),
            run_duration=meter.create_histogram(
                RUN_DURATION, unit="s", description="Duration of agent runs, tools included"
            ),
            tool_calls=meter.create_counter(
                TOOL_CALLS, unit="{call}", description="Tool calls, by tool and error.type"
            ),
            errors=meter.create_counter(
                ERRORS, unit="{error}", description="Failed runs, model calls and tool calls"
            ),
            busy=meter.create_counter(
                SESSION_BUSY_REFUSALS,
                unit="{run}",
                description="Runs refused because another run held the session",
            ),
        )


@dataclass(frozen=True, slots=True)
class _Active:
    """What one run records to: a tracer, instruments, or both, and the context
    holding the run's span (the parent of its model and tool call spans)."""

    tracer: trace.Tracer | None
    instruments: _Instruments | None
    context: otel_context.Context | None


@dataclass(frozen=True, slots=True)
class _Chat:
    """What every call with one model and one set of request settings shares:
    built once, so a call builds no names or attribute dicts of its own."""

    name: str
    span_attributes: Mapping[str, Any]
    metric_attributes: Mapping[str, Any]
    token_attributes: tuple[Mapping[str, Any], Mapping[str, Any]]  # input, output


RECHECK_SECONDS = 1.0
"""While no SDK is installed, how long the instrumentation goes without looking
for one: an SDK installed after start-up is picked up within this delay."""

_CACHE_LIMIT = 256
"""Entries per look-up table (models, tools, agents, finish reasons) before it is
emptied: the keys come from configuration and are few; the bound only keeps an
application that varies them per call from growing the table forever."""

_NOT_CACHED: Any = object()


def _remember(cache: dict[Any, _V], key: Any, value: _V) -> _V:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


class OpenTelemetryInstrumentation:
    """Spans and metrics for every run, model call and tool call.

    ``tracer_provider`` / ``meter_provider``: the providers to use; ``None``
    (the default) uses the global ones, looked up at each run so an SDK
    installed after start-up is picked up (within :data:`RECHECK_SECONDS`), and
    skipped entirely while they are the API's no-op proxies. ``provider_name`` is the model vendor
    (``gen_ai.provider.name``, e.g. ``"anthropic"``).

    Each span is made the current one while its step runs, so the spans of an
    instrumented HTTP client, database driver or nested run land beneath it;
    the model and tool call spans are started with the run's context handed
    over explicitly, and every measurement is recorded with its span's context
    (an exemplar links a duration to its span). What does not change from one
    call to the next (span names, metric attribute sets) is built once and
    reused: the SDK copies what it keeps.
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        provider_name: str | None = None,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.provider_name = provider_name
        # (provider, what it gives): one identity test per run while it stays the same.
        self._tracer_cache: tuple[object, trace.Tracer | None] = (None, None)
        self._instruments_cache: tuple[object, _Instruments | None] = (None, None)
        self._idle_until = 0.0  # time.monotonic() before which no SDK is looked for
        self._active: contextvars.ContextVar[_Active | None] = contextvars.ContextVar(
            f"orra_di_otel_{id(self)}", default=None
        )
        self._chats: dict[tuple[str | None, int | None, float | None], _Chat] = {}
        self._tools: dict[str, tuple[str, Mapping[str, Any]]] = {}
        self._agents: dict[str | None, tuple[str, Mapping[str, Any]]] = {}
        self._finish: dict[object, tuple[str]] = {}

    def __repr__(self) -> str:
        return f"OpenTelemetryInstrumentation(provider_name={self.provider_name!r})"

    # -- which providers are live ---------------------------------------------

    def _tracer(self) -> trace.Tracer | None:
        provider = self._tracer_provider or trace.get_tracer_provider()
        cached = self._tracer_cache
        if cached[0] is provider:
            return cached[1]
        tracer = None
        if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self._tracer_cache = (provider, tracer)
        return tracer

    def _meters(self) -> _Instruments | None:
        provider = self._meter_provider or metrics.get_meter_provider()
        cached = self._instruments_cache
        if cached[0] is provider:
            return cached[1]
        instruments = None
        if not isinstance(provider, metrics.NoOpMeterProvider) and type(provider).__name__ != (
            "_ProxyMeterProvider"  # the API's proxy has no public name
        ):
            instruments = _Instruments.create(provider.get_meter(INSTRUMENTATION_NAME))
        self._instruments_cache = (provider, instruments)
        return instruments

    # -- what calls share ------------------------------------------------------

    def _agent(self, agent: str | None) -> tuple[str, Mapping[str, Any]]:
        """The run span's name and the run metrics' attributes for ``agent``."""
        found = self._agents.get(agent)
        if found is None:
            name = f"invoke_agent {agent}" if agent else "invoke_agent"
            found = _remember(self._agents, agent, (name, {AGENT_NAME: agent} if agent else {}))
        return found

    def _chat(self, request: CompletionRequest) -> _Chat:
        key = (request.model, request.max_tokens, request.temperature)
        found = self._chats.get(key)
        if found is not None:
            return found
        metric: dict[str, Any] = {OPERATION: "chat"}
        if self.provider_name:
            metric[PROVIDER] = self.provider_name
        if request.model:
            metric[REQUEST_MODEL] = request.model
        span = dict(metric)
        if request.max_tokens is not None:
            span[REQUEST_MAX_TOKENS] = request.max_tokens
        if request.temperature is not None:
            span[REQUEST_TEMPERATURE] = request.temperature
        chat = _Chat(
            name=f"chat {request.model}" if request.model else "chat",
            span_attributes=span,
            metric_attributes=metric,
            token_attributes=({**metric, TOKEN_TYPE: "input"}, {**metric, TOKEN_TYPE: "output"}),
        )
        return _remember(self._chats, key, chat)

    def _tool(self, name: str) -> tuple[str, Mapping[str, Any]]:
        """The tool span's name and the tool counter's attributes for a successful call."""
        found = self._tools.get(name)
        if found is None:
            found = _remember(self._tools, name, (f"execute_tool {name}", {TOOL_NAME: name}))
        return found

    def _finish_reasons(self, reason: object) -> tuple[str]:
        found = self._finish.get(reason, _NOT_CACHED)
        if found is _NOT_CACHED:
            found = _remember(self._finish, reason, (str(reason),))
        return found  # type: ignore[no-any-return]

    # -- the three steps -------------------------------------------------------

    async def run(
        self, namespace: Namespace, agent: str | None, model: str | None, step: Awaitable[_T]
    ) -> _T:
        if self._idle_until and time.monotonic() < self._idle_until:
            return await step
        tracer, instruments = self._tracer(), self._meters()
        if tracer is None and instruments is None:
            # No SDK: look again in a while, not at every run (the API's look-up of
            # the global providers reads the environment, and raises inside, each time).
            self._idle_until = time.monotonic() + RECHECK_SECONDS
            return await step
        self._idle_until = 0.0
        name, agent_attributes = self._agent(agent)
        span = context = token = None
        if tracer is not None:
            # Few attributes: the SDK validates each one, and that is most of a span's cost.
            attributes: dict[str, Any] = {OPERATION: "invoke_agent", CONVERSATION_ID: namespace.key}
            if agent:
                attributes[AGENT_NAME] = agent
            # No context given: an application's own span (a web request's) is the parent.
            span = tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attributes)
            context = trace.set_span_in_context(span)
            token = otel_context.attach(context)
        active = self._active.set(_Active(tracer, instruments, context))
        start = time.perf_counter()
        try:
            result = await step
        except BaseException as exc:
            kind = error_type(exc)
            if span is not None:
                _failed(span, kind, exc)
            if instruments is not None:
                instruments.run_duration.record(
                    time.perf_counter() - start, {**agent_attributes, ERROR_TYPE: kind}, context
                )
                _count_error(instruments, exc, kind, "invoke_agent", agent_attributes, context)
            raise
        else:
            if instruments is not None:
                instruments.run_duration.record(
                    time.perf_counter() - start, agent_attributes, context
                )
            if span is not None:
                usage = getattr(result, "total_usage", None)
                if usage is not None:
                    span.set_attributes(
                        {INPUT_TOKENS: usage.input_tokens, OUTPUT_TOKENS: usage.output_tokens}
                    )
            return result
        finally:
            self._active.reset(active)
            if span is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
                span.end()

    async def model_call(
        self, request: CompletionRequest, step: Awaitable[CompletionResponse]
    ) -> CompletionResponse:
        active = self._active.get()
        if active is None:
            return await step
        chat = self._chat(request)
        tracer, instruments = active.tracer, active.instruments
        span = context = token = None
        if tracer is not None:
            parent = active.context
            span = tracer.start_span(chat.name, parent, SpanKind.CLIENT, chat.span_attributes)
            context = trace.set_span_in_context(span, parent)
            token = otel_context.attach(context)
        start = time.perf_counter()
        try:
            response = await step
        except BaseException as exc:
            kind = error_type(exc)
            if span is not None:
                _failed(span, kind, exc)
            if instruments is not None:
                instruments.operation_duration.record(
                    time.perf_counter() - start,
                    {**chat.metric_attributes, ERROR_TYPE: kind},
                    context,
                )
                _count_error(instruments, exc, kind, "chat", None, context)
            raise
        else:
            usage = response.usage
            if instruments is not None:
                instruments.operation_duration.record(
                    time.perf_counter() - start, chat.metric_attributes, context
                )
                if usage.input_tokens or usage.output_tokens:
                    tokens_in, tokens_out = chat.token_attributes
                    instruments.token_usage.record(usage.input_tokens, tokens_in, context)
                    instruments.token_usage.record(usage.output_tokens, tokens_out, context)
            if span is not None:
                span.set_attributes(
                    {
                        INPUT_TOKENS: usage.input_tokens,
                        OUTPUT_TOKENS: usage.output_tokens,
                        FINISH_REASONS: self._finish_reasons(response.finish_reason),
                    }
                )
            return response
        finally:
            if span is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
                span.end()

    async def tool_call(self, call: ToolCall, step: Awaitable[ToolResult]) -> ToolResult:
        active = self._active.get()
        if active is None:
            return await step
        name, counted = self._tool(call.name)
        tracer, instruments = active.tracer, active.instruments
        span = context = token = None
        if tracer is not None:
            parent = active.context
            attributes = {OPERATION: "execute_tool", TOOL_NAME: call.name, TOOL_CALL_ID: call.id}
            span = tracer.start_span(name, parent, SpanKind.INTERNAL, attributes)
            context = trace.set_span_in_context(span, parent)
            token = otel_context.attach(context)
        try:
            result = await step
        except BaseException as exc:
            kind = error_type(exc)
            if span is not None:
                _failed(span, kind, exc)
            if instruments is not None:
                instruments.tool_calls.add(1, {**counted, ERROR_TYPE: kind}, context)
                _count_error(instruments, exc, kind, "execute_tool", None, context)
            raise
        else:
            if result.is_error:
                if span is not None:
                    _failed(span, TOOL_ERROR, None)
                if instruments is not None:
                    instruments.tool_calls.add(1, {**counted, ERROR_TYPE: TOOL_ERROR}, context)
                    instruments.errors.add(
                        1, {OPERATION: "execute_tool", ERROR_TYPE: TOOL_ERROR}, context
                    )
            elif instruments is not None:
                instruments.tool_calls.add(1, counted, context)
            return result
        finally:
            if span is not None:
                otel_context.detach(token)  # type: ignore[arg-type]
                span.end()


def _count_error(
    instruments: _Instruments,
    exc: BaseException,
    kind: str,
    operation: str,
    agent_attributes: Mapping[str, Any] | None,
    context: otel_context.Context | None,
) -> None:
    instruments.errors.add(1, {OPERATION: operation, ERROR_TYPE: kind}, context)
    if isinstance(exc, SessionBusyError):
        instruments.busy.add(1, agent_attributes or {}, context)


def _failed(span: trace.Span, kind: str, exc: BaseException | None) -> None:
    """Mark ``span`` failed with ``error.type`` ``kind``; an ``Exception`` (not a
    cancellation) also gets an ``exception`` event with its type only: no message or
    stack trace, since a vendor's error may quote the prompt and traces must not hold
    message text (``record_exception`` would store both)."""
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, kind))
    if isinstance(exc, Exception):
        span.add_event("exception", {"exception.type": error_type(exc)})
