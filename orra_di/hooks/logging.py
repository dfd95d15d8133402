"""A hook that logs each step of a run through the standard :mod:`logging` module.

Every record carries its facts as attributes (``extra=``), so a JSON formatter
or structlog's ``ProcessorFormatter`` with ``ExtraAdder`` gets them as fields:
``orra_event`` (``run_start``, ``model_call_start``, ``model_call``,
``tool_call_start``, ``tool_call``, ``run_end``), ``namespace``, ``agent``,
``run_id`` and, per event, ``model``, ``messages``, ``tools``,
``input_tokens``, ``output_tokens``, ``session_input_tokens``,
``session_output_tokens``, ``finish_reason``, ``duration_ms``, ``tool``,
``call_id``, ``is_error``, ``preview``. The messages keep orra's wording
(``[llm] response in 0.4s — 12 in / 5 out tokens (session total: …)``).

Fixed from orra 0.0.2 (spec §5.2/13, §5.6/26): the "session total" is the
session's own, kept in the session (``current_run().set_state``) rather than
summed over every session of the process; the result preview is cut on
characters, never inside one. Tool arguments and message text are not logged;
the preview of a tool's output has URL passwords and the secrets given to the
hook masked (:mod:`orra_di.redaction`) before it is cut.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Iterable
from typing import Any

from orra_di.hook import Hook
from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.redaction import mask_url, redact
from orra_di.run_context import maybe_current_run
from orra_di.session import Session

__all__ = ["DEFAULT_PREVIEW_CHARS", "TOKENS_STATE_KEY", "LoggingHook", "preview"]

DEFAULT_PREVIEW_CHARS = 120
TOKENS_STATE_KEY = "logging.tokens"
"""The per-session state key of the session's token totals: ``{"input": n, "output": n}``."""

_MASK_WINDOW = 4096  # extra characters masked past the cut, so a secret across it is found whole
_call_started: contextvars.ContextVar[float] = contextvars.ContextVar("orra_di_log_call_started")


def preview(
    text: str, limit: int = DEFAULT_PREVIEW_CHARS, secrets: Iterable[str | None] = ()
) -> str:
    """``text`` on one line, secrets masked, cut to ``limit`` characters (+ ``...``)."""
    head = text[: limit + _MASK_WINDOW] if len(text) > limit + _MASK_WINDOW else text
    clean = redact(mask_url(head), secrets).replace("\r", " ").replace("\n", " ")
    return clean if len(clean) <= limit else clean[:limit] + "..."


class LoggingHook(Hook):
    """Logs runs, model calls and tool calls to ``logger`` (default ``orra_di.run``).

    ``level`` applies to every record; ``preview_chars`` bounds the tool output
    shown; ``secrets`` are extra strings never to show (API keys the tools use).
    One instance serves every session: all per-session figures live in the session.
    """

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        *,
        level: int = logging.INFO,
        preview_chars: int = DEFAULT_PREVIEW_CHARS,
        secrets: Iterable[str | None] = (),
    ) -> None:
        if preview_chars < 0:
            raise ValueError(f"preview_chars must be >= 0, got {preview_chars}")
        if isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            self.logger = logging.getLogger(logger or "orra_di.run")
        self.level = level
        self.preview_chars = preview_chars
        self._secrets = tuple(s for s in secrets if s)

    def __repr__(self) -> str:  # the secrets stay out of reprs
        return f"LoggingHook(logger={self.logger.name!r}, preview_chars={self.preview_chars})"

    def _log(self, event: str, message: str, *args: object, **fields: Any) -> None:
        if not self.logger.isEnabledFor(self.level):
            return
        run = maybe_current_run()
        extra: dict[str, Any] = {"orra_event": event}
        if run is not None:
            extra.update(namespace=run.namespace.key, agent=run.agent, run_id=run.run_id)
        extra.update(fields)
        self.logger.log(self.level, message, *args, extra=extra)

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        count = len(session.messages)
        if count:
            self._log(
                "run_start",
                "[session] loaded %d messages for %s",
                count,
                namespace.key,
                messages=count,
            )
        else:
            self._log("run_start", "[session] new session for %s", namespace.key, messages=0)

    async def before_provider_call(self, request: CompletionRequest) -> None:
        _call_started.set(time.perf_counter())
        self._log(
            "model_call_start",
            "[llm] calling provider with %d messages, %d tools",
            len(request.messages),
            len(request.tools),
            messages=len(request.messages),
            tools=len(request.tools),
            model=request.model,
        )

    async def after_provider_call(self, response: CompletionResponse) -> None:
        started = _call_started.get(None)
        seconds = time.perf_counter() - started if started is not None else 0.0
        usage = response.usage
        totals = {"input": 0, "output": 0}
        run = maybe_current_run()
        if run is not None:
            stored = run.state(TOKENS_STATE_KEY, {})
            if isinstance(stored, dict):
                totals["input"] = int(stored.get("input", 0)) + usage.input_tokens
                totals["output"] = int(stored.get("output", 0)) + usage.output_tokens
            run.set_state(TOKENS_STATE_KEY, totals)
        self._log(
            "model_call",
            "[llm] response in %.1fs — %d in / %d out tokens (session total: %d in / %d out)",
            seconds,
            usage.input_tokens,
            usage.output_tokens,
            totals["input"],
            totals["output"],
            model=run.model if run is not None else None,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            session_input_tokens=totals["input"],
            session_output_tokens=totals["output"],
            finish_reason=str(response.finish_reason),
            duration_ms=round(seconds * 1000, 3),
        )

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self._log(
            "tool_call_start", "[tool] calling: %s", call.name, tool=call.name, call_id=call.id
        )
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        shown = preview(result.content, self.preview_chars, self._secrets)
        outcome = "error" if result.is_error else "ok"
        self._log(
            "tool_call",
            "[tool] %s → %s (%s)",
            call.name,
            outcome,
            shown,
            tool=call.name,
            call_id=call.id,
            is_error=result.is_error,
            preview=shown,
        )
        return None

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        self._log(
            "run_end",
            "[session] saving %d messages for %s",
            len(session.messages),
            namespace.key,
            messages=len(session.messages),
        )
