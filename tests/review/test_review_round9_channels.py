"""Round 9 review: docs/channels.md's handling rules, through the ``GatewayChannel`` a host
application uses (busy sessions, the waiting bound, refused messages, the timeout).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from orra_di import AgentProfile, Runtime
from orra_di.channels import (
    ChannelAdapter,
    ChannelManager,
    ChannelTimeoutError,
    GatewayChannel,
)
from orra_di.channels.gateway_channel import GatewayRunError
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import InMemoryStore
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio


class Gate:
    """A model that answers only when let through, counting its calls."""

    def __init__(self) -> None:
        self.open = anyio.Event()
        self.calls = 0

    async def __call__(self, request: Any) -> str:
        self.calls += 1
        await self.open.wait()
        users = [m.content for m in request.messages if m.role.value == "user"]
        return f"answer to {users[-1]}"


@asynccontextmanager
async def serving(
    gate: Gate, store: InMemoryStore, *, wait: float = 30, **adapter: Any
) -> AsyncIterator[GatewayChannel]:
    def build(profile: AgentProfile) -> Runtime:
        return Runtime(ScriptedProvider(gate), store)

    agents = RuntimeMap([AgentProfile(name="Atlas")], build)
    channel = GatewayChannel(timeout=wait)
    async with ChannelManager(agents, adapter=ChannelAdapter(**adapter)) as manager:
        await manager.start(channel, "web")
        yield channel


async def test_a_busy_session_gets_the_busy_reply_and_no_run_with_on_busy_reply() -> None:
    gate, store = Gate(), InMemoryStore()
    async with serving(gate, store, on_busy="reply", busy_reply="wait a moment") as channel:
        replies: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def first() -> None:
                replies.append(await channel.submit("one", namespace="acme:alice"))

            tg.start_soon(first)
            with anyio.fail_after(5):
                while gate.calls == 0:  # noqa: ASYNC110 - the model was reached
                    await anyio.sleep(0.01)
            busy = await channel.submit("two", namespace="acme:alice")
            assert busy.busy and busy.message.content == "wait a moment"

            async def bob() -> None:
                replies.append(await channel.submit("hi", namespace="acme:bob"))

            tg.start_soon(bob)  # another session is not busy
            gate.open.set()
        assert sorted(r.message.content for r in replies) == ["answer to hi", "answer to one"]
    session = await store.load("acme:alice")
    assert session is not None
    assert [m.content for m in session.messages] == ["one", "answer to one"]


async def test_past_max_waiting_messages_get_the_busy_reply_even_when_waiting() -> None:
    gate, store = Gate(), InMemoryStore()
    async with serving(gate, store, on_busy="wait", max_waiting=1, busy_reply="full") as channel:
        results: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def send(text: str) -> None:
                results.append(await channel.submit(text, namespace="acme:alice"))

            tg.start_soon(send, "one")
            with anyio.fail_after(5):
                while gate.calls == 0:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            tg.start_soon(send, "two")  # waits its turn
            await anyio.sleep(0.2)
            third = await channel.submit("three", namespace="acme:alice")
            assert third.busy and third.message.content == "full"
            gate.open.set()
        assert sorted(r.message.content for r in results) == ["answer to one", "answer to two"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 101])
async def test_an_empty_or_too_long_message_is_an_error_and_starts_no_run(text: str) -> None:
    gate, store = Gate(), InMemoryStore()
    gate.open.set()
    async with serving(gate, store, max_message_chars=100) as channel:
        with pytest.raises(GatewayRunError):
            await channel.submit(text, namespace="acme:alice")
    assert gate.calls == 0
    assert await store.load("acme:alice") is None


async def test_an_unknown_agent_is_an_error_and_starts_no_run() -> None:
    gate, store = Gate(), InMemoryStore()
    gate.open.set()
    async with serving(gate, store) as channel:
        with pytest.raises(GatewayRunError, match=r"(?i)nobody|agent"):
            await channel.submit("hi", namespace="acme:alice", agent="nobody")
    assert gate.calls == 0
    assert await store.load("acme:alice") is None


async def test_after_the_timeout_the_run_goes_on_and_is_stored() -> None:
    gate, store = Gate(), InMemoryStore()
    async with serving(gate, store, wait=0.2) as channel:
        with pytest.raises(ChannelTimeoutError):
            await channel.submit("slow one", namespace="acme:alice")
        gate.open.set()
        with anyio.fail_after(5):
            while True:
                session = await store.load("acme:alice")
                if session is not None and len(session.messages) == 2:
                    break
                await anyio.sleep(0.02)
    assert [m.content for m in session.messages] == ["slow one", "answer to slow one"]
