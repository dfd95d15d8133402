"""GatewayChannel: submit in-process and wait for the answer, with a timeout (bug 23)."""

from __future__ import annotations

import anyio
import pytest

from orra_di.channels import (
    ChannelAdapter,
    ChannelClosedError,
    ChannelManager,
    ChannelSendError,
    ChannelTimeoutError,
    GatewayChannel,
    GatewayRunError,
    OutboundMessage,
)
from orra_di.channels.gateway_channel import REQUEST_ID
from orra_di.errors import ProviderError
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio


async def test_submit_and_route_roundtrip() -> None:
    store = InMemoryStore()
    gateway = GatewayChannel()
    runtime = Runtime(ScriptedProvider(["Hi there"]), store)
    async with ChannelManager(runtime) as manager:
        await manager.start(gateway, "gateway")
        reply = await gateway.submit("hello", namespace="acme:alice", metadata={"x": 1})
    assert reply.message.content == "Hi there"
    assert reply.namespace.key == "acme:alice" and reply.metadata["x"] == 1
    assert reply.run_result is not None
    assert gateway.pending == 0
    session = await store.load("acme:alice")
    assert session is not None and [m.content for m in session.messages] == ["hello", "Hi there"]


async def test_submit_without_namespace_gets_a_fresh_one() -> None:
    gateway = GatewayChannel()
    async with ChannelManager(Runtime(ScriptedProvider(["a", "b"]), InMemoryStore())) as m:
        await m.start(gateway)
        one = await gateway.submit("x")
        two = await gateway.submit("y")
    assert one.namespace != two.namespace and len(one.namespace.key) == 32


async def test_run_error_is_raised_to_the_caller() -> None:
    gateway = GatewayChannel()
    runtime = Runtime(ScriptedProvider([ProviderError("model is down")]), InMemoryStore())
    async with ChannelManager(runtime) as manager:
        await manager.start(gateway)
        with pytest.raises(GatewayRunError, match="model is down"):
            await gateway.submit("hello", namespace="n")


async def test_submit_times_out_and_the_late_answer_is_dropped() -> None:
    release = anyio.Event()

    async def slow(_request: CompletionRequest) -> str:
        await release.wait()
        return "late"

    store = InMemoryStore()
    gateway = GatewayChannel()
    async with ChannelManager(Runtime(ScriptedProvider(slow), store)) as manager:
        await manager.start(gateway)
        with pytest.raises(ChannelTimeoutError, match=r"within 0\.05s"):
            await gateway.submit("hello", namespace="n", timeout=0.05)
        assert gateway.pending == 0
        release.set()
    session = await store.load("n")
    assert session is not None and session.messages[-1].content == "late"  # stored anyway


async def test_submit_after_close_is_refused() -> None:
    gateway = GatewayChannel()
    await gateway.close()
    with pytest.raises(ChannelClosedError, match="gateway channel closed"):
        await gateway.submit("hello")
    assert await gateway.receive() is None


async def test_unknown_agent_is_a_run_error() -> None:
    from orra_di.agent import AgentProfile
    from orra_di.runtime_set import RuntimeMap

    store = InMemoryStore()
    runtimes = RuntimeMap(
        [AgentProfile(name="Atlas")], lambda profile: Runtime(ScriptedProvider(["x"]), store)
    )
    gateway = GatewayChannel()
    async with ChannelManager(runtimes) as manager:
        await manager.start(gateway)
        with pytest.raises(GatewayRunError, match="unknown agent 'ghost'"):
            await gateway.submit("hi", agent="ghost")


async def test_busy_reply_comes_back_as_busy() -> None:
    store = InMemoryStore()
    gateway = GatewayChannel()
    runtime = Runtime(ScriptedProvider(["x"]), store)
    async with ChannelManager(runtime, adapter=ChannelAdapter(on_busy="reply")) as manager:
        await manager.start(gateway)
        async with store.lock("n"):
            reply = await gateway.submit("hi", namespace="n")
    assert reply.busy


async def test_send_without_a_waiting_request_fails() -> None:
    gateway = GatewayChannel()
    reply = OutboundMessage(Namespace("n"), Message.assistant("x"), None, {})
    with pytest.raises(ChannelSendError, match="missing gateway request ID"):
        await gateway.send(reply)
    orphan = OutboundMessage(Namespace("n"), Message.assistant("x"), None, {REQUEST_ID: "zz"})
    with pytest.raises(ChannelSendError, match="no waiting request for ID: zz"):
        await gateway.send(orphan)
    await gateway.close()
    assert await gateway.receive() is None
