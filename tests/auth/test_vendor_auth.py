"""Bug 39: the token providers are used. The real Anthropic and OpenAI SDKs, built by our
adapters (and by the container from settings), send the provider's bearer token to a
loopback vendor fake, renew it when it expires, and surface a token failure as AuthError."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from orra_di import AuthError, CompletionRequest, ConfigurationError, Message, Namespace
from orra_di.auth import ClientCredentialsProvider, StaticTokenProvider
from orra_di.containers import Container, lifespan
from orra_di.providers.anthropic import AnthropicProvider
from orra_di.providers.openai import OpenAIProvider
from orra_di.settings import describe, load_settings

from .conftest import CLIENT_ID, CLIENT_SECRET, TOKEN_PATH, Clock, TokenEndpoint

pytestmark = pytest.mark.anyio

HI = CompletionRequest(messages=[Message.user("hi")])
OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


def chat_completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1730000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def claude_message(content: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": content}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }


def vendor_headers(server: HTTPServer, path: str) -> list[dict[str, str]]:
    return [dict(request.headers) for request, _ in server.log if request.path == path]


def openai_with(server: HTTPServer, tokens: Any) -> OpenAIProvider:
    return OpenAIProvider(base_url=server.url_for("/v1"), max_retries=0, token_provider=tokens)


def anthropic_with(server: HTTPServer, tokens: Any) -> AnthropicProvider:
    return AnthropicProvider(base_url=server.url_for(""), max_retries=0, token_provider=tokens)


async def test_openai_requests_carry_the_token_and_a_renewed_one_after_expiry(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    server = endpoint.server
    server.expect_request(OPENAI_PATH).respond_with_json(chat_completion("ok"))
    tokens = ClientCredentialsProvider(endpoint.url, CLIENT_ID, CLIENT_SECRET, clock=clock)
    async with openai_with(server, tokens) as llm:
        assert (await llm.complete(HI)).message.content == "ok"
        await llm.complete(HI)
        clock.now += 3600  # expired
        await llm.complete(HI)
    sent = [h["Authorization"] for h in vendor_headers(server, OPENAI_PATH)]
    assert sent == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert endpoint.issued() == 2


async def test_anthropic_requests_carry_the_token_and_no_other_credential(
    endpoint: TokenEndpoint, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-key-must-not-be-sent")
    server = endpoint.server
    server.expect_request(ANTHROPIC_PATH).respond_with_json(claude_message("ok"))
    tokens = ClientCredentialsProvider(endpoint.url, CLIENT_ID, CLIENT_SECRET, clock=clock)
    llm = anthropic_with(server, tokens)
    try:
        assert (await llm.complete(HI)).message.content == "ok"
        clock.now += 3600
        await llm.complete(HI)
    finally:
        await llm.aclose()
    headers = vendor_headers(server, ANTHROPIC_PATH)
    assert [h["Authorization"] for h in headers] == ["Bearer token-1", "Bearer token-2"]
    assert all("X-Api-Key" not in h for h in headers)


async def test_streaming_requests_carry_the_token(endpoint: TokenEndpoint, clock: Clock) -> None:
    server = endpoint.server
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "hey"}, "finish_reason": "stop"}],
    }
    server.expect_request(OPENAI_PATH).respond_with_data(
        f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n", content_type="text/event-stream"
    )
    tokens = ClientCredentialsProvider(endpoint.url, CLIENT_ID, CLIENT_SECRET, clock=clock)
    async with openai_with(server, tokens) as llm:
        events = [event async for event in llm.stream(HI)]
    assert events
    assert vendor_headers(server, OPENAI_PATH)[0]["Authorization"] == "Bearer token-1"


async def test_a_401_from_the_vendor_renews_the_token_and_retries_once(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    server = endpoint.server
    answers = [
        Response(
            json.dumps({"error": {"message": "token revoked", "type": "invalid_request_error"}}),
            status=401,
            content_type="application/json",
        ),
        Response(json.dumps(chat_completion("ok")), content_type="application/json"),
    ]
    server.expect_request(OPENAI_PATH).respond_with_handler(lambda _: answers.pop(0))
    tokens = ClientCredentialsProvider(endpoint.url, CLIENT_ID, CLIENT_SECRET, clock=clock)
    async with openai_with(server, tokens) as llm:
        assert (await llm.complete(HI)).message.content == "ok"
    sent = [h["Authorization"] for h in vendor_headers(server, OPENAI_PATH)]
    assert sent == ["Bearer token-1", "Bearer token-2"]


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_a_failing_token_endpoint_is_an_auth_error_and_nothing_reaches_the_vendor(
    httpserver: HTTPServer, vendor: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(TOKEN_PATH).respond_with_data("upstream down", status=500)
    tokens = ClientCredentialsProvider(httpserver.url_for(TOKEN_PATH), CLIENT_ID, CLIENT_SECRET)
    make = openai_with if vendor == "openai" else anthropic_with
    llm = make(httpserver, tokens)
    try:
        with pytest.raises(AuthError) as caught:
            await llm.complete(HI)
    finally:
        await llm.aclose()
    assert f"token endpoint 127.0.0.1:{httpserver.port}" in str(caught.value)
    assert caught.value.status == 500
    assert [r.path for r, _ in httpserver.log] == [TOKEN_PATH]
    assert CLIENT_SECRET not in caplog.text


async def test_a_static_token_provider_is_sent_as_is(httpserver: HTTPServer) -> None:
    httpserver.expect_request(OPENAI_PATH).respond_with_json(chat_completion("ok"))
    async with openai_with(httpserver, StaticTokenProvider("gw-key-0123456789")) as llm:
        await llm.complete(HI)
    assert vendor_headers(httpserver, OPENAI_PATH)[0]["Authorization"] == "Bearer gw-key-0123456789"


def test_a_key_and_a_token_provider_together_are_refused() -> None:
    tokens = StaticTokenProvider("gw-key-0123456789")
    with pytest.raises(ConfigurationError, match="not both"):
        OpenAIProvider("sk-1", base_url="http://127.0.0.1:9/v1", token_provider=tokens)
    with pytest.raises(ConfigurationError, match="not both"):
        AnthropicProvider("sk-ant-1", token_provider=tokens)


# -- from settings, through the container -------------------------------------------


def auth_env(monkeypatch: pytest.MonkeyPatch, endpoint: TokenEndpoint, kind: str) -> None:
    base = endpoint.server.url_for("/v1" if kind == "openai" else "")
    for name, value in {
        "ORRA_LLM__KIND": kind,
        "ORRA_LLM__BASE_URL": base,
        "ORRA_LLM__MODEL": "gpt-4o" if kind == "openai" else "claude-sonnet-4-5",
        "ORRA_LLM__MAX_RETRIES": "0",
        "ORRA_LLM__AUTH__KIND": "client_credentials",
        "ORRA_LLM__AUTH__TOKEN_URL": endpoint.url,
        "ORRA_LLM__AUTH__CLIENT_ID": CLIENT_ID,
        "ORRA_LLM__AUTH__CLIENT_SECRET": CLIENT_SECRET,
        "ORRA_LLM__AUTH__SCOPE": "llm.invoke",
        "ORRA_STORE__URL": "memory://",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("kind", "path", "reply"),
    [
        ("openai", OPENAI_PATH, chat_completion("from the gateway")),
        ("anthropic", ANTHROPIC_PATH, claude_message("from the gateway")),
    ],
)
async def test_the_container_wires_llm_auth_from_the_environment(
    endpoint: TokenEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
    path: str,
    reply: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    auth_env(monkeypatch, endpoint, kind)
    endpoint.server.expect_request(path).respond_with_json(reply)
    container = Container()
    async with lifespan(container):
        result = await container.runtimes()["atlas"].run(Namespace("t", "auth"), "hi")
    assert result.final_message.content == "from the gateway"
    assert vendor_headers(endpoint.server, path)[0]["Authorization"] == "Bearer token-1"
    assert endpoint.forms[0]["scope"] == "llm.invoke"
    settings = container.settings()
    shown = " ".join(value for _, value, _ in describe(settings))
    assert CLIENT_SECRET not in repr(settings) + shown + caplog.text
    assert "token-1" not in caplog.text


def test_llm_auth_settings_are_checked_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "client_credentials")
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", CLIENT_SECRET)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "llm.auth (ORRA_LLM__AUTH)" in message
    assert "also needs token_url, client_id" in message
    assert CLIENT_SECRET not in message

    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN_URL", "https://login.example.com/token")
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-also-a-key-0123")
    with pytest.raises(ConfigurationError, match=r"llm\.api_key or llm\.auth, not both"):
        load_settings()

    monkeypatch.delenv("ORRA_LLM__API_KEY")
    monkeypatch.delenv("ORRA_LLM__KIND")
    with pytest.raises(ConfigurationError, match=r"llm\.auth needs llm\.kind"):
        load_settings()
