"""Models that answer without a network or a key.

:class:`OfflineModel` is what the CLI and the container fall back on when no LLM
is configured (``llm.kind`` ``offline``): a few fixed rules pick the built-in tools
a message asks for, so the whole loop (tool calls, results, persistence) can be
watched offline and the answers make sense. :class:`TestModel` (``llm.kind``
``test``) is the double for tests, in the spirit of pydantic-ai's ``TestModel``:
it calls every offered tool with arguments generated from its schema.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
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

__all__ = ["OFFLINE_NOTICE", "OfflineModel", "TestModel", "arithmetic_in", "example"]

_ids = itertools.count(1)


class TestModel:
    """Calls each offered tool once with schema-generated arguments, then answers.

    Needs no network and no key; ``llm.kind = "test"`` puts it in the container.
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


OFFLINE_NOTICE = (
    "(This is the offline model: no LLM is configured, so fixed rules answered. For a real "
    'model set ANTHROPIC_API_KEY (pip install "orra-di[anthropic]") or OPENAI_API_KEY '
    '(pip install "orra-di[openai]"), or ORRA_LLM__BASE_URL=http://127.0.0.1:11434/v1 for a '
    "local OpenAI-compatible server such as Ollama (also [openai]).)"
)
"""The last paragraph of every :class:`OfflineModel` answer."""

# A run of characters that may hold arithmetic; the candidates are then checked.
_ARITHMETIC_RUN = re.compile(r"[\d.\s()+\-*/%^×÷]+")
# Two numbers joined by a binary operator somewhere in the run.
_HAS_OPERATOR = re.compile(r"\d[\d.\s)]*(?:\*\*|//|[-+*/%^×÷])[\s(+\-]*\.?\d")
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}")
_ABOUT_TIME = re.compile(
    r"\b(?:time|clock|date|today|tonight|now|hour|day is it|what day|weekday)\b", re.IGNORECASE
)
_TIME_ZONE = re.compile(r"\b(UTC|[A-Z][A-Za-z_]+(?:/[A-Z][A-Za-z_+\-]+)+)\b")


def arithmetic_in(text: str) -> str | None:
    """The first arithmetic expression in ``text`` (``2+2`` in "What is 2+2?"), or ``None``.

    ``^``, ``×`` and ``÷`` are read as ``**``, ``*`` and ``/``; dates (2024-01-31) are not
    arithmetic, nor is a run glued to a letter, ``_``, ``,`` or ``:`` (``1e308*10``,
    ``1,000+1``, ``sqrt(16)+1``, ``12:30+1``): computing a piece of it would answer
    another question.
    """
    for match in _ARITHMETIC_RUN.finditer(text):
        candidate = match[0].strip().rstrip(".").strip()
        if not _HAS_OPERATOR.search(candidate) or _DATE.search(candidate):
            continue
        start = match.start() + len(match[0]) - len(match[0].lstrip())
        before = text[start - 1] if start > 0 else " "
        end = match.end() - (len(match[0]) - len(match[0].rstrip()))
        after = text[end] if end < len(text) else " "
        if before.isalnum() or before in "_,:" or after.isalnum() or after == "_":
            continue  # a piece of 1e308, 1,000, 0x10 or sqrt(16): not the user's expression
        expression = candidate.replace("^", "**").replace("×", "*").replace("÷", "/")
        while expression.count("(") > expression.count(")") and expression.startswith("("):
            expression = expression[1:].strip()  # "(2+2" inside a sentence's parenthesis
        while expression.count(")") > expression.count("(") and expression.endswith(")"):
            expression = expression[:-1].strip()
        try:
            ast.parse(expression, mode="eval")
        except SyntaxError:
            continue
        return expression
    return None


class OfflineModel:
    """The model used when none is configured: plain rules, said out loud.

    For the built-in tools it chooses as a person would: an arithmetic expression in
    the message goes to ``calculate``, a question about the time to ``current_time``
    (with a time zone such as ``Europe/Paris`` if one is named); any other message
    calls no tool. Other tools are never called. Each answer ends with
    :data:`OFFLINE_NOTICE`, which says how to plug in a real model. Like any model
    it sees the session's history, so it can say what it remembers.
    """

    def __init__(self, *, chunk_size: int = 8, remember: int = 100) -> None:
        self.chunk_size = chunk_size
        self.requests: deque[CompletionRequest] = deque(maxlen=remember)
        """The latest requests (a bounded window: the CLI may run it for days)."""

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        turn = _current_turn(request.messages)
        said = turn[0].content if turn else ""
        offered = {d.name for d in request.tools}
        results = _answered_calls(turn)
        if not results:
            call = _choose_tool(said, offered)
            if call is not None:
                calls = [call]
                return CompletionResponse(
                    message=Message.assistant("", calls),
                    usage=_usage(request, calls),
                    finish_reason=FinishReason.TOOL_USE,
                )
        if results:
            text = "\n".join(_say_result(c, content, error) for c, content, error in results)
        else:
            text = _no_tool_answer(said, offered, request.messages[: -len(turn) or None])
        text += "\n\n" + OFFLINE_NOTICE
        return CompletionResponse(message=Message.assistant(text), usage=_usage(request, text))

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        response = await self.complete(request)
        async for event in response_events(response, self.chunk_size):
            yield event


def _choose_tool(said: str, offered: set[str]) -> ToolCall | None:
    expression = arithmetic_in(said)
    if expression is not None and "calculate" in offered:
        return ToolCall(
            id=f"offline_{next(_ids)}", name="calculate", arguments={"expression": expression}
        )
    if expression is None and "current_time" in offered and _ABOUT_TIME.search(said):
        zone = _TIME_ZONE.search(said)
        arguments = {"timezone": zone[1]} if zone else {}
        return ToolCall(id=f"offline_{next(_ids)}", name="current_time", arguments=arguments)
    return None


def _answered_calls(turn: Sequence[Message]) -> list[tuple[ToolCall, str, bool]]:
    """The tool calls of this turn with their results, in call order."""
    results = {r.call_id: r for m in turn for r in m.tool_results}
    return [
        (c, results[c.id].content, results[c.id].is_error)
        for m in turn
        for c in m.tool_calls
        if c.id in results
    ]


def _say_result(call: ToolCall, content: str, is_error: bool) -> str:
    if call.name == "calculate":
        expression = call.arguments.get("expression", "")
        if is_error:
            return f"calculate could not work out {expression}: {content}"
        return f"{expression} = {content} (worked out by the calculate tool)"
    if call.name == "current_time" and not is_error:
        zone = call.arguments.get("timezone", "UTC")
        return f"It is {content} in {zone} (read by the current_time tool)."
    return f"{call.name} {'failed' if is_error else 'answered'}: {content}"


def _no_tool_answer(said: str, offered: set[str], earlier: Sequence[Message]) -> str:
    skills = []
    if "calculate" in offered:
        skills.append('work out arithmetic with calculate (try "What is 2+2?")')
    if "current_time" in offered:
        skills.append('tell the time with current_time (try "What time is it?")')
    can = " and ".join(skills) or "repeat you: this agent has neither calculate nor current_time"
    lines = [f"You said: {said}", f"Offline, I can only {can}."]
    if arithmetic_in(said) is not None and "calculate" not in offered:
        lines[1] = "That looks like arithmetic, but this agent has no calculate tool. " + lines[1]
    before = [m.content for m in earlier if m.role == Role.USER and not m.tool_results]
    if before:
        first = before[0] if len(before[0]) <= 80 else before[0][:79] + "…"
        lines.append(
            f"This session remembers {len(before)} earlier message"
            f"{'s' if len(before) != 1 else ''} from you; the first was: {first}"
        )
    return "\n".join(lines)


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
