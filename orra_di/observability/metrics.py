"""orra's metrics API: counters, gauges and histograms in process, pushed to sinks.

:class:`MetricsCollector` keeps the values an application (or
:class:`MetricsInstrumentation`, which records the standard :class:`names` for
every run) puts in it, answers :meth:`~MetricsCollector.snapshot` with
percentiles, and :meth:`~MetricsCollector.flush` hands the points to every
:class:`MetricsSink`. It stands beside the OpenTelemetry metrics of
:mod:`orra_di.observability.otel` for applications that want numbers without an
OpenTelemetry SDK — e.g. the Prometheus page of
:mod:`orra_di.observability.prometheus`.

Fixed from orra 0.0.2 (spec §5.8/38): ``flush`` calls each sink's ``record``
with the points (orra only called ``flush``, so sinks never received data);
the standard names are recorded (by :class:`MetricsInstrumentation`); a
:class:`Timer` used as a context manager records when the block ends; a
histogram keeps its last ``max_samples`` values rather than growing forever.
The methods are synchronous (no I/O: a lock, not an await); only ``flush``,
which talks to sinks, is async.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from orra_di.errors import OrraError, SessionBusyError
from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse

__all__ = [
    "HistogramStats",
    "LoggingSink",
    "MetricKind",
    "MetricNames",
    "MetricPoint",
    "MetricsCollector",
    "MetricsError",
    "MetricsInstrumentation",
    "MetricsSink",
    "MetricsSnapshot",
    "Series",
    "Timer",
    "names",
    "series_key",
]

_T = TypeVar("_T")
MetricKind = Literal["counter", "gauge", "histogram"]
Tags = Mapping[str, str]


class MetricNames:
    """The standard metric names (orra's, plus the ones marked new)."""

    REQUESTS_TOTAL = "agent.requests.total"
    REQUESTS_ERRORS = "agent.requests.errors"
    REQUEST_LATENCY_MS = "agent.requests.latency_ms"
    """New: milliseconds per run, tools included."""
    PROVIDER_CALLS = "agent.provider.calls"
    PROVIDER_ERRORS = "agent.provider.errors"
    """New: model calls that raised."""
    PROVIDER_LATENCY_MS = "agent.provider.latency_ms"
    TOOL_CALLS = "agent.tool.calls"
    TOOL_ERRORS = "agent.tool.errors"
    TOOL_LATENCY_MS = "agent.tool.latency_ms"
    TOKENS_INPUT = "agent.tokens.input"
    TOKENS_OUTPUT = "agent.tokens.output"
    ACTIVE_SESSIONS = "agent.sessions.active"
    BUSY_REFUSALS = "agent.sessions.busy_refusals"
    """New: runs refused because another run held the session."""
    MEMORY_ENTRIES = "agent.memory.entries"


names = MetricNames
"""orra's spelling: ``names.TOOL_CALLS``."""


class MetricsError(OrraError):
    """A sink failed to take the points; the message names the sinks and their errors."""


class MetricPoint(BaseModel):
    """One value of one series, as handed to sinks."""

    name: str
    kind: MetricKind
    value: float
    tags: dict[str, str] = {}
    timestamp_ms: int


class HistogramStats(BaseModel):
    """Summary of a histogram's retained values."""

    count: int
    sum: float
    mean: float
    min: float
    max: float
    p50: float
    p95: float
    p99: float


class MetricsSnapshot(BaseModel):
    """Every series at one moment, keyed by :func:`series_key`."""

    counters: dict[str, int] = {}
    gauges: dict[str, float] = {}
    histograms: dict[str, list[float]] = {}

    def histogram_stats(self, name: str) -> HistogramStats | None:
        """Count, sum, mean, min, max and p50/p95/p99 of a histogram; ``None`` if empty.

        Percentiles are orra's nearest-rank on the sorted values (1..10 → p50 = 6).
        """
        values = sorted(self.histograms.get(name, ()))
        if not values:
            return None
        count = len(values)
        total = math.fsum(values)
        return HistogramStats(
            count=count,
            sum=total,
            mean=total / count,
            min=values[0],
            max=values[-1],
            p50=values[count // 2],
            p95=values[min(int(count * 0.95), count - 1)],
            p99=values[min(int(count * 0.99), count - 1)],
        )


def series_key(name: str, tags: Tags | None = None) -> str:
    """``name``, or ``name{a="1",b="2"}`` with the tags sorted: one key per series."""
    if not tags:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(tags.items()))
    return f"{name}{{{inner}}}"


@runtime_checkable
class MetricsSink(Protocol):
    """Where flushed points go (a log, a push gateway, a time-series database)."""

    async def record(self, points: Sequence[MetricPoint]) -> None: ...

    async def flush(self) -> None: ...


@dataclass
class _Histogram:
    values: deque[float]
    unflushed: deque[float]
    count: int = 0
    total: float = 0.0


@dataclass(frozen=True)
class Series:
    """One series as the Prometheus page reads it."""

    kind: MetricKind
    name: str
    tags: dict[str, str]
    value: float = 0.0
    count: int = 0
    sum: float = 0.0
    values: tuple[float, ...] = field(default=())


class MetricsCollector:
    """Counters (int), gauges (float) and histograms (float samples), by name and tags.

    Thread-safe. ``max_samples`` bounds what a histogram keeps for percentiles
    and for the next flush; its count and sum stay exact.
    """

    def __init__(self, *, max_samples: int = 10_000) -> None:
        if max_samples < 1:
            raise ValueError(f"max_samples must be at least 1, got {max_samples}")
        self.max_samples = max_samples
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[str, dict[str, str], int]] = {}
        self._gauges: dict[str, tuple[str, dict[str, str], float]] = {}
        self._histograms: dict[str, tuple[str, dict[str, str], _Histogram]] = {}
        self._sinks: list[MetricsSink] = []

    def add_sink(self, sink: MetricsSink) -> None:
        self._sinks.append(sink)

    # -- recording -------------------------------------------------------------

    def increment(self, name: str, amount: int = 1, tags: Tags | None = None) -> None:
        """Add ``amount`` (default 1) to a counter, created at 0."""
        if amount < 0:
            raise ValueError(f"a counter only goes up; got {amount} for {name!r}")
        key = series_key(name, tags)
        with self._lock:
            _, stored, value = self._counters.get(key, (name, dict(tags or {}), 0))
            self._counters[key] = (name, stored, value + amount)

    def increment_by(self, name: str, amount: int, tags: Tags | None = None) -> None:
        """orra's name for ``increment(name, amount)``."""
        self.increment(name, amount, tags)

    def gauge(self, name: str, value: float, tags: Tags | None = None) -> None:
        """Set a gauge (the last value wins)."""
        with self._lock:
            self._gauges[series_key(name, tags)] = (name, dict(tags or {}), float(value))

    def histogram(self, name: str, value: float, tags: Tags | None = None) -> None:
        """Add a sample to a histogram."""
        key = series_key(name, tags)
        with self._lock:
            entry = self._histograms.get(key)
            if entry is None:
                limit = self.max_samples
                entry = (
                    name,
                    dict(tags or {}),
                    _Histogram(deque(maxlen=limit), deque(maxlen=limit)),
                )
                self._histograms[key] = entry
            histogram = entry[2]
            histogram.values.append(float(value))
            histogram.unflushed.append(float(value))
            histogram.count += 1
            histogram.total += float(value)

    def timer(self, name: str, tags: Tags | None = None) -> Timer:
        """A started :class:`Timer` recording into histogram ``name``."""
        return Timer(name, self, tags)

    # -- reading ---------------------------------------------------------------

    def get_counter(self, name: str, tags: Tags | None = None) -> int:
        entry = self._counters.get(series_key(name, tags))
        return 0 if entry is None else entry[2]

    def get_gauge(self, name: str, tags: Tags | None = None) -> float | None:
        entry = self._gauges.get(series_key(name, tags))
        return None if entry is None else entry[2]

    def get_histogram(self, name: str, tags: Tags | None = None) -> list[float]:
        entry = self._histograms.get(series_key(name, tags))
        return [] if entry is None else list(entry[2].values)

    def snapshot(self) -> MetricsSnapshot:
        with self._lock:
            return MetricsSnapshot(
                counters={k: v for k, (_, _, v) in self._counters.items()},
                gauges={k: v for k, (_, _, v) in self._gauges.items()},
                histograms={k: list(h.values) for k, (_, _, h) in self._histograms.items()},
            )

    def series(self) -> list[Series]:
        """Every series with its name and tags apart (what an exporter needs)."""
        with self._lock:
            found = [Series("counter", n, t, value=v) for n, t, v in self._counters.values()]
            found += [Series("gauge", n, t, value=v) for n, t, v in self._gauges.values()]
            found += [
                Series("histogram", n, t, count=h.count, sum=h.total, values=tuple(h.values))
                for n, t, h in self._histograms.values()
            ]
        return found

    def reset(self) -> None:
        """Forget every series (the sinks stay)."""
        with self._lock:
            self._counters.clear()
            self._gauges.clear()
            self._histograms.clear()

    # -- pushing ---------------------------------------------------------------

    def _points(self) -> list[MetricPoint]:
        """Counters and gauges as they stand, and the histogram samples since the last flush."""
        now = int(time.time() * 1000)
        with self._lock:
            points = [
                MetricPoint(name=n, kind="counter", value=v, tags=t, timestamp_ms=now)
                for n, t, v in self._counters.values()
            ]
            points += [
                MetricPoint(name=n, kind="gauge", value=v, tags=t, timestamp_ms=now)
                for n, t, v in self._gauges.values()
            ]
            for n, t, h in self._histograms.values():
                points += [
                    MetricPoint(name=n, kind="histogram", value=v, tags=t, timestamp_ms=now)
                    for v in h.unflushed
                ]
                h.unflushed.clear()
        return points

    async def flush(self) -> None:
        """Give every sink the points (``record``), then ``flush`` it.

        Every sink is tried even when one fails; then :class:`MetricsError`
        names those that failed. Histogram samples are handed over once.
        """
        points = self._points()
        failures: list[str] = []
        for sink in self._sinks:
            try:
                if points:
                    await sink.record(points)
                await sink.flush()
            except Exception as exc:
                failures.append(f"{type(sink).__name__}: {type(exc).__name__}: {exc}")
        if failures:
            raise MetricsError("failed to flush metrics to " + "; ".join(failures))


class Timer:
    """Measures from creation; ``stop()`` (or leaving a ``with`` block) records milliseconds."""

    def __init__(self, name: str, collector: MetricsCollector, tags: Tags | None = None) -> None:
        self.name = name
        self._collector = collector
        self._tags = tags
        self._start = time.perf_counter()
        self._stopped = False

    def elapsed(self) -> float:
        """Seconds since the timer started."""
        return time.perf_counter() - self._start

    def stop(self) -> float:
        """Record the elapsed milliseconds into the histogram (once) and return them."""
        elapsed_ms = self.elapsed() * 1000
        if not self._stopped:
            self._stopped = True
            self._collector.histogram(self.name, elapsed_ms, self._tags)
        return elapsed_ms

    def __enter__(self) -> Timer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LoggingSink:
    """Writes each point to the ``orra_di.metrics`` logger (``[metrics] name = value {tags}``).

    The point's fields are also in the record's ``extra`` (``metric``,
    ``metric_kind``, ``value``, ``tags``) for structured handlers.
    """

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger or logging.getLogger("orra_di.metrics")
        self.level = level

    async def record(self, points: Sequence[MetricPoint]) -> None:
        for point in points:
            self.logger.log(
                self.level,
                "[metrics] %s = %s %s",
                point.name,
                point.value,
                point.tags,
                extra={
                    "metric": point.name,
                    "metric_kind": point.kind,
                    "value": point.value,
                    "tags": point.tags,
                },
            )

    async def flush(self) -> None:
        return None


class MetricsInstrumentation:
    """Records the standard :class:`names` for every run, model call and tool call.

    Tags: ``agent`` on runs, ``model`` on model calls and tokens (when known),
    ``tool`` on tool calls. ``agent.sessions.active`` is the number of runs in
    progress.
    """

    def __init__(self, collector: MetricsCollector) -> None:
        self.collector = collector
        self._active = 0
        self._active_lock = threading.Lock()

    def __repr__(self) -> str:
        return "MetricsInstrumentation()"

    def _moved(self, by: int) -> None:
        with self._active_lock:
            self._active += by
            self.collector.gauge(names.ACTIVE_SESSIONS, self._active)

    async def run(
        self, namespace: Namespace, agent: str | None, model: str | None, step: Awaitable[_T]
    ) -> _T:
        tags = {"agent": agent} if agent else None
        collector = self.collector
        collector.increment(names.REQUESTS_TOTAL, 1, tags)
        self._moved(1)
        start = time.perf_counter()
        try:
            return await step
        except BaseException as exc:
            collector.increment(names.REQUESTS_ERRORS, 1, tags)
            if isinstance(exc, SessionBusyError):
                collector.increment(names.BUSY_REFUSALS, 1, tags)
            raise
        finally:
            self._moved(-1)
            collector.histogram(
                names.REQUEST_LATENCY_MS, (time.perf_counter() - start) * 1000, tags
            )

    async def model_call(
        self, request: CompletionRequest, step: Awaitable[CompletionResponse]
    ) -> CompletionResponse:
        tags = {"model": request.model} if request.model else None
        collector = self.collector
        collector.increment(names.PROVIDER_CALLS, 1, tags)
        start = time.perf_counter()
        try:
            response = await step
        except BaseException:
            collector.increment(names.PROVIDER_ERRORS, 1, tags)
            raise
        finally:
            collector.histogram(
                names.PROVIDER_LATENCY_MS, (time.perf_counter() - start) * 1000, tags
            )
        collector.increment(names.TOKENS_INPUT, response.usage.input_tokens, tags)
        collector.increment(names.TOKENS_OUTPUT, response.usage.output_tokens, tags)
        return response

    async def tool_call(self, call: ToolCall, step: Awaitable[ToolResult]) -> ToolResult:
        tags = {"tool": call.name}
        collector = self.collector
        collector.increment(names.TOOL_CALLS, 1, tags)
        start = time.perf_counter()
        try:
            result = await step
        except BaseException:
            collector.increment(names.TOOL_ERRORS, 1, tags)
            raise
        finally:
            collector.histogram(names.TOOL_LATENCY_MS, (time.perf_counter() - start) * 1000, tags)
        if result.is_error:
            collector.increment(names.TOOL_ERRORS, 1, tags)
        return result
