"""examples/discord_bot: the bot against the loopback Discord fake, with its scripted model.

discord.py itself talks to :mod:`tests.channels.discord_fake` (REST and gateway in
Discord's wire format); the bot's container, approvals, cron service and channel
manager are the real ones. Checked: ``@Reviewer`` routing, a moderator approving
and denying ``delete_note`` in the channel (a non-moderator refused), and the daily
summary job posting to its channel.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

pytest.importorskip("discord")

from discord.gateway import DiscordWebSocket
from discord.http import Route

from orra_di import CompletionRequest, Message
from orra_di.cron.schedule import CronExpressionSchedule
from tests.channels.discord_fake import BOT_ID, TOKEN, FakeDiscord, Post

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from discord_bot.app import SUMMARY_JOB, Bot, make_bot, serve  # noqa: E402
from discord_bot.moderation import ANSWER  # noqa: E402
from discord_bot.offline import bot_model  # noqa: E402

pytestmark = pytest.mark.anyio
SUMMARY_CHANNEL = "777"


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(Route, "BASE", Route.BASE)  # discord.py keeps these per process
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[Bot]:
    made = make_bot(
        TOKEN,
        data=tmp_path / "data",
        moderators=["Bob"],
        summary_channel=SUMMARY_CHANNEL,
        approval_timeout=10,
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(serve, made)
        yield made
        made.stop()


async def ask(fake: FakeDiscord, text: str, username: str = "alice", user: str = "500") -> Post:
    """Mention the bot with ``text``; the bot's next post."""
    seen = len(fake.posts)
    await fake.say(f"<@{BOT_ID}> {text}", mention_bot=True, username=username, author_id=user)
    return (await fake.wait_posts(seen + 1))[seen]


async def test_routing_notes_and_the_moderated_delete(fake: FakeDiscord, bot: Bot) -> None:
    noted = await ask(fake, "note ship v2 on friday")
    assert noted.channel_id == "300"
    assert noted.body["content"] == "[Helper] Noted #1: ship v2 on friday"
    reviewed = await ask(fake, "@reviewer is this plan any good?")
    assert reviewed.body["content"].startswith(
        "[Reviewer] I read 5 words"
    )  # "@reviewer" was taken off

    # alice asks to delete: the run waits, the bot asks the moderators in the channel
    prompt = await ask(fake, "delete note 1")
    text = prompt.body["content"]
    assert text.startswith("Approval needed: Helper wants to run `delete_note")
    assert '{"note_id": 1}' in text and "<@500>" in text and "(bob)" in text
    found = re.search(r"approve ([0-9a-f]{6})`", text)
    assert found is not None
    code = found[1]
    refused = await ask(fake, f"approve {code}", username="mallory", user="501")
    assert refused.body["content"] == "Only a moderator can answer approval requests, mallory."
    assert [n.id for n in bot.notes.all()] == [1]  # still there
    approved = await ask(fake, f"approve {code}", username="bob", user="502")
    assert approved.body["content"] == "delete_note approved by bob."
    done = (await fake.wait_posts(len(fake.posts) + 1))[-1]
    assert done.body["content"] == "[Helper] Deleted note #1: ship v2 on friday"
    assert bot.notes.all() == []
    again = await ask(fake, f"approve {code}", username="bob", user="502")
    assert again.body["content"].startswith(f"No approval request {code} is waiting")

    # denied with a reason: the tool does not run, and the model is told why
    await ask(fake, "note keep this one")
    prompt = await ask(fake, "delete note 2")
    code = re.findall(r"deny ([0-9a-f]{6})", prompt.body["content"])[0]
    await ask(fake, f"deny {code} we still need it", username="BOB", user="502")
    done = (await fake.wait_posts(len(fake.posts) + 1))[-1]
    assert done.body["content"] == (
        "[Helper] Tool call 'delete_note' was denied by BOB: we still need it"
    )
    assert [n.text for n in bot.notes.all()] == ["keep this one"]

    # the audit trail is in the approval store beside the sessions
    records = await bot.container.approval_store().history("discord")
    assert sorted((r.status.value, r.decided_by) for r in records) == [
        ("approved", "bob"),
        ("denied", "BOB"),
    ]


async def test_the_daily_summary_is_posted_to_its_channel(fake: FakeDiscord, bot: Bot) -> None:
    await ask(fake, "note release notes due")
    service = bot.container.cron_service()
    (job,) = await service.list_jobs()
    assert job.id == SUMMARY_JOB and job.agent == "Helper"
    assert job.schedule == CronExpressionSchedule(expression="0 17 * * *")
    assert job.next_run is not None and (job.next_run.hour, job.next_run.minute) == (17, 0)
    run = await service.run_now(SUMMARY_JOB)
    assert run is not None and run.outcome == "ok", run
    summary = fake.posts[-1]
    assert summary.channel_id == SUMMARY_CHANNEL
    assert summary.body["content"] == ("**Daily summary**\n[Helper] #1 (<@500>): release notes due")


def test_the_scripted_model_signs_with_the_agent_and_picks_tools() -> None:
    def ask_model(text: str, agent: str = "Helper") -> Message:
        system = Message.system(f"You are {agent}, here to help.")
        return bot_model(CompletionRequest(messages=[system, Message.user(text)])).message

    assert [c.arguments for c in ask_model("remember: buy milk").tool_calls] == [
        {"text": "buy milk"}
    ]
    assert [c.name for c in ask_model("forget #3").tool_calls] == ["delete_note"]
    assert [c.name for c in ask_model("summarise the notes").tool_calls] == ["list_notes"]
    assert ask_model("hello").content.startswith("[Helper] Offline I understand")
    assert ask_model("hello", "Reviewer").content.startswith("[Reviewer] I read 1 word;")
    assert ANSWER.match("approve 0a1b2c") and not ANSWER.match("approve everything")


def test_it_will_not_start_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.pop("DISCORD_TOKEN", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "discord_bot")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "set DISCORD_TOKEN (or ORRA_CHANNELS__DISCORD__TOKEN)" in done.stderr
    assert not (tmp_path / "discord-bot-data").exists()
