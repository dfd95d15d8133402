"""DiscordChannel on discord.py against the loopback fake Discord (no internet).

discord.py's REST base URL and first gateway URL are pointed at
:mod:`tests.channels.discord_fake`; everything else (login, identify,
heartbeats, resume, message parsing, posting) is the library's real code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

pytest.importorskip("discord")

from discord.gateway import DiscordWebSocket
from discord.http import Route

from orra_di.agent import AgentProfile
from orra_di.channels import ChannelError, ChannelManager
from orra_di.channels.discord_channel import DiscordChannel
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime
from orra_di.runtime_set import RuntimeMap
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider

from .discord_fake import BOT_ID, TOKEN, FakeDiscord

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    monkeypatch.setattr(Route, "BASE", Route.BASE)  # restored after the test
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        yield server


def make_channel(fake: FakeDiscord, **options: object) -> DiscordChannel:
    return DiscordChannel(
        TOKEN,
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
        connect_timeout=10,
        **options,  # type: ignore[arg-type]
    )


def _last_user(request: CompletionRequest) -> str:
    return [m.content for m in request.messages if m.role == "user"][-1]


def echo(store: InMemoryStore | None = None) -> Runtime:
    return Runtime(ScriptedProvider(lambda r: f"echo: {_last_user(r)}"), store or InMemoryStore())


async def test_connects_answers_a_mention_and_types(fake: FakeDiscord) -> None:
    store = InMemoryStore()
    channel = make_channel(fake)
    await channel.connect()
    identify = fake.identifies[0]
    assert identify["token"] == TOKEN
    intents = identify["intents"]
    assert intents & (1 << 0) and intents & (1 << 9) and intents & (1 << 15)
    assert not intents & (1 << 12)  # DMs only with the dms filter
    async with ChannelManager(echo(store)) as manager:
        await manager.start(channel, "discord", {"token_hint": channel.token_hint})
        assert manager.state().metadata == {"token_hint": "****1234"}
        await fake.say("not for the bot")  # mentions filter: ignored
        await fake.say(f"<@{BOT_ID}> hello there", mention_bot=True)
        posts = await fake.wait_posts(1)
        assert posts[0].channel_id == "300" and posts[0].body["content"] == "echo: hello there"
        assert "300" in fake.typing
    session = await store.load("discord:100:300:500")
    assert session is not None
    assert [m.content for m in session.messages] == ["hello there", "echo: hello there"]
    assert len(fake.posts) == 1


async def test_reconnects_resumes_and_still_answers(fake: FakeDiscord) -> None:
    """Bug 24: the fake drops the socket; discord.py resumes and the bot still answers."""
    channel = make_channel(fake, filter="all")
    await channel.connect()
    async with ChannelManager(echo()) as manager:
        await manager.start(channel, "discord")
        await fake.say("before")
        await fake.wait_posts(1)
        await fake.drop(4000)
        await fake.wait_connected(2)
        assert fake.live.resumed
        assert fake.resumes[0]["session_id"] == "fake-session" and fake.resumes[0]["seq"] >= 2
        await fake.say("after")
        posts = await fake.wait_posts(2)
    assert [p.body["content"] for p in posts] == ["echo: before", "echo: after"]
    assert len(fake.identifies) == 1  # resumed, not identified afresh


async def test_long_answer_is_split_at_2000_characters(fake: FakeDiscord) -> None:
    """Bug 26: characters, not bytes; cut on line breaks."""
    line = "é" * 999  # 1,998 bytes each: byte counting would cut far earlier
    answer = "\n".join([line] * 5)
    channel = make_channel(fake, filter="all")
    await channel.connect()
    async with ChannelManager(Runtime(ScriptedProvider([answer]), InMemoryStore())) as manager:
        await manager.start(channel)
        await fake.say("write a lot")
        posts = await fake.wait_posts(3)
        await anyio.sleep(0.05)
    contents = [p.body["content"] for p in posts]
    assert contents == [f"{line}\n{line}", f"{line}\n{line}", line]
    assert all(len(c) <= 2000 for c in contents)


async def test_agent_routing_by_leading_name(fake: FakeDiscord) -> None:
    store = InMemoryStore()

    def build(profile: AgentProfile) -> Runtime:
        return Runtime(ScriptedProvider(lambda r: f"{profile.name}: {_last_user(r)}"), store)

    runtimes = RuntimeMap([AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")], build)
    channel = make_channel(fake, filter="all", agent_names=[p.name for p in runtimes.profiles])
    await channel.connect()
    async with ChannelManager(runtimes) as manager:
        await manager.start(channel)
        await fake.say("@codebot fix this", author_id="501")
        await fake.wait_posts(1)
        await fake.say("just chatting @CodeBot", author_id="502")
        await fake.wait_posts(2)
    contents = [p.body["content"] for p in fake.posts]
    assert contents == ["CodeBot: fix this", "Atlas: just chatting @CodeBot"]


async def test_dm_filter_answers_only_listed_users(fake: FakeDiscord) -> None:
    channel = make_channel(fake, filter="dms", allowed_users=["Alice"])
    await channel.connect()
    assert fake.identifies[0]["intents"] & (1 << 12)
    store = InMemoryStore()
    async with ChannelManager(echo(store)) as manager:
        await manager.start(channel)
        await fake.say("in a server", guild_id="100", username="alice")
        await fake.say("from a stranger", guild_id=None, channel_id="301", username="mallory")
        await fake.say("hi from a dm", guild_id=None, channel_id="302", username="ALICE")
        posts = await fake.wait_posts(1)
        await anyio.sleep(0.05)
    assert [(p.channel_id, p.body["content"]) for p in posts] == [("302", "echo: hi from a dm")]
    assert await store.list() == [
        __import__("orra_di.namespace").namespace.Namespace.parse("discord:dm:302:500")
    ]


async def test_own_and_other_bots_messages_and_bare_mentions_are_ignored(
    fake: FakeDiscord,
) -> None:
    channel = make_channel(fake, filter="all")
    await channel.connect()
    async with ChannelManager(echo()) as manager:
        await manager.start(channel)
        await fake.say("beep", author_id="777", bot=True)
        await fake.say(f"<@{BOT_ID}>   ", mention_bot=True)  # nothing left once stripped
        await fake.say("hello")
        posts = await fake.wait_posts(1)
        await anyio.sleep(0.05)
    assert [p.body["content"] for p in posts] == ["echo: hello"]


async def test_a_refused_post_is_logged_and_the_bot_goes_on(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fail_posts = 1
    channel = make_channel(fake, filter="all")
    await channel.connect()
    async with ChannelManager(echo()) as manager:
        await manager.start(channel)
        await fake.say("one", author_id="1")
        await anyio.sleep(0.1)
        await fake.say("two", author_id="2")
        posts = await fake.wait_posts(1)
    assert [p.body["content"] for p in posts] == ["echo: two"]
    assert "Discord API 403" in caplog.text


async def test_run_error_is_posted_as_an_apology(fake: FakeDiscord) -> None:
    from orra_di.errors import ProviderError

    channel = make_channel(fake, filter="all")
    await channel.connect()
    runtime = Runtime(ScriptedProvider([ProviderError("model is down")]), InMemoryStore())
    async with ChannelManager(runtime) as manager:
        await manager.start(channel)
        await fake.say("hi")
        posts = await fake.wait_posts(1)
    assert posts[0].body["content"].startswith("Sorry, something went wrong: ")
    assert "model is down" in posts[0].body["content"]


async def test_a_wrong_token_is_a_clear_error_without_the_token(fake: FakeDiscord) -> None:
    channel = DiscordChannel(
        "wrong-token-abcd", api_base=fake.api_base, gateway_url=fake.gateway_url
    )
    with pytest.raises(ChannelError, match="refused the bot token") as info:
        await channel.connect()
    assert "wrong-token" not in str(info.value) and "wrong-token" not in repr(channel)
    await channel.close()


async def test_an_empty_answer_is_posted_as_a_note_not_refused(fake: FakeDiscord) -> None:
    """Discord refuses an empty message; the bot says there was no text instead."""
    channel = make_channel(fake, filter="all")
    await channel.connect()
    async with ChannelManager(Runtime(ScriptedProvider([""]), InMemoryStore())) as manager:
        await manager.start(channel)
        await fake.say("say nothing")
        posts = await fake.wait_posts(1)
    assert posts[0].body["content"] == "(no text in the answer)"


async def test_direct_messages_are_asked_for_with_all_and_dms_only(fake: FakeDiscord) -> None:
    """Discord delivers DMs only to a bot that asks for them (an intent): ``all`` means
    every message the bot can read, DMs included; ``mentions`` has none to mention it."""
    for filter_, wanted in (("all", True), ("dms", True), ("mentions", False)):
        channel = make_channel(fake, filter=filter_)
        assert channel.client.intents.dm_messages is wanted, filter_
        await channel.close()
        assert await channel.receive() is None  # drained: its queue is closed too
