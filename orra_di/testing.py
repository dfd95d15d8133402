"""Test doubles for providers: scripted answers and a schema-driven test model.

``TestModel`` lives in :mod:`orra_di.providers.offline` (the CLI runs on it when
no model is configured) and is re-exported here for tests.

:func:`override_agent` (from :mod:`orra_di.containers`, re-exported here)
replaces one agent of a container for the duration of a ``with`` block.

``ScriptedProvider`` plays a list of answers (or a function of the request),
in the spirit of pydantic-ai's ``FunctionModel``; ``TestModel`` calls every
offered tool once with arguments generated from its schema, then answers, in
the spirit of pydantic-ai's ``TestModel``. Both stream, and both record the
requests they received so tests can assert what the model saw.
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import anyio

from orra_di.containers import override_agent
from orra_di.errors import ProviderError
from orra_di.message import Message, ToolCall
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamEvent,
    Usage,
    response_events,
)
from orra_di.providers.offline import TestModel, example

__all__ = [
    "ScriptedProvider",
    "TestModel",
    "call",
    "example",
    "override_agent",
    "reply",
    "tool_calls",
]

Answer = CompletionResponse | Message | str | BaseException
Script = Sequence[Answer] | Callable[[CompletionRequest], Answer | Awaitable[Answer]]

_ids = itertools.count(1)


def call(name: str, arguments: dict[str, Any] | None = None, *, id: str | None = None) -> ToolCall:
    """A tool call with a fresh id, e.g. ``call("lookup", {"key": "a"})``."""
    return ToolCall(id=id or f"call_{next(_ids)}", name=name, arguments=arguments or {})


def tool_calls(*calls: ToolCall, text: str = "", usage: Usage | None = None) -> CompletionResponse:
    """An assistant turn that asks for ``calls``."""
    return CompletionResponse(
        message=Message.assistant(text, calls),
        usage=usage or Usage(),
        finish_reason=FinishReason.TOOL_USE,
    )


def reply(text: str, *, usage: Usage | None = None) -> CompletionResponse:
    """A final assistant answer."""
    return CompletionResponse(message=Message.assistant(text), usage=usage or Usage())


def _as_response(answer: Answer) -> CompletionResponse:
    if isinstance(answer, BaseException):
        raise answer
    if isinstance(answer, CompletionResponse):
        return answer
    if isinstance(answer, str):
        return reply(answer)
    reason = FinishReason.TOOL_USE if answer.tool_calls else FinishReason.STOP
    return CompletionResponse(message=answer, finish_reason=reason)


class ScriptedProvider:
    """Answers from a script: a list played in order, or a function of the request.

    Items may be a string (final text), a ``Message``, a ``CompletionResponse``
    or an exception to raise (to test provider failures). ``delay`` awaits
    that many seconds per call, like a network round trip.
    """

    def __init__(self, script: Script, *, delay: float = 0.0, chunk_size: int = 8) -> None:
        self._script = script
        self._position = 0
        self.delay = delay
        self.chunk_size = chunk_size
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        if self.delay:
            await anyio.sleep(self.delay)
        if callable(self._script):
            answer = self._script(request)
            if inspect.isawaitable(answer):
                answer = await answer
            return _as_response(answer)
        if self._position >= len(self._script):
            raise ProviderError(
                f"scripted provider ran out of answers after {len(self._script)} calls"
            )
        answer = self._script[self._position]
        self._position += 1
        return _as_response(answer)

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        async for event in response_events(response, self.chunk_size):
            yield event
