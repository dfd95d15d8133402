"""The examples: the FastAPI service through TestClient, and the plain-Python script.

The service's LLM is overridden through the container with a ScriptedProvider
and its sessions live in memory, so nothing here needs a key or a network
beyond the in-process TestClient.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from fastapi import FastAPI
from fastapi.testclient import TestClient

from orra_di import (
    CompletionRequest,
    CompletionResponse,
    ConfigurationError,
    InMemoryStore,
    Message,
    Namespace,
    NamespaceError,
    ProviderUnavailableError,
    Session,
    StoreError,
    Usage,
)
from orra_di.containers import Container
from orra_di.providers.offline import OFFLINE_NOTICE
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from fastapi_app import routes  # noqa: E402
from fastapi_app.app import create_app  # noqa: E402

VENDOR_KEYS = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No configuration from the machine: no ORRA_* or vendor key, no orra.toml, no secrets."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name.upper() in VENDOR_KEYS:
            monkeypatch.delenv(name)
    no_secrets = tmp_path / "no-secrets"
    no_secrets.mkdir()
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(no_secrets))  # not /run/secrets
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # a default store stays here
    monkeypatch.setenv("ORRA_TOOLS", "[]")  # only the example's own tool
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_app(
    model: ScriptedProvider | None = None, /, **settings: Any
) -> tuple[FastAPI, Container]:
    """The example app on a container overridden before start: memory store, scripted LLM."""
    container = Container()
    settings.setdefault("store", {"url": "memory://"})
    container.settings.override(providers.Object(load_settings(**settings)))
    if model is not None:
        container.llm.override(providers.Object(model))
    return create_app(container), container


def order_desk(request: CompletionRequest) -> CompletionResponse:
    """A model that looks up the order named by the last word, then repeats the result."""
    last = request.messages[-1]
    if last.tool_results:
        return reply(f"Looked it up: {last.tool_results[0].content}")
    return tool_calls(call("order_status", {"order_id": last.content.split()[-1]}))


def history(client: TestClient, key: str) -> list[dict[str, Any]]:
    response = client.get(f"/sessions/{key}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["namespace"] == key
    messages: list[dict[str, Any]] = body["messages"]
    return messages


def say(client: TestClient, key: str, message: str, **extra: Any) -> dict[str, Any]:
    response = client.post(f"/sessions/{key}/messages", json={"message": message, **extra})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- conversations -------------------------------------------------------------


def test_a_tool_using_run_is_answered_and_every_step_stored() -> None:
    llm = ScriptedProvider(
        [
            tool_calls(
                call("order_status", {"order_id": "A-1001"}, id="c1"),
                usage=Usage(input_tokens=10, output_tokens=3),
            ),
            reply("It shipped on 2 May.", usage=Usage(input_tokens=20, output_tokens=5)),
        ]
    )
    app, _ = make_app(llm)
    with TestClient(app) as client:
        body = say(client, "acme:alice", "Where is order A-1001?")
        messages = history(client, "acme:alice")

    assert body == {
        "agent": "Atlas",
        "namespace": "acme:alice",
        "answer": "It shipped on 2 May.",
        "turns": 2,
        "usage": {"input_tokens": 30, "output_tokens": 8, "total_tokens": 38},
    }
    assert messages == [
        {"role": "user", "content": "Where is order A-1001?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "name": "order_status", "arguments": {"order_id": "A-1001"}}
            ],
        },
        {
            "role": "user",
            "content": "",
            "tool_results": [
                {"call_id": "c1", "content": "order A-1001: shipped on 2 May", "is_error": False}
            ],
        },
        {"role": "assistant", "content": "It shipped on 2 May."},
    ]
    # The tool came from the container's tool_factory override in create_app.
    assert [t.name for t in llm.requests[0].tools] == ["order_status"]


def test_the_mounted_gateway_serves_the_same_agents_and_sessions() -> None:
    """The example mounts orra-di's gateway at /agents on its own container: a chat there
    is a session the app's own routes show, and the chat page is served under the prefix."""
    app, _ = make_app(ScriptedProvider(lambda request: reply("hello from Atlas")))
    with TestClient(app) as client:
        response = client.post(
            "/agents/v1/chat", json={"namespace": "acme:alice", "message": "Hi there"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["message"] == "hello from Atlas"
        assert [m["content"] for m in history(client, "acme:alice")] == [
            "Hi there",
            "hello from Atlas",
        ]
        agents = client.get("/agents/v1/agents")
        assert agents.status_code == 200 and "Atlas" in agents.text
        page = client.get("/agents/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


def test_two_namespaces_are_kept_apart() -> None:
    llm = ScriptedProvider(order_desk)
    app, _ = make_app(llm)
    with TestClient(app) as client:
        alice = say(client, "acme:alice", "Status of A-1002")
        bob = say(client, "globex:bob", "Status of A-1002")
        say(client, "acme:alice", "And A-1001")
        alice_history = history(client, "acme:alice")
        bob_history = history(client, "globex:bob")

    assert alice["answer"] == "Looked it up: order A-1002: waiting for payment"
    # The tool reads the company from the session, so bob cannot see acme's order.
    assert bob["answer"] == "Looked it up: tool error: globex has no order 'A-1002'"
    assert [m["content"] for m in alice_history if m["role"] == "user" and m["content"]] == [
        "Status of A-1002",
        "And A-1001",
    ]
    assert len(alice_history) == 8
    assert len(bob_history) == 4
    assert bob_history[2]["tool_results"][0]["is_error"] is True
    # Alice's second run saw her first exchange and nothing of bob's.
    third_run_first_request = llm.requests[4]
    seen = " ".join(m.content for m in third_run_first_request.messages)
    assert "waiting for payment" in seen
    assert "globex" not in seen


def test_mentions_and_the_agent_field_pick_the_agent() -> None:
    llm = ScriptedProvider(lambda request: reply("ok"))
    app, _ = make_app(llm, agents=[{"name": "Atlas"}, {"name": "Scout"}])
    with TestClient(app) as client:
        routed = say(client, "acme:alice", "@Scout find my parcel")
        named = say(client, "acme:alice", "and the other one", agent="scout")
        default = say(client, "acme:alice", "thanks")
        messages = history(client, "acme:alice")

    assert (routed["agent"], named["agent"], default["agent"]) == ("Scout", "Scout", "Atlas")
    assert messages[0] == {"role": "user", "content": "find my parcel"}
    assert "Scout" in (llm.requests[0].messages[0].content or "")


def test_the_test_model_needs_no_key() -> None:
    app, container = make_app(llm={"kind": "test"})  # calls every tool, from its schema
    assert container.settings().llm.resolved_kind == "test"
    with TestClient(app) as client:
        body = say(client, "acme:alice", "hello")
        messages = history(client, "acme:alice")

    assert body["turns"] == 2
    assert messages[1]["tool_calls"][0]["name"] == "order_status"
    assert "acme has no order 'a'" in body["answer"]


def test_the_default_offline_model_needs_no_key_and_says_so() -> None:
    app, container = make_app()  # no override: llm.kind resolves to the offline model
    assert container.settings().llm.resolved_kind == "offline"
    with TestClient(app) as client:
        body = say(client, "acme:alice", "Where is order A-1001?")

    assert body["turns"] == 1  # it calls only the built-in tools, and this app has none
    assert body["answer"].startswith("You said: Where is order A-1001?\n")
    assert body["answer"].endswith(OFFLINE_NOTICE)


def test_a_policy_from_settings_holds_even_against_the_model() -> None:
    llm = ScriptedProvider(order_desk)
    app, _ = make_app(llm, policies={"acme:guests": {"deny": ["order_status"]}})
    with TestClient(app) as client:
        body = say(client, "acme:guests:carol", "Status of A-1001")
        allowed = say(client, "acme:alice", "Status of A-1001")

    assert llm.requests[0].tools == []  # not offered to the guest ...
    assert body["answer"] == (  # ... and refused when called anyway
        "Looked it up: tool 'order_status' is not allowed in this session"
    )
    assert allowed["answer"] == "Looked it up: order A-1001: shipped on 2 May"


def test_openapi_schema_describes_the_routes() -> None:
    app, _ = make_app(ScriptedProvider([]))
    with TestClient(app) as client:
        schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {"/sessions/{namespace}/messages", "/sessions/{namespace}"}
    assert "ErrorBody" in schema["components"]["schemas"]


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["acme::alice", "acme:", ":alice", "acme:%01x"])
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_a_bad_namespace_is_422_with_the_namespace_error(method: str, key: str) -> None:
    decoded = key.replace("%01", "\x01")
    with pytest.raises(NamespaceError) as expected:
        Namespace.parse(decoded)
    app, _ = make_app(ScriptedProvider([]))
    path = f"/sessions/{key}/messages" if method == "POST" else f"/sessions/{key}"
    with TestClient(app) as client:
        response = client.request(
            method, path, json={"message": "hi"} if method == "POST" else None
        )
    assert response.status_code == 422
    assert response.json() == {"error": "invalid_namespace", "message": str(expected.value)}


def test_an_unknown_agent_is_404_naming_the_agents() -> None:
    app, _ = make_app(ScriptedProvider([]), agents=[{"name": "Atlas"}, {"name": "Scout"}])
    with TestClient(app) as client:
        response = client.post(
            "/sessions/acme:alice/messages", json={"message": "hi", "agent": "Zed"}
        )
        missing = client.get("/sessions/acme:alice")
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown_agent",
        "message": "agent 'Zed' not found; available agents: Atlas, Scout",
    }
    assert missing.status_code == 404  # nothing was stored


def test_a_missing_session_is_404() -> None:
    app, _ = make_app(ScriptedProvider([]))
    with TestClient(app) as client:
        response = client.get("/sessions/acme:nobody")
    assert response.status_code == 404
    assert response.json() == {
        "error": "session_not_found",
        "message": "no session is stored under 'acme:nobody'",
    }


def test_an_invalid_body_is_422_without_echoing_it() -> None:
    app, _ = make_app(ScriptedProvider([]))
    with TestClient(app) as client:
        response = client.post("/sessions/acme:alice/messages", json={"mesage": "sk-typo-secret"})
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_request"
    assert "body.message: Field required" in body["message"]
    assert "sk-typo-secret" not in response.text


def test_a_busy_session_is_409() -> None:
    app, container = make_app(ScriptedProvider(["done"]), runtime={"on_busy": "refuse"})
    with TestClient(app) as client:
        assert client.portal is not None
        lock = container.store().lock(Namespace("acme", "alice"))
        # Another run holds the session: take its lock on the app's own event loop.
        with client.portal.wrap_async_context_manager(lock):
            busy = client.post("/sessions/acme:alice/messages", json={"message": "hi"})
        after = say(client, "acme:alice", "hi")
        messages = history(client, "acme:alice")

    assert busy.status_code == 409
    body = busy.json()
    assert body["error"] == "session_busy"
    assert "'acme:alice' is busy" in body["message"]
    assert after["answer"] == "done"
    assert len(messages) == 2  # the refused request stored nothing


def test_a_provider_failure_is_502_and_the_user_message_is_kept() -> None:
    llm = ScriptedProvider([ProviderUnavailableError("upstream answered 503")])
    app, _ = make_app(llm, llm={"kind": "anthropic", "api_key": "sk-ant-very-secret"})
    with TestClient(app) as client:
        response = client.post("/sessions/acme:alice/messages", json={"message": "hello?"})
        messages = history(client, "acme:alice")

    assert response.status_code == 502
    assert response.json() == {
        "error": "provider_error",
        "message": "provider unavailable: upstream answered 503",
    }
    assert "sk-ant-very-secret" not in response.text
    assert messages == [{"role": "user", "content": "hello?"}]


def test_a_provider_failure_mid_run_keeps_every_completed_step() -> None:
    llm = ScriptedProvider(
        [
            tool_calls(call("order_status", {"order_id": "G-7"}, id="c1")),
            ProviderUnavailableError("connection reset"),
        ]
    )
    app, _ = make_app(llm)
    with TestClient(app) as client:
        response = client.post("/sessions/globex:bob/messages", json={"message": "G-7?"})
        messages = history(client, "globex:bob")

    assert response.status_code == 502
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[2]["tool_results"][0]["content"] == "order G-7: delivered"


def test_running_out_of_turns_is_502() -> None:
    llm = ScriptedProvider(order_desk)
    app, _ = make_app(llm, runtime={"max_turns": 1})
    with TestClient(app) as client:
        response = client.post("/sessions/acme:alice/messages", json={"message": "A-1001"})
    assert response.status_code == 502
    assert response.json() == {"error": "agent_failed", "message": "max turns (1) exceeded"}


def test_an_unexpected_failure_is_a_bare_500() -> None:
    llm = ScriptedProvider([RuntimeError("driver said: password=hunter2")])
    app, _ = make_app(llm)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/sessions/acme:alice/messages", json={"message": "hi"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal server error"}
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


class BrokenStore(InMemoryStore):
    """Starts fine, then loses its database."""

    broken = False

    async def load(self, namespace: Namespace) -> Session | None:
        if self.broken:
            raise StoreError("cannot reach postgresql://orra:pg-secret@db.internal/orra")
        return await super().load(namespace)


def test_a_store_failure_is_503_without_its_details() -> None:
    app, container = make_app(ScriptedProvider([]))
    store = BrokenStore()
    container.store.override(providers.Object(store))
    with TestClient(app) as client:
        store.broken = True
        response = client.get("/sessions/acme:alice")
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"
    assert "pg-secret" not in response.text
    assert "db.internal" not in response.text


# -- erasure -------------------------------------------------------------------


def test_delete_erases_one_session_or_a_whole_tree() -> None:
    app, _ = make_app(ScriptedProvider(lambda request: reply("ok")))
    keys = ["acme:alice", "acme:alice:support", "acme:bob", "acmeco:alice"]
    with TestClient(app) as client:
        for key in keys:
            say(client, key, "hi")
        tree = client.delete("/sessions/acme:alice", params={"tree": "true"})
        gone = [client.get(f"/sessions/{key}").status_code for key in keys]
        one = client.delete("/sessions/acme:bob")
        again = client.delete("/sessions/acme:bob")

    assert tree.status_code == 200
    assert tree.json() == {"namespace": "acme:alice", "tree": True, "deleted": 2}
    assert gone == [404, 404, 200, 200]  # whole segments: acmeco is not below acme
    assert one.json() == {"namespace": "acme:bob", "tree": False, "deleted": 1}
    assert again.json() == {"namespace": "acme:bob", "tree": False, "deleted": 0}


# -- wiring --------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_route_gets_its_store_only_when_wired() -> None:
    store = InMemoryStore()
    await store.append(Namespace("acme", "alice"), [Message.user("hi")])
    _, container = make_app(ScriptedProvider([]))
    container.store.override(providers.Object(store))

    # The store is injected from the container (mypy cannot know that).
    wired = await routes.get_session(ns=Namespace("acme", "alice"))  # type: ignore[call-arg]
    assert wired.messages == [Message.user("hi")]

    container.unwire()
    # Annotated[..., Depends(Provide[...])] has no default, so an unwired call cannot
    # run on a placeholder: it fails before the body runs.
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'store'"):
        await routes.get_session(ns=Namespace("acme", "alice"))  # type: ignore[call-arg]


def test_an_unwired_app_refuses_to_start() -> None:
    app, container = make_app(ScriptedProvider([]))
    container.unwire()
    with (
        pytest.raises(ConfigurationError, match="is not wired to this app's container"),
        TestClient(app),
    ):
        pass


def test_the_last_app_built_owns_the_routes() -> None:
    first, _ = make_app(ScriptedProvider([]))
    second, _ = make_app(ScriptedProvider(["from the second app"]))
    with pytest.raises(ConfigurationError, match="build one app per process"), TestClient(first):
        pass
    with TestClient(second) as client:
        assert say(client, "acme:alice", "hi")["answer"] == "from the second app"


def test_fastapi_hands_an_unwired_route_the_marker_itself() -> None:
    """Why create_app checks its wiring at start-up: FastAPI resolves Depends(Provide[...])
    by calling the marker, which returns itself, so the Annotated form only protects
    direct calls. Served unwired, the route receives the marker and fails on first use."""
    container = Container()
    container.wire(modules=[routes])
    container.unwire()
    bare = FastAPI()
    bare.include_router(routes.router)
    with TestClient(bare) as client, pytest.raises(AttributeError, match="'Provide' object"):
        client.get("/sessions/acme:alice")


# -- the plain-Python script ---------------------------------------------------


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "script.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


def test_the_script_runs_without_a_key(tmp_path: Path) -> None:
    data = tmp_path / "data-dir"
    done = run_script(str(data), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    out = done.stdout
    expected: Sequence[str] = [
        f"sessions in {data / 'sessions.sqlite3'}",
        "[bank:alice] user -> Teller: What is my balance?",
        '  transfer({"amount": 30, "to": "bob"}) ok: sent 30 EUR to bob; 70 EUR left',
        "[bank:guests:bob] user -> Teller: Please transfer 15 to alice",
        "  tools offered: get_balance\n",
        '  transfer({"amount": 15, "to": "alice"}) error: '
        "tool 'transfer' is not allowed in this session",
        "[bank:guests:bob] user -> Auditor: what is my balance?",
        "  Auditor: Done: 50 EUR",
        "  bank:alice: 8 messages",
        "  bank:guests:bob: 8 messages",
        'balances: {"alice": 70, "bob": 50}',
    ]
    for line in expected:
        assert line in out
    assert (data / "sessions.sqlite3").is_file()


def test_the_script_cleans_up_its_temporary_directory(tmp_path: Path) -> None:
    done = run_script(cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    used = Path(done.stdout.splitlines()[0].removeprefix("sessions in ")).parent
    assert not used.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-secrets"]
