"""Lifecycle hooks: six points of the agent loop an application can observe or change.

Subclass :class:`Hook` and override what you need. Hooks run one after the
other in registration order and each sees the previous one's changes.
Per-session state belongs in the session, never on the hook object: one hook
instance serves every session of a runtime (spec §5.2/11). Any hook point can
call :func:`orra_di.run_context.current_run` for the run it serves and keep
state with ``run.set_state(key, value)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from orra_di.errors import OrraError
from orra_di.message import ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.session import Session

__all__ = ["Hook", "HookRegistry", "ToolCallDenied"]


class ToolCallDenied(OrraError):
    """Raised by ``before_tool_call`` to block a call; the reason goes to the model."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Hook:
    """No-op base; override the points you care about."""

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        """After the session is loaded or created, before the user message is added."""

    async def before_provider_call(self, request: CompletionRequest) -> None:
        """May change ``request`` in place (model, temperature, tools, messages)."""

    async def after_provider_call(self, response: CompletionResponse) -> None:
        """Observe the model's answer."""

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        """Return a replacement call, or ``None`` to keep it; raise ToolCallDenied to block."""
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        """Return a replacement result (e.g. redacted), or ``None`` to keep it.

        Sees every call's result, refusals too: by the tool policy, or by a
        ``before_tool_call`` hook raising :class:`ToolCallDenied` (then ``call``
        is the call as the model made it).
        """
        return None

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        """At the end of a run; may change the session's metadata or this run's messages."""


class HookRegistry:
    """Hooks in registration order, with the dispatchers the runtime calls."""

    def __init__(self, hooks: Iterable[Hook] = ()) -> None:
        self._hooks: list[Hook] = list(hooks)

    def register(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def __len__(self) -> int:
        return len(self._hooks)

    def __bool__(self) -> bool:
        return bool(self._hooks)

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        for hook in self._hooks:
            await hook.after_session_load(namespace, session)

    async def before_provider_call(self, request: CompletionRequest) -> None:
        for hook in self._hooks:
            await hook.before_provider_call(request)

    async def after_provider_call(self, response: CompletionResponse) -> None:
        for hook in self._hooks:
            await hook.after_provider_call(response)

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall:
        """The call after every hook's changes; ToolCallDenied stops at the first refusal."""
        for hook in self._hooks:
            replacement = await hook.before_tool_call(namespace, call)
            if replacement is not None:
                call = _checked(hook, "before_tool_call", replacement, ToolCall)
        return call

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult:
        for hook in self._hooks:
            replacement = await hook.after_tool_call(call, result)
            if replacement is not None:
                result = _checked(hook, "after_tool_call", replacement, ToolResult)
        return result

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        for hook in self._hooks:
            await hook.before_session_save(namespace, session)


_Replacement = TypeVar("_Replacement", ToolCall, ToolResult)


def _checked(hook: Hook, point: str, value: object, kind: type[_Replacement]) -> _Replacement:
    """A hook's replacement, or a TypeError naming the hook, what it returned and what
    it should: otherwise the run fails later with an AttributeError on ``.id``."""
    if not isinstance(value, kind):
        raise TypeError(
            f"{type(hook).__name__}.{point} returned {type(value).__name__}; "
            f"return a {kind.__name__} to replace it, or None to keep it"
        )
    return value
