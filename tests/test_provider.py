"""Provider types: the crate's tests (src/provider.rs)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from orra_di.errors import ProviderError, RateLimitedError
from orra_di.message import Message, Role, ToolCall
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    Provider,
    StreamDone,
    StreamEvent,
    StreamingProvider,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from orra_di.tool import ToolDefinition


class MockProvider:
    """Answers every request with a fixed response and records what it saw."""

    def __init__(self, response: CompletionResponse) -> None:
        self.response = response
        self.requests: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.requests.append(request)
        return self.response


class MockStreamingProvider(MockProvider):
    def __init__(self, events: list[StreamEvent]) -> None:
        super().__init__(CompletionResponse(message=Message.assistant("")))
        self.events = events

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        for event in self.events:
            yield event


# -- the crate's tests ------------------------------------------------------


def test_usage_total_tokens() -> None:
    usage = Usage(input_tokens=100, output_tokens=50)
    assert usage.total_tokens == 150


def test_default_usage() -> None:
    usage = Usage()
    assert usage.input_tokens == 0
    assert usage.output_tokens == 0
    assert usage.total_tokens == 0


def test_finish_reason_equality() -> None:
    stop, tool_use, max_tokens = (FinishReason(v) for v in ("stop", "tool_use", "max_tokens"))
    assert stop == FinishReason.STOP
    assert tool_use != stop
    assert max_tokens != tool_use
    assert str(FinishReason.TOOL_USE) == "tool_use"
    # orra's Other(String): vendors' other reasons stay plain strings.
    other: FinishReason | str = "content_filter"
    assert other == "content_filter"
    assert other != FinishReason.STOP


@pytest.mark.anyio
async def test_mock_provider_returns_response() -> None:
    response = CompletionResponse(
        message=Message.assistant("Hello!"),
        usage=Usage(input_tokens=10, output_tokens=5),
        finish_reason=FinishReason.STOP,
    )
    provider = MockProvider(response)
    assert isinstance(provider, Provider)

    request = CompletionRequest(messages=[Message.user("Hi")])
    result = await provider.complete(request)
    assert result.message.content == "Hello!"
    assert result.message.role is Role.ASSISTANT
    assert result.usage.total_tokens == 15
    assert result.finish_reason is FinishReason.STOP
    assert provider.requests == [request]


def test_provider_error_handling() -> None:
    err = RateLimitedError(retry_after_ms=1000)
    assert isinstance(err, ProviderError)
    assert err.retry_after_ms == 1000
    assert str(err) == "rate limited, retry after 1000ms"
    with pytest.raises(ProviderError, match="retry after 1000ms"):
        raise err


def test_stream_event_text_delta() -> None:
    event: StreamEvent = TextDelta("Hello")
    match event:
        case TextDelta(text=text):
            assert text == "Hello"
        case _:
            pytest.fail("not a text delta")
    assert TextDelta("Hello") == TextDelta("Hello")
    assert TextDelta("Hello") != TextDelta("World")


@pytest.mark.anyio
async def test_stream_event_tool_call_lifecycle() -> None:
    events: list[StreamEvent] = [
        ToolCallStart(id="call_1", name="search"),
        ToolCallDelta(id="call_1", arguments_delta='{"query":'),
        ToolCallDelta(id="call_1", arguments_delta=' "rust"}'),
        StreamDone(usage=Usage(input_tokens=12, output_tokens=7), finish_reason="tool_use"),
    ]
    provider = MockStreamingProvider(events)
    assert isinstance(provider, StreamingProvider)

    names: dict[str, str] = {}
    buffers: dict[str, str] = {}
    done: StreamDone | None = None
    async for event in provider.stream(CompletionRequest(messages=[Message.user("find")])):
        match event:
            case ToolCallStart(id=call_id, name=name):
                names[call_id] = name
                buffers[call_id] = ""
            case ToolCallDelta(id=call_id, arguments_delta=delta):
                buffers[call_id] += delta
            case StreamDone():
                done = event
    assert names == {"call_1": "search"}
    call = ToolCall(id="call_1", name=names["call_1"], arguments=json.loads(buffers["call_1"]))
    assert call.arguments == {"query": "rust"}
    assert done is not None
    assert done.finish_reason == FinishReason.TOOL_USE
    assert done.usage.total_tokens == 19


# -- more of the contract ------------------------------------------------------


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=3) + Usage(
        input_tokens=1, output_tokens=2, cache_creation_input_tokens=4
    )
    assert total == Usage(
        input_tokens=11, output_tokens=7, cache_read_input_tokens=3, cache_creation_input_tokens=4
    )
    assert total.total_tokens == 18


def test_completion_request_defaults() -> None:
    request = CompletionRequest(messages=[Message.user("Hi")])
    assert request.tools == []
    assert request.max_tokens is None
    assert request.temperature is None
    assert request.model is None


def test_completion_request_is_mutable_for_hooks() -> None:
    request = CompletionRequest(messages=[Message.user("Hi")], temperature=0.7)
    request.temperature = 0.0
    request.model = "other-model"
    request.tools.append(ToolDefinition(name="t", description="d", input_schema={}))
    assert request.temperature == 0.0
    assert request.model == "other-model"
    assert len(request.tools) == 1


def test_known_finish_reason_strings_become_enum_members() -> None:
    response = CompletionResponse(message=Message.assistant("x"), finish_reason="tool_use")
    assert response.finish_reason is FinishReason.TOOL_USE

    restored = CompletionResponse.model_validate_json(
        '{"message": {"role": "assistant", "content": "x"}, "finish_reason": "max_tokens"}'
    )
    assert restored.finish_reason is FinishReason.MAX_TOKENS


def test_unknown_finish_reason_stays_a_string() -> None:
    response = CompletionResponse(message=Message.assistant("x"), finish_reason="end_turn")
    assert response.finish_reason == "end_turn"
    assert not isinstance(response.finish_reason, FinishReason)


def test_completion_response_roundtrip() -> None:
    response = CompletionResponse(
        message=Message.assistant("", [ToolCall(id="1", name="t", arguments={"a": 1})]),
        usage=Usage(input_tokens=3, output_tokens=4),
        finish_reason=FinishReason.TOOL_USE,
    )
    restored = CompletionResponse.model_validate_json(response.model_dump_json())
    assert restored == response
    assert restored.finish_reason is FinishReason.TOOL_USE
    assert CompletionResponse(message=Message.assistant("x")).finish_reason is FinishReason.STOP


def test_stream_done_defaults() -> None:
    done = StreamDone()
    assert done.usage == Usage()
    assert done.finish_reason is FinishReason.STOP


def test_plain_provider_is_not_a_streaming_provider() -> None:
    provider = MockProvider(CompletionResponse(message=Message.assistant("x")))
    assert isinstance(provider, Provider)
    assert not isinstance(provider, StreamingProvider)
