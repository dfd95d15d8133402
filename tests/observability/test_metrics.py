"""orra's metrics tests as behaviour, bug 38 (sinks receive the data), the standard
names recorded for real runs, and the Prometheus page."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import httpx
import pytest

from orra_di import InMemoryStore, Runtime, RuntimeConfig, SessionBusyError, tool
from orra_di.observability.metrics import (
    LoggingSink,
    MetricPoint,
    MetricsCollector,
    MetricsError,
    MetricsInstrumentation,
    Timer,
    names,
    series_key,
)
from orra_di.observability.prometheus import asgi_app, exposition
from orra_di.provider import Usage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


class ListSink:
    def __init__(self) -> None:
        self.batches: list[list[MetricPoint]] = []
        self.flushes = 0

    async def record(self, points: Sequence[MetricPoint]) -> None:
        self.batches.append(list(points))

    async def flush(self) -> None:
        self.flushes += 1


class BrokenSink(ListSink):
    async def record(self, points: Sequence[MetricPoint]) -> None:
        raise ConnectionError("collector unreachable")


def test_counter_increment() -> None:
    metrics = MetricsCollector()
    for _ in range(3):
        metrics.increment("requests")
    assert metrics.get_counter("requests") == 3


def test_counter_increment_by() -> None:
    metrics = MetricsCollector()
    metrics.increment_by("tokens", 10)
    metrics.increment_by("tokens", 5)
    assert metrics.get_counter("tokens") == 15
    with pytest.raises(ValueError, match="only goes up"):
        metrics.increment("tokens", -1)


def test_gauge_set_get_and_overwrite() -> None:
    metrics = MetricsCollector()
    metrics.gauge("active", 3)
    assert metrics.get_gauge("active") == 3.0
    metrics.gauge("active", 1.5)
    assert metrics.get_gauge("active") == 1.5
    assert metrics.get_gauge("missing") is None


def test_histogram_records() -> None:
    metrics = MetricsCollector()
    for value in (10, 20, 30):
        metrics.histogram("latency", value)
    assert metrics.get_histogram("latency") == [10.0, 20.0, 30.0]
    assert metrics.get_histogram("missing") == []


def test_snapshot_captures_all_and_serialises() -> None:
    metrics = MetricsCollector()
    metrics.increment("c", tags={"tool": "x"})
    metrics.gauge("g", 2)
    metrics.histogram("h", 1)
    snap = metrics.snapshot()
    assert snap.counters == {'c{tool="x"}': 1}
    assert snap.gauges == {"g": 2.0} and snap.histograms == {"h": [1.0]}
    assert json.loads(snap.model_dump_json()) == {
        "counters": {'c{tool="x"}': 1},
        "gauges": {"g": 2.0},
        "histograms": {"h": [1.0]},
    }


def test_histogram_stats() -> None:
    metrics = MetricsCollector()
    for value in range(1, 11):
        metrics.histogram("h", value)
    stats = metrics.snapshot().histogram_stats("h")
    assert stats is not None
    assert (stats.count, stats.min, stats.max, stats.mean, stats.p50) == (10, 1, 10, 5.5, 6)
    assert (stats.p95, stats.p99, stats.sum) == (10, 10, 55)
    assert metrics.snapshot().histogram_stats("missing") is None


def test_reset_clears_everything_and_missing_counter_is_zero() -> None:
    metrics = MetricsCollector()
    metrics.increment("c")
    metrics.gauge("g", 1)
    metrics.histogram("h", 1)
    metrics.reset()
    snap = metrics.snapshot()
    assert (snap.counters, snap.gauges, snap.histograms) == ({}, {}, {})
    assert metrics.get_counter("nonexistent") == 0


def test_timer_records_elapsed_milliseconds_on_stop_or_at_block_end() -> None:
    metrics = MetricsCollector()
    timer = Timer("op", metrics)
    elapsed = timer.stop()
    timer.stop()  # once only
    assert metrics.get_histogram("op") == [elapsed] and elapsed >= 0
    with metrics.timer("block", {"tool": "x"}):
        pass
    assert len(metrics.get_histogram("block", {"tool": "x"})) == 1


def test_metric_names_defined() -> None:
    assert names.TOOL_CALLS == "agent.tool.calls"
    assert names.REQUESTS_TOTAL == "agent.requests.total"
    assert names.TOKENS_INPUT == "agent.tokens.input"
    assert series_key("a", {"z": "1", "b": "2"}) == 'a{b="2",z="1"}'


def test_a_histogram_keeps_its_last_samples_only() -> None:
    metrics = MetricsCollector(max_samples=3)
    for value in range(10):
        metrics.histogram("h", value)
    assert metrics.get_histogram("h") == [7.0, 8.0, 9.0]
    (series,) = metrics.series()
    assert (series.count, series.sum) == (10, 45)


async def test_flush_hands_the_points_to_every_sink() -> None:
    # orra's flush only called sink.flush(): no sink ever received a point (bug 38).
    metrics = MetricsCollector()
    sink = ListSink()
    metrics.add_sink(sink)
    metrics.increment("c", 2)
    metrics.histogram("h", 5)
    await metrics.flush()
    (batch,) = sink.batches
    assert {(p.name, p.kind, p.value) for p in batch} == {
        ("c", "counter", 2),
        ("h", "histogram", 5),
    }
    assert sink.flushes == 1
    await metrics.flush()  # counters again (cumulative), histogram samples only once
    assert {(p.name, p.value) for p in sink.batches[1]} == {("c", 2)}


async def test_a_failing_sink_does_not_stop_the_others_and_is_named() -> None:
    metrics = MetricsCollector()
    good = ListSink()
    metrics.add_sink(BrokenSink())
    metrics.add_sink(good)
    metrics.increment("c")
    with pytest.raises(MetricsError, match="BrokenSink: ConnectionError: collector unreachable"):
        await metrics.flush()
    assert len(good.batches) == 1


async def test_logging_sink_writes_each_point(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="orra_di.metrics")
    metrics = MetricsCollector()
    metrics.add_sink(LoggingSink())
    metrics.increment("agent.tool.calls", tags={"tool": "x"})
    await metrics.flush()
    (record,) = caplog.records
    assert record.getMessage() == "[metrics] agent.tool.calls = 1.0 {'tool': 'x'}"
    assert record.metric == "agent.tool.calls"  # type: ignore[attr-defined]


@tool
def lookup(key: str) -> str:
    """Look up."""
    return key


@tool
def broken() -> str:
    """Fail."""
    raise RuntimeError("no")


async def test_the_standard_names_are_recorded_for_real_runs() -> None:
    metrics = MetricsCollector()
    script = [
        tool_calls(call("lookup", {"key": "a"}), call("broken"), usage=Usage(input_tokens=7)),
        reply("done", usage=Usage(input_tokens=9, output_tokens=3)),
    ]
    rt = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[lookup, broken],
        config=RuntimeConfig(name="Atlas", model="m1", busy_timeout=0),
        instrumentation=MetricsInstrumentation(metrics),
    )
    await rt.run("acme:alice", "go")
    agent, model = {"agent": "Atlas"}, {"model": "m1"}
    assert metrics.get_counter(names.REQUESTS_TOTAL, agent) == 1
    assert metrics.get_counter(names.PROVIDER_CALLS, model) == 2
    assert metrics.get_counter(names.TOKENS_INPUT, model) == 16
    assert metrics.get_counter(names.TOKENS_OUTPUT, model) == 3
    assert metrics.get_counter(names.TOOL_CALLS, {"tool": "lookup"}) == 1
    assert metrics.get_counter(names.TOOL_ERRORS, {"tool": "broken"}) == 1
    assert metrics.get_counter(names.TOOL_ERRORS, {"tool": "lookup"}) == 0
    assert len(metrics.get_histogram(names.PROVIDER_LATENCY_MS, model)) == 2
    assert metrics.get_gauge(names.ACTIVE_SESSIONS) == 0

    async with rt.store.lock("acme:alice"):
        with pytest.raises(SessionBusyError):
            await rt.run("acme:alice", "again")
    assert metrics.get_counter(names.BUSY_REFUSALS, agent) == 1
    assert metrics.get_counter(names.REQUESTS_ERRORS, agent) == 1


async def test_the_prometheus_page_shows_every_series() -> None:
    metrics = MetricsCollector()
    metrics.increment(names.REQUESTS_TOTAL, tags={"agent": "Atlas"})
    metrics.increment(names.REQUESTS_TOTAL)  # no tag: same family, empty label
    metrics.gauge(names.ACTIVE_SESSIONS, 2)
    for value in range(1, 11):
        metrics.histogram(names.TOOL_LATENCY_MS, value, {"tool": "x"})
    body, content_type = exposition(metrics)
    page = body.decode()
    assert content_type.startswith("text/plain")
    assert 'agent_requests_total_total{agent="Atlas"} 1.0' not in page
    assert 'agent_requests_total{agent="Atlas"} 1.0' in page
    assert 'agent_requests_total{agent=""} 1.0' in page
    assert "agent_sessions_active 2.0" in page
    assert 'agent_tool_latency_ms_count{tool="x"} 10.0' in page
    assert 'agent_tool_latency_ms{quantile="0.5",tool="x"} 6.0' in page

    transport = httpx.ASGITransport(app=asgi_app(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert "agent_sessions_active 2.0" in response.text
