"""Round 14 review: docs/gateway.md and docs/deploy.md over real loopback HTTP.

The OpenAI SDK (models, sessions, streamed or not), ``GET /v1/sessions`` paging, errors
as JSON with a code, CORS off by default, and two gateway replicas (two containers, two
uvicorn servers) on one PostgreSQL schema sharing sessions, events and approvals.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import pytest
import websockets
from dependency_injector import providers
from openai import AsyncOpenAI, NotFoundError

from orra_di.containers import Container
from orra_di.gateway import create_app
from orra_di.gateway.messages import WsMessage
from orra_di.settings import load_settings
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider
from orra_di.tool import tool
from tests.gateway.helpers import (
    ALICE_KEY,
    BOB_KEY,
    KEYS,
    adder,
    auth,
    echo,
    make_container,
    sse_events,
)
from tests.gateway.live import live_server
from tests.services import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.anyio

BOUND = 30


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


async def test_the_openai_sdk_lists_models_and_keeps_a_session_by_user_or_header() -> None:
    container = make_container(ScriptedProvider(echo))
    async with (
        live_server(container) as (base, _),
        AsyncOpenAI(base_url=base + "/v1", api_key=ALICE_KEY) as client,
    ):
        assert [m.id async for m in client.models.list()] == ["Atlas", "Scribe"]
        assert (await client.models.retrieve("scribe")).id == "Scribe"
        with pytest.raises(NotFoundError):
            await client.models.retrieve("nobody")

        answer = await client.chat.completions.create(
            model="Scribe", messages=[{"role": "user", "content": "one"}], user="chat-1"
        )
        assert answer.model == "Scribe" and answer.choices[0].message.content == "echo: one"
        raw = await client.chat.completions.with_raw_response.create(
            model="atlas",
            messages=[{"role": "user", "content": "two"}],
            extra_headers={"X-Orra-Session": "acme:chat-1"},  # the header wins over user
            user="ignored",
        )
        assert raw.headers["x-orra-session"] == "acme:chat-1"
        stream = await client.chat.completions.create(
            model="Atlas",
            messages=[{"role": "user", "content": "three"}],
            user="chat-1",
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        assert text == "echo: three" and usage is not None
        # no session named: a one-off session under the tenant each time
        a = await client.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "x"}]
        )
        b = await client.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "x"}]
        )
        fresh = {a.headers["x-orra-session"], b.headers["x-orra-session"]}
        assert len(fresh) == 2 and all(ns.startswith("acme:") for ns in fresh)
        session = await container.store().load("acme:chat-1")
    assert [m.content for m in session.messages if m.role.value == "user"] == [
        "one",
        "two",
        "three",
    ]


async def test_sse_events_come_in_the_documented_order_and_shape() -> None:
    container = make_container(ScriptedProvider(adder), tools=[add])
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/v1/chat/stream",
            json={"message": "sum", "namespace": "acme:s"},
            headers=auth(ALICE_KEY),
        )
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "end"
    assert names.index("tool_call_started") < names.index("tool_call_completed")
    assert names.count("turn") == 2 and names.count("end") == 1
    assert events[0][1] == {"namespace": "acme:s", "agent": "Atlas"}
    end = events[-1][1]
    assert set(end) == {"message", "namespace", "agent", "usage", "turns", "tool_calls"}
    assert end["tool_calls"][0]["content"] == "5" and end["turns"] == 2


async def test_sessions_come_a_sorted_page_at_a_time_within_the_tenant() -> None:
    container = make_container(ScriptedProvider(echo))
    names = ["acme:zeta", "acme:alpha", "acme:b:c", "acme:b", "acme:mid", "globex:x"]
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        for name in names:
            key = BOB_KEY if name.startswith("globex") else ALICE_KEY
            await http.post(
                "/v1/chat", json={"message": "hi", "namespace": name}, headers=auth(key)
            )
        seen: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2}
            if after is not None:
                params["after"] = after
            page = (await http.get("/v1/sessions", params=params, headers=auth(ALICE_KEY))).json()
            assert len(page["sessions"]) <= 2
            seen += page["sessions"]
            after = page["next"]
            if after is None:
                break
        assert seen == sorted(n for n in names if n.startswith("acme:"))
        everything = await http.get("/v1/sessions", headers=auth(ALICE_KEY))
        assert everything.json() == {"sessions": seen, "next": None}
        # an after that is no key still starts the page after it
        page = await http.get("/v1/sessions", params={"after": "acme:c"}, headers=auth(ALICE_KEY))
        assert page.json()["sessions"] == ["acme:mid", "acme:zeta"]
        for bad in ("0", "10001", "two", "-1"):
            refused = await http.get("/v1/sessions", params={"limit": bad}, headers=auth(ALICE_KEY))
            assert refused.status_code == 400 and refused.json()["code"] == "bad_request"
        outside = await http.get("/v1/sessions?prefix=globex", headers=auth(ALICE_KEY))
        assert outside.json() == {"sessions": [], "next": None}


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("PUT", "/v1/chat", 405, "method_not_allowed"),
        ("GET", "/v1/chat/stream", 405, "method_not_allowed"),
        ("DELETE", "/v1/models", 405, "method_not_allowed"),
        ("GET", "/v2/chat", 404, "not_found"),
        ("GET", "/static/missing.js", 404, "not_found"),
        ("GET", "/v1/sessions/acme:none", 404, "not_found"),
        ("POST", "/v1/approvals/nope", 400, "bad_request"),  # no body
    ],
)
async def test_every_refusal_is_json_with_a_code(
    method: str, path: str, status: int, code: str
) -> None:
    container = make_container(ScriptedProvider(echo))
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        response = await http.request(method, path, headers=auth(ALICE_KEY))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code and response.json()["error"]


async def test_cors_is_off_by_default_and_on_only_for_the_listed_origin() -> None:
    container = make_container(ScriptedProvider(echo))
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        response = await http.options("/v1/chat", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        plain = await http.get("/v1/agents", headers={**auth(ALICE_KEY), "Origin": "https://x"})
        assert "access-control-allow-origin" not in plain.headers
    container = make_container(
        ScriptedProvider(echo), gateway={"cors_origins": ["https://app.example"]}
    )
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        allowed = await http.options("/v1/chat", headers=preflight)
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await http.options("/v1/chat", headers={**preflight, "Origin": "https://evil"})
        assert "access-control-allow-origin" not in other.headers


# -- two replicas on one PostgreSQL schema -------------------------------------------------


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    require_postgres()
    import psycopg

    name = f"orra_r14_{secrets.token_hex(6)}"
    yield name
    async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def replica(schema: str) -> Container:
    container = Container()
    settings = load_settings(
        store={"url": POSTGRES_URL},
        agents=[{"name": "Atlas"}],
        gateway={"api_keys": KEYS},
        approval={"enabled": True, "tools": ["add"]},
    )
    container.settings.override(providers.Object(settings))
    container.store.override(providers.Singleton(open_store, POSTGRES_URL, schema=schema))

    def model(request: Any) -> Any:
        if request.messages[-1].content.startswith("sum") or request.messages[-1].tool_results:
            return adder(request)
        return echo(request)

    container.llm.override(providers.Object(ScriptedProvider(model)))
    container.tool_factory.override(providers.Object(lambda profile: [add]))
    return container


@pytest.mark.service
async def test_two_replicas_on_one_schema_share_sessions_events_and_approvals(
    schema: str,
) -> None:
    async with AsyncExitStack() as stack:
        a, _ = await stack.enter_async_context(live_server(replica(schema)))
        b, _ = await stack.enter_async_context(live_server(replica(schema)))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=BOUND))
        ws = await stack.enter_async_context(websockets.connect(b.replace("http", "ws") + "/v1/ws"))
        await ws.send(json.dumps({"type": "auth", "api_key": ALICE_KEY}))
        assert json.loads(await ws.recv()) == {"type": "ready", "tenant": "acme"}
        await ws.send(json.dumps({"type": "subscribe"}))
        assert json.loads(await ws.recv()) == {"type": "subscribed", "namespace": "acme"}

        # a session started on A is continued on B, and B's subscriber sees A's run
        one = await http.post(
            f"{a}/v1/chat", json={"message": "hi", "namespace": "acme:one"}, headers=auth(ALICE_KEY)
        )
        assert one.json()["message"] == "echo: hi"
        two = await http.post(
            f"{b}/v1/chat", json={"message": "again", "namespace": "acme:one"},
            headers=auth(ALICE_KEY),
        )  # fmt: skip
        assert two.status_code == 200
        stored = (await http.get(f"{a}/v1/sessions/acme:one", headers=auth(ALICE_KEY))).json()
        assert [m["content"] for m in stored["messages"]] == [
            "hi", "echo: hi", "again", "echo: again",
        ]  # fmt: skip
        # another tenant's run on A never reaches acme's subscriber on B
        await http.post(
            f"{a}/v1/chat", json={"message": "secret", "namespace": "globex:x"},
            headers=auth(BOB_KEY),
        )  # fmt: skip
        responses: list[dict[str, Any]] = []
        with anyio.fail_after(BOUND):
            while len(responses) < 1:
                message = json.loads(await ws.recv())
                WsMessage.validate_python(message)  # the documented shapes
                if message["type"] == "response":
                    responses.append(message)
        assert responses[0]["namespace"] == "acme:one"
        assert responses[0]["message"] == "echo: hi"

        # a run on A waits for approval; B's WebSocket answers it by call_id alone
        streamed: dict[str, str] = {}

        async def chat_on_a() -> None:
            response = await http.post(
                f"{a}/v1/chat/stream", json={"message": "sum", "namespace": "acme:two"},
                headers=auth(ALICE_KEY),
            )  # fmt: skip
            streamed["text"] = response.text

        async with anyio.create_task_group() as tg:
            tg.start_soon(chat_on_a)
            with anyio.fail_after(BOUND):
                while True:
                    message = json.loads(await ws.recv())
                    WsMessage.validate_python(message)  # the documented shapes
                    assert message.get("namespace") != "globex:x"
                    if message["type"] == "tool_approval_request":
                        break
            assert message["namespace"] == "acme:two" and message["tool_name"] == "add"
            await ws.send(
                json.dumps(
                    {"type": "tool_approval_response", "call_id": message["call_id"],
                     "approved": True}
                )
            )  # fmt: skip
            with anyio.fail_after(BOUND):
                while True:
                    decided = json.loads(await ws.recv())
                    WsMessage.validate_python(decided)  # the documented shapes
                    if decided["type"] == "tool_approval_decided":
                        break
            assert decided["status"] == "approved"
            assert decided["approval_id"] == message["approval_id"]
            assert decided["decided_by"] == "gateway:alice"
        events = sse_events(streamed["text"])
        assert events[-1][0] == "end" and events[-1][1]["message"] == "the sum is 5"
        # erased on B, gone on A
        gone = await http.delete(f"{b}/v1/sessions/acme:one", headers=auth(ALICE_KEY))
        assert gone.json()["deleted"] == 1
        missing = await http.get(f"{a}/v1/sessions/acme:one", headers=auth(ALICE_KEY))
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_openapi_json_describes_every_http_route_the_app_serves() -> None:
    """``GET /openapi.json`` is 'the API description': every JSON route is in it, with the
    query parameters the docs and the web page use."""
    from starlette.routing import Route

    container = make_container(ScriptedProvider(echo))
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        described = (await http.get("/openapi.json")).json()["paths"]
        app = create_app(container)
    served = {
        route.path.replace("{namespace:path}", "{namespace}")
        for route in app.routes
        if isinstance(route, Route) and route.path not in ("/", "/openapi.json")
    }
    assert served - set(described) == set()
    approvals = described["/v1/approvals"]["get"].get("parameters", [])
    assert [p["name"] for p in approvals] == ["namespace"]


async def drain(parsed: Any) -> None:
    """Read a streamed answer to its end (a plain one is already whole)."""
    if hasattr(parsed, "__aiter__"):
        async for _ in parsed:
            pass


@pytest.mark.parametrize("stream", [False, True])
async def test_a_session_name_beyond_ascii_travels_in_the_header_and_continues(
    stream: bool,
) -> None:
    """The ``user`` field is often a person's name: a namespace outside Latin-1 cannot be
    put in a header as it is, and the answer was a 500 ``internal_error`` after the run
    had been made and stored (the client, told it failed, would retry it)."""
    container = make_container(ScriptedProvider(echo))
    async with (
        live_server(container) as (base, _),
        AsyncOpenAI(base_url=base + "/v1", api_key=ALICE_KEY) as client,
    ):
        raw = await client.chat.completions.with_raw_response.create(
            model="Atlas",
            messages=[{"role": "user", "content": "one"}],
            user="Łukasz 100%",
            stream=stream,
        )
        header = raw.headers["x-orra-session"]
        assert header.isascii() and unquote(header) == "acme:Łukasz 100%"
        await drain(raw.parse())
        again = await client.chat.completions.with_raw_response.create(
            model="Atlas",
            messages=[{"role": "user", "content": "two"}],
            extra_headers={"X-Orra-Session": header},  # echoed back as received
            stream=stream,
        )
        assert again.headers["x-orra-session"] == header
        await drain(again.parse())
        session = await container.store().load("acme:Łukasz 100%")
        for _ in range(100):  # a stream's run may still be storing its answer
            if session is not None and len(session.messages) == 4:
                break
            await anyio.sleep(0.05)
            session = await container.store().load("acme:Łukasz 100%")
        assert session is not None
        assert [m.content for m in session.messages] == ["one", "echo: one", "two", "echo: two"]
