"""The REST and SSE API in process (httpx ASGITransport), on the memory store."""

from __future__ import annotations

import httpx
import pytest

from orra_di.gateway import create_app
from orra_di.testing import ScriptedProvider
from orra_di.tool import tool

from .helpers import (
    ALICE_KEY,
    BOB_KEY,
    OLD_KEY,
    adder,
    auth,
    client_for,
    echo,
    make_container,
    sse_events,
)

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


async def test_chat_answers_and_stores_the_exchange() -> None:
    container = make_container(ScriptedProvider(["Hello Alice"]))
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat", json={"message": "hi", "namespace": "acme:alice"}, headers=auth(ALICE_KEY)
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message"] == "Hello Alice"
        assert body["namespace"] == "acme:alice"
        assert body["agent"] == "Atlas"
        assert body["turns"] == 1
        session = await container.store().load("acme:alice")
        assert [m.content for m in session.messages] == ["hi", "Hello Alice"]
        shown = await client.get("/v1/sessions/acme:alice", headers=auth(ALICE_KEY))
        assert shown.status_code == 200
        assert [m["role"] for m in shown.json()["messages"]] == ["user", "assistant"]


async def test_a_chat_without_namespace_gets_a_fresh_one_under_the_tenant() -> None:
    async with client_for(make_container(ScriptedProvider(echo))) as client:
        first = await client.post("/v1/chat", json={"message": "a"}, headers=auth(ALICE_KEY))
        second = await client.post("/v1/chat", json={"message": "b"}, headers=auth(ALICE_KEY))
        one, two = first.json()["namespace"], second.json()["namespace"]
        assert one.startswith("acme:") and two.startswith("acme:") and one != two


async def test_the_stream_carries_deltas_tool_calls_turns_and_the_end() -> None:
    container = make_container(ScriptedProvider(adder), tools=[add])
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat/stream",
            json={"message": "add please", "namespace": "acme:alice", "agent": "scribe"},
            headers=auth(ALICE_KEY),
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "end"
    assert events[0][1] == {"namespace": "acme:alice", "agent": "Scribe"}
    started = next(data for name, data in events if name == "tool_call_started")
    completed = next(data for name, data in events if name == "tool_call_completed")
    assert started["name"] == "add"
    assert completed == {"id": started["id"], "content": "5", "is_error": False}
    assert names.index("tool_call_started") < names.index("tool_call_completed")
    turns = [data for name, data in events if name == "turn"]
    assert [t["index"] for t in turns] == [0, 1]
    assert turns[0]["tool_calls"][0]["arguments"] == {"a": 2, "b": 3}
    text = "".join(data["text"] for name, data in events if name == "text_delta")
    assert text == "addingthe sum is 5"
    end = events[-1][1]
    assert end["message"] == "the sum is 5" and end["agent"] == "Scribe"
    assert end["tool_calls"][0]["content"] == "5"


async def test_agents_health_readiness_and_openapi() -> None:
    async with client_for(make_container(ScriptedProvider(echo))) as client:
        agents = (await client.get("/v1/agents", headers=auth(BOB_KEY))).json()
        assert [a["name"] for a in agents["agents"]] == ["Atlas", "Scribe"]
        assert agents["default"] == "Atlas" and agents["agents"][0]["default"] is True
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        spec = (await client.get("/openapi.json")).json()
        assert "/v1/chat" in spec["paths"] and "/v1/ws" not in spec["paths"]
        who = (await client.get("/v1/whoami", headers=auth(BOB_KEY))).json()
        assert who == {"tenant": "globex", "key": "bob"}


async def test_readyz_says_not_ready_when_the_store_fails() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        store = container.store()

        async def broken(prefix: object = None) -> list[object]:
            raise ConnectionError("down")

        store.list = broken
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "not_ready"


async def test_sessions_are_listed_shown_and_deleted_within_the_tenant() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for ns, key in [
            ("acme:alice", ALICE_KEY),
            ("acme:alice:work", ALICE_KEY),
            ("acme:bob", ALICE_KEY),
            ("globex:carol", BOB_KEY),
        ]:
            ok = await client.post(
                "/v1/chat", json={"message": "x", "namespace": ns}, headers=auth(key)
            )
            assert ok.status_code == 200
        listed = await client.get("/v1/sessions", headers=auth(ALICE_KEY))
        assert listed.json() == {
            "sessions": ["acme:alice", "acme:alice:work", "acme:bob"],
            "next": None,
        }
        first = await client.get("/v1/sessions?limit=2", headers=auth(ALICE_KEY))
        assert first.json() == {
            "sessions": ["acme:alice", "acme:alice:work"],
            "next": "acme:alice:work",
        }
        rest = await client.get(
            "/v1/sessions?limit=2&after=acme:alice:work", headers=auth(ALICE_KEY)
        )
        assert rest.json() == {"sessions": ["acme:bob"], "next": None}
        for bad in ("0", "10001", "ten"):
            refused = await client.get(f"/v1/sessions?limit={bad}", headers=auth(ALICE_KEY))
            assert refused.status_code == 400 and refused.json()["code"] == "bad_request"
            assert "limit must be" in refused.json()["error"]
        below = await client.get("/v1/sessions?prefix=acme:alice", headers=auth(ALICE_KEY))
        assert below.json()["sessions"] == ["acme:alice", "acme:alice:work"]
        wider = await client.get("/v1/sessions?prefix=globex", headers=auth(ALICE_KEY))
        assert wider.json() == {"sessions": [], "next": None}
        # another tenant's session is "not found", exactly like a missing one
        other = await client.get("/v1/sessions/globex:carol", headers=auth(ALICE_KEY))
        missing = await client.get("/v1/sessions/acme:nobody", headers=auth(ALICE_KEY))
        assert other.status_code == missing.status_code == 404
        assert other.json()["code"] == missing.json()["code"] == "not_found"
        gone = await client.delete("/v1/sessions/globex:carol", headers=auth(ALICE_KEY))
        assert gone.status_code == 404
        assert await container.store().load("globex:carol") is not None
        one = await client.delete("/v1/sessions/acme:bob", headers=auth(ALICE_KEY))
        assert one.json()["deleted"] == 1
        tree = await client.delete("/v1/sessions/acme:alice?tree=true", headers=auth(ALICE_KEY))
        assert tree.json()["deleted"] == 2
        assert [ns.key for ns in await container.store().list()] == ["globex:carol"]


async def test_a_namespace_is_erased_in_every_store_within_the_tenant_only() -> None:
    from orra_di.memory import MemoryManager, memory_store_for

    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for ns, key in [("acme:alice", ALICE_KEY), ("acme:bob", ALICE_KEY)]:
            ok = await client.post(
                "/v1/chat", json={"message": "x", "namespace": ns}, headers=auth(key)
            )
            assert ok.status_code == 200
        memories = MemoryManager(memory_store_for(container.store()))
        await memories.remember("acme:alice", "alice likes tea")
        await memories.remember("acme:bob", "bob likes coffee")
        # another tenant's namespace reads as missing, and nothing of it goes
        other = await client.delete("/v1/namespaces/acme:alice", headers=auth(BOB_KEY))
        assert other.status_code == 404 and other.json()["code"] == "not_found"
        erased = await client.delete("/v1/namespaces/acme:alice", headers=auth(ALICE_KEY))
        assert erased.status_code == 200
        body = erased.json()
        assert body["namespace"] == "acme:alice"
        assert body["erased"]["sessions"] == 1 and body["erased"]["memories"] == 1
        assert [ns.key for ns in await container.store().list()] == ["acme:bob"]
        assert [e.content for e in await memories.list("acme:bob")] == ["bob likes coffee"]
        again = await client.delete("/v1/namespaces/acme:alice", headers=auth(ALICE_KEY))
        assert again.status_code == 200 and sum(again.json()["erased"].values()) == 0


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no key"),
        (auth("orra_wrong"), "wrong key"),
        (auth(OLD_KEY), "revoked key"),
        ({"Authorization": f"Basic {ALICE_KEY}"}, "not a bearer"),
    ],
)
async def test_a_bad_key_is_refused_and_nothing_is_stored(
    headers: dict[str, str], why: str
) -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for method, path in [
            ("POST", "/v1/chat"),
            ("POST", "/v1/chat/stream"),
            ("GET", "/v1/sessions"),
            ("GET", "/v1/agents"),
        ]:
            response = await client.request(
                method, path, json={"message": "hi", "namespace": "acme:alice"}, headers=headers
            )
            assert response.status_code == 401, why
            assert response.json()["code"] == "unauthorized"
            assert response.headers["www-authenticate"] == "Bearer"
        assert await container.store().list() == []


async def test_another_tenants_namespace_cannot_be_chatted_into() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for ns in ["globex:carol", "acmeother", "acme2:x"]:
            response = await client.post(
                "/v1/chat", json={"message": "hi", "namespace": ns}, headers=auth(ALICE_KEY)
            )
            assert response.status_code == 403, ns
            assert response.json()["code"] == "namespace_forbidden"
        assert await container.store().list() == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_request"),
        (b"[1, 2]", 400, "bad_request"),
        (b'{"message": ""}', 400, "bad_request"),
        (b'{"message": 5}', 400, "bad_request"),
        (b'{"message": "hi", "extra": 1}', 400, "bad_request"),
        (b'{"message": "hi", "agent": "Nobody"}', 404, "unknown_agent"),
        (b'{"message": "hi", "namespace": "acme::x"}', 400, "bad_request"),
        (b'{"message": "hi", "namespace": "acme:a\\u0000b"}', 400, "bad_request"),
        (b'{"message": "hi", "namespace": "acme:\\u001b[31m"}', 400, "bad_request"),
        (b'{"message": "hi", "namespace": ""}', 400, "bad_request"),
        (b'{"message": "hi", "namespace": 7}', 400, "bad_request"),
        (b"\xff\xfe", 400, "bad_request"),
    ],
)
async def test_bad_input_gets_a_clear_json_error_and_stores_nothing(
    body: bytes, status: int, code: str
) -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for path in ["/v1/chat", "/v1/chat/stream"]:
            response = await client.post(
                path, content=body, headers={**auth(ALICE_KEY), "content-type": "application/json"}
            )
            assert response.status_code == status, response.text
            error = response.json()
            assert error["code"] == code and error["error"]
        assert await container.store().list() == []


async def test_an_oversized_body_is_refused_before_it_is_read() -> None:
    container = make_container(ScriptedProvider(echo), gateway={"max_body_bytes": 2048})
    async with client_for(container) as client:
        big = {"message": "x" * 5000, "namespace": "acme:alice"}
        response = await client.post("/v1/chat", json=big, headers=auth(ALICE_KEY))
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

        async def chunks():  # no content-length: counted while read
            for _ in range(5):
                yield b"x" * 1000

        streamed = await client.post("/v1/chat", content=chunks(), headers=auth(ALICE_KEY))
        assert streamed.status_code == 413
        assert await container.store().list() == []


async def test_unknown_routes_and_methods_answer_json() -> None:
    async with client_for(make_container(ScriptedProvider(echo))) as client:
        missing = await client.get("/v1/nothing")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        wrong = await client.put("/v1/chat")
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"


async def test_a_run_over_the_request_timeout_is_a_timeout_error() -> None:
    slow = ScriptedProvider(echo, delay=5)
    container = make_container(slow, gateway={"request_timeout": 0.2})
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat", json={"message": "hi", "namespace": "acme:a"}, headers=auth(ALICE_KEY)
        )
        assert response.status_code == 504
        assert response.json()["code"] == "timeout"


async def test_a_provider_failure_is_a_provider_error() -> None:
    from orra_di.errors import ProviderUnavailableError

    container = make_container(ScriptedProvider([ProviderUnavailableError("vendor down")]))
    async with client_for(container) as client:
        response = await client.post(
            "/v1/chat/stream",
            json={"message": "hi", "namespace": "acme:a"},
            headers=auth(ALICE_KEY),
        )
        events = sse_events(response.text)
        assert events[-1][0] == "error"
        assert events[-1][1]["code"] == "provider_error"
        assert "vendor down" in events[-1][1]["error"]


async def test_without_keys_everyone_sees_the_whole_store() -> None:
    container = make_container(ScriptedProvider(echo), keys=False)
    async with client_for(container) as client:
        response = await client.post("/v1/chat", json={"message": "hi", "namespace": "any:one"})
        assert response.status_code == 200
        assert (await client.get("/v1/sessions")).json() == {"sessions": ["any:one"], "next": None}


async def test_cors_is_off_by_default_and_on_for_listed_origins() -> None:
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with client_for(make_container(ScriptedProvider(echo))) as client:
        off = await client.options("/v1/chat", headers=origin)
        assert "access-control-allow-origin" not in off.headers
    on = make_container(ScriptedProvider(echo), gateway={"cors_origins": ["https://app.example"]})
    async with client_for(on) as client:
        allowed = await client.options("/v1/chat", headers=origin)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"


async def test_the_page_is_served_when_the_package_has_it(tmp_path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>orra chat</title>")
    container = make_container(ScriptedProvider(echo), gateway={"static_dir": str(tmp_path)})
    async with client_for(container) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "orra chat" in page.text
        assert page.headers["content-type"].startswith("text/html")
    empty = make_container(ScriptedProvider(echo), gateway={"static_dir": str(tmp_path / "no")})
    async with client_for(empty) as client:
        assert (await client.get("/")).json()["status"] == "ok"


async def test_the_app_mounts_inside_fastapi() -> None:
    from fastapi import FastAPI

    from orra_di.containers import lifespan

    container = make_container(ScriptedProvider(echo))
    async with lifespan(container):
        outer = FastAPI()
        outer.mount("/agents", create_app(container))
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            response = await client.post(
                "/agents/v1/chat",
                json={"message": "hi", "namespace": "acme:m"},
                headers=auth(ALICE_KEY),
            )
            assert response.json()["message"] == "echo: hi"


async def test_unknown_paths_and_methods_say_what_to_do() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        missing = await client.get("/v1/nothing", headers=auth(ALICE_KEY))
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert "no endpoint GET /v1/nothing" in missing.json()["error"]
        assert "/openapi.json" in missing.json()["error"]
        wrong = await client.post("/v1/agents", headers=auth(ALICE_KEY))
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
        assert wrong.json()["error"].endswith(
            "POST /v1/agents is not allowed; this path takes GET, HEAD"
        )
        plain = await client.get("/v1/ws")
        assert plain.status_code == 404 and "WebSocket only" in plain.json()["error"]
