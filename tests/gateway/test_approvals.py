"""Approvals over the wire: the stream announces the wait, a REST call or a WS reply answers."""

from __future__ import annotations

import json

import anyio
import pytest
import websockets

from orra_di.testing import ScriptedProvider
from orra_di.tool import tool

from .helpers import ALICE_KEY, BOB_KEY, adder, auth, client_for, make_container, sse_events
from .live import live_server

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> str:
    """Add two numbers."""
    return str(a + b)


def approving_container() -> object:
    return make_container(
        ScriptedProvider(adder), tools=[add], approval={"enabled": True, "tools": ["add"]}
    )


async def test_the_stream_announces_the_approval_and_a_rest_answer_releases_the_call() -> None:
    container = approving_container()
    async with client_for(container) as client:
        body: dict[str, str] = {}

        async def chat() -> None:
            response = await client.post(
                "/v1/chat/stream",
                json={"message": "add", "namespace": "acme:alice"},
                headers=auth(ALICE_KEY),
            )
            body["text"] = response.text

        async with anyio.create_task_group() as tg:
            tg.start_soon(chat)
            with anyio.fail_after(10):
                while True:
                    pending = (await client.get("/v1/approvals", headers=auth(ALICE_KEY))).json()[
                        "approvals"
                    ]
                    if pending:
                        break
                    await anyio.sleep(0.02)
            request = pending[0]
            assert request["tool_name"] == "add" and request["arguments"] == {"a": 2, "b": 3}
            # another tenant neither sees nor answers it
            other = await client.get("/v1/approvals", headers=auth(BOB_KEY))
            assert other.json() == {"approvals": []}
            refused = await client.post(
                f"/v1/approvals/{request['id']}", json={"approved": True}, headers=auth(BOB_KEY)
            )
            assert refused.status_code == 404
            bad = await client.post(
                f"/v1/approvals/{request['id']}",
                json={"approved": "yes"},
                headers=auth(ALICE_KEY),
            )
            assert bad.status_code == 400
            answer = await client.post(
                f"/v1/approvals/{request['id']}",
                json={"approved": True, "reason": "fine"},
                headers=auth(ALICE_KEY),
            )
            assert answer.status_code == 200
            assert answer.json()["status"] == "approved"
            assert answer.json()["decided_by"] == "gateway:alice"
        events = sse_events(body["text"])
        names = [name for name, _ in events]
        announced = next(data for name, data in events if name == "tool_approval_request")
        assert announced["id"] == request["id"]
        assert names.index("tool_approval_request") < names.index("tool_call_completed")
        assert events[-1][1]["message"] == "the sum is 5"


async def test_a_websocket_client_answers_the_approval_it_is_shown() -> None:
    container = approving_container()
    async with live_server(container) as (url, _):
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url, additional_headers=auth(ALICE_KEY)) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(
                json.dumps({"type": "chat", "chat_id": 1, "message": "add", "namespace": "acme:w"})
            )
            with anyio.fail_after(10):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "tool_approval_request":
                        break
            assert message["tool_name"] == "add" and message["chat_id"] == 1
            await ws.send(
                json.dumps(
                    {
                        "type": "tool_approval_response",
                        "call_id": message["call_id"],
                        "approved": False,
                    }
                )
            )
            rest = []
            with anyio.fail_after(10):
                while not rest or rest[-1]["type"] != "response":
                    rest.append(json.loads(await ws.recv()))
        decided = next(m for m in rest if m["type"] == "tool_approval_decided")
        assert decided["status"] == "denied" and decided["call_id"] == message["call_id"]
        completed = next(m for m in rest if m["type"] == "tool_call_completed")
        assert completed["is_error"] is True and "denied" in completed["content"]


async def test_a_cron_announcement_reaches_websocket_subscribers_and_the_home_session() -> None:
    from orra_di.cron.model import AgentTurnPayload, CronJob
    from orra_di.cron.schedule import EverySchedule
    from orra_di.gateway.cli import announce_over_the_gateway
    from orra_di.testing import ScriptedProvider

    from .helpers import echo

    container = make_container(ScriptedProvider(echo), cron={"enabled": True})
    async with live_server(container) as (url, gateway):
        announce_over_the_gateway(container, gateway)
        service = container.cron_service()
        job = await service.add_job(
            CronJob(
                name="daily", schedule=EverySchedule(interval_ms=3_600_000),
                payload=AgentTurnPayload(prompt="summarise"), namespace="acme:team",
            )
        )  # fmt: skip
        ws_url = url.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url, additional_headers=auth(ALICE_KEY)) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe"}))
            assert json.loads(await ws.recv()) == {"type": "subscribed", "namespace": "acme"}
            await service.run_now(job.id)
            with anyio.fail_after(10):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "announcement":
                        break
        assert message == {
            "type": "announcement", "chat_id": None, "namespace": "acme:team",
            "job_id": job.id, "job_name": "daily", "message": "echo: summarise",
        }  # fmt: skip
        home = await container.store().load("acme:team")
        assert home.messages[-1].content == "echo: summarise"
