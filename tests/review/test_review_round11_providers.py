"""Round 11 review: ``AnthropicProvider`` and ``OpenAIProvider`` on the official SDKs,
against a loopback server speaking each wire format, and the providers made of
providers (``RetryingProvider``, ``FallbackProvider``). Secrets never in errors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from orra_di import Message
from orra_di.errors import (
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from orra_di.provider import (
    CompletionRequest,
    FinishReason,
    StreamDone,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from orra_di.providers.anthropic import AnthropicProvider
from orra_di.providers.openai import OpenAIProvider
from orra_di.providers.resilience import FallbackProvider, RetryingProvider
from orra_di.tool import ToolDefinition

pytestmark = pytest.mark.anyio

KEY = "sk-proj-" + "A1b2C3d4" * 12
HELLO = CompletionRequest(messages=[Message.user("hi")])
WITH_TOOL = CompletionRequest(
    messages=[Message.user("weather?")],
    tools=[ToolDefinition(name="weather", description="w", input_schema={"type": "object"})],
)


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver
    httpserver.clear()


def openai(server: HTTPServer, **options: Any) -> OpenAIProvider:
    options.setdefault("max_retries", 0)
    return OpenAIProvider(KEY, base_url=server.url_for("/v1"), model="gpt-4o", **options)


def anthropic(server: HTTPServer, **options: Any) -> AnthropicProvider:
    options.setdefault("max_retries", 0)
    return AnthropicProvider(KEY, base_url=server.url_for(""), **options)


def make(vendor: str, server: HTTPServer, **options: Any) -> OpenAIProvider | AnthropicProvider:
    return openai(server, **options) if vendor == "openai" else anthropic(server, **options)


PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}


def _shows_the_key(text: str) -> bool:
    return any(KEY[:n] in text for n in (12, 16, 24))


# -- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("shape", ["json", "text"])
@pytest.mark.parametrize("padding", [0, 250, 280])
async def test_a_key_echoed_in_an_error_body_never_shows_even_where_the_body_is_cut(
    server: HTTPServer, vendor: str, status: int, shape: str, padding: int
) -> None:
    """A gateway quoting the key near the point where a long body is cut to one line
    must not leave the key's first characters in the error."""
    text = "x" * padding + " the key " + KEY + " was refused"
    if shape == "json":
        body = json.dumps({"error": {"message": text, "type": "invalid_request_error"}})
        kind = "application/json"
    else:
        body, kind = text, "text/plain"
    server.expect_request(PATH[vendor]).respond_with_response(
        Response(body, status=status, content_type=kind)
    )
    llm = make(vendor, server)
    with pytest.raises(ProviderError) as info:
        await llm.complete(HELLO)
    assert not _shows_the_key(str(info.value)), str(info.value)
    assert not _shows_the_key(repr(info.value))
    assert not _shows_the_key(repr(llm))
    expected = {400: ProviderBadRequestError, 401: ProviderAuthError, 500: ProviderUnavailableError}
    assert isinstance(info.value, expected[status])
    assert f"HTTP {status}" in str(info.value)


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_a_200_that_is_not_an_answer_never_shows_the_key(
    server: HTTPServer, vendor: str
) -> None:
    server.expect_request(PATH[vendor]).respond_with_json(
        {"echo": "x" * 200 + " Authorization: Bearer " + KEY}
    )
    with pytest.raises(ProviderError) as info:
        await make(vendor, server).complete(HELLO)
    assert not _shows_the_key(str(info.value)), str(info.value)


# -- the wire formats ----------------------------------------------------------------------------


async def test_openai_tool_call_and_usage_not_streamed(server: HTTPServer) -> None:
    server.expect_request(PATH["openai"]).respond_with_json(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                            }
                        ],
                    },
                }
            ],
            "usage": {
                "prompt_tokens": 30,
                "completion_tokens": 7,
                "total_tokens": 37,
                "prompt_tokens_details": {"cached_tokens": 10},
            },
        }
    )
    response = await openai(server).complete(WITH_TOOL)
    (tool_call,) = response.message.tool_calls
    assert (tool_call.id, tool_call.name, tool_call.arguments) == (
        "call_1",
        "weather",
        {"city": "Oslo"},
    )
    assert response.finish_reason == FinishReason.TOOL_USE
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 7)
    assert response.usage.cache_read_input_tokens == 10
    sent = json.loads(server.log[-1][0].get_data())
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert server.log[-1][0].headers["Authorization"] == f"Bearer {KEY}"


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> str:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out)


async def test_openai_streamed_tool_call_and_usage(server: HTTPServer) -> None:
    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> Any:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        return (None, {**body, "choices": choices, **extra})

    call = {"index": 0, "id": "call_9", "type": "function", "function": {"name": "weather"}}
    body = _sse(
        [
            chunk({"role": "assistant", "content": "Let me look"}),
            chunk({"tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]}),
            chunk({}, "tool_calls"),
            chunk(None, usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}),
            (None, "[DONE]"),
        ]
    )
    server.expect_request(PATH["openai"]).respond_with_data(body, content_type="text/event-stream")
    events = [e async for e in openai(server).stream(WITH_TOOL)]
    assert events[0] == TextDelta("Let me look")
    assert ToolCallStart("call_9", "weather") in events
    arguments = "".join(e.arguments_delta for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(arguments) == {"city": "Oslo"}
    done = events[-1]
    assert isinstance(done, StreamDone) and done.finish_reason == FinishReason.TOOL_USE
    assert (done.usage.input_tokens, done.usage.output_tokens) == (12, 5)
    sent = json.loads(server.log[-1][0].get_data())
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_anthropic_streamed_tool_call_and_usage(server: HTTPServer) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 5},
        },
    }
    body = _sse(
        [
            ("message_start", start),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Hm"},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "weather",
                        "input": {},
                    },
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 1,
                    "delta": {"type": "input_json_delta", "partial_json": '{"city": "Oslo"}'},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": 1}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": 9},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
    )
    server.expect_request(PATH["anthropic"]).respond_with_data(
        body, content_type="text/event-stream"
    )
    events = [e async for e in anthropic(server).stream(WITH_TOOL)]
    assert events[0] == TextDelta("Hm")
    assert ToolCallStart("toolu_1", "weather") in events
    arguments = "".join(e.arguments_delta for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(arguments) == {"city": "Oslo"}
    done = events[-1]
    assert isinstance(done, StreamDone) and done.finish_reason == FinishReason.TOOL_USE
    assert done.usage.output_tokens == 9
    assert done.usage.input_tokens == 25 and done.usage.cache_read_input_tokens == 5


# -- rate limits, retries and fallbacks ----------------------------------------------------


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_429_carries_retry_after_and_retrying_provider_waits_for_it(
    server: HTTPServer, vendor: str
) -> None:
    limited = Response(
        json.dumps({"error": {"message": "slow down", "type": "rate_limit_error"}}),
        status=429,
        headers={"retry-after": "1"},
        content_type="application/json",
    )
    server.expect_ordered_request(PATH[vendor]).respond_with_response(limited)
    with pytest.raises(RateLimitedError) as info:
        await make(vendor, server).complete(HELLO)
    assert info.value.retry_after_ms == 1000

    # RetryingProvider waits the server's second, then the second try succeeds.
    server.clear()
    server.expect_ordered_request(PATH[vendor]).respond_with_response(limited)
    if vendor == "openai":
        answer: dict[str, Any] = {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
        }
    else:
        answer = {
            "id": "m",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-5-5",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    server.expect_ordered_request(PATH[vendor]).respond_with_json(answer)
    started = time.monotonic()
    response = await RetryingProvider(make(vendor, server), max_retries=1).complete(HELLO)
    assert response.message.content == "ok"
    assert time.monotonic() - started >= 0.9

    # A wait longer than max_wait is not waited for: the error comes at once.
    server.clear()
    server.expect_request(PATH[vendor]).respond_with_response(limited)
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        await RetryingProvider(make(vendor, server), max_retries=3, max_wait=0.5).complete(HELLO)
    assert time.monotonic() - started < 0.9


async def test_fallback_moves_on_for_outages_but_not_for_auth_errors(server: HTTPServer) -> None:
    server.expect_request(PATH["anthropic"]).respond_with_response(
        Response("upstream down", status=503)
    )
    server.expect_request(PATH["openai"]).respond_with_json(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "b"},
                }
            ],
        }
    )
    both = FallbackProvider([anthropic(server), openai(server)])
    assert (await both.complete(HELLO)).message.content == "b"

    server.clear()
    server.expect_request(PATH["anthropic"]).respond_with_response(
        Response(json.dumps({"error": {"message": "bad key"}}), status=401)
    )
    with pytest.raises(ProviderAuthError):
        await FallbackProvider([anthropic(server), openai(server)]).complete(HELLO)
    assert all(entry[0].path == PATH["anthropic"] for entry in server.log)


async def test_a_server_that_ignores_stream_true_is_named_as_such(server: HTTPServer) -> None:
    """Some OpenAI-compatible servers answer a streamed request with one JSON body: the
    error says so and what to do, rather than "the stream ended"."""
    server.expect_request(PATH["openai"]).respond_with_json(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi"},
                }
            ],
        }
    )
    with pytest.raises(ProviderUnavailableError, match='ignores "stream": true') as error:
        [e async for e in openai(server).stream(HELLO)]
    assert "run without streaming" in str(error.value)
