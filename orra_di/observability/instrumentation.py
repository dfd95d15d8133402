"""The runtime's instrumentation seam: what an observer is told about a run.

A :class:`~orra_di.hook.Hook` sees the points of the loop but not what wraps
them: how long a run took, that it failed (a provider error, a busy session)
or which model call a tool call belongs to. Telemetry needs exactly that, so
the runtime hands an :class:`Instrumentation` each step *as an awaitable* and
lets it wrap the step: start a span, await the step, record what came back or
what was raised. Without one (the default) the runtime awaits its steps
directly and pays one ``is None`` test per step.

Implementations: :class:`orra_di.observability.otel.OpenTelemetryInstrumentation`
(spans and metrics on the OpenTelemetry API) and
:class:`orra_di.observability.metrics.MetricsInstrumentation` (orra's standard
metric names in a :class:`~orra_di.observability.metrics.MetricsCollector`).
:func:`combine` runs several.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse

__all__ = ["Instrumentation", "combine"]

_T = TypeVar("_T")


@runtime_checkable
class Instrumentation(Protocol):
    """Wraps the runtime's steps. Each method must await ``step`` exactly once and
    return its value or let its exception through unchanged."""

    async def run(
        self, namespace: Namespace, agent: str | None, model: str | None, step: Awaitable[_T]
    ) -> _T:
        """One whole run: waiting for the session's lock (a refusal raises
        :class:`~orra_di.errors.SessionBusyError` from ``step``), every model and
        tool call, and the final save. ``step`` returns the ``RunResult``."""
        ...

    async def model_call(
        self, request: CompletionRequest, step: Awaitable[CompletionResponse]
    ) -> CompletionResponse:
        """One call to the model (a whole stream, for a streaming run)."""
        ...

    async def tool_call(self, call: ToolCall, step: Awaitable[ToolResult]) -> ToolResult:
        """One tool call as the model made it: policy, hooks and the tool. A refusal or
        a failing tool is a result with ``is_error``; a hook's exception is raised."""
        ...


class _Combined:
    """Several instrumentations, the first outermost (its span is the parent)."""

    def __init__(self, parts: Sequence[Instrumentation]) -> None:
        self._parts = tuple(parts)

    # Each part's coroutine is made around the next one's (not yet started), and the
    # outermost is awaited: it runs first and starts the inner ones as it awaits them.
    async def run(
        self, namespace: Namespace, agent: str | None, model: str | None, step: Awaitable[_T]
    ) -> _T:
        for part in reversed(self._parts):
            step = part.run(namespace, agent, model, step)
        return await step

    async def model_call(
        self, request: CompletionRequest, step: Awaitable[CompletionResponse]
    ) -> CompletionResponse:
        for part in reversed(self._parts):
            step = part.model_call(request, step)
        return await step

    async def tool_call(self, call: ToolCall, step: Awaitable[ToolResult]) -> ToolResult:
        for part in reversed(self._parts):
            step = part.tool_call(call, step)
        return await step

    def __repr__(self) -> str:
        return f"combine({', '.join(repr(p) for p in self._parts)})"


def combine(*parts: Instrumentation | None) -> Instrumentation | None:
    """One instrumentation running ``parts`` (``None`` left out), or ``None`` for none."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return _Combined(present)
