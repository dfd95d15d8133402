"""Against a real uvicorn on 127.0.0.1: a cut stream, the official OpenAI SDK, WebSockets."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
import websockets
from openai import AsyncOpenAI, AuthenticationError, NotFoundError

from orra_di.gateway.messages import WsMessage
from orra_di.testing import ScriptedProvider

from .helpers import ALICE_KEY, auth, echo, make_container
from .live import live_server

pytestmark = pytest.mark.anyio


async def test_a_client_that_cuts_the_stream_does_not_lose_the_run() -> None:
    gate = anyio.Event()

    async def slow(request: object) -> str:
        await gate.wait()
        return "finished anyway"

    container = make_container(ScriptedProvider(slow))
    async with live_server(container) as (url, gateway), httpx.AsyncClient(base_url=url) as client:
        async with client.stream(
            "POST",
            "/v1/chat/stream",
            json={"message": "hi", "namespace": "acme:cut"},
            headers=auth(ALICE_KEY),
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("event: start"):
                    break  # hang up while the model is still thinking
        assert gateway.in_flight == 1
        gate.set()
        with anyio.fail_after(10):
            await gateway.wait_idle()
        session = await container.store().load("acme:cut")
        assert [m.content for m in session.messages] == ["hi", "finished anyway"]


async def test_the_openai_sdk_chats_with_an_agent_and_the_server_keeps_the_history() -> None:
    model = ScriptedProvider(echo)
    container = make_container(model)
    async with live_server(container) as (url, _):
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key=ALICE_KEY, max_retries=0)
        first = await client.chat.completions.create(
            model="atlas", messages=[{"role": "user", "content": "one"}], user="chat-1"
        )
        assert first.choices[0].message.content == "echo: one"
        assert first.model == "Atlas" and first.object == "chat.completion"
        # a client that resends its whole history: only the last user message is new
        stream = await client.chat.completions.create(
            model="Atlas",
            messages=[
                {"role": "system", "content": "ignored"},
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": "echo: one"},
                {"role": "user", "content": "two"},
            ],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Orra-Session": "chat-1"},
        )
        parts, usage = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage = chunk.usage
        assert "".join(parts) == "echo: two"
        assert usage is not None
        with pytest.raises(NotFoundError) as missing:
            await client.chat.completions.create(
                model="nobody", messages=[{"role": "user", "content": "x"}]
            )
        assert missing.value.code == "unknown_agent"
        # clients with a model picker list the agents first
        listed = [m.id async for m in client.models.list()]
        assert listed == ["Atlas", "Scribe"]
        assert (await client.models.retrieve("scribe")).id == "Scribe"
        with pytest.raises(NotFoundError):
            await client.models.retrieve("nobody")
        anonymous = AsyncOpenAI(base_url=f"{url}/v1", api_key="orra_wrong", max_retries=0)
        with pytest.raises(AuthenticationError):
            await anonymous.models.list()
        await anonymous.close()
        await client.close()
        session = await container.store().load("acme:chat-1")
        assert [m.content for m in session.messages] == ["one", "echo: one", "two", "echo: two"]
    # the model saw the server's history, not the client's system message
    assert all(m.content != "ignored" for m in model.requests[-1].messages)


async def test_websocket_runs_concurrent_chats_and_survives_garbage() -> None:
    gate = anyio.Event()

    async def script(request: object) -> str:
        text = echo(request)
        if text.endswith("slow"):
            await gate.wait()
        return text

    container = make_container(ScriptedProvider(script))
    async with live_server(container) as (url, _):
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": ALICE_KEY}))
            assert json.loads(await ws.recv()) == {"type": "ready", "tenant": "acme"}
            await ws.send("this is not json")
            assert json.loads(await ws.recv())["code"] == "bad_request"
            await ws.send(json.dumps({"type": "launch"}))
            assert "unknown message type" in json.loads(await ws.recv())["error"]
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}
            await ws.send(
                json.dumps(
                    {"type": "chat", "chat_id": "a", "message": "slow", "namespace": "acme:a"}
                )
            )
            await ws.send(
                json.dumps(
                    {"type": "chat", "chat_id": "b", "message": "fast", "namespace": "acme:b"}
                )
            )
            await ws.send(
                json.dumps(
                    {"type": "chat", "chat_id": "c", "message": "x", "namespace": "globex:c"}
                )
            )
            seen: dict[str, list[dict[str, object]]] = {}
            while "a" not in {k for k, v in seen.items() if v[-1]["type"] == "response"}:
                message = json.loads(await ws.recv())
                WsMessage.validate_python(message)  # every message is of the documented shape
                seen.setdefault(str(message["chat_id"]), []).append(message)
                if message["chat_id"] == "b" and message["type"] == "response":
                    gate.set()  # b finished while a was still running
            assert seen["c"] == [
                {
                    "type": "error",
                    "chat_id": "c",
                    "code": "namespace_forbidden",
                    "error": "this key may only use namespaces under 'acme'",
                }
            ]
            b = seen["b"]
            assert "".join(m["content"] for m in b if m["type"] == "text_delta") == "echo: fast"
            assert b[-1] == {
                "type": "response",
                "chat_id": "b",
                "message": "echo: fast",
                "namespace": "acme:b",
                "agent": "Atlas",
                "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
            }
            assert seen["a"][-1]["message"] == "echo: slow"


async def test_websocket_chat_ids_1_and_quoted_1_are_two_chats() -> None:
    """JSON ``1`` and ``"1"`` are different ids: the second chat is not refused as the
    first "still running", and each chat's events carry back the id as it was sent."""
    gate = anyio.Event()

    async def script(request: object) -> str:
        text = echo(request)
        if text.endswith("slow"):
            await gate.wait()
        return text

    container = make_container(ScriptedProvider(script))
    async with live_server(container) as (url, _):
        headers = auth(ALICE_KEY)
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            for chat_id, text in ((1, "slow"), ("1", "fast")):
                chat = {
                    "type": "chat",
                    "chat_id": chat_id,
                    "message": text,
                    "namespace": f"acme:{text}",
                }
                await ws.send(json.dumps(chat))
            seen: list[dict[str, object]] = []
            with anyio.fail_after(30):
                while sum(m["type"] in ("response", "error") for m in seen) < 2:
                    message = json.loads(await ws.recv())
                    seen.append(message)
                    if message["type"] in ("response", "error"):
                        gate.set()  # the number's chat ends once the string's has
            assert [m for m in seen if m["type"] == "error"] == []
            answers = {(type(m["chat_id"]), m["message"]) for m in seen if m["type"] == "response"}
            assert answers == {(int, "echo: slow"), (str, "echo: fast")}
            # a chat still running is refused by its own id, shown as JSON shows it
            gate = anyio.Event()
            await ws.send(json.dumps({"type": "chat", "chat_id": 2, "message": "slow"}))
            await ws.send(json.dumps({"type": "chat", "chat_id": 2, "message": "again"}))
            with anyio.fail_after(30):
                while (refused := json.loads(await ws.recv()))["type"] != "error":
                    pass
            assert refused["chat_id"] == 2 and "chat 2 is still running" in refused["error"]
            gate.set()


@pytest.mark.parametrize("chat_id", [True, 1.5, [1], {"id": 1}])
async def test_websocket_chat_id_is_a_string_or_an_integer(chat_id: object) -> None:
    container = make_container(ScriptedProvider(echo))
    async with live_server(container) as (url, _):
        headers = auth(ALICE_KEY)
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "chat", "chat_id": chat_id, "message": "hi"}))
            refused = json.loads(await ws.recv())
            assert refused["type"] == "error" and refused["code"] == "bad_request"
            assert refused["error"] == "chat_id must be a string or an integer"


async def test_websocket_with_a_bad_key_or_silence_is_closed() -> None:
    container = make_container(
        ScriptedProvider(echo), gateway={"ws_auth_timeout": 0.3, "ws_idle_timeout": 0.5}
    )
    async with live_server(container) as (url, _):
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "api_key": "orra_wrong"}))
            assert json.loads(await ws.recv())["code"] == "unauthorized"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4401
        async with websockets.connect(ws_url) as ws:  # never authenticates
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4408
        headers = auth(ALICE_KEY)
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()  # silent past ws_idle_timeout
            assert closed.value.rcvd.code == 4408
