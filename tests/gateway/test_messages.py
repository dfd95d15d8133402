"""orra's ``channels::gateway`` tests, as behaviour of the wire types and the key check."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from orra_di.gateway.auth import KeyRing, hash_api_key
from orra_di.gateway.messages import ChatRequest, ChatResponse, ChatUsage, ErrorResponse, WsMessage
from orra_di.gateway.settings import ApiKeySettings, GatewaySettings


def test_default_gateway_config_is_safe() -> None:
    settings = GatewaySettings()  # orra: 0.0.0.0, no key, CORS "*"; here the safe side
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.api_keys == [] and settings.cors_origins == []
    assert settings.max_body_bytes == 1_048_576


def test_chat_request_deserialization() -> None:
    request = ChatRequest.model_validate_json('{"message": "hi", "namespace": "user-123"}')
    assert request.message == "hi" and request.namespace == "user-123"
    minimal = ChatRequest.model_validate_json('{"message": "hi"}')
    assert minimal.namespace is None and minimal.agent is None
    with pytest.raises(ValidationError):
        ChatRequest.model_validate_json('{"namespace": "x"}')


def test_chat_response_and_error_serialization() -> None:
    response = ChatResponse(
        message="hello", namespace="acme:a",
        usage=ChatUsage(input_tokens=3, output_tokens=2, total_tokens=5),
    )  # fmt: skip
    data = json.loads(response.model_dump_json())
    assert data["usage"] == {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    error = ErrorResponse(error="bad", code="bad_request")
    assert json.loads(error.model_dump_json()) == {"error": "bad", "code": "bad_request"}


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"type": "chat", "message": "hi"}, "chat"),
        ({"type": "text_delta", "content": "he"}, "text_delta"),
        ({"type": "tool_approval_request", "call_id": "c", "tool_name": "t",
          "arguments": {"a": 1}}, "tool_approval_request"),
        ({"type": "tool_approval_response", "call_id": "c", "approved": True},
         "tool_approval_response"),
        ({"type": "ping"}, "ping"),
        ({"type": "pong"}, "pong"),
        ({"type": "error", "error": "boom"}, "error"),
    ],
)  # fmt: skip
def test_ws_messages_are_tagged_by_type_and_round_trip(
    message: dict[str, object], kind: str
) -> None:
    parsed = WsMessage.validate_python(message)
    assert parsed.type == kind
    again = WsMessage.validate_json(WsMessage.dump_json(parsed))
    assert again == parsed
    assert f'"type":"{kind}"' in WsMessage.dump_json(parsed).decode()


def test_ws_response_roundtrip_with_agent() -> None:
    text = json.dumps({"type": "response", "message": "hi", "namespace": "n",
                       "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
                       "agent": "Atlas"})  # fmt: skip
    parsed = WsMessage.validate_json(text)
    assert parsed.agent == "Atlas" and parsed.usage.total_tokens == 2
    with pytest.raises(ValidationError):
        WsMessage.validate_python({"type": "launch"})


def test_authenticate_with_and_without_keys() -> None:
    assert KeyRing([]).authenticate(None) is not None  # no key required
    ring = KeyRing([ApiKeySettings(name="a", digest=hash_api_key("secret"), tenant=None)])
    assert ring.authenticate("secret") is not None
    assert ring.authenticate("wrong") is None and ring.authenticate(None) is None


def test_new_key_prints_the_key_once_and_a_settings_entry_with_its_digest() -> None:
    from typer.testing import CliRunner

    from orra_di.cli import app
    from orra_di.settings import load_settings

    result = CliRunner().invoke(app, ["gateway", "new-key", "alice", "--tenant", "acme"])
    assert result.exit_code == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("orra_") and key not in result.stderr
    entry = json.loads(result.stderr.split("ORRA_GATEWAY__API_KEYS='")[1].split("'")[0])
    assert entry == [{"name": "alice", "digest": hash_api_key(key), "tenant": "acme"}]
    settings = load_settings(gateway={"api_keys": entry}).gateway
    caller = KeyRing(settings.api_keys).authenticate(key)
    assert caller is not None and caller.tenant == "acme"
    bad = CliRunner().invoke(app, ["gateway", "new-key", "x", "--tenant", "a::b"])
    assert bad.exit_code == 1 and "error:" in bad.stderr
