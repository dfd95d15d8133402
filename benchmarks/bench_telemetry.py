"""What telemetry costs: W1 in memory (bench_core.py) with and without instrumentation.

    python benchmarks/bench_telemetry.py          # 3 fresh processes, medians
    python benchmarks/bench_telemetry.py 5        # 5 processes

Modes, taking turns round by round in each process so a busy machine slows
them alike:

off      no instrumentation (``Runtime(..., instrumentation=None)``, the default)
api      OpenTelemetryInstrumentation, no SDK installed (the API's no-op proxies)
sdk      OpenTelemetryInstrumentation on the SDK: spans to an in-memory exporter
         through a SimpleSpanProcessor, metrics to an InMemoryMetricReader
floor    ``off`` plus, after each message, the same SDK driven by hand to emit
         what ``sdk`` emits for it, with no orra-di code: the same four spans
         (names, kinds, attributes, parents), each made current while its step
         would run, and the same metric points. ``floor - off`` is the SDK's own
         cost, under which no instrumentation emitting those spans and points
         can go (tests/observability/test_telemetry_floor.py checks the two
         emit the same).
metrics  MetricsInstrumentation into a MetricsCollector (orra's standard names)

The issue's targets: ``api`` at most 3% over ``off``, ``sdk`` at most 25%. The
script prints ``sdk`` beside ``floor``, so the figure reads against what the
SDK alone costs on this machine, and the share above the floor (orra-di's).

Each process runs every mode ``ROUNDS`` times, 1,000 messages on a fresh
runtime each time (the span exporter emptied), and keeps each mode's fastest
round in CPU time of the process (every thread): the machine is shared, and
CPU time barely sees other processes. The script prints the medians over the
processes and the load average at the start and the end.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import machine, model, orra_tool

from orra_di import InMemoryStore, Namespace, Runtime
from orra_di.observability.instrumentation import Instrumentation

MODES = ("off", "api", "sdk", "floor", "metrics")
ROUNDS = 5
SESSIONS, PER_SESSION = 200, 5


class Sdk:
    """The SDK as an application sets it up: spans to an in-memory exporter through
    a SimpleSpanProcessor, metrics to an InMemoryMetricReader. Handed to the
    instrumentation rather than installed globally, so ``api`` in the same
    process still sees the API's proxies."""

    def __init__(self) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])


class BareSdk:
    """The SDK by hand: what ``sdk`` emits for one W1 message, and nothing else.

    W1's runtime has no agent name and no model, and its scripted model reports
    no tokens (so no token-usage points, in either mode). Each span is started
    with its parent's context given explicitly and attached while its step would
    run, as an instrumentation must for the spans of an instrumented HTTP client
    or database driver to land beneath it; each measurement is taken while its
    span is current (the SDK links it to the span by an exemplar).
    tests/observability/test_telemetry_floor.py checks it emits what ``sdk`` does.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from opentelemetry import context, metrics, trace

        self.trace, self.context = trace, context
        self.tracer = trace.get_tracer("floor", tracer_provider=tracer_provider)
        meter = metrics.get_meter("floor", meter_provider=meter_provider)
        self.operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=[0.01 * 2**i for i in range(14)],
        )
        self.run_duration = meter.create_histogram("orra.run.duration", unit="s")
        self.tool_calls = meter.create_counter("orra.tool.calls", unit="{call}")
        self.chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "test"}
        self.tool = {"gen_ai.tool.name": "lookup"}
        self.no_attributes: dict[str, Any] = {}
        self.internal, self.client = trace.SpanKind.INTERNAL, trace.SpanKind.CLIENT

    def message(self, key: str) -> None:
        trace, context, tracer = self.trace, self.context, self.tracer
        start = time.perf_counter()
        run = tracer.start_span(
            "invoke_agent",
            kind=self.internal,
            attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.conversation.id": key},
        )
        parent = trace.set_span_in_context(run)
        run_token = context.attach(parent)
        for step, finish in (("chat", "tool_use"), ("tool", ""), ("chat", "stop")):
            began = time.perf_counter()
            if step == "chat":
                span = tracer.start_span("chat", parent, self.client, self.chat)
            else:
                span = tracer.start_span(
                    "execute_tool lookup",
                    parent,
                    self.internal,
                    {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "lookup",
                        "gen_ai.tool.call.id": "call_1",
                    },
                )
            current = trace.set_span_in_context(span, parent)
            token = context.attach(current)
            if step == "chat":
                span.set_attributes(
                    {
                        "gen_ai.usage.input_tokens": 0,
                        "gen_ai.usage.output_tokens": 0,
                        "gen_ai.response.finish_reasons": (finish,),
                    }
                )
                self.operation_duration.record(time.perf_counter() - began, self.chat, current)
            else:
                self.tool_calls.add(1, self.tool, current)
            context.detach(token)
            span.end()
        self.run_duration.record(time.perf_counter() - start, self.no_attributes, parent)
        run.set_attributes({"gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0})
        context.detach(run_token)
        run.end()


def instrumentation(mode: str, sdk: Sdk) -> Instrumentation | None:
    if mode in ("off", "floor"):
        return None
    if mode == "metrics":
        from orra_di.observability.metrics import MetricsCollector, MetricsInstrumentation

        return MetricsInstrumentation(MetricsCollector())
    from orra_di.observability.otel import OpenTelemetryInstrumentation

    if mode == "api":  # the global providers, never set in this process: the API's proxies
        return OpenTelemetryInstrumentation(provider_name="test")
    return OpenTelemetryInstrumentation(
        tracer_provider=sdk.tracer_provider, meter_provider=sdk.meter_provider, provider_name="test"
    )


async def w1(mode: str, sdk: Sdk, bare: BareSdk) -> float:
    """CPU µs per user message of one round: 200 sessions x 5 messages, sequential,
    in memory, on a fresh runtime."""
    sdk.spans.clear()
    rt = Runtime(
        model(),
        InMemoryStore(),
        tools=[orra_tool("sync")],
        instrumentation=instrumentation(mode, sdk),
    )
    floor = bare if mode == "floor" else None
    await rt.run(Namespace("warmup"), "warm up")
    namespaces = [Namespace("bench", f"user{s}") for s in range(SESSIONS)]
    # CPU time of this process (every thread): what the work costs, less what
    # other processes take.
    start = time.process_time()
    for ns in namespaces:
        for m in range(PER_SESSION):
            await rt.run(ns, f"message {m}")
            if floor is not None:
                floor.message(ns.key)
    return (time.process_time() - start) / (SESSIONS * PER_SESSION) * 1e6


async def child() -> dict[str, float]:
    """Every mode's fastest round, the modes taking turns (in a rotating order)."""
    sdk = Sdk()
    bare = BareSdk(sdk.tracer_provider, sdk.meter_provider)
    best = dict.fromkeys(MODES, float("inf"))
    for r in range(ROUNDS):
        for mode in MODES[r % len(MODES) :] + MODES[: r % len(MODES)]:
            best[mode] = min(best[mode], await w1(mode, sdk, bare))
    return best


def main(processes: int) -> None:
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    load = os.getloadavg()[0]
    for _ in range(processes):
        out = subprocess.run(
            [sys.executable, __file__, "--child"], check=True, capture_output=True, text=True
        )
        for mode, value in json.loads(out.stdout).items():
            results[mode].append(value)
    print(f"{machine()}; load average {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    medians = {mode: statistics.median(results[mode]) for mode in MODES}
    base = medians["off"]
    for mode in MODES:
        print(
            f"W1 memory telemetry={mode:<8} {medians[mode]:6.1f} µs/message CPU "
            f"({(medians[mode] / base - 1) * 100:+6.1f}% vs off; processes: "
            + ", ".join(f"{v:.0f}" for v in results[mode])
            + ")"
        )
    floor, sdk = medians["floor"] - base, medians["sdk"] - base
    print(
        f"sdk costs {sdk:.0f} µs/message over off, of which the SDK's own (floor - off) "
        f"{floor:.0f} and orra-di's {sdk - floor:.0f} ({(sdk - floor) / base * 100:+.1f}% of off). "
        f"Targets: api +3%, sdk +25% of off; the floor alone is {floor / base * 100:+.1f}%."
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        print(json.dumps(anyio.run(child)))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
