"""What every persistent store does the same way: times, metadata, messages, waits, leases."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import anyio
from pydantic import TypeAdapter

from orra_di.errors import SessionBusyError, StoreError
from orra_di.message import Message
from orra_di.session import Session
from orra_di.store import dump_messages, dump_metadata, not_a_message

__all__ = [
    "EncodedSession",
    "Held",
    "drop_quietly",
    "dump_messages",
    "dump_metadata",
    "encode_session",
    "hold_lease",
    "lease_lapsed",
    "load_messages",
    "not_a_message",
    "poll_until",
    "session_gone",
    "time_text",
]

_log = logging.getLogger("orra_di.stores")

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


def load_messages(bodies: Iterable[str]) -> list[Message]:
    """Messages back from their JSON documents, validated in one pass."""
    return _MESSAGES.validate_json(f"[{','.join(bodies)}]")


class EncodedSession(NamedTuple):
    """A session as ``save`` writes it, and as a later load will return it."""

    bodies: list[str]
    metadata: str
    created_at: str
    updated_at: str
    reloaded: Session
    """Timestamps in UTC and metadata through JSON: what to cache, so that cache
    hits and misses agree."""


def encode_session(session: Session, what: str) -> EncodedSession:
    bodies = dump_messages(session.messages)  # first: it names an item that is no Message
    metadata = dump_metadata(session.metadata, what)
    created, updated = time_text(session.created_at), time_text(session.updated_at)
    reloaded = Session(
        namespace=session.namespace,
        messages=list(session.messages),
        created_at=datetime.fromisoformat(created),
        updated_at=datetime.fromisoformat(updated),
        metadata=json.loads(metadata),
    )
    return EncodedSession(bodies, metadata, created, updated, reloaded)


async def poll_until(
    attempt: Callable[[], Awaitable[bool]],
    key: str,
    wait: float | None,
    *,
    started: float | None = None,
    max_poll: float = MAX_POLL,
) -> None:
    """Retry ``attempt`` with a growing pause until it succeeds or ``wait`` runs out.

    The lock of a store shared between processes cannot be awaited, only
    tried; this is that loop. ``started`` (``anyio.current_time()``, default
    now) is when the caller began to wait, so that time spent on the
    in-process lock counts against ``wait`` too; the pause grows to
    ``max_poll``. Raises SessionBusyError
    naming ``key``.
    """
    if wait is None:  # no deadline: no clock to read
        delay = FIRST_POLL
        while not await attempt():
            await anyio.sleep(delay)
            delay = min(delay * 2, max_poll)
        return
    if started is None:
        started = anyio.current_time()
    delay = FIRST_POLL
    while not await attempt():
        waited = anyio.current_time() - started
        if waited >= wait:
            raise SessionBusyError(key, wait)
        await anyio.sleep(min(delay, max(wait - waited, 0)))
        delay = min(delay * 2, max_poll)


def lease_lapsed(what: str, lease_seconds: float) -> StoreError:
    """The error for a write by a holder whose lease another run took over (fencing)."""
    return StoreError(
        f"{what} refused: this run's lock on the session lapsed (not renewed within "
        f"lease_seconds={lease_seconds:g}) and another run took it over"
    )


def session_gone(what: str) -> StoreError:
    """The error for a write by a holder whose session was deleted under it (fencing).

    Going on would store the run's next steps as a session of their own: a tail
    (a tool result, an answer) without the history it continues.
    """
    return StoreError(
        f"{what} refused: the session was deleted while this run held its lock (by delete, "
        "delete_tree, prune or expiry), so the history this run continues is gone; "
        "start a new run"
    )


@dataclass(slots=True)
class Held:
    """A lock this store object holds on a session: its lease, and which session it is on.

    ``session`` identifies the stored session the holder works on (a row id, a
    random origin), ``None`` while there is none: it is read when the lock is
    taken and set by the holder's own writes. A write that finds another
    session, or none where there was one, is refused (:func:`session_gone`).
    """

    lease: str
    session: Any = None


@asynccontextmanager
async def hold_lease(
    key: str,
    wait: float | None,
    *,
    claim: Callable[[], Awaitable[bool]],
    renew: Callable[[], Awaitable[bool]],
    drop: Callable[[], Awaitable[None]],
    renew_every: float,
    started: float | None = None,
) -> AsyncIterator[None]:
    """Hold a lease that other processes respect, for as long as the block runs.

    ``claim`` is retried as by :func:`poll_until`; a claim that fails must
    leave the claimant in the store's queue of waiters for the session, so
    that waiters are served in about their order of arrival (a holder that
    releases and at once asks again queues behind them); ``renew`` runs every
    ``renew_every`` seconds while held and returns ``False`` once another run
    took the lease over (renewal stops: the store's fenced writes refuse the
    stale holder from then on). ``drop`` releases the lease and the place in
    the queue; it runs shielded on the way out, and also when the wait ended
    without the lease (a timeout, or an interruption: the server may have
    committed the claim); a StoreError from it is logged (both expire anyway).
    Errors of the block reach the caller as themselves, not in a group.
    """
    try:
        await poll_until(claim, key, wait, started=started)
    except BaseException:
        await drop_quietly(key, drop, renew_every * 3)
        raise
    released = anyio.Event()  # cheaper to wake the renewer with than to cancel it
    failure: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_keep_renewing, key, renew, renew_every, released)
            try:
                yield
            finally:
                released.set()
    except BaseExceptionGroup as group:
        # The renewer never raises: the group only wraps the block's own error.
        failure = group.exceptions[0] if len(group.exceptions) == 1 else group
    finally:
        await drop_quietly(key, drop, renew_every * 3)
    if failure is not None:
        raise failure


async def drop_quietly(key: str, drop: Callable[[], Awaitable[None]], lease: float) -> None:
    """Release the lease, shielded from cancellation and never waiting past the lease.

    A failure is logged, not raised: the lease expires on its own anyway.
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(lease):
        try:
            await drop()
        except StoreError as exc:
            _log.warning("%s; the session %r stays locked until its lease expires", exc, key)


async def _keep_renewing(
    key: str, renew: Callable[[], Awaitable[bool]], every: float, released: anyio.Event
) -> None:
    while True:
        with anyio.move_on_after(every):
            await released.wait()
            return
        try:
            held = await renew()
        except StoreError as exc:
            _log.warning("%s; retrying at the next renewal", exc)
            continue
        if not held:
            _log.warning("the lock on session %r lapsed and was taken over", key)
            return
