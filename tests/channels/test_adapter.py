"""ChannelAdapter: orra's channel tests as behaviour, plus concurrency and bad input."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from orra_di.channels import ChannelAdapter, InboundMessage
from orra_di.errors import ProviderError
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider

from .helpers import QueueChannel

pytestmark = pytest.mark.anyio


def _last_user(request: CompletionRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def echo_runtime(store: InMemoryStore | None = None) -> Runtime:
    return Runtime(ScriptedProvider(lambda r: f"echo: {_last_user(r)}"), store or InMemoryStore())


async def serve(
    adapter: ChannelAdapter,
    channel: QueueChannel,
    runtime: Runtime,
    body: Callable[[], Awaitable[None]],
) -> None:
    """Serve ``channel`` while ``body`` runs, then close it and wait for the adapter."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(adapter.run, channel, runtime)
        await body()
        await channel.close()


async def test_adapter_routes_message_through_runtime() -> None:
    channel = QueueChannel()
    runtime = Runtime(ScriptedProvider(["Hello back!"]), InMemoryStore())
    channel.feed(InboundMessage.text("test", "Hello"))
    await channel.close()
    await ChannelAdapter().run(channel, runtime)
    assert [r.message.content for r in channel.replies] == ["Hello back!"]
    assert channel.replies[0].namespace.key == "test"
    assert channel.replies[0].run_result is not None and not channel.replies[0].busy
    assert channel.typing_entered == 1


async def test_metadata_passes_through() -> None:
    channel = QueueChannel()
    channel.feed(InboundMessage.text("test", "hi", {"thread_id": "t-1", "user_name": "ann"}))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime())
    assert channel.replies[0].metadata == {"thread_id": "t-1", "user_name": "ann"}


async def test_channel_returning_none_stops_loop() -> None:
    channel = QueueChannel()
    await channel.close()
    with anyio.fail_after(2):
        await ChannelAdapter().run(channel, echo_runtime())
    assert channel.replies == [] and channel.errors == []


async def test_runtime_error_sent_as_error_response() -> None:
    channel = QueueChannel()
    runtime = Runtime(ScriptedProvider([ProviderError("model is down")]), InMemoryStore())
    channel.feed(InboundMessage.text("test", "hi"))
    await channel.close()
    await ChannelAdapter().run(channel, runtime)
    assert channel.replies == []
    assert (
        "provider" in channel.errors[0].error.lower() or "model is down" in channel.errors[0].error
    )
    assert channel.errors[0].namespace.key == "test"


async def test_one_session_runs_its_messages_in_order() -> None:
    store = InMemoryStore()
    channel = QueueChannel()
    channel.feed(InboundMessage.text("s", "one"), InboundMessage.text("s", "two"))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime(store))
    assert [r.message.content for r in channel.replies] == ["echo: one", "echo: two"]
    session = await store.load("s")
    assert session is not None
    assert [m.content for m in session.messages] == ["one", "echo: one", "two", "echo: two"]


async def test_sessions_run_concurrently() -> None:
    """Bug 21: a slow run does not hold up another user's message."""
    b_started = anyio.Event()

    async def answer(request: CompletionRequest) -> str:
        text = _last_user(request)
        if text == "slow":
            with anyio.fail_after(5):
                await b_started.wait()  # only returns if the other run started meanwhile
        else:
            b_started.set()
        return f"echo: {text}"

    channel = QueueChannel()
    channel.feed(InboundMessage.text("a", "slow"), InboundMessage.text("b", "fast"))
    await channel.close()
    await ChannelAdapter().run(channel, Runtime(ScriptedProvider(answer), InMemoryStore()))
    assert [r.message.content for r in channel.replies] == ["echo: fast", "echo: slow"]


async def test_concurrency_is_bounded() -> None:
    running = 0
    peak = 0

    async def answer(request: CompletionRequest) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.01)
        running -= 1
        return "ok"

    channel = QueueChannel()
    channel.feed(*(InboundMessage.text(f"user-{i}", "hi") for i in range(8)))
    await channel.close()
    adapter = ChannelAdapter(max_concurrency=3)
    await adapter.run(channel, Runtime(ScriptedProvider(answer), InMemoryStore()))
    assert len(channel.replies) == 8
    assert peak == 3
    assert adapter.active_sessions == 0


class _Held:
    """A provider answer that blocks until released, so a session stays busy."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()

    async def __call__(self, request: CompletionRequest) -> str:
        text = _last_user(request)
        if text == "first":
            self.started.set()
            with anyio.fail_after(5):
                await self.release.wait()
        return f"echo: {text}"


async def test_busy_session_waits_its_turn() -> None:
    held = _Held()
    store = InMemoryStore()
    channel = QueueChannel()
    adapter = ChannelAdapter(on_busy="wait")

    async def body() -> None:
        channel.feed(InboundMessage.text("s", "first"))
        await held.started.wait()
        channel.feed(InboundMessage.text("s", "second"))
        await anyio.sleep(0.05)
        assert channel.replies == []  # the second waits, unanswered
        held.release.set()
        await channel.wait_for(2)

    await serve(adapter, channel, Runtime(ScriptedProvider(held), store), body)
    assert [r.message.content for r in channel.replies] == ["echo: first", "echo: second"]
    session = await store.load("s")
    assert session is not None and len(session.messages) == 4


async def test_busy_session_gets_the_busy_reply() -> None:
    held = _Held()
    store = InMemoryStore()
    channel = QueueChannel()
    adapter = ChannelAdapter(on_busy="reply", busy_reply="busy, try later")

    async def body() -> None:
        channel.feed(InboundMessage.text("s", "first"))
        await held.started.wait()
        channel.feed(InboundMessage.text("s", "second", {"k": 1}))
        await channel.wait_for(1)
        busy = channel.replies[0]
        assert busy.busy and busy.run_result is None
        assert busy.message.content == "busy, try later" and busy.metadata == {"k": 1}
        held.release.set()
        await channel.wait_for(2)

    await serve(adapter, channel, Runtime(ScriptedProvider(held), store), body)
    assert channel.replies[1].message.content == "echo: first"
    session = await store.load("s")
    assert session is not None
    assert [m.content for m in session.messages] == ["first", "echo: first"]  # "second" not run


async def test_session_held_elsewhere_gets_the_busy_reply() -> None:
    """Another process (here: a lock held outside the adapter) makes the session busy."""
    store = InMemoryStore()
    channel = QueueChannel()
    channel.feed(InboundMessage.text("s", "hi"))
    await channel.close()
    async with store.lock("s"):
        await ChannelAdapter(on_busy="reply").run(channel, echo_runtime(store))
    assert channel.replies[0].busy
    assert await store.load("s") is None


async def test_waiting_is_bounded_per_session() -> None:
    held = _Held()
    channel = QueueChannel()
    adapter = ChannelAdapter(on_busy="wait", max_waiting=1)

    async def body() -> None:
        channel.feed(InboundMessage.text("s", "first"))
        await held.started.wait()
        channel.feed(InboundMessage.text("s", "second"), InboundMessage.text("s", "third"))
        await channel.wait_for(1)
        assert channel.replies[0].busy  # "third": one waits already
        held.release.set()
        await channel.wait_for(3)

    await serve(adapter, channel, Runtime(ScriptedProvider(held), InMemoryStore()), body)
    assert [r.message.content for r in channel.replies[1:]] == ["echo: first", "echo: second"]


@pytest.mark.parametrize("content", ["", "   \n\t "])
async def test_empty_message_is_refused_without_a_run(content: str) -> None:
    store = InMemoryStore()
    channel = QueueChannel()
    channel.feed(InboundMessage.text("s", content))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime(store))
    assert "empty" in channel.errors[0].error
    assert await store.load("s") is None


async def test_huge_message_is_refused_without_a_run() -> None:
    store = InMemoryStore()
    channel = QueueChannel()
    channel.feed(InboundMessage.text("s", "é" * 1001))
    await channel.close()
    await ChannelAdapter(max_message_chars=1000).run(channel, echo_runtime(store))
    assert "1,001 characters" in channel.errors[0].error
    assert "1,000" in channel.errors[0].error
    assert await store.load("s") is None


async def test_a_channel_that_fails_to_send_keeps_serving(caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryStore()
    channel = QueueChannel(fail_sends=1)
    channel.feed(InboundMessage.text("a", "one"))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime(store))
    assert channel.replies == []
    assert "the transport is down" in caplog.text
    session = await store.load("a")
    assert session is not None and session.messages[-1].content == "echo: one"  # stored anyway

    channel = QueueChannel(fail_sends=1)
    channel.feed(InboundMessage.text("b", "one"), InboundMessage.text("b", "two"))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime(store))
    assert [r.message.content for r in channel.replies] == ["echo: two"]


async def test_a_failing_typing_indicator_does_not_fail_the_run() -> None:
    channel = QueueChannel(typing_fails=True)
    channel.feed(InboundMessage.text("s", "hi"))
    await channel.close()
    await ChannelAdapter().run(channel, echo_runtime())
    assert [r.message.content for r in channel.replies] == ["echo: hi"]


def test_bad_limits_are_refused() -> None:
    from orra_di.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="max_concurrency"):
        ChannelAdapter(max_concurrency=0)
    with pytest.raises(ConfigurationError, match="on_busy"):
        ChannelAdapter(on_busy="drop")  # type: ignore[arg-type]
