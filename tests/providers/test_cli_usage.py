"""``orra-di ask --json`` reports the tokens the vendor billed, each in its own field.

The loopback server bills different amounts for input and output, so a swap
anywhere between the vendor's ``usage`` object and the printed JSON shows; a
server that bills nothing, or sends no usage, shows as zeros, not as a missing
field or ``null``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner
from werkzeug import Request, Response

from orra_di.cli import app


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_LLM__MAX_RETRIES", "0")
    monkeypatch.setenv("ORRA_LLM__MODEL", "local-model")
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)


def serve(httpserver: HTTPServer, usages: list[dict[str, int] | None]) -> None:
    """Chat Completions: a ``calculate`` call first, then the answer; ``usages[i]`` is
    what the i-th response bills (``None``: no usage object at all)."""
    calls = iter(usages)

    def handler(request: Request) -> Response:
        body = request.get_json()
        if any(m["role"] == "tool" for m in body["messages"]):
            message: dict[str, Any] = {"role": "assistant", "content": "It is 42."}
            finish = "stop"
        else:
            call = {"name": "calculate", "arguments": '{"expression": "6*7"}'}
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": call}],
            }
            finish = "tool_calls"
        payload: dict[str, Any] = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        }
        usage = next(calls)
        if usage is not None:
            payload["usage"] = {**usage, "total_tokens": sum(usage.values())}
        return Response(json.dumps(payload), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)


def ask_json(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for("/v1"))
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    result = CliRunner().invoke(app, ["ask", "--json", "what is 6*7?"])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    payload: dict[str, Any] = json.loads(result.stdout)
    assert payload["answer"] == "It is 42." and payload["turns"] == 2
    return payload


def test_usage_is_the_sum_of_what_each_call_billed_input_and_output_apart(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(
        httpserver,
        [
            {"prompt_tokens": 120, "completion_tokens": 7},
            {"prompt_tokens": 150, "completion_tokens": 11},
        ],
    )
    usage = ask_json(httpserver, monkeypatch)["usage"]
    assert usage == {"input_tokens": 270, "output_tokens": 18}


@pytest.mark.parametrize(
    "usages",
    [
        [{"prompt_tokens": 0, "completion_tokens": 0}] * 2,
        [None, None],
    ],
    ids=["billed-zero", "no-usage"],
)
def test_zero_usage_is_printed_as_zeros(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, usages: list[dict[str, int] | None]
) -> None:
    serve(httpserver, usages)
    usage = ask_json(httpserver, monkeypatch)["usage"]
    assert usage == {"input_tokens": 0, "output_tokens": 0}
    assert all(type(v) is int for v in usage.values())
