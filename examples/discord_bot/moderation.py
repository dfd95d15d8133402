"""Approvals over Discord: the bot asks in the channel, a listed moderator answers there.

orra-di's :class:`~orra_di.approvals.ApprovalHook` holds a ``delete_note`` call and
asks an :class:`~orra_di.approvals.Approver`; anything but an explicit approval in
time denies it. ``DiscordChannel`` hands the application messages, not reactions, so
the answer is a message to the bot::

    @orra-bot approve 3f9c2a          @orra-bot deny 3f9c2a not this one

:class:`DiscordApprovals` is the approver: it posts the request in the channel the
call came from and waits. :class:`ModeratedChannel` wraps the Discord channel: an
``approve``/``deny`` message is taken out of the stream and answered here (by a
moderator: decided; by anyone else: refused), every other message goes on to the
agents. Requests are also in the approval store beside the sessions, so
``orra-di approvals approve <id>`` from a shell answers them too (first answer wins).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import anyio

from orra_di import Message, Namespace
from orra_di.approvals import ApprovalRecord, Decision
from orra_di.channels import Channel, ChannelError, InboundMessage, OutboundError, OutboundMessage

__all__ = ["ANSWER", "DiscordApprovals", "ModeratedChannel"]

log = logging.getLogger("discord_bot")

ANSWER = re.compile(r"^(approve|deny)\s+([0-9a-f]{6})\b\s*(.*)$", re.IGNORECASE | re.DOTALL)
"""``approve <code>`` or ``deny <code> [reason]``, the bot's mention already stripped."""


@dataclass
class _Waiting:
    request: ApprovalRecord
    answered: anyio.Event = field(default_factory=anyio.Event)
    decision: Decision | None = None


class DiscordApprovals:
    """The approver: posts each request to its Discord channel and waits for a moderator.

    ``moderators``: Discord usernames (case-insensitive) allowed to answer.
    ``post(channel_id, text)`` sends a message; :class:`ModeratedChannel` sets it.
    """

    def __init__(self, moderators: Sequence[str], bot_name: str = "the bot") -> None:
        self.moderators = frozenset(name.lower() for name in moderators)
        self.bot_name = bot_name
        self.channel: Channel | None = None
        self._waiting: dict[str, _Waiting] = {}

    @staticmethod
    def code(request: ApprovalRecord) -> str:
        """The short code people type: the first six hex digits of the request id."""
        return request.id[:6]

    async def decide(self, request: ApprovalRecord) -> Decision:
        if self.channel is None:
            raise RuntimeError("the bot is not connected to Discord")
        where = Namespace.parse(request.namespace).segments  # discord:<guild>:<channel>:<user>
        if len(where) != 4:
            raise RuntimeError(f"{request.namespace} is not a Discord conversation")
        channel_id, user_id = where[2], where[3]
        code = self.code(request)
        if code in self._waiting:  # one in sixteen million: deny rather than mix them up
            raise RuntimeError(f"another request waits under the code {code}; ask again")
        waiting = self._waiting[code] = _Waiting(request)
        try:
            names = ", ".join(sorted(self.moderators)) or "nobody is listed"
            await _post(
                self.channel,
                channel_id,
                f"Approval needed: {request.agent or 'the agent'} wants to run "
                f"`{request.tool} {json.dumps(request.arguments)}` for <@{user_id}>.\n"
                f"A moderator ({names}) answers `@{self.bot_name} approve {code}` or "
                f"`@{self.bot_name} deny {code} [reason]`; without an answer by "
                f"{request.expires_at:%H:%M} UTC it is denied.",
            )
            await waiting.answered.wait()
        finally:
            self._waiting.pop(code, None)
        assert waiting.decision is not None
        return waiting.decision

    async def answer(self, inbound: InboundMessage, verdict: re.Match[str]) -> None:
        """Settle a request from an ``approve``/``deny`` message, and say what happened."""
        assert self.channel is not None
        who = str(inbound.metadata.get("author_username", ""))
        channel_id = str(inbound.metadata.get("channel_id", ""))
        verb, code, reason = verdict[1].lower(), verdict[2].lower(), verdict[3].strip() or None
        waiting = self._waiting.get(code)
        if who.lower() not in self.moderators:
            text = f"Only a moderator can answer approval requests, {who}."
        elif waiting is None or waiting.answered.is_set():
            text = f"No approval request {code} is waiting (answered, expired, or mistyped)."
        else:
            make = Decision.approve if verb == "approve" else Decision.deny
            waiting.decision = make(waiting.request, by=who, reason=reason)
            waiting.answered.set()
            done = "approved" if verb == "approve" else "denied"
            text = f"{waiting.request.tool} {done} by {who}."
        await _post(self.channel, channel_id, text)


class ModeratedChannel:
    """A channel whose ``approve``/``deny`` messages go to :class:`DiscordApprovals`."""

    def __init__(self, inner: Channel, approvals: DiscordApprovals) -> None:
        self.inner = inner
        self.approvals = approvals
        approvals.channel = inner

    async def receive(self) -> InboundMessage | None:
        while True:
            inbound = await self.inner.receive()
            if inbound is None:
                return None
            verdict = ANSWER.match(inbound.message.content.strip())
            if verdict is None:
                return inbound
            try:
                await self.approvals.answer(inbound, verdict)
            except ChannelError as exc:  # the decision stands; only its notice was lost
                log.warning("could not post the approval notice: %s", exc)

    async def send(self, message: OutboundMessage) -> None:
        await self.inner.send(message)

    async def send_error(self, error: OutboundError) -> None:
        await self.inner.send_error(error)

    def typing(self, metadata: Mapping[str, Any]) -> AbstractAsyncContextManager[None]:
        return self.inner.typing(metadata)

    async def close(self) -> None:
        await self.inner.close()


async def _post(channel: Channel, channel_id: str, text: str) -> None:
    """Post ``text`` in a Discord channel through the bot's own channel object."""
    await channel.send(
        OutboundMessage(
            Namespace("discord", "bot"), Message.assistant(text), None, {"channel_id": channel_id}
        )
    )
