"""The floor of ``benchmarks/bench_telemetry.py`` emits what the instrumentation does.

The benchmark quotes the OpenTelemetry instrumentation's cost against a floor:
the SDK driven by hand, no orra-di code, for one W1 message. That comparison
only means something if the floor emits the same spans (names, kinds,
attributes, parents) and the same metric points; this checks it, so the two
cannot drift apart unnoticed when either changes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from orra_di import InMemoryStore, Namespace, Runtime
from orra_di.observability.otel import OpenTelemetryInstrumentation

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


class Sdk:
    """In-memory SDK providers and what they received, normalised for comparing."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def emitted(self) -> tuple[list[Any], list[Any]]:
        finished = self.spans.get_finished_spans()
        names = {s.context.span_id: s.name for s in finished}
        spans = sorted(
            (
                s.name,
                s.kind.name,
                sorted((k, str(v)) for k, v in (s.attributes or {}).items()),
                names.get(s.parent.span_id) if s.parent else None,
                s.status.status_code.name,
            )
            for s in finished
        )
        data = self.reader.get_metrics_data()
        assert data is not None
        points = sorted(
            (
                m.name,
                sorted(p.attributes.items()),
                getattr(p, "count", None),
                getattr(p, "value", None),
                [names[e.span_id] for e in p.exemplars],
            )
            for r in data.resource_metrics
            for s in r.scope_metrics
            for m in s.metrics
            for p in m.data.data_points
        )
        return spans, points


def test_the_floor_emits_what_the_instrumentation_emits_for_a_w1_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.delitem(sys.modules, "bench_telemetry", raising=False)
    import bench_telemetry

    ours = Sdk()
    instrumentation = OpenTelemetryInstrumentation(
        tracer_provider=ours.tracer_provider,
        meter_provider=ours.meter_provider,
        provider_name="test",
    )
    rt = Runtime(
        bench_telemetry.model(),
        InMemoryStore(),
        tools=[bench_telemetry.orra_tool("sync")],
        instrumentation=instrumentation,
    )
    anyio.run(rt.run, Namespace("bench", "user0"), "message 0")

    floor = Sdk()
    bench_telemetry.BareSdk(floor.tracer_provider, floor.meter_provider).message("bench:user0")

    spans, points = ours.emitted()
    assert len(spans) == 4 and len(points) == 3
    assert floor.emitted() == (spans, points)
