"""Edge cases of settings, the CLI and the vendor adapters found by review: keys and URL
passwords never shown, a bad base_url is a readable error, retries use every attempt."""

from __future__ import annotations

import json
import os
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Response

from orra_di.cli import app
from orra_di.errors import ProviderAuthError, ProviderUnavailableError
from orra_di.message import Message
from orra_di.provider import CompletionRequest, CompletionResponse, StreamEvent, Usage
from orra_di.providers.resilience import RetryingProvider
from orra_di.settings import load_settings

ANTHROPIC_KEY = "sk-ant-api03-review-key-never-printed"
PASSWORD = "s3cr3t-gateway-pw"
HELLO = CompletionRequest(messages=[Message.user("Hello")])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORRA_* or vendor variable from the developer's shell; the store in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith(("ORRA_", "ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # no TLS here; skip loading CA files
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver
    httpserver.check_assertions()


# -- 1. Anthropic: an error body that echoes the credential ------------------------------


@pytest.mark.anyio
async def test_anthropic_error_echoing_the_key_is_redacted_in_message_and_chain(
    server: HTTPServer,
) -> None:
    """Gateways (and some proxies) echo the rejected key; the OpenAI adapter redacts it,
    the Anthropic one does not, and it chains the SDK error (whose text holds the body)."""
    from orra_di.providers.anthropic import AnthropicProvider

    body = {
        "type": "error",
        "error": {"type": "authentication_error", "message": f"invalid x-api-key {ANTHROPIC_KEY}"},
    }
    server.expect_request("/v1/messages").respond_with_response(
        Response(json.dumps(body), status=401, content_type="application/json")
    )
    provider = AnthropicProvider(ANTHROPIC_KEY, base_url=server.url_for(""), max_retries=0)
    try:
        with pytest.raises(ProviderAuthError) as caught:
            await provider.complete(HELLO)
    finally:
        await provider.aclose()

    shown = "".join(traceback.format_exception(caught.value))
    assert ANTHROPIC_KEY not in str(caught.value)
    assert ANTHROPIC_KEY not in caught.value.message
    assert ANTHROPIC_KEY not in shown


# -- 2. Anthropic: repr shows a base_url password ----------------------------------------


def test_anthropic_repr_masks_a_password_in_base_url() -> None:
    from orra_di.providers.anthropic import AnthropicProvider

    provider = AnthropicProvider(
        ANTHROPIC_KEY, base_url=f"http://user:{PASSWORD}@127.0.0.1:9/", max_retries=0
    )
    assert PASSWORD not in repr(provider)


# -- 3. Settings: llm.base_url password in repr and dump ---------------------------------


def test_settings_repr_and_dump_mask_a_password_in_llm_base_url() -> None:
    settings = load_settings(llm={"base_url": f"http://user:{PASSWORD}@gateway.example/v1"})
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in repr(settings.llm)
    assert PASSWORD not in settings.model_dump_json()


# -- 4. CLI: an unparsable ORRA_LLM__BASE_URL is a traceback ------------------------------


@pytest.mark.parametrize("base_url", ["http://localhost:abc/v1", "http://[::1/v1"])
def test_cli_bad_base_url_is_a_readable_error_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    monkeypatch.setenv("ORRA_LLM__BASE_URL", base_url)
    result = CliRunner().invoke(app, ["ask", "hi"])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: invalid configuration:"
    assert lines[1].startswith("  - llm.base_url (ORRA_LLM__BASE_URL) = ")
    assert "accepted: an http:// or https:// URL" in lines[1]


# -- 5. RetryingProvider: computed backoff above max_wait gives up early -----------------


class _FailsThenAnswers:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        self.calls += 1
        if self.calls <= self.failures:
            raise ProviderUnavailableError("HTTP 503")
        return CompletionResponse(message=Message.assistant("ok"), usage=Usage())

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        raise NotImplementedError
        yield  # pragma: no cover


@pytest.mark.anyio
async def test_retrying_provider_makes_every_configured_retry_with_backoff_capped() -> None:
    """llm.max_retries=3 and max_retry_wait bound the *server's* retry-after; our own
    exponential backoff passing max_wait should be capped, not end the retries early."""
    llm = _FailsThenAnswers(failures=3)
    retrying = RetryingProvider(llm, max_retries=3, base_delay=0.01, max_wait=0.015)

    response = await retrying.complete(HELLO)

    assert response.message.content == "ok"
    assert llm.calls == 4


def test_a_key_beside_a_base_url_is_that_servers_key() -> None:
    from orra_di.settings import load_settings

    llm = load_settings(
        llm={"base_url": "http://127.0.0.1:8000/v1", "api_key": "vllm-key-1234"}
    ).llm
    assert llm.resolved_kind == "openai"
    assert llm.resolved_api_key is not None
    assert llm.resolved_api_key.get_secret_value() == "vllm-key-1234"
