"""Round 12 review: docs/observability.md read as a user would, checked through the
OpenTelemetry SDK's in-memory exporter and reader, orra's ``MetricsCollector`` and
its sinks, and the Prometheus page (``exposition`` and the ASGI app).
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from orra_di import InMemoryStore, Runtime, RuntimeConfig, SessionBusyError, tool
from orra_di.observability import combine
from orra_di.observability.metrics import (
    LoggingSink,
    MetricsCollector,
    MetricsInstrumentation,
    names,
)
from orra_di.observability.otel import OpenTelemetryInstrumentation
from orra_di.observability.prometheus import asgi_app, exposition
from orra_di.provider import CompletionRequest, Usage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.instrumentation = OpenTelemetryInstrumentation(
            tracer_provider=provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            provider_name="openai",
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.finished() if s.name == name]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            p
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == metric
            for p in m.data.data_points
        ]


def everything_recorded(otel: Otel) -> str:
    """Every attribute and event (exceptions included) of every span, as text."""
    parts: list[str] = []
    for span in otel.finished():
        parts.append(repr(dict(span.attributes or {})))
        parts.append(repr(span.status.description))
        for event in span.events:
            parts.append(event.name + repr(dict(event.attributes or {})))
    return "\n".join(parts)


async def test_a_nested_run_inside_a_tool_lands_beneath_that_tool_call() -> None:
    otel = Otel()
    inner = Runtime(
        ScriptedProvider([reply("inner answer")]),
        InMemoryStore(),
        config=RuntimeConfig(name="Scout", model="gpt-mini"),
        instrumentation=otel.instrumentation,
    )

    @tool
    async def ask_scout(question: str) -> str:
        """Ask the scout."""
        result = await inner.run("acme:alice:scout", question)
        return result.final_message.content

    outer = Runtime(
        ScriptedProvider([tool_calls(call("ask_scout", {"question": "q"})), reply("done")]),
        InMemoryStore(),
        tools=[ask_scout],
        config=RuntimeConfig(name="Atlas", model="gpt-big"),
        instrumentation=otel.instrumentation,
    )
    await outer.run("acme:alice", "go")

    (atlas,) = otel.named("invoke_agent Atlas")
    (scout,) = otel.named("invoke_agent Scout")
    (tool_span,) = otel.named("execute_tool ask_scout")
    (scout_chat,) = otel.named("chat gpt-mini")
    assert tool_span.parent is not None and tool_span.parent.span_id == atlas.context.span_id
    assert scout.parent is not None and scout.parent.span_id == tool_span.context.span_id
    assert scout_chat.parent is not None and scout_chat.parent.span_id == scout.context.span_id
    assert len({s.context.trace_id for s in otel.finished()}) == 1
    assert scout.attributes is not None
    assert scout.attributes["gen_ai.conversation.id"] == "acme:alice:scout"


async def test_chat_spans_carry_the_request_settings_and_the_provider_name() -> None:
    otel = Otel()
    runtime = Runtime(
        ScriptedProvider([reply("hi", usage=Usage(input_tokens=3, output_tokens=1))]),
        InMemoryStore(),
        config=RuntimeConfig(name="Atlas", model="gpt-4o", max_tokens=321, temperature=0.25),
        instrumentation=otel.instrumentation,
    )
    await runtime.run("acme:alice", "hello")
    (chat,) = otel.named("chat gpt-4o")
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.request.max_tokens"] == 321
    assert attributes["gen_ai.request.temperature"] == 0.25
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "gpt-4o"


async def test_a_failing_tool_and_its_arguments_leave_no_trace_of_user_data() -> None:
    @tool
    def vault(secret: str) -> str:
        """Open the vault."""
        raise RuntimeError(f"wrong combination {secret}")

    otel = Otel()
    runtime = Runtime(
        ScriptedProvider([tool_calls(call("vault", {"secret": "0451-pin"})), reply("no luck")]),
        InMemoryStore(),
        tools=[vault],
        config=RuntimeConfig(name="Atlas"),
        instrumentation=otel.instrumentation,
    )
    await runtime.run("acme:alice", "my code is hunter2, open the vault")
    (span,) = otel.named("execute_tool vault")
    assert span.status.status_code is StatusCode.ERROR
    recorded = everything_recorded(otel)
    for private in ("0451-pin", "hunter2", "wrong combination", "no luck"):
        assert private not in recorded


async def test_a_run_cancelled_from_outside_says_cancelled() -> None:
    otel = Otel()
    started = anyio.Event()

    async def slow(request: CompletionRequest) -> str:
        started.set()
        await anyio.sleep(30)
        return "late"

    runtime = Runtime(
        ScriptedProvider(slow),
        InMemoryStore(),
        config=RuntimeConfig(name="Atlas", model="m"),
        instrumentation=otel.instrumentation,
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run, "acme:alice", "hello")
        await started.wait()
        tg.cancel_scope.cancel()
    for name in ("invoke_agent Atlas", "chat m"):
        (span,) = otel.named(name)
        assert dict(span.attributes or {})["error.type"] == "cancelled"
        assert span.status.status_code is StatusCode.ERROR
    (run_duration,) = otel.points("orra.run.duration")
    assert run_duration.attributes["error.type"] == "cancelled"


async def test_a_busy_refusal_is_counted_by_both_instrumentations() -> None:
    otel, collector = Otel(), MetricsCollector()
    gate = anyio.Event()

    async def held(request: CompletionRequest) -> str:
        await gate.wait()
        return "first"

    store = InMemoryStore()
    runtime = Runtime(
        ScriptedProvider(held),
        store,
        config=RuntimeConfig(name="Atlas", busy_timeout=0.05),
        instrumentation=combine(otel.instrumentation, MetricsInstrumentation(collector)),
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run, "acme:alice", "one")
        await anyio.sleep(0.05)
        with pytest.raises(SessionBusyError):
            await runtime.run("acme:alice", "two")
        gate.set()
    (busy,) = otel.points("orra.session.busy_refusals")
    assert busy.value == 1 and busy.attributes == {"gen_ai.agent.name": "Atlas"}
    assert collector.get_counter(names.BUSY_REFUSALS, {"agent": "Atlas"}) == 1
    assert collector.get_counter(names.REQUESTS_TOTAL, {"agent": "Atlas"}) == 2
    assert collector.get_counter(names.REQUESTS_ERRORS, {"agent": "Atlas"}) == 1
    assert collector.get_gauge(names.ACTIVE_SESSIONS) == 0


async def test_the_standard_metrics_add_up_for_tools_that_fail_and_succeed() -> None:
    @tool
    def ok() -> str:
        """Works."""
        return "fine"

    @tool
    def bad() -> str:
        """Fails."""
        raise RuntimeError("no")

    collector = MetricsCollector()
    script = [
        tool_calls(call("ok", {}), call("bad", {}), usage=Usage(input_tokens=10, output_tokens=4)),
        reply("done", usage=Usage(input_tokens=20, output_tokens=6)),
    ]
    runtime = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[ok, bad],
        config=RuntimeConfig(name="Atlas", model="m1"),
        instrumentation=MetricsInstrumentation(collector),
    )
    await runtime.run("acme:alice", "go")
    assert collector.get_counter(names.PROVIDER_CALLS, {"model": "m1"}) == 2
    assert collector.get_counter(names.TOKENS_INPUT, {"model": "m1"}) == 30
    assert collector.get_counter(names.TOKENS_OUTPUT, {"model": "m1"}) == 10
    assert collector.get_counter(names.TOOL_CALLS, {"tool": "ok"}) == 1
    assert collector.get_counter(names.TOOL_CALLS, {"tool": "bad"}) == 1
    assert collector.get_counter(names.TOOL_ERRORS, {"tool": "bad"}) == 1
    assert collector.get_counter(names.TOOL_ERRORS, {"tool": "ok"}) == 0
    assert len(collector.get_histogram(names.TOOL_LATENCY_MS, {"tool": "ok"})) == 1
    assert collector.get_gauge(names.ACTIVE_SESSIONS) == 0

    page, content_type = exposition(collector)
    assert content_type.startswith("text/plain")
    text = page.decode()
    assert 'agent_tool_errors_total{tool="bad"} 1.0' in text
    assert 'agent_tokens_input_total{model="m1"} 30.0' in text
    assert 'agent_provider_latency_ms_count{model="m1"} 2.0' in text
    assert 'quantile="0.99"' in text


async def test_the_asgi_app_serves_the_page_that_exposition_builds() -> None:
    collector = MetricsCollector()
    collector.increment("agent.requests.total", 3, {"agent": "Atlas"})
    collector.histogram("agent.requests.latency_ms", 12.5)
    transport = httpx.ASGITransport(app=asgi_app(collector))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'agent_requests_total{agent="Atlas"} 3.0' in response.text
    assert "agent_requests_latency_ms_sum 12.5" in response.text
    # the page reads the collector at each scrape
    collector.increment("agent.requests.total", 1, {"agent": "Atlas"})
    assert b'agent_requests_total{agent="Atlas"} 4.0' in exposition(collector)[0]


async def test_flush_hands_each_histogram_sample_to_the_logging_sink_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = MetricsCollector()
    collector.add_sink(LoggingSink())
    collector.increment(names.TOOL_CALLS, 2, {"tool": "search"})
    collector.histogram(names.TOOL_LATENCY_MS, 7.0, {"tool": "search"})
    with caplog.at_level(logging.INFO, logger="orra_di.metrics"):
        await collector.flush()
        await collector.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "orra_di.metrics"]
    assert lines.count("[metrics] agent.tool.calls = 2.0 {'tool': 'search'}") == 2
    assert lines.count("[metrics] agent.tool.latency_ms = 7.0 {'tool': 'search'}") == 1
    kinds = {getattr(r, "metric_kind", None) for r in caplog.records if r.name == "orra_di.metrics"}
    assert kinds == {"counter", "histogram"}
    # percentiles stay available after the flush
    stats = collector.snapshot().histogram_stats('agent.tool.latency_ms{tool="search"}')
    assert stats is not None and stats.count == 1 and stats.p99 == 7.0


async def test_a_vendor_error_quoting_the_prompt_leaves_only_its_type_in_the_trace() -> None:
    """A provider error may quote the prompt ("... 'my code is hunter2' ..."): the spans
    get ``error.type`` and an ``exception`` event with the type, never the message."""
    from orra_di.errors import ProviderBadRequestError

    def refuse(request: CompletionRequest) -> Any:
        raise ProviderBadRequestError(f"invalid content: {request.messages[-1].content!r}")

    otel = Otel()
    runtime = Runtime(
        ScriptedProvider(refuse),
        InMemoryStore(),
        config=RuntimeConfig(name="Atlas"),
        instrumentation=otel.instrumentation,
    )
    with pytest.raises(ProviderBadRequestError):
        await runtime.run("acme:alice", "my code is hunter2")
    recorded = everything_recorded(otel)
    assert "hunter2" not in recorded and "invalid content" not in recorded
    (chat,) = [s for s in otel.finished() if s.name.startswith("chat")]
    (event,) = [e for e in chat.events if e.name == "exception"]
    assert dict(event.attributes or {}) == {
        "exception.type": "orra_di.errors.ProviderBadRequestError"
    }
