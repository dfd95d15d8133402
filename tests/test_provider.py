"""Provider types (the crate's tests, src/provider.rs), ScriptedProvider, and how the runtime
assembles a streamed turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from orra_di.errors import ProviderError, ProviderUnavailableError, RateLimitedError
from orra_di.message import Message, Role, ToolCall, ToolResult, VendorData
from orra_di.namespace import Namespace
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
from orra_di.runtime import Runtime
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider, reply
from orra_di.tool import ToolDefinition, tool


class PlainProvider:
    """A provider with ``complete`` only."""

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return reply("x")


class RawStream:
    """Plays one list of raw events per request, as a vendor adapter would yield them."""

    def __init__(self, *streams: Sequence[StreamEvent]) -> None:
        self.streams = list(streams)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise AssertionError("the runtime streams when asked to")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        for event in self.streams.pop(0):
            yield event


@tool
def search(query: str) -> str:
    """Search for a query."""
    return f"found {query}"


NS = Namespace("u")
THINKING = VendorData(vendor="acme", data={"signed": "EqQB"})


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
async def test_scripted_provider_plays_its_script_in_order_and_records_requests() -> None:
    asked = ToolCall(id="c1", name="search", arguments={"query": "rust"})
    billed = CompletionResponse(
        message=Message.assistant("billed"), usage=Usage(input_tokens=10, output_tokens=5)
    )
    provider = ScriptedProvider(
        ["Hello!", Message.assistant("", [asked]), billed, RateLimitedError(1000)]
    )
    assert isinstance(provider, StreamingProvider)
    requests = [CompletionRequest(messages=[Message.user(f"q{i}")]) for i in range(5)]

    text = await provider.complete(requests[0])
    assert text.message == Message.assistant("Hello!")
    assert text.message.role is Role.ASSISTANT
    assert text.finish_reason is FinishReason.STOP
    calls = await provider.complete(requests[1])
    assert calls.message.tool_calls == (asked,)
    assert calls.finish_reason is FinishReason.TOOL_USE
    assert (await provider.complete(requests[2])) is billed
    with pytest.raises(RateLimitedError):
        await provider.complete(requests[3])
    with pytest.raises(ProviderError, match="ran out of answers after 4 calls"):
        await provider.complete(requests[4])
    assert provider.requests == requests


@pytest.mark.anyio
async def test_scripted_provider_answers_with_a_function_of_the_request() -> None:
    async def echo(request: CompletionRequest) -> str:
        return request.messages[-1].content.upper()

    for script in (echo, lambda request: request.messages[-1].content.upper()):
        provider = ScriptedProvider(script)
        for word in ("a", "b", "c"):
            response = await provider.complete(CompletionRequest(messages=[Message.user(word)]))
            assert response.message.content == word.upper()


@pytest.mark.anyio
async def test_scripted_provider_streams_its_answer_in_pieces() -> None:
    asked = ToolCall(id="c1", name="search", arguments={"query": "rust"})
    answer = CompletionResponse(
        message=Message.assistant("Let me look.", [asked], vendor_data=[THINKING]),
        usage=Usage(input_tokens=12, output_tokens=7),
        finish_reason=FinishReason.TOOL_USE,
    )
    provider = ScriptedProvider([answer], chunk_size=5)

    events = [e async for e in provider.stream(CompletionRequest(messages=[Message.user("?")]))]

    assert events == [
        TextDelta("Let m"),
        TextDelta("e loo"),
        TextDelta("k."),
        ToolCallStart("c1", "search"),
        ToolCallDelta("c1", '{"query"'),
        ToolCallDelta("c1", ': "rust"}'),
        StreamDone(answer.usage, FinishReason.TOOL_USE, (THINKING,)),
    ]


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
async def test_the_runtime_assembles_a_streamed_turn_from_interleaved_events() -> None:
    """Deltas of two calls interleave and text comes around them, as vendors stream."""
    llm = RawStream(
        [
            TextDelta("Let me "),
            ToolCallStart("a", "search"),
            ToolCallStart("b", "search"),
            ToolCallDelta("a", '{"query":'),
            ToolCallDelta("b", '{"query": "py'),
            ToolCallDelta("unknown", '{"ignored": true}'),
            ToolCallDelta("a", ' "rust"}'),
            ToolCallDelta("b", 'thon"}'),
            TextDelta("look."),
            # A vendor saying "stop" with calls pending: the calls are still answered.
            StreamDone(Usage(input_tokens=12, output_tokens=7), "stop", (THINKING,)),
        ],
        [TextDelta("Both found."), StreamDone(Usage(input_tokens=30, output_tokens=3))],
    )
    store = InMemoryStore()

    async with Runtime(llm, store, tools=[search]).run_streaming(NS, "find") as events:
        texts = [e.text async for e in events if isinstance(e, TextDelta)]

    assert texts == ["Let me ", "look.", "Both found."]
    assert events.result is not None
    first = events.result.turns[0].response
    assert first.finish_reason is FinishReason.TOOL_USE
    assert events.result.total_usage == Usage(input_tokens=42, output_tokens=10)
    session = await store.load(NS)
    assert session is not None
    assert session.messages == [
        Message.user("find"),
        Message.assistant(
            "Let me look.",
            [
                ToolCall(id="a", name="search", arguments={"query": "rust"}),
                ToolCall(id="b", name="search", arguments={"query": "python"}),
            ],
            vendor_data=[THINKING],
        ),
        Message.tool_result(
            [
                ToolResult(call_id="a", content="found rust"),
                ToolResult(call_id="b", content="found python"),
            ]
        ),
        Message.assistant("Both found."),
    ]


@pytest.mark.anyio
async def test_a_stream_that_ends_without_its_done_event_is_not_saved_as_an_answer() -> None:
    store = InMemoryStore()
    llm = RawStream([TextDelta("partial answ")])

    with pytest.raises(ProviderUnavailableError, match="ended before the model finished"):
        async with Runtime(llm, store).run_streaming(NS, "hi") as events:
            async for _ in events:
                pass

    session = await store.load(NS)
    assert session is not None
    assert session.messages == [Message.user("hi")]


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
    provider = PlainProvider()
    assert isinstance(provider, Provider)
    assert not isinstance(provider, StreamingProvider)
