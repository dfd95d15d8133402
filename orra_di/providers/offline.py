"""The offline model: answers without a network or a key.

The CLI and the container fall back on it when no LLM is configured, so that
the whole loop (tool calls, results, persistence) can be watched offline; tests
use it as a schema-driven double, in the spirit of pydantic-ai's ``TestModel``.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from orra_di.message import Message, Role, ToolCall
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamEvent,
    Usage,
    response_events,
)

__all__ = ["TestModel", "example"]

_ids = itertools.count(1)


class TestModel:
    """Calls each offered tool once with schema-generated arguments, then answers.

    Needs no network and no key: the CLI uses it when no model is configured.
    The final answer repeats what the user said and lists the tools' results
    as JSON.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self, *, answer: str | None = None, chunk_size: int = 8, remember: int = 100
    ) -> None:
        self.answer = answer
        self.chunk_size = chunk_size
        self.requests: deque[CompletionRequest] = deque(maxlen=remember)
        """The latest requests (a bounded window: the CLI may run it for days)."""

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        turn = _current_turn(request.messages)
        called = {r.call_id for m in turn for r in m.tool_results}
        if request.tools and not called:
            calls = [
                ToolCall(id=f"test_{next(_ids)}", name=d.name, arguments=example(d.input_schema))
                for d in request.tools
            ]
            return CompletionResponse(
                message=Message.assistant("", calls),
                usage=_usage(request, calls),
                finish_reason=FinishReason.TOOL_USE,
            )
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
        return CompletionResponse(message=Message.assistant(text), usage=_usage(request, text))

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


def example(
    schema: dict[str, Any], defs: dict[str, Any] | None = None, seen: frozenset[str] = frozenset()
) -> Any:
    """A small value that satisfies a JSON schema (enough for generated tool calls).

    A recursive schema (a tree of nodes) stops at the first repeated ``$ref``.
    """
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        ref = schema["$ref"]
        return None if ref in seen else example(defs[ref.rsplit("/", 1)[-1]], defs, seen | {ref})
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
            return example(usable[0], defs, seen)
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
        # One item by default, none for a list of references (a tree's children).
        count = int(schema.get("minItems", 0 if "$ref" in item else 1))
        return [example(item, defs, seen) for _ in range(count)]
    properties: dict[str, Any] = schema.get("properties", {})
    required = schema.get("required", list(properties))
    return {name: example(properties[name], defs, seen) for name in required if name in properties}
