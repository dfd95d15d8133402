"""Discord text rules that need no SDK: mentions, agent picks, namespaces, 2,000-char parts.

Discord limits a message to 2,000 characters (Unicode code points, not bytes:
orra counted bytes, spec §5.6/26, and sent longer replies whole, which Discord
refused, §5.5/24). :func:`split_message` cuts a long answer at line breaks,
else at spaces, else anywhere, keeping each part within the limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from orra_di.namespace import Namespace

__all__ = [
    "DISCORD_MESSAGE_LIMIT",
    "discord_namespace",
    "leading_agent",
    "split_message",
    "strip_mention",
]

DISCORD_MESSAGE_LIMIT = 2000


def strip_mention(content: str, bot_id: str | int) -> str:
    """``content`` without the bot's own mentions (``<@id>`` and the nickname ``<@!id>``)."""
    return re.sub(rf"<@!?{re.escape(str(bot_id))}>", "", content)


def leading_agent(content: str, agent_names: Sequence[str]) -> tuple[str | None, str]:
    """``(agent, rest)`` when ``content`` starts with ``@Name`` of a known agent.

    Case-insensitive; the name must end at a non-alphanumeric character
    (``@Atlas123`` is not ``@Atlas``); the longest matching name wins. Without
    a match: ``(None, content)``.
    """
    text = content.lstrip()
    if not text.startswith("@"):
        return None, content
    folded = text[1:].casefold()
    for name in sorted(agent_names, key=len, reverse=True):
        key = name.casefold()
        if folded.startswith(key):
            after = folded[len(key) : len(key) + 1]
            if not after or not after.isalnum():
                end = _folded_prefix_end(text, 1, key)
                if end is not None:
                    return name, text[end:].strip()
    return None, content


def _folded_prefix_end(text: str, start: int, key: str) -> int | None:
    """Where in ``text`` the characters from ``start`` that fold to ``key`` end.

    Folding may change the length (``ẞ``/``ß`` → ``ss``), so the name as typed need
    not be as long as the configured one: count the typed characters themselves.
    """
    for end in range(start, len(text) + 1):
        folded = text[start:end].casefold()
        if folded == key:
            return end
        if len(folded) > len(key):
            return None
    return None


def discord_namespace(
    prefix: str, guild_id: str | int | None, channel_id: str | int, user_id: str | int
) -> Namespace:
    """``<prefix>:<guild|dm>:<channel>:<user>``: one session per user per channel."""
    guild = str(guild_id) if guild_id is not None else "dm"
    return Namespace(prefix, guild, str(channel_id), str(user_id))


def split_message(text: str, limit: int = DISCORD_MESSAGE_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at line or word boundaries.

    A part ends at the last line break that fits, else the last space, else
    exactly at ``limit``. The separator the cut falls on is dropped; no part
    is empty. An empty text gives no parts.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]  # a separator just past the limit is a clean cut too
        cut = window.rfind("\n")
        if cut <= 0:
            cut = window.rfind(" ")
        if cut <= 0:
            parts.append(rest[:limit])
            rest = rest[limit:]
            continue
        head = rest[:cut].rstrip()
        if head:
            parts.append(head)
        rest = rest[cut + 1 :]
    if rest.strip():
        parts.append(rest)
    return parts
