"""AnthropicProvider: the real SDK against a loopback server that speaks the Messages API.

Spec §2B.1 (orra's ClaudeProvider tests) and the fixes of §5.3/14. The SDK
talks real HTTP to pytest-httpserver on loopback; the bodies replayed are the
API's documented JSON and SSE shapes, and no test can reach the internet.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from anthropic import AsyncAnthropic
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di.errors import (
    ConfigurationError,
    ContextLengthExceededError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
)
from orra_di.message import Message, ToolCall, ToolResult, VendorData
from orra_di.namespace import Namespace
from orra_di.provider import (
    CompletionRequest,
    FinishReason,
    StreamDone,
    StreamEvent,
    StreamingProvider,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from orra_di.providers.anthropic import AnthropicProvider
from orra_di.runtime import Runtime, RuntimeConfig, ToolCallCompleted, ToolCallStarted
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.tool import ToolDefinition, tool

pytestmark = pytest.mark.anyio

KEY = "sk-ant-api03-test-key-never-printed"
OAUTH = "sk-ant-oat01-test-oauth-token"
PATH = "/v1/messages"
HELLO = CompletionRequest(messages=[Message.user("Hello")])
WEATHER = ToolDefinition(
    name="get_weather",
    description="Current weather for a city.",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}},
)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver's loopback server; fails the test on a request nothing expected."""
    yield httpserver
    httpserver.check_assertions()


Make = Callable[..., AnthropicProvider]


@pytest.fixture
async def make(server: HTTPServer) -> AsyncIterator[Make]:
    """Providers aimed at the loopback server, without retries unless asked; closed after."""
    made: list[AnthropicProvider] = []

    def build(api_key: str | SecretStr | None = KEY, **kwargs: Any) -> AnthropicProvider:
        kwargs.setdefault("base_url", server.url_for(""))
        kwargs.setdefault("max_retries", 0)
        provider = AnthropicProvider(api_key, **kwargs)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


# -- wire-format helpers ----------------------------------------------------------


def api_message(
    *content: dict[str, Any], stop_reason: str | None = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": list(content),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage or {"input_tokens": 12, "output_tokens": 8},
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": id, "name": name, "input": input}


def api_error(status: int, kind: str, message: str, **headers: str) -> Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}
    return Response(
        json.dumps(body),
        status=status,
        headers={"request-id": "req_1", **headers},
        content_type="application/json",
    )


def sse(*events: dict[str, Any]) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def message_start(input_tokens: int = 25, **usage: int) -> dict[str, Any]:
    started = api_message(stop_reason=None, input_tokens=input_tokens, output_tokens=1, **usage)
    return {"type": "message_start", "message": started}


def message_delta(stop_reason: str, **usage: int) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": usage,
    }


def chunked(body: str, size: int = 7) -> Callable[[Request], Response]:
    """A handler streaming ``body`` in tiny chunks, splitting events and line endings."""

    def handler(_: Request) -> Response:
        data = body.encode()
        pieces = (data[i : i + size] for i in range(0, len(data), size))
        return Response(pieces, content_type="text/event-stream")

    return handler


def sent(server: HTTPServer, index: int = -1) -> dict[str, Any]:
    body: dict[str, Any] = server.log[index][0].get_json()
    return body


async def collect(provider: StreamingProvider, request: CompletionRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


# A tool-use stream as the API sends it: a thinking block, pings, split tool input.
TOOL_STREAM = """\
event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-5-5","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2,"cache_read_input_tokens":100,"cache_creation_input_tokens":0},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"The user wants the weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":", let's check."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\":"}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":" \\"Paris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""  # noqa: E501


# -- the request sent ---------------------------------------------------------------


async def test_request_body_matches_the_messages_api(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH, method="POST").respond_with_json(api_message(text("ok")))
    request = CompletionRequest(
        messages=[
            Message.system("You are terse."),
            Message.system("Answer in French."),
            Message.user("Weather in Paris and Lyon?"),
            Message.assistant(
                "Checking.",
                [
                    ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"}),
                    ToolCall(id="toolu_2", name="get_weather", arguments=None),
                ],
            ),
            Message.tool_result(
                [
                    ToolResult(call_id="toolu_1", content="18°C"),
                    ToolResult(call_id="toolu_2", content="invalid input", is_error=True),
                ]
            ),
            Message.user("Also Nice?"),
            Message.assistant(""),
            Message.user("Please."),
        ],
        tools=[WEATHER],
    )

    await make().complete(request)

    assert sent(server) == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 4096,
        "system": "You are terse.\n\nAnswer in French.",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Lyon?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": "invalid input",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Also Nice?"},
                    {"type": "text", "text": "Please."},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
    }


async def test_request_overrides_model_and_max_tokens(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))
    request = CompletionRequest(
        messages=[Message.user("Hi")], model="claude-haiku-5-5", max_tokens=512
    )

    await make(model="claude-opus-5-5", max_tokens=2048).complete(request)

    assert sent(server) == {
        "model": "claude-haiku-5-5",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "Hi"}],
    }


async def test_provider_defaults_apply_without_overrides(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))

    await make(model="claude-opus-5-5", max_tokens=2048).complete(HELLO)

    assert sent(server)["model"] == "claude-opus-5-5"
    assert sent(server)["max_tokens"] == 2048


async def test_api_key_headers(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))

    await make(SecretStr(KEY)).complete(HELLO)

    headers = server.log[-1][0].headers
    # SDK 2.x sends keys as a bearer token; API version 2026-10-21 accepts that.
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert "x-api-key" not in headers
    assert headers["anthropic-version"] == "2026-10-21"
    assert headers["Content-Type"] == "application/json"
    assert "anthropic-beta" not in headers


async def test_oauth_token_goes_as_bearer_with_the_oauth_beta(
    server: HTTPServer, make: Make
) -> None:
    server.expect_request(PATH).respond_with_json(api_message(text("ok")))

    await make(OAUTH).complete(HELLO)
    await make(None, auth_token="gateway-token").complete(HELLO)

    oauth, gateway = (entry[0].headers for entry in server.log)
    assert oauth["Authorization"] == f"Bearer {OAUTH}"
    assert oauth["anthropic-beta"] == "oauth-2025-04-20"
    assert gateway["Authorization"] == "Bearer gateway-token"
    assert "anthropic-beta" not in gateway


async def test_temperature_is_dropped_for_api_2026_10_21(
    server: HTTPServer, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    server.expect_request(PATH).respond_with_json(api_message(text("ok")))
    request = CompletionRequest(messages=[Message.user("Hi")], temperature=0.5)
    provider = make()

    with caplog.at_level(logging.WARNING, logger="orra_di.providers.anthropic"):
        await provider.complete(request)
        await provider.complete(request)

    assert all("temperature" not in sent(server, i) for i in range(2))
    assert [r.getMessage() for r in caplog.records] == [
        "temperature 0.5 ignored: Anthropic API version 2026-10-21 removed it"
    ]


async def test_temperature_is_sent_to_a_client_pinned_to_2023_06_01(server: HTTPServer) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))
    client = AsyncAnthropic(
        api_key=KEY,
        base_url=server.url_for(""),
        default_headers={"anthropic-version": "2023-06-01"},
    )
    request = CompletionRequest(messages=[Message.user("Hi")], temperature=0.5)
    try:
        await AnthropicProvider(client=client).complete(request)
    finally:
        await client.close()

    assert sent(server)["temperature"] == 0.5
    assert server.log[-1][0].headers["anthropic-version"] == "2023-06-01"


# -- responses ----------------------------------------------------------------------


async def test_plain_text_response_with_cache_usage(server: HTTPServer, make: Make) -> None:
    body = api_message(
        text("Hello "),
        text("from Claude!"),
        input_tokens=12,
        output_tokens=8,
        cache_read_input_tokens=1024,
        cache_creation_input_tokens=256,
    )
    server.expect_oneshot_request(PATH).respond_with_json(body)

    response = await make().complete(HELLO)

    assert response.message == Message.assistant("Hello from Claude!")
    assert response.finish_reason is FinishReason.STOP
    assert response.usage == Usage(
        input_tokens=12 + 1024 + 256,  # ours counts the cached part too
        output_tokens=8,
        cache_read_input_tokens=1024,
        cache_creation_input_tokens=256,
    )


async def test_one_tool_call(server: HTTPServer, make: Make) -> None:
    body = api_message(
        text("Let me check."),
        tool_use("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"}),
        stop_reason="tool_use",
    )
    server.expect_oneshot_request(PATH).respond_with_json(body)

    response = await make().complete(HELLO)

    assert response.finish_reason is FinishReason.TOOL_USE
    assert response.message == Message.assistant(
        "Let me check.",
        [
            ToolCall(
                id="toolu_01A09q90qw90lq917835lq9", name="get_weather", arguments={"city": "Paris"}
            )
        ],
    )


async def test_parallel_tool_calls(server: HTTPServer, make: Make) -> None:
    body = api_message(
        tool_use("toolu_1", "get_weather", {"city": "Paris"}),
        tool_use("toolu_2", "get_time", {"zone": "Europe/Paris"}),
        stop_reason="tool_use",
    )
    server.expect_oneshot_request(PATH).respond_with_json(body)

    response = await make().complete(HELLO)

    assert response.message.content == ""
    assert [(c.id, c.name, c.arguments) for c in response.message.tool_calls] == [
        ("toolu_1", "get_weather", {"city": "Paris"}),
        ("toolu_2", "get_time", {"zone": "Europe/Paris"}),
    ]


async def test_thinking_server_tool_and_unknown_blocks_are_skipped(
    server: HTTPServer, make: Make
) -> None:
    body = api_message(
        {"type": "thinking", "thinking": "Search first.", "signature": "EqQBCgIYAhIM"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_01",
            "name": "web_search",
            "input": {"query": "paris weather"},
        },
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
        {"type": "a_block_type_from_the_future", "payload": {"x": 1}},
        text("It is sunny."),
    )
    server.expect_oneshot_request(PATH).respond_with_json(body)

    response = await make().complete(HELLO)

    assert response.message == Message.assistant("It is sunny.")


THINKING_TURN = api_message(
    {"type": "thinking", "thinking": "", "signature": "EqQBCgIYAhIM"},
    text("Checking both."),
    tool_use("toolu_1", "get_weather", {"city": "Paris"}),
    {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
    tool_use("toolu_2", "get_weather", {"city": "Lyon"}),
    stop_reason="tool_use",
)
QUESTION = Message.user("Weather in Paris and Lyon?")
RESULTS = Message.tool_result(
    [ToolResult(call_id="toolu_1", content="18°C"), ToolResult(call_id="toolu_2", content="17°C")]
)


async def test_thinking_goes_back_with_its_tool_calls_as_received(
    server: HTTPServer, make: Make
) -> None:
    server.expect_ordered_request(PATH).respond_with_json(THINKING_TURN)
    server.expect_ordered_request(PATH).respond_with_json(api_message(text("Both sunny.")))
    provider = make()

    turn = await provider.complete(CompletionRequest(messages=[QUESTION], tools=[WEATHER]))
    await provider.complete(
        CompletionRequest(messages=[QUESTION, turn.message, RESULTS], tools=[WEATHER])
    )

    assert turn.message.content == "Checking both."
    assert sent(server)["messages"][1] == {"role": "assistant", "content": THINKING_TURN["content"]}


@pytest.mark.parametrize("change", ["edited by a hook", "another model"])
async def test_a_changed_turn_is_rebuilt_without_thinking(
    server: HTTPServer, make: Make, change: str
) -> None:
    server.expect_ordered_request(PATH).respond_with_json(THINKING_TURN)
    server.expect_ordered_request(PATH).respond_with_json(api_message(text("Both sunny.")))
    provider = make()
    turn = await provider.complete(CompletionRequest(messages=[QUESTION], tools=[WEATHER]))
    if change == "edited by a hook":
        message, model = turn.message.model_copy(update={"content": "[redacted]"}), None
    else:
        message, model = turn.message, "claude-opus-5-5"

    await provider.complete(
        CompletionRequest(messages=[QUESTION, message, RESULTS], tools=[WEATHER], model=model)
    )

    sent_turn = sent(server)["messages"][1]["content"]
    assert [block["type"] for block in sent_turn] == ["text", "tool_use", "tool_use"]


def weather_turn_stream() -> str:
    """THINKING_TURN as the API streams it, block by block."""
    events: list[dict[str, Any]] = [message_start()]
    for index, block in enumerate(THINKING_TURN["content"]):
        if block["type"] == "tool_use":
            start, delta = (
                {**block, "input": {}},
                {
                    "type": "input_json_delta",
                    "partial_json": json.dumps(block["input"]),
                },
            )
        elif block["type"] == "text":
            start, delta = text(""), {"type": "text_delta", "text": block["text"]}
        elif block["type"] == "thinking":
            start = {"type": "thinking", "thinking": "", "signature": ""}
            delta = {"type": "signature_delta", "signature": block["signature"]}
        else:
            start, delta = block, None
        events.append({"type": "content_block_start", "index": index, "content_block": start})
        if delta is not None:
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    events += [message_delta("tool_use", output_tokens=40), {"type": "message_stop"}]
    return sse(*events)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_thinking_goes_back_after_a_restart_mid_tool_loop(
    server: HTTPServer, make: Make, tmp_path: Path, streaming: bool
) -> None:
    """The signed thinking blocks are stored with the turn, not kept in the adapter.

    The first process gets a tool-calling turn with thinking, runs the tools,
    and its next call fails; a fresh process (new store object, new adapter)
    continues the session and must send that turn back exactly as received,
    or the API answers 400.
    """
    if streaming:
        first = server.expect_ordered_request(PATH)
        first.respond_with_data(weather_turn_stream(), content_type="text/event-stream")
    else:
        server.expect_ordered_request(PATH).respond_with_json(THINKING_TURN)
    server.expect_ordered_request(PATH).respond_with_response(
        api_error(529, "overloaded_error", "Overloaded")
    )
    server.expect_ordered_request(PATH).respond_with_json(api_message(text("Both sunny.")))
    ns, db = Namespace("user", "42"), tmp_path / "sessions.db"
    store = SQLiteStore(db)
    runtime = Runtime(make(), store, tools=[get_weather])
    with pytest.raises(ProviderUnavailableError):
        if streaming:
            async with runtime.run_streaming(ns, QUESTION.content) as events:
                async for _ in events:
                    pass
        else:
            await runtime.run(ns, QUESTION.content)
    await store.aclose()

    restarted = SQLiteStore(db)
    try:
        resumed = await Runtime(make(), restarted, tools=[get_weather]).run(ns, "Thanks.")
    finally:
        await restarted.aclose()

    assert resumed.final_message.content == "Both sunny."
    assert sent(server)["messages"][1] == {"role": "assistant", "content": THINKING_TURN["content"]}


async def test_vendor_data_this_adapter_did_not_write_is_ignored(
    server: HTTPServer, make: Make
) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))
    calls = [ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})]
    odd = [
        VendorData(vendor="anthropic", data={"model": "claude-sonnet-5-5", "content": "x"}),
        VendorData(vendor="openai", data={"reasoning": "encrypted"}),
    ]
    turn = Message.assistant("Checking.", calls, vendor_data=odd)
    result = Message.tool_result([ToolResult(call_id="toolu_1", content="18°C")])

    await make().complete(CompletionRequest(messages=[QUESTION, turn, result]))

    assert sent(server)["messages"][1]["content"] == [
        text("Checking."),
        tool_use("toolu_1", "get_weather", {"city": "Paris"}),
    ]


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", FinishReason.STOP),
        ("stop_sequence", FinishReason.STOP),
        ("tool_use", FinishReason.TOOL_USE),
        ("max_tokens", FinishReason.MAX_TOKENS),
        ("refusal", "refusal"),
        ("pause_turn", "pause_turn"),
        (None, FinishReason.STOP),
    ],
)
async def test_stop_reasons(
    server: HTTPServer, make: Make, stop_reason: str | None, expected: FinishReason | str
) -> None:
    body = api_message(text("x"), stop_reason=stop_reason)
    server.expect_oneshot_request(PATH).respond_with_json(body)

    response = await make().complete(HELLO)

    assert response.finish_reason == expected
    assert type(response.finish_reason) is type(expected)


# -- streaming ----------------------------------------------------------------------


async def test_stream_text(server: HTTPServer, make: Make) -> None:
    body = sse(
        message_start(input_tokens=25),
        {"type": "content_block_start", "index": 0, "content_block": text("")},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " there!"},
        },
        {"type": "content_block_stop", "index": 0},
        message_delta("end_turn", output_tokens=15),
        {"type": "message_stop"},
    )
    server.expect_oneshot_request(PATH).respond_with_data(body, content_type="text/event-stream")

    events = await collect(make(), HELLO)

    assert events == [
        TextDelta("Hi"),
        TextDelta(" there!"),
        StreamDone(Usage(input_tokens=25, output_tokens=15), FinishReason.STOP),
    ]
    assert sent(server)["stream"] is True


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
async def test_stream_tool_call_in_small_chunks(
    server: HTTPServer, make: Make, newline: str
) -> None:
    server.expect_oneshot_request(PATH).respond_with_handler(
        chunked(TOOL_STREAM.replace("\n", newline))
    )

    events = await collect(make(), HELLO)

    call_id = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert events[:-1] == [
        TextDelta("Okay"),
        TextDelta(", let's check."),
        ToolCallStart(call_id, "get_weather"),
        ToolCallDelta(call_id, ""),
        ToolCallDelta(call_id, '{"city":'),
        ToolCallDelta(call_id, ' "Paris"}'),
    ]
    done = events[-1]
    assert isinstance(done, StreamDone)  # with the thinking block as vendor data
    assert done.usage == Usage(input_tokens=572, output_tokens=89, cache_read_input_tokens=100)
    assert done.finish_reason is FinishReason.TOOL_USE


async def test_stream_ignores_server_tools_and_unknown_events(
    server: HTTPServer, make: Make
) -> None:
    server_tool = {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}
    body = sse(
        message_start(input_tokens=10, cache_creation_input_tokens=5),
        {"type": "content_block_start", "index": 0, "content_block": server_tool},
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"query": "x"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "an_event_from_the_future", "detail": 1},
        {"type": "content_block_start", "index": 1, "content_block": text("")},
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Found."},
        },
        {"type": "content_block_stop", "index": 1},
        # message_delta counts are cumulative: input grew with the search results.
        message_delta("end_turn", input_tokens=900, output_tokens=30),
        {"type": "message_stop"},
    )
    server.expect_oneshot_request(PATH).respond_with_data(body, content_type="text/event-stream")

    events = await collect(make(), HELLO)

    assert events == [
        TextDelta("Found."),
        StreamDone(
            Usage(input_tokens=905, output_tokens=30, cache_creation_input_tokens=5),
            FinishReason.STOP,
        ),
    ]


async def test_stream_error_event_raises_mid_stream(server: HTTPServer, make: Make) -> None:
    body = sse(
        message_start(),
        {"type": "content_block_start", "index": 0, "content_block": text("")},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    )
    server.expect_oneshot_request(PATH).respond_with_data(body, content_type="text/event-stream")
    received: list[StreamEvent] = []

    with pytest.raises(ProviderUnavailableError) as caught:
        async for event in make().stream(HELLO):
            received.append(event)

    assert received == [TextDelta("Par")]
    assert caught.value.message == "stream error overloaded_error: Overloaded"


@pytest.mark.parametrize(
    "body",
    [
        sse(
            message_start(),
            {"type": "content_block_start", "index": 0, "content_block": text("")},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "P"},
            },
        ),
        "",
    ],
    ids=["cut", "empty"],
)
async def test_stream_cut_before_the_end_raises(server: HTTPServer, make: Make, body: str) -> None:
    server.expect_oneshot_request(PATH).respond_with_data(body, content_type="text/event-stream")

    with pytest.raises(ProviderUnavailableError, match="ended before the message was complete"):
        await collect(make(), HELLO)


async def test_stream_that_stalls_times_out(server: HTTPServer, make: Make) -> None:
    head = sse(
        message_start(),
        {"type": "content_block_start", "index": 0, "content_block": text("")},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Par"}},
    )

    def stalls(_: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield head.encode()
            time.sleep(0.3)

        return Response(body(), content_type="text/event-stream")

    server.expect_oneshot_request(PATH).respond_with_handler(stalls)
    received: list[StreamEvent] = []

    with pytest.raises(ProviderTimeoutError):
        async for event in make(timeout=0.1).stream(HELLO):
            received.append(event)

    assert received == [TextDelta("Par")]


async def test_stream_http_error_before_the_first_event(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_response(
        api_error(401, "authentication_error", "invalid x-api-key")
    )

    with pytest.raises(ProviderAuthError):
        await collect(make(), HELLO)


# -- errors and retries -------------------------------------------------------------


async def test_auth_error_never_shows_the_key(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_response(
        api_error(401, "authentication_error", "invalid x-api-key")
    )
    provider = make()

    with pytest.raises(ProviderAuthError) as caught:
        await provider.complete(HELLO)

    error = caught.value
    assert error.message == "HTTP 401 authentication_error: invalid x-api-key (request id req_1)"
    for shown in (str(error), repr(error), error.message, repr(provider), str(provider)):
        assert KEY not in shown
    assert repr(provider) == (
        f"AnthropicProvider(model='claude-sonnet-5-5', base_url={server.url_for('')!r})"
    )


async def test_rate_limit_is_retried_by_the_sdk(server: HTTPServer, make: Make) -> None:
    server.expect_ordered_request(PATH).respond_with_response(
        api_error(429, "rate_limit_error", "slow down", **{"retry-after-ms": "10"})
    )
    server.expect_ordered_request(PATH).respond_with_json(api_message(text("at last")))

    response = await make(max_retries=2).complete(HELLO)

    assert response.message.content == "at last"
    assert len(server.log) == 2
    assert server.log[1][0].headers["x-stainless-retry-count"] == "1"


@pytest.mark.parametrize(
    ("headers", "retry_after_ms"),
    [
        ({"retry-after-ms": "10"}, 10),
        ({"retry-after": "0.01"}, 10),
        ({}, None),
    ],
)
async def test_rate_limit_exhausted_carries_the_servers_wait(
    server: HTTPServer, make: Make, headers: dict[str, str], retry_after_ms: int | None
) -> None:
    server.expect_request(PATH).respond_with_response(
        api_error(
            429, "rate_limit_error", "Number of requests has exceeded your rate limit", **headers
        )
    )
    retries = 2 if headers else 0  # without a hint the SDK would back off for seconds

    with pytest.raises(RateLimitedError) as caught:
        await make(max_retries=retries).complete(HELLO)

    assert caught.value.retry_after_ms == retry_after_ms
    assert len(server.log) == retries + 1


async def test_server_error_then_success(server: HTTPServer, make: Make) -> None:
    server.expect_ordered_request(PATH).respond_with_response(
        api_error(500, "api_error", "Internal server error", **{"retry-after-ms": "1"})
    )
    server.expect_ordered_request(PATH).respond_with_json(api_message(text("recovered")))

    response = await make(max_retries=1).complete(HELLO)

    assert response.message.content == "recovered"


@pytest.mark.parametrize(
    ("status", "kind", "message", "error"),
    [
        (529, "overloaded_error", "Overloaded", ProviderUnavailableError),
        (500, "api_error", "Internal server error", ProviderUnavailableError),
        (504, "timeout_error", "Request timeout", ProviderTimeoutError),
        (403, "permission_error", "no access to this model", ProviderAuthError),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
            ContextLengthExceededError,
        ),
        (
            400,
            "invalid_request_error",
            "input length and `max_tokens` exceed context limit: 198000 + 4096 > 200000",
            ContextLengthExceededError,
        ),
        (413, "request_too_large", "Request exceeds the maximum size", ContextLengthExceededError),
        (400, "invalid_request_error", "max_tokens: Field required", ProviderBadRequestError),
        (404, "not_found_error", "model: claude-nope", ProviderBadRequestError),
        (422, "invalid_request_error", "Unprocessable", ProviderBadRequestError),
    ],
)
async def test_status_codes_map_onto_the_error_tree(
    server: HTTPServer,
    make: Make,
    status: int,
    kind: str,
    message: str,
    error: type[ProviderError],
) -> None:
    server.expect_oneshot_request(PATH).respond_with_response(api_error(status, kind, message))

    with pytest.raises(error) as caught:
        await make().complete(HELLO)

    assert type(caught.value) is error
    assert caught.value.message == f"HTTP {status} {kind}: {message} (request id req_1)"


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "message"),
    [
        (
            502,
            "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>",
            "text/html",
            ProviderUnavailableError,
            "HTTP 502: <html><body><h1>502 Bad Gateway</h1> <p>nginx</p></body></html>",
        ),
        (400, "", "text/plain", ProviderBadRequestError, "HTTP 400: (empty body)"),
        (
            400,
            '{"detail": "unknown field"}',
            "application/json",
            ProviderBadRequestError,
            'HTTP 400: {"detail": "unknown field"}',
        ),
    ],
    ids=["html", "empty", "other-json"],
)
async def test_error_body_not_in_the_documented_shape_reports_the_status(
    server: HTTPServer,
    make: Make,
    status: int,
    body: str,
    content_type: str,
    error: type[ProviderError],
    message: str,
) -> None:
    server.expect_oneshot_request(PATH).respond_with_data(
        body, status=status, content_type=content_type
    )

    with pytest.raises(error) as caught:
        await make().complete(HELLO)

    assert caught.value.message == message


async def test_success_status_with_a_non_message_body(server: HTTPServer, make: Make) -> None:
    server.expect_oneshot_request(PATH).respond_with_data(
        "<html>captive portal</html>", content_type="text/html"
    )
    server.expect_oneshot_request(PATH).respond_with_data(
        "{not json", content_type="application/json"
    )
    provider = make()

    with pytest.raises(ProviderUnavailableError, match="not a message: <html>captive portal"):
        await provider.complete(HELLO)
    with pytest.raises(ProviderUnavailableError, match="does not parse"):
        await provider.complete(HELLO)


async def test_timeout(server: HTTPServer, make: Make) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.3)
        return Response(json.dumps(api_message(text("late"))), content_type="application/json")

    server.expect_oneshot_request(PATH).respond_with_handler(slow)

    with pytest.raises(ProviderTimeoutError):
        await make(timeout=0.05).complete(HELLO)


async def test_connection_refused(make: Make) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ProviderUnavailableError, match="cannot reach Anthropic"):
        await make(base_url=f"http://127.0.0.1:{port}").complete(HELLO)


# -- configuration ------------------------------------------------------------------


async def test_credentials_from_the_environment(
    server: HTTPServer, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.expect_oneshot_request(PATH).respond_with_json(api_message(text("ok")))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)

    await make(None).complete(HELLO)

    assert server.log[-1][0].headers["Authorization"] == f"Bearer {KEY}"


def test_configuration_mistakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match="no Anthropic credentials"):
        AnthropicProvider()
    with pytest.raises(ConfigurationError, match="not both"):
        AnthropicProvider(KEY, auth_token="token")
    with pytest.raises(ConfigurationError, match="client or credentials"):
        AnthropicProvider(KEY, client=object())


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)

    with pytest.raises(ConfigurationError, match=r'pip install "orra-di\[anthropic\]"'):
        AnthropicProvider(KEY)


# -- end to end through the runtime -------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"{city}: 18°C, sunny"


async def test_runtime_run_with_a_tool(server: HTTPServer, make: Make) -> None:
    server.expect_ordered_request(PATH).respond_with_json(
        api_message(
            text("Let me look."),
            tool_use("toolu_1", "get_weather", {"city": "Paris"}),
            stop_reason="tool_use",
            input_tokens=50,
            output_tokens=20,
        )
    )
    server.expect_ordered_request(PATH).respond_with_json(
        api_message(text("Sunny, 18°C."), input_tokens=80, output_tokens=6)
    )
    store = InMemoryStore()
    runtime = Runtime(
        make(),
        store,
        tools=[get_weather],
        config=RuntimeConfig(system_prompt="You are terse."),
    )

    result = await runtime.run(Namespace("user", "42"), "Weather in Paris?")

    assert result.final_message.content == "Sunny, 18°C."
    assert result.total_usage == Usage(input_tokens=130, output_tokens=26)
    first, second = sent(server, 0), sent(server, 1)
    assert first["system"] == "You are terse."
    assert first["tools"][0]["name"] == "get_weather"
    assert second["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Paris: 18°C, sunny"}
            ],
        },
    ]
    session = await store.load(Namespace("user", "42"))
    assert session is not None
    assert len(session.messages) == 4


async def test_runtime_run_streaming_with_a_tool(server: HTTPServer, make: Make) -> None:
    server.expect_ordered_request(PATH).respond_with_data(
        TOOL_STREAM, content_type="text/event-stream"
    )
    server.expect_ordered_request(PATH).respond_with_data(
        sse(
            message_start(input_tokens=500),
            {"type": "content_block_start", "index": 0, "content_block": text("")},
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Sunny."},
            },
            {"type": "content_block_stop", "index": 0},
            message_delta("end_turn", output_tokens=4),
            {"type": "message_stop"},
        ),
        content_type="text/event-stream",
    )
    runtime = Runtime(make(), InMemoryStore(), tools=[get_weather])

    async with runtime.run_streaming(Namespace("user", "7"), "Weather in Paris?") as events:
        seen = [event async for event in events]

    text_seen = "".join(e.text for e in seen if isinstance(e, TextDelta))
    assert text_seen == "Okay, let's check.Sunny."
    assert ToolCallStarted("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather") in seen
    completed = [e.result for e in seen if isinstance(e, ToolCallCompleted)]
    assert completed == [
        ToolResult(call_id="toolu_01T1x1fJ34qAmk2tNTrN7Up6", content="Paris: 18°C, sunny")
    ]
    assert events.result is not None
    assert events.result.final_message.content == "Sunny."
    # The thinking block goes back with the tool call, as received.
    assert sent(server, 1)["messages"][1]["content"] == [
        {
            "type": "thinking",
            "thinking": "The user wants the weather.",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h",
        },
        {"type": "text", "text": "Okay, let's check."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
    ]
