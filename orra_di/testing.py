"""Test doubles for providers: scripted answers and a schema-driven test model.

``ScriptedProvider`` plays a list of answers (or a function of the request),
in the spirit of pydantic-ai's ``FunctionModel``; ``TestModel`` calls every
offered tool once with arguments generated from its schema, then answers, in
the spirit of pydantic-ai's ``TestModel``. Both stream, and both record the
requests they received so tests can assert what the model saw.
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import anyio

from orra_di.errors import ProviderError
from orra_di.message import Message, Role, ToolCall
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamEvent,
    Usage,
    response_events,
)

__all__ = ["ScriptedProvider", "TestModel", "call", "reply", "tool_calls"]

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


class TestModel:
    """Calls each offered tool once with schema-generated arguments, then answers.

    Needs no network and no key: the CLI uses it when no model is configured.
    The final answer repeats what the user said and lists the tools' results
    as JSON.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, *, answer: str | None = None, chunk_size: int = 8) -> None:
        self.answer = answer
        self.chunk_size = chunk_size
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        turn = _current_turn(request.messages)
        called = {r.call_id for m in turn for r in m.tool_results}
        if request.tools and not called:
            calls = [
                ToolCall(id=f"test_{i}", name=d.name, arguments=example(d.input_schema))
                for i, d in enumerate(request.tools)
            ]
            return tool_calls(*calls, usage=_usage(request, calls))
        if self.answer is not None:
            text = self.answer
        else:
            said = turn[0].content if turn else ""
            text = f"(test model, no LLM configured) You said: {said}"
            if called:
                names = {c.id: c.name for m in turn for c in m.tool_calls}
                results = {
                    names.get(r.call_id, r.call_id): r.content for m in turn for r in m.tool_results
                }
                text += f"\nTool results: {json.dumps(results, ensure_ascii=False)}"
        return reply(text, usage=_usage(request, text))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        async for event in response_events(response, self.chunk_size):
            yield event


def _current_turn(messages: Sequence[Message]) -> list[Message]:
    """The messages since the last plain user message (inclusive)."""
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if m.role == Role.USER and not m.tool_results:
            return list(messages[i:])
    return []


def _usage(request: CompletionRequest, output: object) -> Usage:
    """Billed tokens as a real model would count them: the whole request, ~4 chars each."""
    size = sum(
        len(m.content) + sum(len(str(c.arguments)) for c in m.tool_calls) for m in request.messages
    )
    size += sum(len(r.content) for m in request.messages for r in m.tool_results)
    size += sum(len(str(t.input_schema)) + len(t.description) for t in request.tools)
    return Usage(input_tokens=-(-size // 4), output_tokens=-(-len(str(output)) // 4))


def example(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small value that satisfies a JSON schema (enough for generated tool calls)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    if schema.get("examples"):
        return schema["examples"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options: Iterable[dict[str, Any]] = schema[key]
            usable = [o for o in options if o.get("type") != "null"] or list(schema[key])
            return example(usable[0], defs)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "string":
        return "a" * max(int(schema.get("minLength", 1)), 1)
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    if kind == "array":
        item = schema.get("items", {"type": "string"})
        return [example(item, defs) for _ in range(max(int(schema.get("minItems", 1)), 1))]
    properties: dict[str, Any] = schema.get("properties", {})
    required = schema.get("required", list(properties))
    return {name: example(properties[name], defs) for name in required if name in properties}
