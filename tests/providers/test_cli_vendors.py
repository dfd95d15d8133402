"""The CLI on a real vendor adapter: settings select it, the container wraps it, and the
official SDK talks to a loopback server that speaks the vendor's wire format."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner, Result
from werkzeug import Request, Response

from orra_di.cli import app

KEY = "sk-test-cli-0123456789abcdef"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_LLM__MAX_RETRIES", "0")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))  # no TLS here; skip loading CA files
    monkeypatch.chdir(tmp_path)


def ask(*args: str) -> Result:
    return CliRunner().invoke(app, ["ask", "--json", *args])


def openai_server(httpserver: HTTPServer, seen: list[dict[str, Any]]) -> None:
    """Chat Completions: asks for ``calculate`` once, then answers with its result."""

    def handler(request: Request) -> Response:
        body = request.get_json()
        seen.append(body)
        tool_messages = [m for m in body["messages"] if m["role"] == "tool"]
        if tool_messages:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": f"It is {tool_messages[0]['content']}.",
            }
            finish = "stop"
        else:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "calculate", "arguments": '{"expression": "6*7"}'},
                    }
                ],
            }
            finish = "tool_calls"
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 5, "total_tokens": 55},
        }
        return Response(json.dumps(payload), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)


def test_a_base_url_alone_runs_the_cli_on_a_local_openai_compatible_server(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    openai_server(httpserver, seen)
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for("/v1"))
    monkeypatch.setenv("ORRA_LLM__MODEL", "llama3")
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    result = ask("what is 6*7?")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["answer"] == "It is 42."
    assert "offline" not in result.stderr
    assert [b["model"] for b in seen] == ["llama3", "llama3"]
    assert seen[0]["tools"][0]["function"]["name"] == "calculate"


def test_an_openai_key_from_the_environment_is_sent_and_never_printed(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    openai_server(httpserver, seen)
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__API_KEY", KEY)
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for("/v1"))
    monkeypatch.setenv("ORRA_LLM__MODEL", "gpt-4o-mini")  # another server is asked otherwise
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    result = ask("what is 6*7?")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["answer"] == "It is 42."
    config = CliRunner().invoke(app, ["config"])
    assert KEY not in config.stdout + config.stderr


def test_anthropic_through_the_cli_with_a_clear_error_on_a_bad_key(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/v1/messages", method="POST").respond_with_json(
        {
            "type": "error",
            "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        },
        status=401,
    )
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    monkeypatch.setenv("ORRA_LLM__API_KEY", KEY)
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for(""))
    result = ask("hello")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: authentication failed: HTTP 401")
    assert KEY not in result.stderr
