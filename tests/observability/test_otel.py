"""OpenTelemetry spans and metrics, read back through the SDK's in-memory exporters.

The tests hand their own providers to the instrumentation: the global ones can
be set only once per process, and no test may depend on another's.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from orra_di import InMemoryStore, Runtime, RuntimeConfig, SessionBusyError, tool
from orra_di.errors import ProviderUnavailableError
from orra_di.observability import combine
from orra_di.observability.otel import OpenTelemetryInstrumentation
from orra_di.provider import Usage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


class Telemetry:
    """An instrumentation on in-memory SDK providers, with readers for what it emitted."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.instrumentation = OpenTelemetryInstrumentation(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.reader]),
            provider_name="anthropic",
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [s for s in self.finished() if s.name == name]
        return found

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


@tool
def broken(key: str) -> str:
    """Always fails."""
    raise RuntimeError("disk on fire")


def runtime(telemetry: Telemetry, script: Any, **config: Any) -> Runtime:
    return Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[lookup, broken],
        config=RuntimeConfig(name="Atlas", model="claude-test", **config),
        instrumentation=telemetry.instrumentation,
    )


async def test_a_run_is_one_agent_span_with_model_and_tool_spans_below(
    telemetry: Telemetry,
) -> None:
    script = [
        tool_calls(
            call("lookup", {"key": "a"}, id="c1"), usage=Usage(input_tokens=12, output_tokens=5)
        ),
        reply("done", usage=Usage(input_tokens=30, output_tokens=7)),
    ]
    await runtime(telemetry, script).run("acme:alice", "look a up")

    agent = telemetry.span("invoke_agent Atlas")
    chats = [s for s in telemetry.finished() if s.name == "chat claude-test"]
    tool_span = telemetry.span("execute_tool lookup")
    assert len(chats) == 2
    assert agent.parent is None
    for child in [*chats, tool_span]:
        assert child.parent is not None and child.parent.span_id == agent.context.span_id
        assert child.context.trace_id == agent.context.trace_id
    assert agent.attributes is not None
    assert agent.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert agent.attributes["gen_ai.agent.name"] == "Atlas"
    assert agent.attributes["gen_ai.conversation.id"] == "acme:alice"
    assert agent.attributes["gen_ai.usage.input_tokens"] == 42
    assert agent.attributes["gen_ai.usage.output_tokens"] == 12

    first = chats[0]
    assert first.kind is SpanKind.CLIENT
    assert first.attributes is not None
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.request.model"] == "claude-test"
    assert first.attributes["gen_ai.provider.name"] == "anthropic"
    assert first.attributes["gen_ai.usage.input_tokens"] == 12
    assert first.attributes["gen_ai.usage.output_tokens"] == 5
    assert tuple(first.attributes["gen_ai.response.finish_reasons"]) == ("tool_use",)
    assert tuple(chats[1].attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[index]

    assert tool_span.attributes is not None
    assert tool_span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_span.attributes["gen_ai.tool.name"] == "lookup"
    assert tool_span.attributes["gen_ai.tool.call.id"] == "c1"
    assert "error.type" not in tool_span.attributes
    assert all(s.status.status_code is not StatusCode.ERROR for s in telemetry.finished())


async def test_no_user_text_or_tool_data_is_recorded(telemetry: Telemetry) -> None:
    script = [tool_calls(call("lookup", {"key": "s3cr3t-key"})), reply("the answer is 42")]
    await runtime(telemetry, script).run("acme:alice", "my password is hunter2")
    recorded = repr([dict(s.attributes or {}) for s in telemetry.finished()])
    for private in ("hunter2", "s3cr3t-key", "the answer is 42", "value of"):
        assert private not in recorded


async def test_parallel_tool_spans_are_siblings_under_the_run(telemetry: Telemetry) -> None:
    script = [tool_calls(call("lookup", {"key": "a"}), call("lookup", {"key": "b"})), reply("ok")]
    await runtime(telemetry, script).run("acme:alice", "two at once")
    agent = telemetry.span("invoke_agent Atlas")
    tools = [s for s in telemetry.finished() if s.name == "execute_tool lookup"]
    assert len(tools) == 2
    assert {s.parent.span_id for s in tools if s.parent} == {agent.context.span_id}


async def test_a_failing_tool_marks_its_span_and_counts_an_error(telemetry: Telemetry) -> None:
    script = [tool_calls(call("broken", {"key": "a"})), reply("sorry")]
    await runtime(telemetry, script).run("acme:alice", "try it")
    span = telemetry.span("execute_tool broken")
    assert span.attributes is not None and span.attributes["error.type"] == "tool_error"
    assert span.status.status_code is StatusCode.ERROR
    calls = {
        (p.attributes["gen_ai.tool.name"], p.attributes.get("error.type")): p.value
        for p in telemetry.points("orra.tool.calls")
    }
    assert calls == {("broken", "tool_error"): 1}
    errors = {
        p.attributes["gen_ai.operation.name"]: p.value for p in telemetry.points("orra.errors")
    }
    assert errors == {"execute_tool": 1}


async def test_a_provider_failure_ends_both_spans_with_its_error_type(
    telemetry: Telemetry,
) -> None:
    rt = runtime(telemetry, [ProviderUnavailableError("vendor down")])
    with pytest.raises(ProviderUnavailableError):
        await rt.run("acme:alice", "hello")
    kind = "orra_di.errors.ProviderUnavailableError"
    chat = telemetry.span("chat claude-test")
    agent = telemetry.span("invoke_agent Atlas")
    for span in (chat, agent):
        assert span.attributes is not None and span.attributes["error.type"] == kind
        assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in chat.events] == ["exception"]
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == kind and duration.count == 1
    errors = {
        p.attributes["gen_ai.operation.name"]: p.value for p in telemetry.points("orra.errors")
    }
    assert errors == {"chat": 1, "invoke_agent": 1}


async def test_token_usage_and_duration_histograms_follow_the_conventions(
    telemetry: Telemetry,
) -> None:
    script = [
        tool_calls(call("lookup", {"key": "a"}), usage=Usage(input_tokens=10, output_tokens=2)),
        reply("done", usage=Usage(input_tokens=20, output_tokens=3)),
    ]
    await runtime(telemetry, script).run("acme:alice", "go")
    tokens = {
        p.attributes["gen_ai.token.type"]: p for p in telemetry.points("gen_ai.client.token.usage")
    }
    assert (tokens["input"].count, tokens["input"].sum) == (2, 30)
    assert (tokens["output"].count, tokens["output"].sum) == (2, 5)
    for point in tokens.values():
        assert point.attributes["gen_ai.operation.name"] == "chat"
        assert point.attributes["gen_ai.request.model"] == "claude-test"
        assert point.attributes["gen_ai.provider.name"] == "anthropic"
    (duration,) = telemetry.points("gen_ai.client.operation.duration")
    assert duration.count == 2 and "error.type" not in duration.attributes
    (run,) = telemetry.points("orra.run.duration")
    assert run.count == 1 and run.attributes == {"gen_ai.agent.name": "Atlas"}
    assert {
        p.attributes["gen_ai.tool.name"]: p.value for p in telemetry.points("orra.tool.calls")
    } == {"lookup": 1}


async def test_a_busy_refusal_is_counted_and_its_run_span_says_why(telemetry: Telemetry) -> None:
    rt = runtime(telemetry, lambda request: reply("ok"), busy_timeout=0)
    async with rt.store.lock("acme:alice"):
        with pytest.raises(SessionBusyError):
            await rt.run("acme:alice", "hello")
    (refused,) = telemetry.points("orra.session.busy_refusals")
    assert refused.value == 1 and refused.attributes == {"gen_ai.agent.name": "Atlas"}
    agent = telemetry.span("invoke_agent Atlas")
    assert agent.attributes is not None
    assert agent.attributes["error.type"] == "orra_di.errors.SessionBusyError"
    assert not [s for s in telemetry.finished() if s.name.startswith("chat")]


async def test_a_streaming_run_has_the_same_spans(telemetry: Telemetry) -> None:
    script = [tool_calls(call("lookup", {"key": "a"})), reply("streamed")]
    rt = runtime(telemetry, script)
    async with rt.run_streaming("acme:alice", "go") as stream:
        async for _ in stream:
            pass
    names = sorted(s.name for s in telemetry.finished())
    assert names == [
        "chat claude-test",
        "chat claude-test",
        "execute_tool lookup",
        "invoke_agent Atlas",
    ]


async def test_a_cancelled_run_still_ends_its_spans(telemetry: Telemetry) -> None:
    started = anyio.Event()

    async def slow(request: Any) -> Any:
        started.set()
        await anyio.sleep_forever()

    rt = runtime(telemetry, slow)
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run, "acme:alice", "hello")
        await started.wait()
        tg.cancel_scope.cancel()
    assert {s.name for s in telemetry.finished()} == {"invoke_agent Atlas", "chat claude-test"}
    assert telemetry.span("invoke_agent Atlas").attributes["error.type"] == "cancelled"  # type: ignore[index]


async def test_without_an_sdk_installed_nothing_is_recorded_and_runs_work() -> None:
    # This process never sets the global providers: they are the API's proxies.
    instrumentation = OpenTelemetryInstrumentation()
    seen: list[object] = []

    @tool
    def probe() -> str:
        """Report whether the instrumentation is recording this run."""
        seen.append(instrumentation._active.get())
        return "ok"

    rt = Runtime(
        ScriptedProvider([tool_calls(call("probe")), reply("done")]),
        InMemoryStore(),
        tools=[probe],
        instrumentation=instrumentation,
    )
    result = await rt.run("acme:alice", "hello")
    assert result.final_message.content == "done"
    assert seen == [None]


async def test_combined_instrumentations_nest_the_first_outermost(telemetry: Telemetry) -> None:
    inner = Telemetry()
    rt = Runtime(
        ScriptedProvider(["hi"]),
        InMemoryStore(),
        config=RuntimeConfig(name="Atlas"),
        instrumentation=combine(telemetry.instrumentation, None, inner.instrumentation),
    )
    await rt.run("acme:alice", "hello")
    assert [s.name for s in telemetry.finished()] == ["chat", "invoke_agent Atlas"]
    assert [s.name for s in inner.finished()] == ["chat", "invoke_agent Atlas"]
    assert combine(None, None) is None
    assert combine(inner.instrumentation) is inner.instrumentation


async def test_spans_a_tool_starts_itself_land_beneath_its_tool_call(
    telemetry: Telemetry,
) -> None:
    # The tool and model call spans are current while their steps run, so what an
    # instrumented HTTP client or database driver records nests under them.
    tracer = telemetry.tracer_provider.get_tracer("the app")

    @tool
    def fetch(url: str) -> str:
        """A sync tool (run in a worker thread) whose client records a span."""
        with tracer.start_as_current_span("GET"):
            return "page"

    @tool
    async def query(sql: str) -> str:
        """An async tool whose driver records a span."""
        with tracer.start_as_current_span("SELECT"):
            return "rows"

    script = [tool_calls(call("fetch", {"url": "u"}), call("query", {"sql": "q"})), reply("ok")]
    rt = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[fetch, query],
        config=RuntimeConfig(name="Atlas"),
        instrumentation=telemetry.instrumentation,
    )
    await rt.run("acme:alice", "go")
    for own, under in (("GET", "execute_tool fetch"), ("SELECT", "execute_tool query")):
        parent = telemetry.span(own).parent
        assert parent is not None and parent.span_id == telemetry.span(under).context.span_id


async def test_a_duration_points_to_its_span_through_an_exemplar(telemetry: Telemetry) -> None:
    await runtime(telemetry, ["hi"]).run("acme:alice", "hello")
    # One collection: the reader hands each exemplar out once.
    data = telemetry.reader.get_metrics_data()
    assert data is not None
    exemplars = {
        m.name: [e.span_id for p in m.data.data_points for e in p.exemplars]
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    }
    assert exemplars["gen_ai.client.operation.duration"] == [
        telemetry.span("chat claude-test").context.span_id
    ]
    assert exemplars["orra.run.duration"] == [telemetry.span("invoke_agent Atlas").context.span_id]


def test_an_sdk_installed_after_start_up_is_picked_up_after_the_recheck_delay() -> None:
    # The global providers can be set once per process: this runs in its own.
    script = """
import time
import anyio
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from orra_di import InMemoryStore, Runtime
from orra_di.observability import otel
from orra_di.testing import ScriptedProvider

otel.RECHECK_SECONDS = 0.05
instrumentation = otel.OpenTelemetryInstrumentation()
rt = Runtime(ScriptedProvider(["a", "b", "c"]), InMemoryStore(), instrumentation=instrumentation)
anyio.run(rt.run, "acme:alice", "before the SDK")
spans = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider())
time.sleep(0.1)  # the look that found no SDK is not repeated before RECHECK_SECONDS
anyio.run(rt.run, "acme:alice", "after the delay")
print(sorted(s.name for s in spans.get_finished_spans()))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["['chat', 'invoke_agent']"]
