"""Round 18 security review: tool arguments a model nests too deeply.

The model's output is not trusted (a prompt injection can lead it), yet arguments
nested past the JSON parser's depth raised ``RecursionError`` and failed the run, and
arguments nested 250 levels or so parsed but could not be stored: the run failed with a
``StoreError`` on the SQLite, file, PostgreSQL and Redis stores. Now both stay text the
tool refuses as invalid input, an error the model reads and the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orra_di.provider import (
    MAX_ARGUMENT_DEPTH,
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    bounded_tool_arguments,
    parse_tool_arguments,
)
from orra_di.tool import tool
from tests.gateway.helpers import ALICE_KEY, auth, client_for, make_container, sse_events

pytestmark = pytest.mark.anyio


def nested(depth: int) -> str:
    """``{"text": [[...]]}`` with ``depth`` levels of lists inside the object."""
    return '{"text": ' + "[" * depth + "]" * depth + "}"


PAST_THE_PARSER = nested(100_000)
PAST_THE_STORE = nested(300)


def test_arguments_past_the_parser_or_the_bound_stay_text() -> None:
    assert parse_tool_arguments(PAST_THE_PARSER) == PAST_THE_PARSER
    assert parse_tool_arguments(PAST_THE_STORE) == PAST_THE_STORE
    within = nested(MAX_ARGUMENT_DEPTH - 1)  # the object is one level
    assert parse_tool_arguments(within) == json.loads(within)
    assert parse_tool_arguments(nested(MAX_ARGUMENT_DEPTH)) == nested(MAX_ARGUMENT_DEPTH)


def test_arguments_an_sdk_parsed_are_bounded_too() -> None:
    """Anthropic's SDK hands over the parsed ``input`` of a tool_use block."""
    from anthropic.types import Message, ToolUseBlock, Usage

    from orra_di.providers.anthropic import _response

    block = ToolUseBlock(
        type="tool_use", id="toolu_1", name="note", input=json.loads(PAST_THE_STORE)
    )
    message = Message(
        id="msg_1",
        type="message",
        role="assistant",
        model="claude-test",
        content=[block],
        stop_reason="tool_use",
        usage=Usage(input_tokens=1, output_tokens=1),
    )
    (call,) = _response(message, "claude-test").message.tool_calls
    assert isinstance(call.arguments, str) and "nested" in call.arguments
    assert bounded_tool_arguments({"a": [1, {"b": 2}]}) == {"a": [1, {"b": 2}]}


@tool
def note(text: str) -> str:
    """Keep a note."""
    return text


class DeepArguments:
    """A streaming model whose first answer calls ``note`` with ``raw`` arguments."""

    def __init__(self, raw: str) -> None:
        self.raw = raw

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise AssertionError("the gateway streams")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        if not request.messages[-1].tool_results:
            yield ToolCallStart("call_deep", "note")
            yield ToolCallDelta("call_deep", self.raw)
            yield StreamDone(finish_reason=FinishReason.TOOL_USE)
            return
        result = request.messages[-1].tool_results[0]
        yield TextDelta(f"is_error={result.is_error}")
        yield StreamDone()


@pytest.mark.parametrize("raw", [PAST_THE_PARSER, PAST_THE_STORE], ids=["parser", "store"])
async def test_a_model_nesting_arguments_too_deeply_gets_a_tool_error_and_the_run_is_stored(
    raw: str, tmp_path: Path
) -> None:
    container = make_container(
        DeepArguments(raw),
        tools=[note],
        store={"url": f"sqlite:///{tmp_path / 'sessions.db'}"},
    )
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat/stream",
            json={"message": "hi", "namespace": "acme:deep"},
            headers=auth(ALICE_KEY),
        )
        assert response.status_code == 200, response.text
        events = dict(sse_events(response.text))
        assert "error" not in events, events.get("error")
        assert events["end"]["message"] == "is_error=True"
        stored = await client.get("/v1/sessions/acme:deep", headers=auth(ALICE_KEY))
    assert stored.status_code == 200
    assert len(stored.json()["messages"]) == 4  # the question, the call, its error, the answer
