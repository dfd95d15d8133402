"""Observability: what a running agent tells the outside world.

- :mod:`~orra_di.observability.instrumentation` — the runtime's seam
  (:class:`Instrumentation`), which the two below implement;
- :mod:`~orra_di.observability.otel` — OpenTelemetry spans and metrics with the
  GenAI semantic conventions (extra ``[otel]``, API only: the app brings the SDK);
- :mod:`~orra_di.observability.metrics` — orra's ``MetricsCollector`` (counters,
  gauges, histograms with percentiles, sinks) and an instrumentation that fills it;
- :mod:`~orra_di.observability.prometheus` — the collector in Prometheus's text
  format, as bytes or an ASGI app (extra ``[prometheus]``).

Logging is a hook: :class:`orra_di.hooks.logging.LoggingHook`. Importing this
package imports no third-party library.
"""

from orra_di.observability.instrumentation import Instrumentation, combine

__all__ = ["Instrumentation", "combine"]
