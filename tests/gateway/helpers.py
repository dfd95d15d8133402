"""Shared pieces of the gateway tests: a container on the memory store, clients, keys."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
from dependency_injector import providers

from orra_di.containers import Container, lifespan
from orra_di.gateway import create_app, hash_api_key
from orra_di.settings import load_settings
from orra_di.tool import Tool

ALICE_KEY = "orra_alice-key-for-tests-only-0000000000000"
BOB_KEY = "orra_bob-key-for-tests-only-00000000000000000"
OLD_KEY = "orra_revoked-key-for-tests-only-000000000000"

KEYS = [
    {"name": "alice", "digest": hash_api_key(ALICE_KEY), "tenant": "acme"},
    {"name": "bob", "digest": hash_api_key(BOB_KEY), "tenant": "globex"},
    {"name": "old", "digest": hash_api_key(OLD_KEY), "tenant": "acme", "revoked": True},
]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_container(
    llm: Any = None, *, tools: Sequence[Tool] = (), keys: bool = True, **settings: Any
) -> Container:
    container = Container()
    values: dict[str, Any] = {
        "store": {"url": "memory://"},
        "agents": [{"name": "Atlas"}, {"name": "Scribe"}],
    }
    if keys:
        values["gateway"] = {"api_keys": KEYS, **settings.pop("gateway", {})}
    values.update(settings)
    container.settings.override(providers.Object(load_settings(**values)))
    if llm is not None:
        container.llm.override(providers.Object(llm))
    if tools:
        container.tool_factory.override(providers.Object(lambda profile: list(tools)))
    return container


@asynccontextmanager
async def client_for(container: Container) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client speaking to the gateway in process, resources open."""
    async with lifespan(container):
        app = create_app(container)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def sse_events(text: str) -> list[tuple[str, Any]]:
    """``(event name, data)`` of every event in a text/event-stream body."""
    events: list[tuple[str, Any]] = []
    name, data = "message", []
    for line in text.splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip() and data:
            raw = "\n".join(data)
            events.append((name, raw if raw == "[DONE]" else json.loads(raw)))
            name, data = "message", []
    if data:
        raw = "\n".join(data)
        events.append((name, raw if raw == "[DONE]" else json.loads(raw)))
    return events


def echo(request: Any) -> str:
    """A scripted model that answers with the last user message it saw."""
    users = [m.content for m in request.messages if m.role.value == "user" and not m.tool_results]
    return f"echo: {users[-1]}"


def adder(request: Any) -> Any:
    """Asks for ``add(2, 3)`` after a user message, answers with the tool's result after it."""
    from orra_di.testing import call, reply, tool_calls

    last = request.messages[-1]
    if not last.tool_results:
        return tool_calls(call("add", {"a": 2, "b": 3}), text="adding")
    return reply(f"the sum is {last.tool_results[0].content}")
