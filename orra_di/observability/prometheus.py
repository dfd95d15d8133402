"""A :class:`~orra_di.observability.metrics.MetricsCollector` as a Prometheus page.

``pip install "orra-di[prometheus]"``. :func:`exposition` returns the text
format (bytes and its content type) for any web framework;
:func:`asgi_app` is an ASGI app to mount (the gateway mounts it at
``/metrics`` when ``telemetry.prometheus`` is on). Names become Prometheus
names (``agent.tool.calls`` → ``agent_tool_calls_total``), tags become labels,
histograms become summaries (exact count and sum, and the 0.5, 0.95 and 0.99
quantiles of the retained samples).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from orra_di.errors import ConfigurationError
from orra_di.observability.metrics import MetricsCollector, MetricsSnapshot, Series

try:
    from prometheus_client import CollectorRegistry, make_asgi_app
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.metrics_core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        Metric,
        SummaryMetricFamily,
    )
    from prometheus_client.registry import Collector
    from prometheus_client.samples import Sample
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ConfigurationError(
        'the Prometheus page needs prometheus-client: pip install "orra-di[prometheus]"'
    ) from exc

__all__ = ["PrometheusCollector", "asgi_app", "exposition", "prometheus_name", "registry"]

_INVALID = re.compile(r"[^a-zA-Z0-9_:]")
_QUANTILES = (("0.5", "p50"), ("0.95", "p95"), ("0.99", "p99"))


def prometheus_name(name: str) -> str:
    """``agent.tool.calls`` → ``agent_tool_calls`` (what Prometheus accepts in a name)."""
    cleaned = _INVALID.sub("_", name)
    return f"_{cleaned}" if cleaned[:1].isdigit() else cleaned


class PrometheusCollector(Collector):
    """Reads the collector's series at each scrape (nothing is copied in between)."""

    def __init__(self, metrics: MetricsCollector) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        grouped: dict[tuple[str, str], list[Series]] = {}
        for series in self.metrics.series():
            grouped.setdefault((series.kind, prometheus_name(series.name)), []).append(series)
        for (kind, name), members in grouped.items():
            # One family per name; a series without some tag gets it as "" (Prometheus
            # wants the same label names throughout a family).
            labels = sorted({tag for series in members for tag in series.tags})
            title = f"{members[0].name} ({'summary' if kind == 'histogram' else kind})"
            family: CounterMetricFamily | GaugeMetricFamily | SummaryMetricFamily
            if kind == "counter":
                family = CounterMetricFamily(name, title, labels=labels)
            elif kind == "gauge":
                family = GaugeMetricFamily(name, title, labels=labels)
            else:
                family = SummaryMetricFamily(name, title, labels=labels)
            for series in members:
                values = [series.tags.get(label, "") for label in labels]
                if isinstance(family, SummaryMetricFamily):
                    family.add_metric(values, series.count, series.sum)
                    _add_quantiles(family, name, dict(zip(labels, values, strict=True)), series)
                else:
                    family.add_metric(values, series.value)
            yield family


def _add_quantiles(
    family: SummaryMetricFamily, name: str, labels: dict[str, str], series: Series
) -> None:
    stats = MetricsSnapshot(histograms={"h": list(series.values)}).histogram_stats("h")
    if stats is None:
        return
    for quantile, attribute in _QUANTILES:
        sample = Sample(name, {**labels, "quantile": quantile}, getattr(stats, attribute))
        family.samples.append(sample)


def registry(metrics: MetricsCollector) -> CollectorRegistry:
    """A registry of its own holding only ``metrics`` (not the process's default one)."""
    own = CollectorRegistry(auto_describe=False)
    own.register(PrometheusCollector(metrics))
    return own


def exposition(metrics: MetricsCollector) -> tuple[bytes, str]:
    """The page's body in the Prometheus text format, and its content type."""
    return generate_latest(registry(metrics)), CONTENT_TYPE_LATEST


def asgi_app(metrics: MetricsCollector) -> Any:
    """An ASGI app answering every GET with the page (mount it at ``/metrics``)."""
    return make_asgi_app(registry=registry(metrics))
