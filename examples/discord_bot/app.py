"""The Discord bot: the container, its settings, the moderated channel, and the summary job.

Two agents answer in Discord: ``Helper`` (the default; keeps the team's notes) and
``Reviewer`` (a message starting with ``@Reviewer`` goes to it). ``delete_note``
waits for a moderator's approval given in Discord (``moderation.py``). A cron job
posts a summary of the notes to one channel every day. With no key the scripted
model in ``offline.py`` answers.

    DISCORD_TOKEN=... python examples/discord_bot --moderator bob --summary-channel 1234
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio
from dependency_injector import providers

from orra_di import Message, Namespace, OrraError
from orra_di.channels import Channel, OutboundMessage
from orra_di.containers import Container, lifespan
from orra_di.cron.model import AgentTurnPayload, CronJob, CronRun
from orra_di.cron.schedule import CronExpressionSchedule
from orra_di.cron.service import CronService
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

if TYPE_CHECKING:
    from orra_di.channels.discord_channel import DiscordChannel

from .moderation import DiscordApprovals, ModeratedChannel
from .notes import DANGEROUS, Notes, notes_tools
from .offline import bot_model

__all__ = ["AGENTS", "SUMMARY_JOB", "Bot", "make_bot", "serve"]

HELPER_PROMPT = (
    "You are Helper, the team's assistant in Discord. You keep the team's notebook with "
    "your tools: add a note when asked, list the notes, delete one when asked (a moderator "
    "must approve that). Act with the tools rather than describing, and answer briefly."
)
REVIEWER_PROMPT = (
    "You are Reviewer. People paste text, code or plans for you to review: say plainly "
    "what is wrong or unclear and what to change, in a few lines. You can read the notes."
)
AGENTS = [
    {"name": "Helper", "system_prompt": HELPER_PROMPT},
    {"name": "Reviewer", "system_prompt": REVIEWER_PROMPT},
]
SUMMARY_JOB = "daily-summary"
SUMMARY_PROMPT = (
    "Write today's summary of the team's notebook: list the notes with your tool, then "
    "summarise them in a few lines."
)
TOKEN_VARIABLES = ("DISCORD_TOKEN", "ORRA_CHANNELS__DISCORD__TOKEN")


@dataclass
class Bot:
    """The bot's container and what it works on; ``channel`` once connected."""

    container: Container
    notes: Notes
    approvals: DiscordApprovals
    summary_channel: str | None
    summary_at: str
    channel: Channel | None = field(default=None, init=False)
    _stopping: anyio.Event | None = field(default=None, init=False)

    def stop(self) -> None:
        """Make :func:`serve` disconnect and return (runs in flight get the shutdown time)."""
        if self._stopping is not None:
            self._stopping.set()

    async def deliver(self, job: CronJob, run: CronRun, text: str) -> None:
        """The cron service's delivery: an announced answer goes to the summary channel."""
        if self.channel is None or self.summary_channel is None:
            raise RuntimeError("the bot is not connected, or no summary channel is set")
        await self.channel.send(
            OutboundMessage(
                Namespace.parse(job.namespace),
                Message.assistant(f"**Daily summary**\n{text}"),
                None,
                {"channel_id": self.summary_channel},
            )
        )


def make_bot(
    token: str,
    *,
    data: Path | None,
    moderators: Sequence[str] = (),
    summary_channel: str | None = None,
    summary_at: str = "0 17 * * *",
    all_messages: bool = False,
    approval_timeout: float = 300.0,
    api_base: str | None = None,
    gateway_url: str | None = None,
    offline: bool | None = None,
) -> Bot:
    """The bot's container; sessions, approvals, jobs and notes in ``data`` (memory without).

    The model comes from the environment like any orra-di entry point
    (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``ORRA_LLM__*``); with none configured (or
    ``offline=True``) the scripted ``bot_model`` answers. ``api_base``/``gateway_url``
    point the bot at another Discord (a proxy, the test suite's loopback fake).
    """
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    discord: dict[str, Any] = {"token": token, "filter": "all" if all_messages else "mentions"}
    if api_base:
        discord["api_base"] = api_base
    if gateway_url:
        discord["gateway_url"] = gateway_url
    default_store = f"sqlite:///{data / 'sessions.sqlite3'}" if data else "memory://"
    settings = load_settings(
        agents=AGENTS,
        runtime={"max_turns": 5, "max_tokens": 1024, "enable_delegation": False},
        tools=[],
        approval={"enabled": True, "tools": DANGEROUS, "timeout": approval_timeout},
        cron={"enabled": summary_channel is not None},
        channels={"discord": discord},
        store={"url": os.environ.get("ORRA_STORE__URL") or default_store},
    )
    container = Container()
    container.settings.override(providers.Object(settings))
    notes = Notes(data / "notes.json" if data else None)
    tools = notes_tools(notes)
    container.tool_factory.override(providers.Object(lambda profile: tools))
    approvals = DiscordApprovals(moderators)
    container.approver.override(providers.Object(approvals))
    if offline or (offline is None and settings.llm.resolved_kind == "offline"):
        container.llm.override(providers.Object(ScriptedProvider(bot_model)))
    bot = Bot(container, notes, approvals, summary_channel, summary_at)
    container.cron_deliver.override(providers.Object(bot.deliver))
    return bot


async def schedule_summary(bot: Bot) -> CronJob | None:
    """(Re)create the daily summary job with the current schedule; None without a channel."""
    if bot.summary_channel is None:
        return None
    service: CronService = bot.container.cron_service()
    await service.delete_job(SUMMARY_JOB)
    job = CronJob.new(
        "daily summary",
        CronExpressionSchedule(expression=bot.summary_at),
        AgentTurnPayload(prompt=SUMMARY_PROMPT),
        Namespace("discord-bot", "summary", bot.summary_channel),
        id=SUMMARY_JOB,
        agent="Helper",
    )
    return await service.add_job(job)


async def serve(bot: Bot, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    """Connect, serve Discord and the summary job until :meth:`Bot.stop`."""
    container = bot.container
    stopping = bot._stopping = anyio.Event()
    async with lifespan(container):
        discord = cast("DiscordChannel", container.discord_channel())
        await discord.connect()
        me = discord.client.user
        bot.approvals.bot_name = me.name if me is not None else bot.approvals.bot_name
        bot.channel = ModeratedChannel(discord, bot.approvals)
        manager = container.channel_manager(adapter=container.channel_adapter())
        async with manager:
            await manager.start(bot.channel, "discord", {"token_hint": discord.token_hint})
            await schedule_summary(bot)
            task_status.started(bot)
            await stopping.wait()


async def serve_until_signal(bot: Bot) -> None:
    """:func:`serve` until SIGINT (Ctrl-C) or SIGTERM."""
    async with anyio.create_task_group() as tg:
        await tg.start(serve, bot)
        print(f"connected as {bot.approvals.bot_name}; Ctrl-C stops")
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                bot.stop()
                break
    print("stopped")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="discord_bot", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--moderator",
        action="append",
        default=[],
        help="a Discord username allowed to approve delete_note (repeat for more)",
    )
    parser.add_argument(
        "--summary-channel", default=os.environ.get("SUMMARY_CHANNEL_ID"), help="channel id"
    )
    parser.add_argument("--summary-at", default="0 17 * * *", help="cron expression, UTC")
    parser.add_argument("--all", action="store_true", help="answer every message, not mentions")
    parser.add_argument("--data", type=Path, default=Path("discord-bot-data"))
    parser.add_argument("--offline", action="store_true", help="the scripted model, key or not")
    args = parser.parse_args(argv)
    token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)
    if token is None:
        raise SystemExit(
            "error: set DISCORD_TOKEN (or ORRA_CHANNELS__DISCORD__TOKEN) to the bot's token; "
            "examples/discord_bot/README.md says how to create one"
        )
    try:
        bot = make_bot(
            token,
            data=args.data,
            moderators=args.moderator,
            summary_channel=args.summary_channel,
            summary_at=args.summary_at,
            all_messages=args.all,
            offline=True if args.offline else None,
        )
        kind: str = bot.container.settings().llm.resolved_kind
        if args.offline or kind == "offline":
            kind = "scripted offline model (set ANTHROPIC_API_KEY or OPENAI_API_KEY for a real one)"
        print(f"discord bot: {kind}; data in {args.data}")
        if not args.moderator:
            print("no --moderator given: every delete_note call will be denied")
        anyio.run(serve_until_signal, bot)
    except (OrraError, ExceptionGroup) as exc:  # a refused token, a bad store URL...
        error = _orra_error(exc)
        if error is None:
            raise
        raise SystemExit(f"error: {error}") from None


def _orra_error(exc: BaseException) -> OrraError | None:
    """The OrraError in ``exc`` (a task group wraps what its tasks raise)."""
    if isinstance(exc, OrraError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _orra_error(inner)) is not None:
                return found
    return None
