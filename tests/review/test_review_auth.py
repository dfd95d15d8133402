"""Bearer tokens are secrets too: a vendor or gateway that echoes the token it was sent
in an error body must not put it in the ProviderError a user sees (README: "the secret
appears in no error, log or repr"; the brief: secrets never appear in errors).
"""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from orra_di import CompletionRequest, Message, ProviderError
from orra_di.auth import StaticTokenProvider
from orra_di.providers.anthropic import AnthropicProvider
from orra_di.providers.openai import OpenAIProvider

pytestmark = pytest.mark.anyio

TOKEN = "eyJhbGciOiJSUzI1NiJ9.gateway-token-0123456789"
HI = CompletionRequest(messages=[Message.user("hi")], model="m-1")


def echoing_gateway(httpserver: HTTPServer, path: str, status: int) -> None:
    """A gateway that quotes the Authorization header it refused (some do)."""
    httpserver.expect_request(path).respond_with_json(
        {
            "error": {
                "type": "invalid_request_error",
                "message": f"token Bearer {TOKEN} is not valid for this route",
            }
        },
        status=status,
    )


@pytest.mark.parametrize("status", [400, 401, 403, 500])
async def test_openai_errors_do_not_repeat_the_bearer_token(
    httpserver: HTTPServer, status: int
) -> None:
    echoing_gateway(httpserver, "/v1/chat/completions", status)
    llm = OpenAIProvider(
        base_url=httpserver.url_for("/v1"),
        token_provider=StaticTokenProvider(TOKEN),
        max_retries=0,
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await llm.complete(HI)
    finally:
        await llm.aclose()
    assert "is not valid for this route" in str(caught.value)  # the error still says why
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


@pytest.mark.parametrize("status", [400, 401, 403, 500])
async def test_anthropic_errors_do_not_repeat_the_bearer_token(
    httpserver: HTTPServer, status: int
) -> None:
    echoing_gateway(httpserver, "/v1/messages", status)
    llm = AnthropicProvider(
        base_url=httpserver.url_for(""),
        token_provider=StaticTokenProvider(TOKEN),
        max_retries=0,
    )
    try:
        with pytest.raises(ProviderError) as caught:
            await llm.complete(HI)
    finally:
        await llm.aclose()
    assert "is not valid for this route" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)
