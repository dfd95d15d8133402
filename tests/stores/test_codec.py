"""The shared store codec: what every store writes the same way."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from orra_di.errors import SessionBusyError, StoreError
from orra_di.message import Message, ToolCall
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores._codec import (
    dump_messages,
    dump_metadata,
    encode_session,
    hold_lease,
    load_messages,
    poll_until,
    time_text,
)


def test_a_message_too_deep_to_serialise_is_a_store_error() -> None:
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(400):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(StoreError, match="cannot store a message as JSON"):
        dump_messages([Message.assistant("", [ToolCall(id="1", name="t", arguments=nested)])])


def test_messages_round_trip() -> None:
    messages = [Message.user("héllo\x00"), Message.assistant("", [ToolCall(id="c", name="t")])]
    assert load_messages(dump_messages(messages)) == messages


def test_metadata_that_is_not_json_names_the_operation() -> None:
    with pytest.raises(StoreError, match="append to 'x' failed: metadata is not JSON"):
        dump_metadata({"when": object()}, "append to 'x'")


def test_time_text_is_fixed_width_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert (
        time_text(datetime(2026, 1, 2, 4, 5, 6, tzinfo=paris)) == "2026-01-02T03:05:06.000000+00:00"
    )
    assert time_text(datetime(2026, 1, 2, 3, 5, 6)) == time_text(
        datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC)
    )


def test_time_text_does_not_depend_on_the_machines_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A server set to another zone must write the same text for the same instant, and
    # read a naive time as UTC (not as its local time).
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert time_text(datetime(2026, 1, 2, 3, 5, 6)) == "2026-01-02T03:05:06.000000+00:00"
        assert (
            time_text(datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC))
            == "2026-01-02T03:05:06.000000+00:00"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_nan_in_metadata_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="save of 'x' failed: metadata is not JSON"):
        dump_metadata({"score": float("nan")}, "save of 'x'")


class _Clock:
    """anyio's clock and sleep for poll_until, advanced only by the sleeps it asks for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        monkeypatch.setattr(anyio, "current_time", lambda: self.now)
        monkeypatch.setattr(anyio, "sleep", self.sleep)

    async def sleep(self, seconds: float) -> None:
        if len(self.sleeps) > 50:
            raise AssertionError(f"poll_until keeps polling: {self.sleeps}")
        self.sleeps.append(seconds)
        self.now += seconds


def _failing(times: int) -> Callable[[], Awaitable[bool]]:
    attempts = iter([False] * times + [True])

    async def attempt() -> bool:
        return next(attempts)

    return attempt


@pytest.mark.anyio
async def test_poll_until_doubles_its_pause_up_to_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    await poll_until(_failing(7), "k", None, max_poll=0.05)
    assert clock.sleeps == pytest.approx([0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05])


@pytest.mark.anyio
async def test_poll_until_never_sleeps_past_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    with pytest.raises(SessionBusyError) as caught:
        await poll_until(_failing(100), "acme:alice", 0.25)
    # The last pause is cut to what is left of the wait, then the wait is over.
    assert clock.sleeps == pytest.approx(
        [0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05, 0.05, 0.038]
    )
    assert caught.value.key == "acme:alice"
    assert caught.value.waited == 0.25
    assert "'acme:alice' is busy" in str(caught.value)


@pytest.mark.anyio
async def test_poll_until_counts_the_time_already_waited(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = _Clock(monkeypatch)
    # The caller already spent the whole wait on the in-process lock: one try, no pause.
    with pytest.raises(SessionBusyError):
        await poll_until(_failing(1), "k", 0.5, started=clock.now - 0.5)
    assert clock.sleeps == []
    await poll_until(_failing(1), "k", 0.5, started=clock.now - 0.1)
    assert clock.sleeps == pytest.approx([0.002])


async def _nothing() -> None:
    return None


async def _yes() -> bool:
    return True


@pytest.mark.anyio
async def test_a_failed_renewal_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    renewals = 0
    renewed_again = anyio.Event()

    async def renew() -> bool:
        nonlocal renewals
        renewals += 1
        if renewals == 1:
            raise StoreError("renewal of 'k' failed: connection reset")
        renewed_again.set()
        return True

    with anyio.fail_after(30):  # a deadlock guard, not a timing assertion
        async with hold_lease("k", None, claim=_yes, renew=renew, drop=_nothing, renew_every=0.001):
            await renewed_again.wait()
    assert (
        "storage error: renewal of 'k' failed: connection reset; retrying at the next renewal"
        in [r.getMessage() for r in caplog.records]
    )


@pytest.mark.anyio
async def test_a_lease_taken_over_is_logged_with_its_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    asked = anyio.Event()

    async def renew() -> bool:
        asked.set()
        return False

    with anyio.fail_after(30):
        async with hold_lease(
            "acme:alice", None, claim=_yes, renew=renew, drop=_nothing, renew_every=0.001
        ):
            await asked.wait()
    assert "the lock on session 'acme:alice' lapsed and was taken over" in [
        r.getMessage() for r in caplog.records
    ]


@pytest.mark.anyio
async def test_a_failed_release_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    async def drop() -> None:
        raise StoreError("release of 'k' failed: server gone")

    async with hold_lease("acme:bob", None, claim=_yes, renew=_yes, drop=drop, renew_every=10):
        pass
    assert (
        "storage error: release of 'k' failed: server gone; the session 'acme:bob' stays "
        "locked until its lease expires"
    ) in [r.getMessage() for r in caplog.records]


@pytest.mark.anyio
async def test_a_cancelled_holder_still_releases_its_lease() -> None:
    released = False

    async def drop() -> None:
        nonlocal released
        await anyio.lowlevel.checkpoint()  # a real release awaits the server
        released = True

    with anyio.CancelScope() as scope:
        async with hold_lease("k", None, claim=_yes, renew=_yes, drop=drop, renew_every=10):
            scope.cancel()
            await anyio.lowlevel.checkpoint()
    assert released


@pytest.mark.anyio
async def test_a_release_that_hangs_is_given_up_after_the_lease() -> None:
    async def drop() -> None:
        await anyio.sleep_forever()

    with anyio.fail_after(30):  # a deadlock guard: the release gives up after 3 x 0.001 s
        async with hold_lease("k", None, claim=_yes, renew=_yes, drop=drop, renew_every=0.001):
            pass


def test_a_session_whose_metadata_is_not_json_names_the_operation() -> None:
    session = Session(namespace=Namespace("u"), metadata={"when": object()})
    with pytest.raises(StoreError, match="save session 'u' failed: metadata is not JSON"):
        encode_session(session, "save session 'u'")
