"""Two ``orra-di serve`` replicas on one PostgreSQL (and one Redis): requests alternate
between them on one session without loss or interleaving, and a WebSocket client of one
replica sees the runs the other serves (through NOTIFY / pub/sub)."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

import orra_di

BOUND = 60

APP = """
import json, os
from dependency_injector import providers
from orra_di.containers import Container
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider

from orra_di.testing import call, reply, tool_calls
from orra_di.tool import tool

@tool
def add(a: int, b: int) -> str:
    "Add two numbers."
    return str(a + b)

def echo(request):
    last = request.messages[-1]
    if last.tool_results:
        return reply("the sum is " + last.tool_results[0].content)
    if last.content == "add":
        return tool_calls(call("add", {"a": 2, "b": 3}))
    users = [m.content for m in request.messages if m.role.value == "user" and not m.tool_results]
    return "echo: " + users[-1]

def make():
    container = Container()
    options = json.loads(os.environ["TEST_STORE_OPTIONS"])
    url = os.environ["ORRA_STORE__URL"]
    container.store.override(providers.Singleton(open_store, url, **options))
    container.llm.override(providers.Object(ScriptedProvider(echo, delay=0.02)))
    container.tool_factory.override(providers.Object(lambda profile: [add]))
    return container
"""


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.service),
        pytest.param("redis", marks=pytest.mark.service),
    ]
)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    if request.param == "postgres":
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield POSTGRES_URL, {"schema": schema}
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        require_redis()
        from redis.asyncio import Redis

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield REDIS_URL, {"key_prefix": prefix}
        client = Redis.from_url(REDIS_URL)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()


@contextmanager
def replicas(tmp_path: Path, url: str, options: dict[str, Any], count: int) -> Iterator[list[str]]:
    (tmp_path / "repapp.py").write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        PYTHONPATH=f"{Path(orra_di.__file__).resolve().parent.parent}{os.pathsep}{tmp_path}",
        ORRA_STORE__URL=url,
        ORRA_GATEWAY__PORT="0",
        ORRA_APPROVAL__ENABLED="true",
        ORRA_APPROVAL__TOOLS='["add"]',
        TEST_STORE_OPTIONS=json.dumps(options),
        NO_COLOR="1",
        COLUMNS="250",
    )
    processes: list[subprocess.Popen[str]] = []
    urls: list[str] = []
    try:
        for _ in range(count):
            process = subprocess.Popen(
                [sys.executable, "-c", "from orra_di.cli import main; main()",
                 "--container", "repapp:make", "serve"],
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )  # fmt: skip
            processes.append(process)
        for process in processes:
            assert process.stderr is not None
            deadline = time.monotonic() + BOUND
            for line in process.stderr:
                found = re.search(r"listening on (http://\S+)", line)
                if found:
                    urls.append(found.group(1))
                    break
                assert time.monotonic() < deadline
            else:
                raise AssertionError(f"a replica did not start: {process.communicate()}")
        yield urls
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.communicate(timeout=BOUND)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@pytest.mark.anyio
async def test_two_replicas_share_one_session_and_their_events(
    backend: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = backend
    with replicas(tmp_path, url, options, 2) as (a, b):
        ws_url = b.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(ws_url) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(json.dumps({"type": "subscribe", "namespace": "rep"}))
            assert json.loads(await ws.recv()) == {"type": "subscribed", "namespace": "rep"}
            async with httpx.AsyncClient(timeout=BOUND) as client:

                async def ask(i: int) -> None:
                    base = (a, b)[i % 2]  # alternate between the replicas
                    response = await client.post(
                        f"{base}/v1/chat", json={"message": f"q{i}", "namespace": "rep:one"}
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["message"] == f"echo: q{i}"

                async with anyio.create_task_group() as tg:
                    for i in range(12):
                        tg.start_soon(ask, i)
                session = (await client.get(f"{a}/v1/sessions/rep:one")).json()
            contents = [m["content"] for m in session["messages"]]
            assert sorted(contents[0::2]) == sorted(f"q{i}" for i in range(12))
            assert contents[1::2] == [f"echo: {q}" for q in contents[0::2]]  # contiguous turns
            answered: set[str] = set()
            with anyio.fail_after(BOUND):
                while len(answered) < 12:
                    message = json.loads(await ws.recv())
                    if message["type"] == "response":
                        assert message["chat_id"] is None and message["namespace"] == "rep:one"
                        answered.add(message["message"])
            assert answered == {f"echo: q{i}" for i in range(12)}  # A's runs reached B's client

            # a run on A waits for an approval; B's subscriber is told, B answers it
            async with httpx.AsyncClient(timeout=BOUND) as client:
                streamed: dict[str, str] = {}

                async def chat_on_a() -> None:
                    response = await client.post(
                        f"{a}/v1/chat/stream", json={"message": "add", "namespace": "rep:two"}
                    )
                    streamed["text"] = response.text

                async with anyio.create_task_group() as tg:
                    tg.start_soon(chat_on_a)
                    with anyio.fail_after(BOUND):
                        while True:
                            message = json.loads(await ws.recv())
                            if message["type"] == "tool_approval_request":
                                break
                    assert message["namespace"] == "rep:two" and message["tool_name"] == "add"
                    answer = await client.post(
                        f"{b}/v1/approvals/{message['approval_id']}", json={"approved": True}
                    )
                    assert answer.json()["status"] == "approved"
            assert "event: end" in streamed["text"] and "the sum is 5" in streamed["text"]
