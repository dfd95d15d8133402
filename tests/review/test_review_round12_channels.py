"""Round 12 review: docs/channels.md's Discord bot against the loopback fake Discord
(mention stripping with ``@Agent`` routing, the 2,000-character split between words),
the ``@Name`` rule for names whose case folding changes their length, and the
channel manager's stop, restart and state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

pytest.importorskip("discord")

from discord.gateway import DiscordWebSocket
from discord.http import Route

from orra_di import AgentProfile
from orra_di.channels import ChannelManager, GatewayChannel
from orra_di.channels.discord_channel import DiscordChannel
from orra_di.channels.discord_text import leading_agent
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import InMemoryStore
from orra_di.testing import ScriptedProvider
from tests.channels.discord_fake import BOT_ID, TOKEN, FakeDiscord

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        yield server


def channel_for(fake: FakeDiscord, **options: Any) -> DiscordChannel:
    return DiscordChannel(
        TOKEN, api_base=fake.api_base, gateway_url=fake.gateway_url, connect_timeout=10, **options
    )


def last_user(request: CompletionRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def agents(store: InMemoryStore, *names: str) -> RuntimeMap:
    def build(profile: AgentProfile) -> Runtime:
        return Runtime(ScriptedProvider(lambda r: f"{profile.name}: {last_user(r)}"), store)

    return RuntimeMap([AgentProfile(name=n) for n in names], build)


async def test_a_mention_followed_by_at_agent_reaches_that_agent_without_either(
    fake: FakeDiscord,
) -> None:
    store = InMemoryStore()
    runtimes = agents(store, "Atlas", "CodeBot")
    channel = channel_for(fake, agent_names=[p.name for p in runtimes.profiles])
    await channel.connect()
    async with ChannelManager(runtimes) as manager:
        await manager.start(channel, "discord")
        await fake.say(f"<@{BOT_ID}> @codebot fix the build", mention_bot=True)
        await fake.wait_posts(1)
        await fake.say(f"<@!{BOT_ID}> what changed?", author_id="501")  # nickname form
        await fake.wait_posts(2)
    assert [p.body["content"] for p in fake.posts] == [
        "CodeBot: fix the build",
        "Atlas: what changed?",
    ]
    session = await store.load("discord:100:300:500")
    assert session is not None and session.messages[0].content == "fix the build"


async def test_a_long_answer_without_line_breaks_is_cut_between_words(fake: FakeDiscord) -> None:
    words = [f"word{i}" for i in range(700)]  # about 5,500 characters, one line
    answer = " ".join(words)
    channel = channel_for(fake, filter="all")
    await channel.connect()
    async with ChannelManager(Runtime(ScriptedProvider([answer]), InMemoryStore())) as manager:
        await manager.start(channel)
        await fake.say("write a lot")
        await fake.wait_posts(3)
        await anyio.sleep(0.05)
    contents = [p.body["content"] for p in fake.posts]
    assert len(contents) == 3
    assert all(0 < len(c) <= 2000 for c in contents)
    # every part starts and ends on a whole word, and nothing is lost or repeated
    assert [w for c in contents for w in c.split(" ")] == words


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("@STRASSE hilf mir", ["Straße"], ("Straße", "hilf mir")),
        ("@straße hilf mir", ["Straße"], ("Straße", "hilf mir")),
        ("@ÉLODIE, bonjour", ["Élodie"], ("Élodie", ", bonjour")),
        ("@Strassenbahn los", ["Straße"], (None, "@Strassenbahn los")),
    ],
)
def test_at_agent_keeps_the_whole_message_whatever_the_case_folding(
    text: str, names: list[str], expected: tuple[str | None, str]
) -> None:
    # "whatever the case": a name whose folded form is longer (ß → ss) must not eat
    # the first letters of the message, nor leave letters of the name in it.
    assert leading_agent(text, names) == expected


async def test_a_restart_serves_the_new_channel_and_the_old_one_is_closed() -> None:
    store = InMemoryStore()
    runtimes = agents(store, "Atlas")
    first, second = GatewayChannel(timeout=5), GatewayChannel(timeout=5)
    async with ChannelManager(runtimes, shutdown_timeout=1) as manager:
        await manager.start(first, "web", {"generation": "1"})
        assert (await first.submit("one", namespace="acme:a")).message.content == "Atlas: one"
        await manager.start(second, "web", {"generation": "2"})
        assert manager.state().connected and manager.state().metadata == {"generation": "2"}
        assert (await second.submit("two", namespace="acme:a")).message.content == "Atlas: two"
        with pytest.raises(Exception, match="closed"):
            await first.submit("late", namespace="acme:a")
        await manager.stop()
        assert not manager.is_connected()
        assert manager.state().metadata == {"generation": "2"}
    session = await store.load("acme:a")
    assert session is not None and len(session.messages) == 4


async def test_stop_cancels_a_stuck_run_after_the_timeout_and_returns() -> None:
    started = anyio.Event()

    async def stuck(request: CompletionRequest) -> str:
        started.set()
        await anyio.sleep(60)
        return "never"

    channel = GatewayChannel(timeout=30)
    runtime = Runtime(ScriptedProvider(stuck), InMemoryStore())
    async with ChannelManager(runtime, shutdown_timeout=0.3) as manager:
        await manager.start(channel, "web")
        async with anyio.create_task_group() as tg:

            async def ask() -> None:
                with pytest.raises(Exception):  # noqa: B017 - closed or cancelled, both fine
                    await channel.submit("hang", namespace="acme:a")

            tg.start_soon(ask)
            await started.wait()
            with anyio.fail_after(5):
                began = anyio.current_time()
                await manager.stop()
                took = anyio.current_time() - began
        assert 0.25 <= took < 3
        assert not manager.is_connected()
