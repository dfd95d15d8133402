"""What telemetry costs: W1 in memory (bench_core.py) with and without instrumentation.

    python benchmarks/bench_telemetry.py          # 5 rounds of every mode, medians
    python benchmarks/bench_telemetry.py 9        # 9 rounds

Modes, each in its own process, interleaved round by round so a busy machine
slows them alike:

off      no instrumentation (``Runtime(..., instrumentation=None)``, the default)
api      OpenTelemetryInstrumentation, no SDK installed (the API's no-op proxies)
sdk      the SDK installed globally: spans to an in-memory exporter through a
         SimpleSpanProcessor, metrics to an InMemoryMetricReader
metrics  MetricsInstrumentation into a MetricsCollector (orra's standard names)

The issue's targets: ``api`` at most 3% over ``off``, ``sdk`` at most 25%.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import lookup, provider

from orra_di import InMemoryStore, Namespace, Runtime
from orra_di.observability.instrumentation import Instrumentation

MODES = ("off", "api", "sdk", "metrics")


def instrumentation(mode: str) -> Instrumentation | None:
    if mode == "off":
        return None
    if mode == "metrics":
        from orra_di.observability.metrics import MetricsCollector, MetricsInstrumentation

        return MetricsInstrumentation(MetricsCollector())
    from orra_di.observability.otel import OpenTelemetryInstrumentation

    if mode == "sdk":
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )

        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return OpenTelemetryInstrumentation(provider_name="test")


async def w1(mode: str) -> float:
    """CPU µs per user message: 200 sessions x 5 messages, sequential, in memory."""
    rt = Runtime(provider(), InMemoryStore(), tools=[lookup], instrumentation=instrumentation(mode))
    sessions, per_session = 200, 5
    await rt.run(Namespace("warmup"), "warm up")
    # CPU time of this process: what the work costs, less what other processes take.
    start = time.process_time()
    for s in range(sessions):
        ns = Namespace("bench", f"user{s}")
        for m in range(per_session):
            await rt.run(ns, f"message {m}")
    return (time.process_time() - start) / (sessions * per_session) * 1e6


def main(rounds: int) -> None:
    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(rounds):
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode],
                check=True,
                capture_output=True,
                text=True,
            )
            results[mode].append(float(out.stdout))
    base = statistics.median(results["off"])
    for mode in MODES:
        median = statistics.median(results[mode])
        print(
            f"W1 memory telemetry={mode:<8} median {median:7.1f} µs/message "
            f"({(median / base - 1) * 100:+5.1f}% vs off; runs: "
            + ", ".join(f"{v:.0f}" for v in results[mode])
            + ")"
        )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(anyio.run(w1, sys.argv[2]))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
