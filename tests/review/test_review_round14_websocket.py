"""Round 14 review: docs/gateway.md's WebSocket protocol over a real loopback server.

Several chats on one connection, the per-connection chat limit (``busy``), and
approvals answered by ``call_id`` when an earlier request of the connection had the
same call id (model call ids repeat from run to run).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
import websockets

from orra_di.gateway.messages import WsMessage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import tool
from tests.gateway.helpers import ALICE_KEY, auth, echo, make_container
from tests.gateway.live import live_server

pytestmark = pytest.mark.anyio

BOUND = 15


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


async def receive(ws: Any) -> dict[str, Any]:
    with anyio.fail_after(BOUND):
        message: dict[str, Any] = json.loads(await ws.recv())
    WsMessage.validate_python(message)  # every message is of the documented shape
    return message


async def until(ws: Any, kind: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    while True:
        message = await receive(ws)
        seen.append(message)
        if message["type"] == kind:
            return message, seen


async def test_chats_without_a_chat_id_count_against_the_connections_limit() -> None:
    """``ws_max_chats`` bounds the chats running on one connection; a chat with no
    ``chat_id`` counted once however many ran (they shared one key), so leaving the
    id out started any number of runs."""
    gate = anyio.Event()

    async def slow(request: Any) -> str:
        await gate.wait()
        return echo(request)

    container = make_container(ScriptedProvider(slow), gateway={"ws_max_chats": 2})
    async with live_server(container) as (base, gateway):
        url = base.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(url, additional_headers=auth(ALICE_KEY)) as ws:
            assert (await receive(ws))["type"] == "ready"
            for i in range(3):
                chat = {"type": "chat", "message": f"m{i}", "namespace": f"acme:n{i}"}
                await ws.send(json.dumps(chat))
            refused = await receive(ws)
            assert refused["type"] == "error" and refused["code"] == "busy"
            assert gateway.in_flight == 2
            gate.set()
            answers = set()
            while len(answers) < 2:
                message, _ = await until(ws, "response")
                answers.add(message["message"])
            assert answers == {"echo: m0", "echo: m1"}


async def test_an_unnamed_chat_still_running_keeps_the_connection_open() -> None:
    """Two chats without a chat_id: when the first ends, the second still runs, so an
    idle client is waiting for it, not gone (the connection was closed with 4408)."""
    gate = anyio.Event()

    async def script(request: Any) -> str:
        text = echo(request)
        if text.endswith("slow"):
            await gate.wait()
        return text

    container = make_container(ScriptedProvider(script), gateway={"ws_idle_timeout": 0.5})
    async with live_server(container) as (base, _):
        url = base.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(url, additional_headers=auth(ALICE_KEY)) as ws:
            assert (await receive(ws))["type"] == "ready"
            await ws.send(json.dumps({"type": "chat", "message": "slow", "namespace": "acme:s"}))
            await ws.send(json.dumps({"type": "chat", "message": "fast", "namespace": "acme:f"}))
            fast, _ = await until(ws, "response")
            assert fast["message"] == "echo: fast"
            await anyio.sleep(1.5)  # three idle timeouts with the slow chat running
            gate.set()
            slow, _ = await until(ws, "response")
            assert slow["message"] == "echo: slow"


async def test_a_call_id_seen_again_in_a_later_chat_is_answered_by_call_id() -> None:
    """Model call ids repeat (a provider's ids may restart with each run). A request the
    connection saw and that is decided no longer waits, so the next chat's request with
    the same call id is the only pending one and ``call_id`` alone answers it."""

    def same_id(request: Any) -> Any:
        last = request.messages[-1]
        if not last.tool_results:
            return tool_calls(call("add", {"a": 2, "b": 3}, id="toolu_01"))
        return reply(f"the sum is {last.tool_results[0].content}")

    container = make_container(
        ScriptedProvider(same_id), tools=[add], approval={"enabled": True, "tools": ["add"]}
    )
    async with live_server(container) as (base, _):
        url = base.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(url, additional_headers=auth(ALICE_KEY)) as ws:
            assert (await receive(ws))["type"] == "ready"
            call_ids = []
            for chat_id, approved in (("first", True), ("second", False)):
                chat = {"type": "chat", "chat_id": chat_id, "message": "add", "namespace": "acme:a"}
                await ws.send(json.dumps(chat))
                request, _ = await until(ws, "tool_approval_request")
                assert request["chat_id"] == chat_id
                call_ids.append(request["call_id"])
                answer = {
                    "type": "tool_approval_response",
                    "call_id": request["call_id"],
                    "approved": approved,
                }
                await ws.send(json.dumps(answer))
                response, seen = await until(ws, "response")
                assert [m for m in seen if m["type"] == "error"] == []
                decided = next(m for m in seen if m["type"] == "tool_approval_decided")
                assert decided["approval_id"] == request["approval_id"]
                assert decided["status"] == ("approved" if approved else "denied")
                assert response["chat_id"] == chat_id
            assert call_ids[0] == call_ids[1]  # the premise: the model reused its call id
