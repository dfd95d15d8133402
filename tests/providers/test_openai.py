"""OpenAIProvider: the real SDK against a loopback server that speaks Chat Completions.

Every test drives ``openai.AsyncOpenAI`` over real HTTP to pytest-httpserver on
127.0.0.1, asserts the JSON the SDK sent, and replays bodies shaped like
OpenAI's (and Ollama's, vLLM's, llama.cpp's) answers. No test needs the internet.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Response

from orra_di import (
    CompletionRequest,
    ConfigurationError,
    ContextLengthExceededError,
    FinishReason,
    InMemoryStore,
    Message,
    Namespace,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    Runtime,
    RuntimeConfig,
    StreamDone,
    TextDelta,
    ToolCall,
    ToolCallCompleted,
    ToolCallDelta,
    ToolCallStart,
    ToolCallStarted,
    ToolDefinition,
    ToolResult,
    Usage,
    VendorData,
    tool,
)
from orra_di.providers._http import retry_after_ms
from orra_di.providers.openai import (
    PLACEHOLDER_API_KEY,
    OpenAIProvider,
    token_parameter_for,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test-0123456789abcdef"
PATH = "/v1/chat/completions"
HI = CompletionRequest(messages=[Message.user("hi")])


# -- fixtures and wire-format helpers ---------------------------------------------


@pytest.fixture(scope="module")
def empty_trust_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("no-certificates"))


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch, empty_trust_store: str) -> None:
    """The SDK reads these; a developer's real key or proxy must not leak into a test.

    No test speaks TLS, so an empty trust store spares every client loading
    the system's CA bundle (most of this module's run time otherwise).
    """
    monkeypatch.setenv("SSL_CERT_DIR", empty_trust_store)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "OPENAI_ADMIN_KEY",
        "OPENAI_CUSTOM_HEADERS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver bound to 127.0.0.1; fails the test if a request found no handler."""
    yield httpserver_ipv4
    httpserver_ipv4.check_assertions()


def make(server: HTTPServer, **kwargs: Any) -> OpenAIProvider:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("max_retries", 0)
    return OpenAIProvider(base_url=server.url_for("/v1"), **kwargs)


def sent(server: HTTPServer) -> list[dict[str, Any]]:
    """The JSON bodies the SDK posted, in order."""
    return [json.loads(request.get_data()) for request, _ in server.log]


def completion(
    message: dict[str, Any],
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A chat.completion body as OpenAI returns it."""
    return {
        "id": "chatcmpl-AbC123",
        "object": "chat.completion",
        "created": 1730000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "refusal": None, "annotations": [], **message},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage
        or {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_50cad350e4",
    }


def text(content: str) -> dict[str, Any]:
    return completion({"content": content})


def calls(*items: tuple[str, str, str], content: str | None = None) -> dict[str, Any]:
    """An assistant turn asking for ``(id, name, arguments JSON text)`` calls."""
    tool_calls = [
        {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in items
    ]
    return completion({"content": content, "tool_calls": tool_calls}, "tool_calls")


def chunk(delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    """One chat.completion.chunk; ``delta=None`` is the final usage chunk (empty choices)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-S1",
        "object": "chat.completion.chunk",
        "created": 1730000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_50cad350e4",
        "choices": [],
        "usage": None,
    }
    if delta is None:
        body["usage"] = {
            "prompt_tokens": 80,
            "completion_tokens": 21,
            "total_tokens": 101,
            "prompt_tokens_details": {"cached_tokens": 64},
        }
    else:
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return body


def sse(*chunks: dict[str, Any], done: bool = True) -> str:
    """The body of a stream as OpenAI sends it: ``data: {json}`` events, then ``[DONE]``."""
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks]
    return "".join(events) + ("data: [DONE]\n\n" if done else "")


def error(status: int, message: str, type_: str, code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response(json.dumps(body), status=status, content_type="application/json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- the request ------------------------------------------------------------------

WEATHER = ToolDefinition(
    name="get_weather",
    description="Current weather for a city.",
    input_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


async def test_request_maps_every_message_kind_tool_and_option(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH, method="POST").respond_with_json(text("Done."))
    conversation = [
        Message.system("You are terse."),
        Message.user("Weather in Paris and Oslo?"),
        Message.assistant(
            "Checking.",
            [
                ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
                ToolCall(id="call_2", name="get_weather", arguments={"city": "Oslo"}),
            ],
        ),
        Message(
            role="user",
            content="Also, be brief.",
            tool_results=(
                ToolResult(call_id="call_1", content="18C, sunny"),
                ToolResult(call_id="call_2", content="city not found", is_error=True),
            ),
        ),
        Message.assistant("Paris is 18C."),
        Message.system("Answer in French."),
        Message.user("Merci"),
    ]
    request = CompletionRequest(
        messages=conversation, tools=[WEATHER], temperature=0.2, model="gpt-4o-mini"
    )
    async with make(httpserver) as llm:
        await llm.complete(request)

    (body,) = sent(httpserver)
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": "ERROR: city not found"},
            {"role": "user", "content": "Also, be brief."},
            {"role": "assistant", "content": "Paris is 18C."},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Merci"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER.input_schema,
                },
            }
        ],
        "temperature": 0.2,
        "max_tokens": 4096,
    }
    (request_seen, _) = httpserver.log[0]
    assert request_seen.headers["Authorization"] == f"Bearer {KEY}"
    assert request_seen.headers["Content-Type"] == "application/json"


async def test_defaults_omit_tools_and_temperature_and_send_null_content_for_bare_calls(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(PATH).respond_with_json(text("ok"))
    bare_call = Message.assistant("", [ToolCall(id="c", name="now", arguments=None)])
    answer = Message.tool_result([ToolResult(call_id="c", content="noon")])
    async with make(httpserver, model="llama3.2", max_tokens=256) as llm:
        await llm.complete(CompletionRequest(messages=[Message.user("time?"), bare_call, answer]))
    (body,) = sent(httpserver)
    assert body == {
        "model": "llama3.2",
        "max_tokens": 256,
        "messages": [
            {"role": "user", "content": "time?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "now", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "noon"},
        ],
    }


async def test_another_vendors_data_on_a_message_is_not_sent(httpserver: HTTPServer) -> None:
    """A session started on Claude and continued on OpenAI sends the neutral turn only."""
    httpserver.expect_request(PATH).respond_with_json(text("ok"))
    call = ToolCall(id="c", name="now", arguments={})
    thinking = {"type": "thinking", "thinking": "", "signature": "EqQB"}
    claude = VendorData(vendor="anthropic", data={"model": "claude-x", "content": [thinking]})
    answer = Message.tool_result([ToolResult(call_id="c", content="noon")])
    async with make(httpserver) as llm:
        for turn in (
            Message.assistant("", [call], vendor_data=[claude]),
            Message.assistant("", [call]),
        ):
            await llm.complete(CompletionRequest(messages=[Message.user("time?"), turn, answer]))
    with_data, without = sent(httpserver)
    assert with_data == without


@pytest.mark.parametrize(
    ("model", "setting", "request_limit", "field", "value"),
    [
        ("gpt-4o", "auto", None, "max_tokens", 4096),
        ("gpt-4.1-mini", "auto", 100, "max_tokens", 100),
        ("o1", "auto", None, "max_completion_tokens", 4096),
        ("o3-mini", "auto", 50, "max_completion_tokens", 50),
        ("o4-mini-2025-04-16", "auto", None, "max_completion_tokens", 4096),
        ("gpt-5", "auto", None, "max_completion_tokens", 4096),
        ("gpt-4o", "max_completion_tokens", None, "max_completion_tokens", 4096),
        ("o3", "max_tokens", None, "max_tokens", 4096),
    ],
)
async def test_token_limit_goes_out_under_the_field_the_model_accepts(
    httpserver: HTTPServer,
    model: str,
    setting: Any,
    request_limit: int | None,
    field: str,
    value: int,
) -> None:
    httpserver.expect_request(PATH).respond_with_json(text("ok"))
    request = CompletionRequest(messages=[Message.user("hi")], max_tokens=request_limit)
    async with make(httpserver, model=model, token_parameter=setting) as llm:
        await llm.complete(request)
    (body,) = sent(httpserver)
    other = {"max_tokens", "max_completion_tokens"} - {field}
    assert body[field] == value
    assert not other & body.keys()


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("gpt-4o", "max_tokens"),
        ("chatgpt-4o-latest", "max_tokens"),
        ("gpt-3.5-turbo", "max_tokens"),
        ("llama3.2:3b", "max_tokens"),
        ("qwen2.5-coder", "max_tokens"),
        ("o1-preview", "max_completion_tokens"),
        ("openai/gpt-5-mini", "max_completion_tokens"),
        ("gpt-5.1", "max_completion_tokens"),
    ],
)
def test_token_parameter_rule(model: str, field: str) -> None:
    assert token_parameter_for(model) == field


async def test_request_model_overrides_the_default_and_full_endpoint_urls_still_work(
    httpserver: HTTPServer,
) -> None:
    """orra's with_api_url took the full URL (§5.3/16); both forms reach the same endpoint."""
    httpserver.expect_request(PATH).respond_with_json(text("ok"))
    full = httpserver.url_for("/v1/chat/completions/")
    async with OpenAIProvider(KEY, base_url=full, model="default-model") as llm:
        await llm.complete(CompletionRequest(messages=[Message.user("x")], model="override"))
        await llm.complete(HI)
    assert [b["model"] for b in sent(httpserver)] == ["override", "default-model"]


# -- responses ----------------------------------------------------------------------


async def test_text_response_with_usage_and_cached_tokens(httpserver: HTTPServer) -> None:
    usage = {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920},
    }
    httpserver.expect_request(PATH).respond_with_json(
        completion({"content": "Hello!"}, "stop", usage)
    )
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    assert response.message == Message.assistant("Hello!")
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(
        input_tokens=2006, output_tokens=300, cache_read_input_tokens=1920
    )


async def test_one_tool_call(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        calls(("call_Xy1", "get_weather", '{"city":"Paris"}'))
    )
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    assert response.finish_reason is FinishReason.TOOL_USE
    assert response.message.content == ""
    assert response.message.tool_calls == (
        ToolCall(id="call_Xy1", name="get_weather", arguments={"city": "Paris"}),
    )


async def test_parallel_tool_calls_keep_their_order_and_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        calls(
            ("call_a", "get_weather", '{"city": "Paris"}'),
            ("call_b", "get_weather", '{"city": "Oslo"}'),
            ("call_c", "clock", ""),
            content="Let me check both.",
        )
    )
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    assert response.message.content == "Let me check both."
    assert [(c.id, c.arguments) for c in response.message.tool_calls] == [
        ("call_a", {"city": "Paris"}),
        ("call_b", {"city": "Oslo"}),
        ("call_c", {}),
    ]


async def test_invalid_json_arguments_are_kept_as_the_raw_string(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_json(
        calls(("call_bad", "get_weather", '{"city": "Par'))
    )
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    assert response.message.tool_calls[0].arguments == '{"city": "Par'


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("length", FinishReason.MAX_TOKENS),
        ("function_call", FinishReason.TOOL_USE),
        ("content_filter", "content_filter"),
        ("eos", "eos"),
    ],
)
async def test_finish_reasons(httpserver: HTTPServer, reason: str, expected: object) -> None:
    httpserver.expect_request(PATH).respond_with_json(completion({"content": "cut"}, reason))
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    assert response.finish_reason == expected


async def test_compatible_server_reply_without_type_or_id_or_usage(httpserver: HTTPServer) -> None:
    """Older Ollama and llama.cpp builds leave out fields OpenAI always sends."""
    body = {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"function": {"name": "clock", "arguments": "{}"}}],
                },
                "finish_reason": "tool_calls",
            }
        ]
    }
    httpserver.expect_request(PATH).respond_with_json(body)
    async with make(httpserver) as llm:
        response = await llm.complete(HI)
    (call,) = response.message.tool_calls
    assert call.name == "clock"
    assert call.id.startswith("call_")
    assert response.usage == Usage()


# -- streaming ------------------------------------------------------------------------


async def collect(llm: OpenAIProvider, request: CompletionRequest = HI) -> list[object]:
    return [event async for event in llm.stream(request)]


async def test_stream_text_with_usage_from_the_final_chunk(httpserver: HTTPServer) -> None:
    body = sse(
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo!"}),
        chunk({}, "stop"),
        chunk(None),
    )
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        events = await collect(llm)
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo!"),
        StreamDone(Usage(input_tokens=80, output_tokens=21, cache_read_input_tokens=64)),
    ]
    (body_sent,) = sent(httpserver)
    assert body_sent["stream"] is True
    assert body_sent["stream_options"] == {"include_usage": True}


def tool_call_stream() -> str:
    """Two parallel calls; after each call's first chunk only ``index`` identifies it."""

    def piece(index: int, arguments: str) -> dict[str, Any]:
        return chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def start(index: int, call_id: str, name: str) -> dict[str, Any]:
        call = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return chunk({"role": "assistant", "content": None, "tool_calls": [call]})

    return sse(
        start(0, "call_paris", "get_weather"),
        piece(0, '{"ci'),
        piece(0, 'ty": "Pa'),
        piece(0, 'ris"}'),
        start(1, "call_oslo", "get_weather"),
        piece(1, '{"city": '),
        piece(1, '"Oslo"}'),
        chunk({}, "tool_calls"),
        chunk(None),
    )


async def test_stream_tool_call_deltas_are_matched_by_index(httpserver: HTTPServer) -> None:
    body = tool_call_stream()
    # Chunked transfer in odd-sized pieces, so events straddle network reads.
    pieces = [body[i : i + 37].encode() for i in range(0, len(body), 37)]
    httpserver.expect_request(PATH).respond_with_response(
        Response(iter(pieces), content_type="text/event-stream")
    )
    async with make(httpserver) as llm:
        events = await collect(llm)
    assert events == [
        ToolCallStart("call_paris", "get_weather"),
        ToolCallDelta("call_paris", '{"ci'),
        ToolCallDelta("call_paris", 'ty": "Pa'),
        ToolCallDelta("call_paris", 'ris"}'),
        ToolCallStart("call_oslo", "get_weather"),
        ToolCallDelta("call_oslo", '{"city": '),
        ToolCallDelta("call_oslo", '"Oslo"}'),
        StreamDone(
            Usage(input_tokens=80, output_tokens=21, cache_read_input_tokens=64),
            FinishReason.TOOL_USE,
        ),
    ]


async def test_stream_new_id_under_a_reused_index_is_a_new_call(httpserver: HTTPServer) -> None:
    """Some compatible servers number every parallel call 0; the id tells them apart."""

    def whole(call_id: str, city: str) -> dict[str, Any]:
        arguments = json.dumps({"city": city})
        call = {"index": 0, "id": call_id, "function": {"name": "w", "arguments": arguments}}
        return chunk({"tool_calls": [call]})

    body = sse(whole("a", "Paris"), whole("b", "Oslo"), chunk({}, "tool_calls"))
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        events = await collect(llm)
    assert events[:4] == [
        ToolCallStart("a", "w"),
        ToolCallDelta("a", '{"city": "Paris"}'),
        ToolCallStart("b", "w"),
        ToolCallDelta("b", '{"city": "Oslo"}'),
    ]
    assert events[4] == StreamDone(Usage(), FinishReason.TOOL_USE)


async def test_stream_from_a_terse_compatible_server(httpserver: HTTPServer) -> None:
    """No usage, and a last chunk without a delta: still a complete answer."""
    body = sse(
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]},
        {"choices": [{"index": 0, "finish_reason": "stop"}]},
    )
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        assert await collect(llm) == [TextDelta("Hi"), StreamDone(Usage(), FinishReason.STOP)]


async def test_stream_event_that_is_not_json(httpserver: HTTPServer) -> None:
    body = sse(chunk({"content": "Hi"})).replace("data: [DONE]", "data: {oops")
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        with pytest.raises(ProviderError, match="not JSON"):
            await collect(llm)


async def test_stream_cut_before_the_finish_reason_is_an_error(httpserver: HTTPServer) -> None:
    body = sse(chunk({"content": "Half an ans"}), done=False)
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        with pytest.raises(ProviderUnavailableError, match="ended before"):
            await collect(llm)


async def test_stream_error_event_mid_stream(httpserver: HTTPServer) -> None:
    body = sse(
        chunk({"content": "Hi"}),
        {"error": {"message": "The server had an error", "type": "server_error", "code": None}},
    )
    httpserver.expect_request(PATH).respond_with_data(body, content_type="text/event-stream")
    async with make(httpserver) as llm:
        with pytest.raises(ProviderUnavailableError, match="The server had an error"):
            await collect(llm)


async def test_stream_http_error_is_mapped_before_any_event(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_response(
        error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
    )
    async with make(httpserver) as llm:
        with pytest.raises(ProviderAuthError):
            await collect(llm)


# -- errors and retries -----------------------------------------------------------------


async def test_401_is_an_auth_error_that_never_shows_the_key(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # A careless compatible server echoes the whole key back.
    httpserver.expect_request(PATH).respond_with_response(
        error(
            401, f"Incorrect API key provided: {KEY}.", "invalid_request_error", "invalid_api_key"
        )
    )
    async with make(httpserver, max_retries=2) as llm:
        with pytest.raises(ProviderAuthError) as caught:
            await llm.complete(HI)
    err = caught.value
    assert "HTTP 401 invalid_api_key" in str(err)
    assert KEY not in str(err)
    assert KEY not in repr(err)
    assert KEY not in err.message
    assert err.__cause__ is None
    assert "HTTP Request" in caplog.text or "Sending" in caplog.text  # the SDK did log
    assert KEY not in caplog.text
    assert len(httpserver.log) == 1  # the SDK does not retry a 401


async def test_429_waits_the_servers_retry_after_then_succeeds(httpserver: HTTPServer) -> None:
    limited = error(429, "Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded")
    limited.headers["retry-after-ms"] = "120"
    httpserver.expect_ordered_request(PATH).respond_with_response(limited)
    httpserver.expect_ordered_request(PATH).respond_with_json(text("after the wait"))
    async with make(httpserver, max_retries=2) as llm:
        started = time.perf_counter()
        response = await llm.complete(HI)
        waited = time.perf_counter() - started
    assert response.message.content == "after the wait"
    assert len(httpserver.log) == 2
    # The server's 120 ms, not the SDK's own first backoff (0.375 to 0.5 s).
    assert 0.12 <= waited < 0.375


async def test_429_after_the_retries_is_rate_limited_with_the_servers_hint(
    httpserver: HTTPServer,
) -> None:
    limited = error(429, "Rate limit reached for gpt-4o", "requests", "rate_limit_exceeded")
    limited.headers["retry-after-ms"] = "10"
    httpserver.expect_request(PATH).respond_with_response(limited)
    async with make(httpserver, max_retries=2) as llm:
        with pytest.raises(RateLimitedError) as caught:
            await llm.complete(HI)
    assert caught.value.retry_after_ms == 10
    assert "rate_limit_exceeded" in caught.value.message
    assert len(httpserver.log) == 3


async def test_429_retry_after_in_seconds(httpserver: HTTPServer) -> None:
    limited = error(429, "Rate limit reached", "requests", "rate_limit_exceeded")
    limited.headers["retry-after"] = "20"
    httpserver.expect_request(PATH).respond_with_response(limited)
    async with make(httpserver) as llm:
        with pytest.raises(RateLimitedError) as caught:
            await llm.complete(HI)
    assert caught.value.retry_after_ms == 20_000


def test_retry_after_forms() -> None:
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55_000 <= (retry_after_ms({"retry-after": in_a_minute}) or 0) <= 60_000
    assert retry_after_ms({"retry-after-ms": "250", "retry-after": "1"}) == 250
    assert retry_after_ms({"retry-after": "1.5"}) == 1500
    assert retry_after_ms({"retry-after": "soon"}) is None
    assert retry_after_ms({"retry-after": "inf"}) is None
    assert retry_after_ms({}) is None


@pytest.mark.parametrize("code", ["insufficient_quota", "credit_balance_exhausted"])
async def test_429_for_an_empty_account_is_not_a_rate_limit(
    httpserver: HTTPServer, code: str
) -> None:
    httpserver.expect_request(PATH).respond_with_response(
        error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            code,
        )
    )
    async with make(httpserver) as llm:
        with pytest.raises(ProviderError, match="quota exhausted") as caught:
            await llm.complete(HI)
    assert not isinstance(caught.value, RateLimitedError)


async def test_500_is_retried_by_the_sdk(httpserver: HTTPServer) -> None:
    failed = error(500, "The server had an error while processing your request.", "server_error")
    failed.headers["retry-after-ms"] = "10"
    httpserver.expect_ordered_request(PATH).respond_with_response(failed)
    httpserver.expect_ordered_request(PATH).respond_with_json(text("recovered"))
    async with make(httpserver, max_retries=1) as llm:
        assert (await llm.complete(HI)).message.content == "recovered"
    assert len(httpserver.log) == 2


async def test_5xx_after_the_retries_is_unavailable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_response(
        error(503, "Service temporarily unavailable", "server_error")
    )
    async with make(httpserver) as llm:
        with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
            await llm.complete(HI)


@pytest.mark.parametrize(
    "response",
    [
        # OpenAI
        error(
            400,
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130532 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        # vLLM: the wording only
        error(400, "This model's maximum context length is 4096 tokens.", "BadRequestError"),
        # llama.cpp: a 500 with its own type
        error(
            500,
            "the request exceeds the available context size, try increasing it",
            "exceed_context_size_error",
        ),
    ],
    ids=["openai", "vllm", "llama.cpp"],
)
async def test_context_overflow(httpserver: HTTPServer, response: Response) -> None:
    httpserver.expect_request(PATH).respond_with_response(response)
    async with make(httpserver) as llm:
        with pytest.raises(ContextLengthExceededError, match="context"):
            await llm.complete(HI)


async def test_the_crates_error_cases(httpserver: HTTPServer) -> None:
    """orra's ``error_parsing``: a bare ``{}`` 429, and a plain-text context overflow."""
    httpserver.expect_ordered_request(PATH).respond_with_data("{}", status=429)
    httpserver.expect_ordered_request(PATH).respond_with_data(
        "maximum context length exceeded", status=400
    )
    async with make(httpserver) as llm:
        with pytest.raises(RateLimitedError) as limited:
            await llm.complete(HI)
        with pytest.raises(ContextLengthExceededError):
            await llm.complete(HI)
    assert limited.value.retry_after_ms is None


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_other_client_errors_are_bad_requests(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(PATH).respond_with_response(
        error(status, "Invalid schema for function 'get_weather'", "invalid_request_error")
    )
    async with make(httpserver) as llm:
        with pytest.raises(ProviderBadRequestError, match=f"HTTP {status}.*Invalid schema"):
            await llm.complete(HI)


async def test_non_json_error_body_still_names_the_status(httpserver: HTTPServer) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"
    httpserver.expect_request(PATH).respond_with_data(page, status=502, content_type="text/html")
    async with make(httpserver) as llm:
        with pytest.raises(ProviderUnavailableError) as caught:
            await llm.complete(HI)
    assert caught.value.message == (
        "HTTP 502: <html><body><h1>502 Bad Gateway</h1> <hr>nginx</body></html>"
    )


async def test_empty_error_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request(PATH).respond_with_data("", status=400)
    async with make(httpserver) as llm:
        with pytest.raises(ProviderBadRequestError, match="HTTP 400"):
            await llm.complete(HI)


@pytest.mark.parametrize("body", ["<html>Open WebUI</html>", "not json at all"])
async def test_a_200_that_is_not_a_completion_points_at_base_url(
    httpserver: HTTPServer, body: str
) -> None:
    httpserver.expect_request(PATH).respond_with_data(body, content_type="application/json")
    async with make(httpserver) as llm:
        with pytest.raises(ProviderError, match="base_url"):
            await llm.complete(HI)


async def test_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never answers
        base_url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        async with OpenAIProvider(KEY, base_url=base_url, timeout=0.05, max_retries=0) as llm:
            with pytest.raises(ProviderTimeoutError):
                await llm.complete(HI)


async def test_connection_refused_is_unavailable() -> None:
    async with OpenAIProvider(
        KEY, base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0
    ) as llm:
        with pytest.raises(ProviderUnavailableError, match="connection failed"):
            await llm.complete(HI)


# -- configuration ---------------------------------------------------------------------------


def test_no_key_and_no_base_url_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIProvider()


async def test_key_from_the_environment_and_as_a_secret(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request(PATH).respond_with_json(text("ok"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OPENAI_BASE_URL", httpserver.url_for("/v1"))  # the SDK's own variable
    async with OpenAIProvider(max_retries=0) as from_env:
        await from_env.complete(HI)
    async with make(httpserver, api_key=SecretStr("sk-a-secret-str-key")) as secret:
        await secret.complete(HI)
        assert "sk-a-secret" not in repr(secret) + str(secret)
    assert [r.headers["Authorization"] for r, _ in httpserver.log] == [
        "Bearer sk-from-the-environment",
        "Bearer sk-a-secret-str-key",
    ]


async def test_repr_shows_model_and_base_url_only() -> None:
    base_url = "http://user:pw@127.0.0.1:9/v1"
    async with OpenAIProvider(KEY, model="gpt-4o-mini", base_url=base_url) as llm:
        shown = repr(llm)
        assert (
            shown
            == "OpenAIProvider(model='gpt-4o-mini', base_url='http://user:***@127.0.0.1:9/v1/')"
        )
        assert str(llm) == shown


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigurationError) as info:
        OpenAIProvider(KEY)
    # Both forms: the PyPI one does not install a clone's code.
    assert 'pip install "orra-di[openai]"' in str(info.value)
    assert 'pip install -e ".[openai]"' in str(info.value)


def test_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="token_parameter"):
        OpenAIProvider(KEY, token_parameter="max")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="either client"):
        OpenAIProvider(KEY, client=object())


async def test_a_client_passed_in_is_used_and_left_open(httpserver: HTTPServer) -> None:
    import openai

    httpserver.expect_request(PATH).respond_with_json(text("via your client"))
    client = openai.AsyncOpenAI(api_key=KEY, base_url=httpserver.url_for("/v1"), max_retries=0)
    try:
        async with OpenAIProvider(client=client, model="m") as llm:
            assert (await llm.complete(HI)).message.content == "via your client"
        assert not client.is_closed()
    finally:
        await client.close()


# -- end to end through the runtime ---------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return {"Paris": "18C, sunny"}.get(city, "unknown city")


def runtime(llm: OpenAIProvider) -> Runtime:
    return Runtime(llm, InMemoryStore(), tools=[get_weather], config=RuntimeConfig(max_tokens=500))


async def test_runtime_run_with_a_tool(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_json(
        calls(("call_1", "get_weather", '{"city":"Paris"}'))
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(text("It is 18C and sunny."))
    async with make(httpserver) as llm:
        result = await runtime(llm).run(Namespace("app", "u1"), "Weather in Paris?")
    assert result.final_message.content == "It is 18C and sunny."
    assert result.total_usage == Usage(input_tokens=38, output_tokens=20)
    first, second = sent(httpserver)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["max_tokens"] == 500
    assert second["messages"][-2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
    ]


async def test_runtime_answers_invalid_json_arguments_with_an_error_result(
    httpserver: HTTPServer,
) -> None:
    """Broken arguments become an 'invalid input' result the model can correct."""
    httpserver.expect_ordered_request(PATH).respond_with_json(
        calls(("call_1", "get_weather", '{"city": "Par'))
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(text("Sorry, retrying."))
    async with make(httpserver) as llm:
        result = await runtime(llm).run(Namespace("app", "u2"), "Weather in Paris?")
    (call_result,) = result.turns[0].tool_results
    assert call_result.is_error
    assert call_result.content.startswith("invalid input:")
    _, second = sent(httpserver)
    assistant, tool_message = second["messages"][-2:]
    # The model's own text goes back verbatim, and the tool message says it failed.
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"city": "Par'
    assert tool_message["content"].startswith("ERROR: invalid input:")


async def test_runtime_run_streaming_with_a_tool(httpserver: HTTPServer) -> None:
    def start_and_args() -> str:
        call = {
            "index": 0,
            "id": "call_s1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
        return sse(
            chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city"'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]}),
            chunk({}, "tool_calls"),
            chunk(None),
        )

    answer = sse(
        chunk({"content": "Sunny, "}), chunk({"content": "18C."}), chunk({}, "stop"), chunk(None)
    )
    httpserver.expect_ordered_request(PATH).respond_with_data(
        start_and_args(), content_type="text/event-stream"
    )
    httpserver.expect_ordered_request(PATH).respond_with_data(
        answer, content_type="text/event-stream"
    )
    async with (
        make(httpserver) as llm,
        runtime(llm).run_streaming(Namespace("app", "u3"), "Weather?") as events,
    ):
        seen = [event async for event in events]
    assert events.result is not None
    assert events.result.final_message.content == "Sunny, 18C."
    assert ToolCallStarted("call_s1", "get_weather") in seen
    completed = [e for e in seen if isinstance(e, ToolCallCompleted)]
    assert completed[0].result == ToolResult(call_id="call_s1", content="18C, sunny")
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Sunny, ", "18C."]
    assert events.result.total_usage == Usage(
        input_tokens=160, output_tokens=42, cache_read_input_tokens=128
    )
    _, second = sent(httpserver)
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_s1",
        "content": "18C, sunny",
    }


async def test_ollama_style_server_without_a_key(httpserver: HTTPServer) -> None:
    """``base_url="http://127.0.0.1:<port>/v1"`` and no key, as one runs a local model."""
    httpserver.expect_ordered_request(PATH).respond_with_json(
        calls(("call_o1", "get_weather", '{"city":"Paris"}'))
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(text("18C in Paris."))
    base_url = f"http://127.0.0.1:{httpserver.port}/v1"
    async with OpenAIProvider(base_url=base_url, model="llama3.2", max_retries=0) as llm:
        result = await runtime(llm).run(Namespace("local", "me"), "Weather in Paris?")
    assert result.final_message.content == "18C in Paris."
    assert {r.headers["Authorization"] for r, _ in httpserver.log} == {
        f"Bearer {PLACEHOLDER_API_KEY}"
    }
    assert [b["model"] for b in sent(httpserver)] == ["llama3.2", "llama3.2"]
