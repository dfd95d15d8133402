"""Outside review of docs/gateway.md: each claim checked through HTTP, as a client sees it.

The gateway runs in process (httpx ``ASGITransport`` against ``create_app``) on the
memory store; the official ``openai`` SDK is pointed at the same transport.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from dependency_injector import providers
from openai import AsyncOpenAI, NotFoundError

from orra_di.containers import Container, lifespan
from orra_di.gateway import create_app, hash_api_key
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio

ACME = "orra_review-acme-key-000000000000000000000000"
ALICE = "orra_review-acme-alice-key-000000000000000000"
GLOBEX = "orra_review-globex-key-0000000000000000000000"
ROOT = "orra_review-operator-key-000000000000000000000"
KEYS = [
    {"name": "acme-admin", "digest": hash_api_key(ACME), "tenant": "acme"},
    {"name": "alice", "digest": hash_api_key(ALICE), "tenant": "acme:alice"},
    {"name": "globex", "digest": hash_api_key(GLOBEX), "tenant": "globex"},
    {"name": "ops", "digest": hash_api_key(ROOT), "tenant": None},
]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def echo(request: Any) -> str:
    users = [m.content for m in request.messages if m.role.value == "user" and not m.tool_results]
    return f"echo: {users[-1]}"


def container_with(llm: Any, **settings: Any) -> Container:
    container = Container()
    values: dict[str, Any] = {
        "store": settings.pop("store", {"url": "memory://"}),
        "agents": [{"name": "Atlas"}, {"name": "Scribe"}],
        "gateway": {"api_keys": KEYS, **settings.pop("gateway", {})},
        **settings,
    }
    container.settings.override(providers.Object(load_settings(**values)))
    container.llm.override(providers.Object(llm))
    return container


@asynccontextmanager
async def served(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    async with lifespan(container):
        transport = httpx.ASGITransport(app=create_app(container))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client


async def seed(client: httpx.AsyncClient, key: str, namespace: str, text: str = "hi") -> None:
    response = await client.post(
        "/v1/chat", json={"message": text, "namespace": namespace}, headers=auth(key)
    )
    assert response.status_code == 200, response.text


# -- tenant isolation -------------------------------------------------------------------------


async def test_another_tenants_session_is_a_404_indistinguishable_from_a_missing_one() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        await seed(client, ACME, "acme:alice")
        theirs = await client.get("/v1/sessions/acme:alice", headers=auth(GLOBEX))
        missing = await client.get("/v1/sessions/globex:nobody", headers=auth(GLOBEX))
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["code"] == missing.json()["code"] == "not_found"
        # the texts differ only by the name the client itself sent
        assert theirs.json()["error"].replace("acme:alice", "X") == missing.json()["error"].replace(
            "globex:nobody", "X"
        )
        gone = await client.delete("/v1/sessions/acme:alice", headers=auth(GLOBEX))
        assert gone.status_code == 404
        # percent-encoded or dotted spellings reach no other tenant either
        dotted = ("/v1/sessions/globex/../acme:alice", "/v1/sessions/globex%2F..%2Facme:alice")
        for path in ("/v1/sessions/acme%3Aalice", *dotted):
            probe = await client.get(path, headers=auth(GLOBEX))
            assert probe.status_code == 404, (path, probe.text)
        assert (await client.get("/v1/sessions/acme:alice", headers=auth(ACME))).status_code == 200


async def test_a_sub_tenant_key_cannot_delete_or_read_its_tenant_root() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        await seed(client, ACME, "acme")
        await seed(client, ACME, "acme:bob")
        await seed(client, ALICE, "acme:alice:chat")
        for tree in ("false", "true"):
            response = await client.delete(f"/v1/sessions/acme?tree={tree}", headers=auth(ALICE))
            assert response.status_code == 404, response.text
        assert (await client.get("/v1/sessions/acme", headers=auth(ALICE))).status_code == 404
        assert (await client.get("/v1/sessions/acme:bob", headers=auth(ALICE))).status_code == 404
        listed = await client.get("/v1/sessions", params={"prefix": "acme"}, headers=auth(ALICE))
        assert listed.json()["sessions"] == ["acme:alice:chat"]
        everything = await client.get("/v1/sessions", headers=auth(ACME))
        assert sorted(everything.json()["sessions"]) == ["acme", "acme:alice:chat", "acme:bob"]


async def test_a_tenant_is_whole_segments_not_a_string_prefix() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        await seed(client, ROOT, "acmeother:x")
        await seed(client, ACME, "acme:x")
        forbidden = await client.post(
            "/v1/chat", json={"message": "hi", "namespace": "acmeother:y"}, headers=auth(ACME)
        )
        assert forbidden.status_code == 403
        assert forbidden.json()["code"] == "namespace_forbidden"
        for params in ({}, {"prefix": "acme"}, {"prefix": "acmeother"}, {"prefix": "acm"}):
            listed = await client.get("/v1/sessions", params=params, headers=auth(ACME))
            assert "acmeother:x" not in listed.json()["sessions"], params
        assert (await client.get("/v1/sessions/acmeother:x", headers=auth(ACME))).status_code == 404
        tree = await client.delete("/v1/sessions/acme?tree=true", headers=auth(ACME))
        assert tree.status_code == 200 and tree.json()["deleted"] == 1
        assert (await client.get("/v1/sessions/acmeother:x", headers=auth(ROOT))).status_code == 200


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic " + ACME,
        "Bearer " + ACME + "x",
        "Bearer " + ACME[:-1],
        "Bearer " + ACME.upper(),
        "Bearer " + "x" * 60_000,  # a huge header is just a wrong key
        "Bearer " + ACME + " " + ACME,
    ],
)
async def test_a_missing_or_wrong_key_is_401_and_stores_nothing(header: str | None) -> None:
    container = container_with(ScriptedProvider(echo))
    async with served(container) as client:
        headers = {"Authorization": header} if header is not None else {}
        response = await client.post(
            "/v1/chat", json={"message": "hi", "namespace": "acme:x"}, headers=headers
        )
        assert response.status_code == 401
        assert response.json()["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
        assert ACME not in response.text
        assert await container.store().list(None) == []


async def test_a_key_with_surrounding_whitespace_or_a_lower_case_scheme_is_accepted() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        for header in (f"bearer {ACME}", f"Bearer   {ACME}  ", f"BEARER {ACME}\t"):
            response = await client.get("/v1/sessions", headers={"Authorization": header})
            assert response.status_code == 200, (header, response.text)


# -- hostile or careless bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"message=hi", "application/x-www-form-urlencoded"),
        (b'{"message": "hi"', "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b'["hi"]', "application/json"),
        (b'{"message": "hi", "namespace": "acme:"}', "application/json"),
        (b'{"message": "hi", "namespace": "acme::x"}', "application/json"),
        (b'{"message": "hi", "namespace": "acme:\\u0000x"}', "application/json"),
        (b'{"message": "hi", "namespace": "acme:\\ud800"}', "application/json"),
        (b'{"message": "hi", "namespace": 5}', "application/json"),
        (b'{"message": "hi", "namespace": ""}', "application/json"),
        (b'{"message": "   "}', "application/json"),
        (b'{"message": "hi", "stream": true}', "application/json"),
        (b'{"message": "hi", "agent": "nobody"}', "application/json"),
    ],
)
async def test_bad_bodies_get_a_json_error_with_a_documented_code(
    body: bytes, content_type: str
) -> None:
    container = container_with(ScriptedProvider(echo))
    async with served(container) as client:
        response = await client.post(
            "/v1/chat", content=body, headers={**auth(ACME), "content-type": content_type}
        )
        assert response.status_code in (400, 404), response.text
        assert response.json()["code"] in ("bad_request", "unknown_agent")
        assert await container.store().list(None) == []


async def test_namespaces_with_dots_slashes_and_unicode_round_trip_through_urls() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        for name in ("acme:../../etc", "acme:a/b", "acme:ünïcödé 🙂", "acme:a?b#c", "acme:%2F"):
            await seed(client, ACME, name)
            path = "/v1/sessions/" + quote(name, safe=":")
            shown = await client.get(path, headers=auth(ACME))
            assert shown.status_code == 200, (name, shown.text)
            assert shown.json()["namespace"] == name
        listed = await client.get("/v1/sessions", headers=auth(ACME))
        assert len(listed.json()["sessions"]) == 5


async def test_an_oversized_chunked_body_is_refused() -> None:
    container = container_with(ScriptedProvider(echo), gateway={"max_body_bytes": 2048})

    async def body() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    async with served(container) as client:
        response = await client.post("/v1/chat", content=body(), headers=auth(ACME))
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert await container.store().list(None) == []


# -- runs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_concurrent_chats_on_one_session_wait_for_each_other_and_never_interleave(
    backend: str, tmp_path: Any
) -> None:
    async def slow(request: Any) -> str:
        await anyio.sleep(0.05)
        return echo(request)

    url = "memory://" if backend == "memory" else f"sqlite:///{tmp_path}/s.db"
    container = container_with(ScriptedProvider(slow), store={"url": url})
    async with served(container) as client:
        answers: list[httpx.Response] = []

        async def one(i: int) -> None:
            answers.append(
                await client.post(
                    "/v1/chat",
                    json={"message": f"m{i}", "namespace": "acme:busy"},
                    headers=auth(ACME),
                )
            )

        async with anyio.create_task_group() as tg:
            for i in range(4):
                tg.start_soon(one, i)
        assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
        session = await container.store().load("acme:busy")
        contents = [m.content for m in session.messages]
        assert len(contents) == 8
        for user, assistant in zip(contents[::2], contents[1::2], strict=True):
            assert assistant == f"echo: {user}"


async def test_the_stream_ends_with_an_error_event_when_the_run_times_out() -> None:
    container = container_with(ScriptedProvider(echo, delay=5), gateway={"request_timeout": 0.2})
    async with served(container) as client:
        response = await client.post(
            "/v1/chat/stream", json={"message": "hi", "namespace": "acme:t"}, headers=auth(ACME)
        )
        lines = response.text.splitlines()
        names = [line[6:].strip() for line in lines if line.startswith("event:")]
        assert names[0] == "start" and names[-1] == "error"
        last = response.text.strip().splitlines()[-1]
        assert json.loads(last[5:])["code"] == "timeout"


def documented_codes() -> set[str]:
    import re
    from pathlib import Path

    doc = Path(__file__).parents[2].joinpath("docs", "gateway.md").read_text()
    listing = doc[doc.index("Every error is JSON with a code") :]
    listing = listing[: listing.index("Bad input")]
    return set(re.findall(r"`([a-z_]+)`", listing))


async def test_the_codes_clients_meet_are_in_the_documented_list() -> None:
    from orra_di.errors import ConfigurationError

    container = container_with(ScriptedProvider([ConfigurationError("no such thing")]))
    seen = set()
    async with served(container) as client:
        failed = await client.post("/v1/chat", json={"message": "hi"}, headers=auth(ACME))
        assert failed.status_code == 500
        seen.add(failed.json()["code"])
        seen.add((await client.put("/v1/chat", headers=auth(ACME))).json()["code"])
        seen.add((await client.get("/v1/nowhere")).json()["code"])
        seen.add((await client.get("/v1/sessions")).json()["code"])
        nobody = {"message": "x", "agent": "no"}
        seen.add((await client.post("/v1/chat", json=nobody, headers=auth(ACME))).json()["code"])
    assert seen <= documented_codes(), seen - documented_codes()


# -- approvals --------------------------------------------------------------------------------


async def test_an_approval_is_answered_once_and_only_by_its_tenant() -> None:
    from orra_di.testing import call, reply, tool_calls
    from orra_di.tool import tool

    @tool
    def wipe(target: str) -> str:
        """Wipe something."""
        return f"wiped {target}"

    def model(request: Any) -> Any:
        last = request.messages[-1]
        if not last.tool_results:
            return tool_calls(call("wipe", {"target": "disk"}))
        return reply(f"done: {last.tool_results[0].content}")

    container = container_with(
        ScriptedProvider(model),
        approval={"enabled": True, "tools": ["wipe"]},
    )
    container.tool_factory.override(providers.Object(lambda profile: [wipe]))
    async with served(container) as client:
        async with anyio.create_task_group() as tg:
            results: list[httpx.Response] = []

            async def run() -> None:
                results.append(
                    await client.post(
                        "/v1/chat",
                        json={"message": "wipe it", "namespace": "acme:ops"},
                        headers=auth(ACME),
                    )
                )

            tg.start_soon(run)
            with anyio.fail_after(10):
                while True:
                    pending = (await client.get("/v1/approvals", headers=auth(ACME))).json()
                    if pending["approvals"]:
                        break
                    await anyio.sleep(0.02)
            approval = pending["approvals"][0]
            assert approval["tool_name"] == "wipe" and approval["namespace"] == "acme:ops"
            assert (await client.get("/v1/approvals", headers=auth(GLOBEX))).json() == {
                "approvals": []
            }
            foreign = await client.post(
                f"/v1/approvals/{approval['id']}", json={"approved": True}, headers=auth(GLOBEX)
            )
            assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
            answered = await client.post(
                f"/v1/approvals/{approval['id']}", json={"approved": True}, headers=auth(ACME)
            )
            assert answered.status_code == 200, answered.text
            assert answered.json()["decided_by"] == "gateway:acme-admin"
        assert results[0].json()["message"] == "done: wiped disk"
        again = await client.post(
            f"/v1/approvals/{approval['id']}", json={"approved": False}, headers=auth(ACME)
        )
        # an answer to a decided request changes nothing and says what was decided
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "approved"
        bogus = await client.post(
            "/v1/approvals/not-an-id", json={"approved": True}, headers=auth(ACME)
        )
        assert bogus.status_code == 404 and bogus.json()["code"] == "not_found"


# -- the OpenAI API ---------------------------------------------------------------------------


def sdk(client: httpx.AsyncClient, key: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url="http://gw/v1", api_key=key, http_client=client, max_retries=0)


async def test_the_openai_sdk_continues_the_session_its_response_header_names() -> None:
    container = container_with(ScriptedProvider(echo))
    async with served(container) as client:
        openai = sdk(client, ACME)
        first = await openai.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "one"}]
        )
        session = first.headers["x-orra-session"]
        assert session.startswith("acme:")
        # the doc: "the namespace used comes back in the X-Orra-Session header"; a client
        # that sends it back continues that conversation
        second = await openai.chat.completions.with_raw_response.create(
            model="Atlas",
            messages=[{"role": "user", "content": "two"}],
            extra_headers={"X-Orra-Session": session},
        )
        assert second.headers["x-orra-session"] == session
        stored = await container.store().load(session)
        assert [m.content for m in stored.messages] == ["one", "echo: one", "two", "echo: two"]


async def test_the_openai_sdk_with_a_history_streams_and_maps_errors() -> None:
    model = ScriptedProvider(echo)
    container = container_with(model)
    async with served(container) as client:
        openai = sdk(client, ACME)
        history = [
            {"role": "system", "content": "you are a pirate"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "whatever the client says"},
            {"role": "user", "content": [{"type": "text", "text": "sec"},
                                         {"type": "text", "text": "ond"}]},
        ]  # fmt: skip
        stream = await openai.chat.completions.create(
            model="scribe", messages=history, user="c1", stream=True,
            stream_options={"include_usage": True}, temperature=0.1,
        )  # fmt: skip
        text = ""
        usage = None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                usage = chunk.usage
        assert text == "echo: second"
        assert usage is not None
        stored = await container.store().load("acme:c1")
        assert [m.content for m in stored.messages] == ["second", "echo: second"]
        assert all("pirate" not in str(m.content) for r in model.requests for m in r.messages)
        with pytest.raises(NotFoundError):
            await openai.chat.completions.create(
                model="nobody", messages=[{"role": "user", "content": "x"}]
            )
        other = sdk(client, GLOBEX)
        mine = await other.chat.completions.with_raw_response.create(
            model="Atlas", messages=[{"role": "user", "content": "x"}], user="acme:c1"
        )
        assert mine.headers["x-orra-session"].startswith("globex:")
        assert len((await container.store().load("acme:c1")).messages) == 2


# -- secrets ----------------------------------------------------------------------------------


async def test_keys_never_reach_logs_errors_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    from orra_di.gateway.settings import ApiKeySettings

    caplog.set_level(logging.DEBUG)
    container = container_with(ScriptedProvider([RuntimeError(f"boom {ACME}")]))
    async with served(container) as client:
        await client.post("/v1/chat", json={"message": "hi"}, headers=auth(ACME + "wrong"))
        failed = await client.post("/v1/chat", json={"message": "hi"}, headers=auth(ROOT))
        assert failed.status_code == 500 and ACME not in failed.text
    assert ROOT not in caplog.text and ACME + "wrong" not in caplog.text
    entry = ApiKeySettings(name="x", digest=hash_api_key(ACME), tenant="acme")
    assert ACME not in repr(entry)


def test_a_digest_or_a_key_pasted_as_one_stays_out_of_config_and_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import os

    from typer.testing import CliRunner

    from orra_di.cli import app

    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    digest = hash_api_key(ACME)
    good = [{"name": "acme-admin", "digest": digest, "tenant": "acme"}]
    monkeypatch.setenv("ORRA_GATEWAY__API_KEYS", json.dumps(good))
    shown = CliRunner().invoke(app, ["config"])
    assert shown.exit_code == 0, shown.output
    assert "acme-admin" in shown.stdout
    assert digest[7:23] not in shown.stdout.replace("\n", "").replace("│", "").replace(" ", "")
    # the careless case: the key itself pasted where its digest goes
    for entry in (
        {"name": "a", "digest": ACME, "tenant": "acme"},
        {"digest": ACME, "tenant": "acme"},  # a missing name: its error shows the entry
    ):
        monkeypatch.setenv("ORRA_GATEWAY__API_KEYS", json.dumps([entry]))
        failed = CliRunner().invoke(app, ["config"])
        assert failed.exit_code == 1
        assert "gateway.api_keys" in failed.output
        assert ACME not in failed.output.replace("\n", "")


# -- live: WebSocket and a stream left unread, on uvicorn as `orra-di serve` configures it ----


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
                yield f"127.0.0.1:{port}"
            finally:
                server.should_exit = True
                await app.state.gateway.drain(10)


async def next_of(ws: Any, kind: str) -> dict[str, Any]:
    with anyio.fail_after(10):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message  # type: ignore[no-any-return]


async def test_websocket_tenants_subscriptions_and_oversized_messages() -> None:
    import websockets

    container = container_with(ScriptedProvider(echo), gateway={"max_body_bytes": 2048})
    async with live(container) as where:
        url = f"ws://{where}/v1/ws"
        async with (
            websockets.connect(url, additional_headers=auth(GLOBEX)) as globex,
            websockets.connect(url) as acme,
            httpx.AsyncClient(base_url=f"http://{where}") as http,
        ):
            await acme.send(json.dumps({"type": "auth", "api_key": f"  {ACME} "}))
            assert json.loads(await acme.recv()) == {"type": "ready", "tenant": "acme"}
            assert json.loads(await globex.recv()) == {"type": "ready", "tenant": "globex"}
            await globex.send(json.dumps({"type": "subscribe", "namespace": "acme"}))
            refused = await next_of(globex, "error")
            assert refused["code"] == "namespace_forbidden"
            await globex.send(json.dumps({"type": "subscribe"}))
            assert (await next_of(globex, "subscribed"))["namespace"] == "globex"
            await acme.send(json.dumps({"type": "subscribe"}))
            await next_of(acme, "subscribed")
            await seed(http, ACME, "acme:x", "secret plans")
            seen = await next_of(acme, "response")
            assert seen["namespace"] == "acme:x" and seen["message"] == "echo: secret plans"
            # a message over the limit is answered, and the connection stays open
            await acme.send(json.dumps({"type": "ping", "pad": "é" * 1500}, ensure_ascii=False))
            assert (await next_of(acme, "error"))["code"] == "payload_too_large"
            await acme.send(json.dumps({"type": "ping"}))
            await next_of(acme, "pong")
            await seed(http, GLOBEX, "globex:y", "own")
            mine = await next_of(globex, "response")
            assert mine["namespace"] == "globex:y"  # acme's run never reached globex


async def test_an_openai_stream_the_client_stops_reading_still_stores_the_run() -> None:
    gate = anyio.Event()

    async def slow(request: Any) -> str:
        await gate.wait()
        return "the long answer " * 50

    container = container_with(ScriptedProvider(slow, chunk_size=4))
    async with live(container) as where:
        openai = AsyncOpenAI(base_url=f"http://{where}/v1", api_key=ACME, max_retries=0)
        stream = await openai.chat.completions.create(
            model="Atlas", messages=[{"role": "user", "content": "go"}], user="s1", stream=True
        )
        async for _chunk in stream:
            break  # the role chunk, then the client walks away
        await stream.close()
        await openai.close()
        gate.set()
        gateway_done = anyio.fail_after(10)
        with gateway_done:
            while True:
                session = await container.store().load("acme:s1")
                if session is not None and len(session.messages) == 2:
                    break
                await anyio.sleep(0.02)
        assert session.messages[1].content == "the long answer " * 50


async def test_after_a_timeout_the_session_is_whole_and_takes_the_next_chat() -> None:
    calls: list[str] = []

    async def first_slow(request: Any) -> str:
        calls.append("x")
        if len(calls) == 1:
            await anyio.sleep(5)
        return echo(request)

    container = container_with(ScriptedProvider(first_slow), gateway={"request_timeout": 0.3})
    async with served(container) as client:
        timed_out = await client.post(
            "/v1/chat", json={"message": "slow", "namespace": "acme:t"}, headers=auth(ACME)
        )
        assert timed_out.status_code == 504 and timed_out.json()["code"] == "timeout"
        nxt = await client.post(
            "/v1/chat", json={"message": "fast", "namespace": "acme:t"}, headers=auth(ACME)
        )
        assert nxt.status_code == 200, nxt.text
        assert nxt.json()["message"] == "echo: fast"
        shown = (await client.get("/v1/sessions/acme:t", headers=auth(ACME))).json()
        assert [m["content"] for m in shown["messages"]][-2:] == ["fast", "echo: fast"]


async def test_a_plain_chat_whose_client_hangs_up_is_still_stored() -> None:
    gate = anyio.Event()

    async def slow(request: Any) -> str:
        await gate.wait()
        return "kept"

    container = container_with(ScriptedProvider(slow))
    async with live(container) as where:
        async with httpx.AsyncClient(base_url=f"http://{where}", timeout=0.3) as http:
            with pytest.raises(httpx.TimeoutException):
                await http.post(
                    "/v1/chat", json={"message": "hi", "namespace": "acme:gone"}, headers=auth(ACME)
                )
        gate.set()
        with anyio.fail_after(10):
            while True:
                session = await container.store().load("acme:gone")
                if session is not None and len(session.messages) == 2:
                    break
                await anyio.sleep(0.02)
        assert session.messages[1].content == "kept"


def test_the_operator_key_entry_new_key_prints_is_accepted_as_it_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    import os

    from typer.testing import CliRunner

    from orra_di.cli import app

    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    made = CliRunner().invoke(app, ["gateway", "new-key", "ops"])  # no --tenant: operator
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    entry = made.stderr[made.stderr.index("[[gateway.api_keys]]") :].split("\n\n")[0]
    (tmp_path / "orra.toml").write_text(entry + "\n")
    settings = load_settings()
    assert [k.name for k in settings.gateway.api_keys] == ["ops"]
    from orra_di.gateway.auth import KeyRing

    caller = KeyRing(settings.gateway.api_keys).authenticate(key)
    assert caller is not None and caller.tenant is None


async def test_an_agent_over_the_gateway_searches_only_its_tenants_documents() -> None:
    from orra_di.documents import Document
    from orra_di.testing import call, reply, tool_calls

    def model(request: Any) -> Any:
        last = request.messages[-1]
        if not last.tool_results:  # a model trying to widen its search
            return tool_calls(call("search_documents", {"query": "vacation", "namespace": "*"}))
        return reply(last.tool_results[0].content)

    container = container_with(ScriptedProvider(model), documents={"tools": True})
    async with served(container) as client:
        store = container.document_store()
        for namespace, text in (("acme", "Acme: 25 vacation days"), ("globex", "Globex: 40")):
            await store.upsert(
                Document(id="h", namespace=namespace, title="H", content=text + " vacation")
            )
        answer = await client.post(
            "/v1/chat", json={"message": "days?", "namespace": "acme:alice"}, headers=auth(ACME)
        )
        assert answer.status_code == 200, answer.text
        assert "Acme: 25" in answer.json()["message"]
        assert "Globex" not in answer.json()["message"]


async def test_whoami_names_the_callers_tenant_and_key() -> None:
    async with served(container_with(ScriptedProvider(echo))) as client:
        me = await client.get("/v1/whoami", headers=auth(ALICE))
        assert me.json() == {"tenant": "acme:alice", "key": "alice"}
        ops = await client.get("/v1/whoami", headers=auth(ROOT))
        assert ops.json() == {"tenant": None, "key": "ops"}
        assert (await client.get("/v1/whoami")).status_code == 401


async def test_a_websocket_answers_only_its_own_tenants_approvals() -> None:
    import websockets

    from orra_di.testing import call, reply, tool_calls
    from orra_di.tool import tool

    @tool
    def wipe(target: str) -> str:
        """Wipe something."""
        return f"wiped {target}"

    def model(request: Any) -> Any:
        last = request.messages[-1]
        if not last.tool_results:
            return tool_calls(call("wipe", {"target": "disk"}, id="call-wipe-1"))
        return reply(f"done: {last.tool_results[0].content}")

    container = container_with(
        ScriptedProvider(model), approval={"enabled": True, "tools": ["wipe"]}
    )
    container.tool_factory.override(providers.Object(lambda profile: [wipe]))
    async with live(container) as where:
        url = f"ws://{where}/v1/ws"
        async with (
            httpx.AsyncClient(base_url=f"http://{where}", timeout=20) as http,
            websockets.connect(url, additional_headers=auth(GLOBEX)) as globex,
            websockets.connect(url, additional_headers=auth(ACME)) as acme,
            anyio.create_task_group() as tg,
        ):
            await next_of(globex, "ready")
            await next_of(acme, "ready")
            answers: list[httpx.Response] = []

            async def run() -> None:
                answers.append(
                    await http.post(
                        "/v1/chat",
                        json={"message": "wipe", "namespace": "acme:ops"},
                        headers=auth(ACME),
                    )
                )

            tg.start_soon(run)
            with anyio.fail_after(10):
                while True:
                    listed = await http.get("/v1/approvals", headers=auth(ACME))
                    pending = listed.json()["approvals"]
                    if pending:
                        break
                    await anyio.sleep(0.02)
            approval_id = pending[0]["id"]
            for attempt in ({"approval_id": approval_id}, {"call_id": "call-wipe-1"}):
                await globex.send(
                    json.dumps({"type": "tool_approval_response", "approved": True, **attempt})
                )
                assert (await next_of(globex, "error"))["code"] == "not_found"
            # a call this connection never saw (the run was started over HTTP)
            await acme.send(
                json.dumps(
                    {"type": "tool_approval_response", "approved": True, "call_id": "call-wipe-1"}
                )
            )
            decided = await next_of(acme, "tool_approval_decided")
            assert decided["status"] == "approved" and decided["decided_by"] == "gateway:acme-admin"
        assert answers[0].json()["message"] == "done: wiped disk"


async def test_a_run_that_fails_mid_stream_raises_in_the_openai_sdk() -> None:
    from openai import APIError

    from orra_di.errors import ProviderUnavailableError

    down = ProviderUnavailableError("vendor down")
    container = container_with(ScriptedProvider([down, down]))
    async with served(container) as client:
        openai = sdk(client, ACME)
        stream = await openai.chat.completions.create(
            model="Atlas", messages=[{"role": "user", "content": "x"}], stream=True
        )
        with pytest.raises(APIError, match="vendor down"):
            async for _ in stream:
                pass
        with pytest.raises(APIError, match="vendor down") as plain:
            await openai.chat.completions.create(
                model="Atlas", messages=[{"role": "user", "content": "x"}]
            )
        assert getattr(plain.value, "status_code", None) == 502


async def test_a_call_id_two_pending_runs_share_decides_neither_until_named() -> None:
    import websockets

    from orra_di.testing import call, reply, tool_calls
    from orra_di.tool import tool

    @tool
    def wipe(target: str) -> str:
        """Wipe something."""
        return f"wiped {target}"

    def model(request: Any) -> Any:
        last = request.messages[-1]
        if not last.tool_results:  # a model whose call ids repeat (a counter per process)
            return tool_calls(call("wipe", {"target": last.content}, id="call_0"))
        return reply(last.tool_results[0].content)

    container = container_with(
        ScriptedProvider(model), approval={"enabled": True, "tools": ["wipe"]}
    )
    container.tool_factory.override(providers.Object(lambda profile: [wipe]))
    async with live(container) as where:
        async with (
            httpx.AsyncClient(base_url=f"http://{where}", timeout=20) as http,
            websockets.connect(f"ws://{where}/v1/ws", additional_headers=auth(ACME)) as ws,
            anyio.create_task_group() as tg,
        ):
            await next_of(ws, "ready")
            answers: dict[str, str] = {}

            async def run(target: str) -> None:
                body = {"message": target, "namespace": f"acme:{target}"}
                response = await http.post("/v1/chat", json=body, headers=auth(ACME))
                answers[target] = response.json()["message"]

            tg.start_soon(run, "prod")
            tg.start_soon(run, "scratch")
            with anyio.fail_after(10):
                while True:
                    listed = await http.get("/v1/approvals", headers=auth(ACME))
                    pending = listed.json()["approvals"]
                    if len(pending) == 2:
                        break
                    await anyio.sleep(0.02)
            answer = {"type": "tool_approval_response", "approved": True, "call_id": "call_0"}
            await ws.send(json.dumps(answer))
            refused = await next_of(ws, "error")
            assert refused["code"] == "bad_request" and "approval_id" in refused["error"]
            assert (
                len((await http.get("/v1/approvals", headers=auth(ACME))).json()["approvals"]) == 2
            )
            scratch = next(p for p in pending if p["namespace"] == "acme:scratch")
            await ws.send(json.dumps({**answer, "approval_id": scratch["id"]}))
            assert (await next_of(ws, "tool_approval_decided"))["approval_id"] == scratch["id"]
            await ws.send(json.dumps({**answer, "approved": False}))  # one left: unambiguous
            assert (await next_of(ws, "tool_approval_decided"))["status"] == "denied"
        assert answers["scratch"] == "wiped scratch"
        assert "wiped" not in answers["prod"]


async def test_dotted_namespaces_stay_inside_the_file_store(tmp_path: Any) -> None:
    from pathlib import Path

    base = Path(tmp_path) / "sessions"
    container = container_with(ScriptedProvider(echo), store={"url": f"file://{base}"})
    async with served(container) as client:
        for name in ("acme:..", "acme:../../escape", "acme:.", "acme:a/../../b"):
            await seed(client, ACME, name)
            shown = await client.get("/v1/sessions/" + quote(name, safe=":"), headers=auth(ACME))
            assert shown.json()["namespace"] == name
    assert files_outside(Path(tmp_path), base) == []


def files_outside(root: Any, base: Any) -> list[Any]:
    return [p for p in root.rglob("*") if base not in p.parents and p != base]


async def test_the_gateway_without_http_as_the_page_shows_it() -> None:
    from orra_di.gateway import Gateway, GatewayError
    from orra_di.gateway.auth import Caller

    container = container_with(ScriptedProvider(echo))
    async with lifespan(container):
        gateway = Gateway(container)
        caller = Caller(key="app", tenant="acme")
        handle = gateway.start(caller, "hi", namespace="acme:alice", agent=None, stream=True)
        names = [name async for name, _ in handle.events()]
        assert names[0] == "start" and names[-1] == "end"
        assert (await handle.outcome())["message"] == "echo: hi"
        with pytest.raises(GatewayError) as outside:
            gateway.start(caller, "hi", namespace="globex:x", agent=None, stream=False)
        assert outside.value.code == "namespace_forbidden"
        assert await container.store().load("globex:x") is None
