"""The ``telemetry`` settings section (``ORRA_TELEMETRY__…``).

Composed by :class:`orra_di.settings.OrraSettings`; the container turns it into
the runtimes' :class:`~orra_di.observability.instrumentation.Instrumentation`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["TelemetrySettings"]


class TelemetrySettings(BaseModel):
    """OpenTelemetry spans and metrics, and orra's metrics for a Prometheus page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Emit OpenTelemetry spans and metrics (GenAI conventions) for every run, model call
    and tool call, on the globally installed SDK; needs ``orra-di[otel]``. Without an SDK
    installed nothing is recorded."""
    prometheus: bool = False
    """Count orra's standard metrics (``agent.*``) in ``container.metrics()`` for the
    Prometheus page (``orra_di.observability.prometheus``); needs ``orra-di[prometheus]``."""
