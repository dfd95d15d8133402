"""examples/django_app: orra-di in a sync host, through Django's test client.

Django runs on a throw-away test database (in memory), users log in with HTTP Basic
credentials, and the LLM is a ScriptedProvider or the default offline model: no key,
no network.
"""

from __future__ import annotations

import base64
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django", reason='the Django example needs "orra-di[dev]"')

from dependency_injector import providers  # noqa: E402

from orra_di import CompletionRequest, CompletionResponse, ProviderUnavailableError  # noqa: E402
from orra_di.containers import Container  # noqa: E402
from orra_di.settings import load_settings  # noqa: E402
from orra_di.testing import ScriptedProvider, reply  # noqa: E402

SITE = Path(__file__).resolve().parent.parent / "examples" / "django_app"
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


@pytest.fixture(scope="module")
def site() -> Iterator[None]:
    """Django set up on a test database with two users; torn down after the module."""
    if str(SITE) not in sys.path:
        sys.path.append(str(SITE))
    before = {k: os.environ.get(k) for k in ("DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")}
    os.environ["DJANGO_SETTINGS_MODULE"] = "orra_site.settings"
    os.environ["DJANGO_SECRET_KEY"] = "test-only-key"
    django.setup()
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import (
        override_settings,
        setup_test_environment,
        teardown_test_environment,
    )

    fast = override_settings(
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        ORRA={"store": {"url": "memory://"}, "tools": ["calculate", "current_time"]},
    )
    fast.enable()
    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    for name, password in PASSWORDS.items():
        User.objects.create_user(name, password=password)
    try:
        yield
    finally:
        from orra_site import agents

        agents.shutdown()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()
        fast.disable()
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def isolated(site: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    yield
    from orra_site import agents

    agents.shutdown()  # each test starts with no container in the process


def start(model: ScriptedProvider) -> Any:
    """This process's container: sessions in memory, the given model."""
    from orra_site import agents

    container = Container()
    container.settings.override(providers.Object(load_settings(store={"url": "memory://"})))
    container.llm.override(providers.Object(model))
    return agents.install(container)


def client(user: str | None = None, password: str | None = None) -> Any:
    from django.test import Client

    if user is None:
        return Client()
    token = base64.b64encode(f"{user}:{password or PASSWORDS[user]}".encode()).decode()
    return Client(HTTP_AUTHORIZATION=f"Basic {token}")


def chat(as_user: str, message: str, **extra: Any) -> Any:
    return client(as_user).post(
        "/chat/", {"message": message, **extra}, content_type="application/json"
    )


def echo(request: CompletionRequest) -> CompletionResponse:
    return reply(f"echo: {request.messages[-1].content}")


def test_chat_and_each_user_sees_only_their_own_sessions() -> None:
    start(ScriptedProvider(echo))
    first = chat("alice", "hello")
    chat("alice", "again")
    chat("alice", "other topic", conversation="work")
    chat("bob", "hi, I am bob")

    assert first.status_code == 200, first.content
    assert first.json() == {
        "agent": "Atlas",
        "conversation": "default",
        "answer": "echo: hello",
        "turns": 1,
        "usage": {"input_tokens": 0, "output_tokens": 0},
    }
    alice = client("alice").get("/sessions/").json()
    bob = client("bob").get("/sessions/").json()
    assert alice == {
        "sessions": [
            {"conversation": "default", "messages": 4},
            {"conversation": "work", "messages": 2},
        ]
    }
    assert bob == {"sessions": [{"conversation": "default", "messages": 2}]}
    mine = client("bob").get("/sessions/default/").json()
    assert [m["content"] for m in mine["messages"]] == ["hi, I am bob", "echo: hi, I am bob"]
    # bob cannot read alice's "work": there is no such conversation under his namespace
    assert client("bob").get("/sessions/work/").status_code == 404


def test_the_default_offline_model_answers_without_a_key() -> None:
    """No container installed: the first request builds one from settings.ORRA."""
    from orra_site import agents

    answer = chat("alice", "What is 2+2?").json()
    assert answer["answer"].startswith("2+2 = 4 (worked out by the calculate tool)")
    assert answer["turns"] == 2
    built = agents.get_orra()
    chat("bob", "What time is it?")
    assert agents.get_orra() is built  # one container per process, reused by every request
    assert built.container.settings().llm.resolved_kind == "offline"


def test_requests_from_many_threads_share_one_loop_and_lose_nothing() -> None:
    orra = start(ScriptedProvider(echo, delay=0.05))
    failures: list[Any] = []

    def talk(i: int) -> None:
        response = chat("alice", f"message {i}", conversation="busy")
        if response.status_code != 200:
            failures.append(response.content)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert failures == []
    messages = client("alice").get("/sessions/busy/").json()["messages"]
    assert len(messages) == 12
    # one writer per session: each question is followed by its own answer
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer["content"] == "echo: " + question["content"]
    from orra_site import agents

    assert agents.get_orra() is orra


def test_without_valid_credentials_the_answer_is_401() -> None:
    start(ScriptedProvider(echo))
    anonymous = client().get("/sessions/")
    wrong = client("alice", "not-her-password").get("/sessions/")
    garbled = client().get("/sessions/", HTTP_AUTHORIZATION="Basic !!!")
    for response in (anonymous, wrong, garbled):
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == 'Basic realm="orra-di"'
        assert response.json()["error"] == "unauthorized"


def test_bad_requests_are_400_404_and_405() -> None:
    start(ScriptedProvider(echo))
    bad_key = chat("alice", "hi", conversation="a:b")
    assert bad_key.status_code == 400
    assert "contains ':'" in bad_key.json()["message"]
    assert chat("alice", "").status_code == 400
    not_json = client("alice").post("/chat/", "{", content_type="application/json")
    assert not_json.json() == {"error": "invalid_request", "message": "the body is not JSON"}
    unknown = chat("alice", "hi", agent="Zed")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "no agent 'Zed'; agents: Atlas"
    assert client("alice").get("/chat/").status_code == 405
    assert client("alice").get("/sessions/nothing-here/").status_code == 404


def test_a_provider_failure_is_502_and_the_message_is_kept() -> None:
    start(ScriptedProvider([ProviderUnavailableError("upstream answered 503")]))
    response = chat("bob", "are you there?")
    assert response.status_code == 502
    assert response.json() == {
        "error": "agent_failed",
        "message": "provider unavailable: upstream answered 503",
    }
    kept = client("bob").get("/sessions/default/").json()["messages"]
    assert [m["content"] for m in kept] == ["are you there?"]
