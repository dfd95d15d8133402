"""Round 9 review: docs/gateway.md's newest endpoint (``DELETE /v1/namespaces/{ns}``), the
errors as JSON with a code, and the OpenAI SDK against a real loopback uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from dependency_injector import providers
from openai import APIStatusError, AsyncOpenAI

from orra_di.approvals.model import ApprovalRecord
from orra_di.containers import Container, lifespan
from orra_di.cron import AgentTurnPayload, CronJob, EverySchedule
from orra_di.documents import Document
from orra_di.gateway import create_app, hash_api_key
from orra_di.memory import MemoryManager
from orra_di.message import ToolCall
from orra_di.namespace import Namespace
from orra_di.provider import Usage
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio

ACME = "orra_round9-acme-key-0000000000000000000000000"
GLOBEX = "orra_round9-globex-key-00000000000000000000000"
KEYS = [
    {"name": "acme", "digest": hash_api_key(ACME), "tenant": "acme"},
    {"name": "globex", "digest": hash_api_key(GLOBEX), "tenant": "globex"},
]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def echo(request: Any) -> str:
    users = [m.content for m in request.messages if m.role.value == "user" and not m.tool_results]
    return f"echo: {users[-1]}"


def container_with(llm: Any, tmp_path: Path, **gateway: Any) -> Container:
    container = Container()
    settings = load_settings(
        store={"url": f"sqlite:///{tmp_path}/gw.db"},
        agents=[{"name": "Atlas"}],
        gateway={"api_keys": KEYS, **gateway},
    )
    container.settings.override(providers.Object(settings))
    container.llm.override(providers.Object(llm))
    return container


@asynccontextmanager
async def asgi(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan(container):
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


async def fill(container: Container, namespace: str) -> None:
    """One of every kind the erasure reports, under ``namespace``."""
    from orra_di.session import Session

    session = Session(namespace=Namespace.parse(namespace))
    await container.store().save(session)
    await MemoryManager(container.memory_store()).remember(namespace, "likes tea")
    await container.document_store().upsert(
        Document(id="handbook", namespace=namespace, title="Handbook", content="holidays")
    )
    await container.approval_store().add(
        ApprovalRecord.for_call(namespace, ToolCall(id="c1", name="rm", arguments={}), timeout=60)
    )
    await container.cron_store().add(
        CronJob(
            name="daily",
            schedule=EverySchedule(interval_ms=60_000),
            payload=AgentTurnPayload(prompt="report"),
            namespace=namespace,
        )
    )
    await container.usage_ledger().record(namespace, Usage(input_tokens=3, output_tokens=2))


@pytest.mark.parametrize("name", ["alice", "a_b", "o'brien", "sp ace", "ünï", "50%"])
async def test_erasing_a_namespace_over_http_reports_every_kind_and_spares_neighbours(
    tmp_path: Path, name: str
) -> None:
    container = container_with(ScriptedProvider(echo), tmp_path)
    async with asgi(container) as client:
        target, sibling = f"acme:{name}", f"acme:{name}x"
        for ns in (target, f"{target}:chat", sibling, f"globex:{name}"):
            await fill(container, ns)
        response = await client.delete(f"/v1/namespaces/{quote(target)}", headers=auth(ACME))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["namespace"] == target
        assert body["skipped"] == {}
        erased = body["erased"]
        for kind in ("sessions", "memories", "documents", "approvals", "cron jobs"):
            assert erased[kind] == 2, (kind, erased)
        assert erased["usage keys"] >= 2
        # the sibling whose name extends the target's, and the other tenant, are whole
        for ns in (sibling, f"globex:{name}"):
            assert await container.store().load(ns) is not None
            assert await MemoryManager(container.memory_store()).list(ns) != []
            assert await container.document_store().list([ns]) != []
            assert await container.cron_store().list(ns) != []
        again = await client.delete(f"/v1/namespaces/{quote(target)}", headers=auth(ACME))
        assert again.status_code == 200
        assert sum(again.json()["erased"].values()) == 0


async def test_another_tenants_namespace_is_not_found_and_keeps_everything(
    tmp_path: Path,
) -> None:
    container = container_with(ScriptedProvider(echo), tmp_path)
    async with asgi(container) as client:
        await fill(container, "globex:carol")
        for path in ("globex:carol", "globex", "acme/../globex"):
            response = await client.delete(f"/v1/namespaces/{path}", headers=auth(ACME))
            assert response.status_code in (400, 404), path
            assert response.json()["code"] in ("not_found", "bad_request")
        assert await container.store().load("globex:carol") is not None
        assert await MemoryManager(container.memory_store()).list("globex:carol") != []


@pytest.mark.parametrize("path", ["acme::x", "acme:%00x", "acme:"])
async def test_a_bad_namespace_to_erase_is_a_json_bad_request(tmp_path: Path, path: str) -> None:
    container = container_with(ScriptedProvider(echo), tmp_path)
    async with asgi(container) as client:
        response = await client.delete(f"/v1/namespaces/{path}", headers=auth(ACME))
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_request"


async def test_unknown_routes_and_methods_answer_json_with_a_code(tmp_path: Path) -> None:
    container = container_with(ScriptedProvider(echo), tmp_path)
    async with asgi(container) as client:
        missing = await client.get("/v1/nothing-here", headers=auth(ACME))
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        wrong = await client.get("/v1/namespaces/acme:alice", headers=auth(ACME))
        assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
        unauthorized = await client.delete("/v1/namespaces/acme:alice")
        assert unauthorized.status_code == 401
        assert unauthorized.json()["code"] == "unauthorized"


# -- the OpenAI SDK against a real server ------------------------------------------------


@asynccontextmanager
async def live(container: Container) -> AsyncIterator[str]:
    import uvicorn

    from orra_di.gateway.cli import uvicorn_config

    async with lifespan(container):
        app = create_app(container)
        settings = container.settings().gateway
        server = uvicorn.Server(uvicorn_config(app, settings, "127.0.0.1", 0))
        async with anyio.create_task_group() as tg:
            tg.start_soon(server._serve)  # no signal capture inside a test
            with anyio.fail_after(20):
                while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
                    await anyio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            try:
                yield f"http://127.0.0.1:{port}/v1"
            finally:
                server.should_exit = True
                await app.state.gateway.drain(10)


async def test_the_openai_sdk_over_loopback_keeps_sessions_under_the_tenant(
    tmp_path: Path,
) -> None:
    container = container_with(ScriptedProvider(echo), tmp_path, max_body_bytes=4096)
    async with (
        live(container) as base,
        AsyncOpenAI(base_url=base, api_key=ACME, max_retries=0) as client,
    ):
        raw = await client.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "first"}], user="chat-1"
        )
        assert raw.headers["x-orra-session"] == "acme:chat-1"
        assert raw.parse().choices[0].message.content == "echo: first"
        # another tenant's name given as the session lands under the caller's tenant
        raw = await client.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "sneaky"}], user="globex:carol"
        )
        assert raw.headers["x-orra-session"] == "acme:globex:carol"
        # streamed, continuing the first session through the header
        stream = await client.chat.completions.create(
            model="Atlas",
            messages=[{"role": "user", "content": "second"}],
            stream=True,
            extra_headers={"X-Orra-Session": "acme:chat-1"},
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "echo: second"
        session = await container.store().load("acme:chat-1")
        assert session is not None
        assert [m.content for m in session.messages if m.role.value == "user"] == [
            "first",
            "second",
        ]
        assert await container.store().load("globex:carol") is None
        with pytest.raises(APIStatusError) as unknown:
            await client.chat.completions.create(
                model="Nobody", messages=[{"role": "user", "content": "x"}]
            )
        assert unknown.value.status_code == 404
        with pytest.raises(APIStatusError) as too_big:
            await client.chat.completions.create(
                model="Atlas", messages=[{"role": "user", "content": "x" * 5000}]
            )
        assert too_big.value.status_code == 413


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the environment out of the settings the tests build."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
