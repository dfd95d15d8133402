"""ChannelManager: orra's manager tests, agent routing through the RuntimeMap (bug 20)."""

from __future__ import annotations

import anyio
import pytest

from orra_di.agent import AgentProfile
from orra_di.channels import ChannelAdapter, ChannelManager, InboundMessage
from orra_di.errors import ConfigurationError
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime
from orra_di.runtime_set import RuntimeMap
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider

from .helpers import QueueChannel

pytestmark = pytest.mark.anyio


def _runtime(answer: str, store: InMemoryStore | None = None) -> Runtime:
    return Runtime(ScriptedProvider(lambda _r: answer), store or InMemoryStore())


async def test_manager_starts_and_stops() -> None:
    async with ChannelManager(_runtime("Hello!")) as manager:
        assert not manager.is_connected()
        channel = QueueChannel()
        await manager.start(channel, "test")
        assert manager.is_connected()
        channel.feed(InboundMessage.text("u", "hi"))
        await channel.wait_for(1)
        assert channel.replies[0].message.content == "Hello!"
        await manager.stop()
        assert not manager.is_connected()


async def test_manager_state_tracks_metadata() -> None:
    async with ChannelManager(_runtime("x")) as manager:
        await manager.start(QueueChannel(), "discord", {"token_hint": "****abcd", "filter": "dm"})
        state = manager.state()
        assert state.connected and state.metadata == {"token_hint": "****abcd", "filter": "dm"}
        await manager.stop()
        assert not manager.state().connected
        assert manager.state().metadata["filter"] == "dm"  # kept after stop, as orra does


async def test_manager_restart_replaces_connection() -> None:
    async with ChannelManager(_runtime("answer")) as manager:
        first, second = QueueChannel(), QueueChannel()
        await manager.start(first, "c")
        await manager.start(second, "c")
        assert manager.is_connected()
        assert await first.receive() is None  # the first was closed by the restart
        second.feed(InboundMessage.text("u", "hi"))
        await second.wait_for(1)
        assert second.replies[0].message.content == "answer"


async def test_manager_stop_when_not_connected_is_noop() -> None:
    async with ChannelManager(_runtime("x")) as manager:
        await manager.stop()
        assert not manager.is_connected()


async def test_start_outside_the_block_is_a_clear_error() -> None:
    channel = QueueChannel()
    with pytest.raises(ConfigurationError, match="async with ChannelManager"):
        await ChannelManager(_runtime("x")).start(channel)
    await channel.close()
    assert await channel.receive() is None


async def test_stop_cancels_runs_past_the_timeout() -> None:
    started = anyio.Event()

    async def never(_request: CompletionRequest) -> str:
        started.set()
        await anyio.sleep_forever()
        raise AssertionError

    store = InMemoryStore()
    runtime = Runtime(ScriptedProvider(never), store)
    async with ChannelManager(runtime, shutdown_timeout=0.05) as manager:
        channel = QueueChannel()
        await manager.start(channel)
        channel.feed(InboundMessage.text("u", "hi"))
        await started.wait()
        with anyio.fail_after(2):
            await manager.stop()
        assert not manager.is_connected()
    assert channel.replies == []
    session = await store.load("u")
    assert session is not None and session.messages[0].content == "hi"  # user turn kept


async def test_a_channel_whose_close_hangs_does_not_hold_up_the_stop() -> None:
    """``shutdown_timeout`` bounds the whole stop, the channel's own close included (a
    close that hangs on a dead network must not keep ``orra-di serve`` from stopping)."""

    class StuckClose(QueueChannel):
        async def close(self) -> None:
            await anyio.sleep_forever()

    channel = StuckClose()
    async with ChannelManager(_runtime("hi"), shutdown_timeout=0.1) as manager:
        await manager.start(channel)
        with anyio.fail_after(5):
            await manager.stop()
        assert not manager.is_connected()
    await QueueChannel.close(channel)  # what the stuck close never did
    channel._receive.close()


def _agents(store: InMemoryStore) -> RuntimeMap:
    def build(profile: AgentProfile) -> Runtime:
        return _runtime(f"I am {profile.name}", store)

    return RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], build)


async def test_agent_metadata_routes_whatever_its_case() -> None:
    """Bug 20: 'CodeBot' (as Discord writes it) reaches the agent kept as 'codebot'."""
    store = InMemoryStore()
    async with ChannelManager(_agents(store)) as manager:
        channel = QueueChannel()
        await manager.start(channel, "discord")
        channel.feed(
            InboundMessage.text("a", "hi", {"agent": "CodeBot"}),
            InboundMessage.text("b", "hi", {"agent": "CODEBOT"}),
            InboundMessage.text("c", "hi"),
        )
        await channel.wait_for(3)
    answers = {r.namespace.key: r.message.content for r in channel.replies}
    assert answers == {"a": "I am CodeBot", "b": "I am CodeBot", "c": "I am Atlas"}


async def test_unknown_agent_is_answered_with_an_error() -> None:
    store = InMemoryStore()
    async with ChannelManager(_agents(store)) as manager:
        channel = QueueChannel()
        await manager.start(channel, "discord")
        channel.feed(InboundMessage.text("a", "hi", {"agent": "Nobody"}))
        await channel.wait_for(1)
    assert "unknown agent 'Nobody'" in channel.errors[0].error
    assert "Atlas, CodeBot" in channel.errors[0].error
    assert await store.load("a") is None


async def test_channels_share_one_adapter_bound() -> None:
    adapter = ChannelAdapter(max_concurrency=1)
    async with (
        ChannelManager(_runtime("one"), adapter=adapter) as first,
        ChannelManager(_runtime("two"), adapter=adapter) as second,
    ):
        a, b = QueueChannel(), QueueChannel()
        await first.start(a, "a")
        await second.start(b, "b")
        a.feed(InboundMessage.text("x", "hi"))
        b.feed(InboundMessage.text("y", "hi"))
        await a.wait_for(1)
        await b.wait_for(1)
    assert a.replies[0].message.content == "one" and b.replies[0].message.content == "two"
