"""The OpenAI-compatible endpoint's mapping and errors, many concurrent streams, API keys."""

from __future__ import annotations

import anyio
import pytest

from orra_di.gateway.auth import KeyRing, hash_api_key, is_loopback, new_api_key
from orra_di.gateway.settings import ApiKeySettings, GatewaySettings
from orra_di.testing import ScriptedProvider

from .helpers import ALICE_KEY, BOB_KEY, auth, client_for, echo, make_container, sse_events

pytestmark = pytest.mark.anyio


async def test_completions_map_the_session_under_the_tenant_and_answer_in_openai_shape() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "SCRIBE", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "parts"}]}]},
            headers={**auth(BOB_KEY), "X-Orra-Session": "web:1"},
        )  # fmt: skip
        assert response.status_code == 200
        body = response.json()
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: parts"}
        assert body["model"] == "Scribe"
        assert response.headers["x-orra-session"] == "globex:web:1"
        assert [ns.key for ns in await container.store().list()] == ["globex:web:1"]
        fresh = await client.post(
            "/v1/chat/completions",
            json={"model": "atlas", "messages": [{"role": "user", "content": "x"}]},
            headers=auth(BOB_KEY),
        )
        assert fresh.headers["x-orra-session"].startswith("globex:")
        streamed = await client.post(
            "/v1/chat/completions",
            json={"model": "atlas", "stream": True, "user": "web:1",
                  "messages": [{"role": "user", "content": "again"}]},
            headers=auth(BOB_KEY),
        )  # fmt: skip
        chunks = [data for _, data in sse_events(streamed.text)]
        assert chunks[-1] == "[DONE]"
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
        assert text == "echo: again"
        assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


async def test_a_streamed_answer_keeps_the_turns_apart() -> None:
    """What the model wrote before a tool call streams too, a blank line before the next
    turn's text (not "addingthe sum is 5"); the non-streamed answer is the final turn."""
    from orra_di.testing import call, reply, tool_calls

    script = [tool_calls(call("calculate", {"expression": "2+3"}), text="adding"),
              reply("the sum is 5")]  # fmt: skip
    container = make_container(ScriptedProvider(script * 2))  # calculate is built in
    async with client_for(container) as client:
        body = {"model": "atlas", "user": "sums", "messages": [{"role": "user", "content": "2+3"}]}
        streamed = await client.post(
            "/v1/chat/completions", json={**body, "stream": True}, headers=auth(BOB_KEY)
        )
        chunks = [data for _, data in sse_events(streamed.text)][:-1]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert text == "adding\n\nthe sum is 5"
        plain = await client.post("/v1/chat/completions", json=body, headers=auth(BOB_KEY))
        assert plain.json()["choices"][0]["message"]["content"] == "the sum is 5"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"model": "atlas", "messages": []}, {}, 400, "bad_request"),
        ({"messages": [{"role": "user", "content": "x"}]}, {}, 400, "bad_request"),
        ({"model": "atlas", "messages": [{"role": "system", "content": "x"}]}, {}, 400,
         "bad_request"),
        ({"model": "ghost", "messages": [{"role": "user", "content": "x"}]}, {}, 404,
         "unknown_agent"),
        ({"model": "atlas", "user": "a::b", "messages": [{"role": "user", "content": "x"}]},
         {}, 400, "bad_request"),
        ({"model": "atlas", "messages": [{"role": "user", "content": "x"}]},
         {"Authorization": "Bearer nope"}, 401, "unauthorized"),
    ],
)  # fmt: skip
async def test_completions_errors_come_in_openai_shape_and_store_nothing(
    body: dict[str, object], headers: dict[str, str], status: int, code: str
) -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat/completions", json=body, headers={**auth(ALICE_KEY), **headers}
        )
        assert response.status_code == status
        error = response.json()["error"]
        assert error["code"] == code and error["message"]
        assert await container.store().list() == []


async def test_a_raw_utf8_session_header_is_refused_with_how_to_send_it() -> None:
    """Header bytes are read as Latin-1: raw UTF-8 would name another session (mojibake,
    ``acme:Ã\x85\x81ukasz``); the documented form is percent-encoded UTF-8."""
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        body = {"model": "atlas", "messages": [{"role": "user", "content": "x"}]}
        raw = await client.post(
            "/v1/chat/completions",
            json=body,
            headers={**auth(ALICE_KEY), "X-Orra-Session": "Łukasz".encode()},
        )
        assert raw.status_code == 400
        assert "percent-encode" in raw.json()["error"]["message"]
        assert await container.store().list() == []
        encoded = await client.post(
            "/v1/chat/completions",
            json=body,
            headers={**auth(ALICE_KEY), "X-Orra-Session": "%C5%81ukasz"},
        )
        assert encoded.status_code == 200
        assert [ns.key for ns in await container.store().list()] == ["acme:Łukasz"]


async def test_200_concurrent_streams_on_50_sessions_store_every_message_once() -> None:
    container = make_container(ScriptedProvider(echo, delay=0.001), keys=False)
    async with client_for(container) as client:
        failures: list[str] = []

        async def chat(i: int) -> None:
            response = await client.post(
                "/v1/chat/stream", json={"message": f"m{i}", "namespace": f"load:s{i % 50}"}
            )
            events = sse_events(response.text)
            if events[-1][0] != "end" or events[-1][1]["message"] != f"echo: m{i}":
                failures.append(response.text)

        async with anyio.create_task_group() as tg:
            for i in range(200):
                tg.start_soon(chat, i)
        assert failures == []
        store = container.store()
        for s in range(50):
            messages = [m.content for m in (await store.load(f"load:s{s}")).messages]
            asked = sorted(messages[0::2])
            assert asked == sorted(f"m{i}" for i in range(s, 200, 50))
            # turns are contiguous: every question is followed at once by its own answer
            assert messages[1::2] == [f"echo: {q}" for q in messages[0::2]]


def test_keys_are_hashed_and_bound_to_a_tenant() -> None:
    key = new_api_key()
    assert key.startswith("orra_") and len(key) > 40 and new_api_key() != key
    digest = hash_api_key(key)
    assert digest.startswith("sha256:") and key not in digest
    ring = KeyRing([
        ApiKeySettings(name="a", digest=digest, tenant="acme:team"),
        ApiKeySettings(name="r", digest=hash_api_key("old"), tenant="x", revoked=True),
    ])  # fmt: skip
    caller = ring.authenticate(key)
    assert caller is not None and caller.tenant == "acme:team" and caller.by == "gateway:a"
    assert caller.owns("acme:team:bob") and caller.owns("acme:team")
    assert not caller.owns("acme:teamster") and not caller.owns("acme")
    assert ring.authenticate("old") is None
    assert ring.authenticate(key + "x") is None and ring.authenticate(None) is None
    assert KeyRing([]).authenticate(None) is not None  # no keys: no authentication


def test_key_settings_refuse_plain_keys_and_wildcard_origins() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sha256"):
        ApiKeySettings(name="a", digest="orra_plain_key", tenant="acme")
    with pytest.raises(ValidationError):
        ApiKeySettings(name="a", digest=hash_api_key("k"), tenant="acme::x")
    with pytest.raises(ValidationError, match="list origins"):
        GatewaySettings(cors_origins=["*"])
    settings = GatewaySettings(api_keys=[{"name": "a", "digest": hash_api_key("k"),
                                          "tenant": "acme"}])  # fmt: skip
    assert settings.api_keys[0].tenant == "acme" and settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("192.168.1.4", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
