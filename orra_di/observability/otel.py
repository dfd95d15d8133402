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
nothing and pays two look-ups; with an SDK, a few microseconds per span.
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
    """What one run records to: a tracer, instruments, or both."""

    tracer: trace.Tracer | None
    instruments: _Instruments | None


class OpenTelemetryInstrumentation:
    """Spans and metrics for every run, model call and tool call.

    ``tracer_provider`` / ``meter_provider``: the providers to use; ``None``
    (the default) uses the global ones, looked up at each run so an SDK
    installed after start-up is picked up, and skipped entirely while they are
    the API's no-op proxies. ``provider_name`` is the model vendor
    (``gen_ai.provider.name``, e.g. ``"anthropic"``).
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
        self._tracers: dict[int, tuple[object, trace.Tracer]] = {}
        self._instruments: dict[int, tuple[object, _Instruments]] = {}
        self._active: contextvars.ContextVar[_Active | None] = contextvars.ContextVar(
            f"orra_di_otel_{id(self)}", default=None
        )
        self._common: dict[str, Any] = {}
        if provider_name:
            self._common = {PROVIDER: provider_name}

    def __repr__(self) -> str:
        return f"OpenTelemetryInstrumentation(provider_name={self.provider_name!r})"

    # -- which providers are live ---------------------------------------------

    def _tracer(self) -> trace.Tracer | None:
        provider = self._tracer_provider or trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            return None
        cached = self._tracers.get(id(provider))
        if cached is None or cached[0] is not provider:
            cached = (provider, provider.get_tracer(INSTRUMENTATION_NAME))
            self._tracers[id(provider)] = cached
        return cached[1]

    def _meters(self) -> _Instruments | None:
        provider = self._meter_provider or metrics.get_meter_provider()
        if isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__ == (
            "_ProxyMeterProvider"  # the API's proxy has no public name
        ):
            return None
        cached = self._instruments.get(id(provider))
        if cached is None or cached[0] is not provider:
            cached = (provider, _Instruments.create(provider.get_meter(INSTRUMENTATION_NAME)))
            self._instruments[id(provider)] = cached
        return cached[1]

    # -- the three steps -------------------------------------------------------

    async def run(
        self, namespace: Namespace, agent: str | None, model: str | None, step: Awaitable[_T]
    ) -> _T:
        tracer, instruments = self._tracer(), self._meters()
        if tracer is None and instruments is None:
            return await step
        # Few attributes: the SDK validates each one, and that is most of a span's cost.
        attributes: dict[str, Any] = {OPERATION: "invoke_agent", CONVERSATION_ID: namespace.key}
        if agent:
            attributes[AGENT_NAME] = agent
        name = f"invoke_agent {agent}" if agent else "invoke_agent"
        active = self._active.set(_Active(tracer, instruments))
        try:
            with _Span(tracer, name, SpanKind.INTERNAL, attributes) as span:
                start = time.perf_counter()
                try:
                    result = await step
                except BaseException as exc:
                    span.failed(exc)
                    if instruments is not None:
                        self._count_error(instruments, exc, "invoke_agent", agent)
                    raise
                finally:
                    if instruments is not None:
                        instruments.run_duration.record(
                            time.perf_counter() - start, _metric_attributes(span, agent)
                        )
                usage = getattr(result, "total_usage", None)
                if usage is not None:
                    span.set({INPUT_TOKENS: usage.input_tokens, OUTPUT_TOKENS: usage.output_tokens})
                return result
        finally:
            self._active.reset(active)

    async def model_call(
        self, request: CompletionRequest, step: Awaitable[CompletionResponse]
    ) -> CompletionResponse:
        active = self._active.get()
        if active is None:
            return await step
        attributes: dict[str, Any] = {OPERATION: "chat", **self._common}
        if request.model:
            attributes[REQUEST_MODEL] = request.model
        metric_attributes = dict(attributes)
        if request.max_tokens is not None:
            attributes[REQUEST_MAX_TOKENS] = request.max_tokens
        if request.temperature is not None:
            attributes[REQUEST_TEMPERATURE] = request.temperature
        name = f"chat {request.model}" if request.model else "chat"
        instruments = active.instruments
        with _Span(active.tracer, name, SpanKind.CLIENT, attributes) as span:
            start = time.perf_counter()
            try:
                response = await step
            except BaseException as exc:
                span.failed(exc)
                if instruments is not None:
                    metric_attributes[ERROR_TYPE] = span.error or error_type(exc)
                    instruments.operation_duration.record(
                        time.perf_counter() - start, metric_attributes
                    )
                    self._count_error(instruments, exc, "chat", None)
                raise
            usage = response.usage
            span.set(
                {
                    INPUT_TOKENS: usage.input_tokens,
                    OUTPUT_TOKENS: usage.output_tokens,
                    FINISH_REASONS: [str(response.finish_reason)],
                }
            )
            if instruments is not None:
                instruments.operation_duration.record(
                    time.perf_counter() - start, metric_attributes
                )
                if usage.input_tokens or usage.output_tokens:
                    instruments.token_usage.record(
                        usage.input_tokens, {**metric_attributes, TOKEN_TYPE: "input"}
                    )
                    instruments.token_usage.record(
                        usage.output_tokens, {**metric_attributes, TOKEN_TYPE: "output"}
                    )
            return response

    async def tool_call(self, call: ToolCall, step: Awaitable[ToolResult]) -> ToolResult:
        active = self._active.get()
        if active is None:
            return await step
        attributes: dict[str, Any] = {
            OPERATION: "execute_tool",
            TOOL_NAME: call.name,
            TOOL_CALL_ID: call.id,
        }
        instruments = active.instruments
        with _Span(
            active.tracer, f"execute_tool {call.name}", SpanKind.INTERNAL, attributes
        ) as span:
            try:
                result = await step
            except BaseException as exc:
                span.failed(exc)
                if instruments is not None:
                    kind = span.error or error_type(exc)
                    instruments.tool_calls.add(1, {TOOL_NAME: call.name, ERROR_TYPE: kind})
                    self._count_error(instruments, exc, "execute_tool", None)
                raise
            if result.is_error:
                span.failed_as(TOOL_ERROR)
            if instruments is not None:
                counted: dict[str, Any] = {TOOL_NAME: call.name}
                if result.is_error:
                    counted[ERROR_TYPE] = TOOL_ERROR
                    instruments.errors.add(1, {OPERATION: "execute_tool", ERROR_TYPE: TOOL_ERROR})
                instruments.tool_calls.add(1, counted)
            return result

    def _count_error(
        self, instruments: _Instruments, exc: BaseException, operation: str, agent: str | None
    ) -> None:
        kind = error_type(exc)
        instruments.errors.add(1, {OPERATION: operation, ERROR_TYPE: kind})
        if isinstance(exc, SessionBusyError):
            instruments.busy.add(1, {AGENT_NAME: agent} if agent else {})


def _metric_attributes(span: _Span, agent: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {AGENT_NAME: agent} if agent else {}
    if span.error:
        attributes[ERROR_TYPE] = span.error
    return attributes


class _Span:
    """A span made current for a block, or nothing when tracing is off.

    Written out rather than ``start_as_current_span`` so a cancellation
    (a ``BaseException``) is recorded too, and so the no-tracer path is free.
    """

    __slots__ = ("_attributes", "_kind", "_name", "_span", "_token", "_tracer", "error")

    def __init__(
        self,
        tracer: trace.Tracer | None,
        name: str,
        kind: SpanKind,
        attributes: Mapping[str, Any],
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._kind = kind
        self._attributes = attributes
        self._span: trace.Span | None = None
        self._token: object = None
        self.error: str | None = None

    def __enter__(self) -> _Span:
        if self._tracer is not None:
            self._span = self._tracer.start_span(
                self._name, kind=self._kind, attributes=self._attributes
            )
            self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._span is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._span.end()

    def set(self, attributes: Mapping[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes(attributes)

    def failed(self, exc: BaseException) -> None:
        self.failed_as(error_type(exc))
        if self._span is not None and isinstance(exc, Exception):
            self._span.record_exception(exc)

    def failed_as(self, kind: str) -> None:
        self.error = kind
        if self._span is not None:
            self._span.set_attribute(ERROR_TYPE, kind)
            self._span.set_status(Status(StatusCode.ERROR, kind))
