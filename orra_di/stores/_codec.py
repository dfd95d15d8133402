"""What every persistent store writes the same way: times, metadata, messages, waits."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import TypeAdapter

from orra_di.errors import SessionBusyError, StoreError
from orra_di.message import Message

__all__ = [
    "dump_messages",
    "dump_metadata",
    "load_messages",
    "poll_until",
    "time_text",
]

_MESSAGES = TypeAdapter(list[Message])
FIRST_POLL = 0.002
MAX_POLL = 0.05


def time_text(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds, so text order is time order.

    A naive datetime is taken to be UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def dump_metadata(metadata: Mapping[str, Any], what: str) -> str:
    """Session metadata as JSON; ``what`` names the operation in the error."""
    try:
        return json.dumps(dict(metadata), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"{what} failed: metadata is not JSON-serialisable: {exc}") from exc


def dump_messages(messages: Iterable[Message]) -> list[str]:
    """One JSON document per message, in order (empty tool lists omitted)."""
    return [m.model_dump_json() for m in messages]


def load_messages(bodies: Iterable[str]) -> list[Message]:
    """Messages back from their JSON documents, validated in one pass."""
    return _MESSAGES.validate_json(f"[{','.join(bodies)}]")


async def poll_until(
    attempt: Callable[[], Awaitable[bool]], key: str, wait: float | None
) -> None:
    """Retry ``attempt`` with a growing pause until it succeeds or ``wait`` runs out.

    The lock of a store shared between processes cannot be awaited, only
    tried; this is that loop. Raises SessionBusyError naming ``key``.
    """
    started = anyio.current_time()
    delay = FIRST_POLL
    while not await attempt():
        waited = anyio.current_time() - started
        if wait is not None and waited >= wait:
            raise SessionBusyError(key, wait)
        await anyio.sleep(delay if wait is None else min(delay, max(wait - waited, 0)))
        delay = min(delay * 2, MAX_POLL)
