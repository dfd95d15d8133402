"""What every approval store must do, as one reusable test class.

A backend's test class subclasses :class:`ApprovalStoreConformance` and overrides
``new_sessions``: a factory of *session store* objects sharing one fresh storage
(a directory, a database file, a schema, a key prefix). The suite puts approval
stores beside them with :func:`orra_di.approvals.approval_store_for`, and opens a
second one on a second session store object to see what another process sees.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import anyio
import pytest

from orra_di.approvals import (
    SYSTEM,
    ApprovalRecord,
    ApprovalStatus,
    ApprovalStore,
    approval_store_for,
)
from orra_di.errors import ApprovalError
from orra_di.message import ToolCall
from orra_di.namespace import Namespace
from orra_di.store import SessionStore

SessionsFactory = Callable[[], SessionStore]
ApprovalsFactory = Callable[[], ApprovalStore]

# Quotes, SQL, JSON escapes, NUL and other control characters, right-to-left text, emoji.
HOSTILE = "it's \"q\" '; DROP TABLE approvals_v1; -- \\ %_* nul\x00 \x1b[31m \u2028 שלום 👩\u200d💻"
BOUND = 30  # seconds: a bound that keeps a broken backend from hanging the suite, never measured


def request(
    namespace: str = "acme:alice", *, call_id: str = "c1", **arguments: object
) -> ApprovalRecord:
    call = ToolCall(id=call_id, name="exec", arguments=arguments or {"cmd": "ls"})
    ns = Namespace.parse(namespace)
    return ApprovalRecord.for_call(ns, call, timeout=300, agent="Atlas", run_id="r1")


class ApprovalStoreConformance:
    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def new_sessions(self) -> SessionsFactory:
        raise NotImplementedError("a backend's test class must override new_sessions")

    @pytest.fixture
    async def new_approvals(self, new_sessions: SessionsFactory) -> AsyncIterator[ApprovalsFactory]:
        """Approval stores, each beside a new session store object on the shared storage."""
        opened: list[SessionStore] = []

        def open_approvals() -> ApprovalStore:
            sessions = new_sessions()
            opened.append(sessions)
            return approval_store_for(sessions, poll_interval=0.05)

        yield open_approvals
        for sessions in opened:
            await sessions.aclose()

    @pytest.fixture
    def approvals(self, new_approvals: ApprovalsFactory) -> ApprovalStore:
        return new_approvals()

    async def test_a_request_round_trips_exactly(self, approvals: ApprovalStore) -> None:
        asked = request(cmd=HOSTILE, n=[1, 2.5, None, True], nested={"k": {"deep": HOSTILE}})
        await approvals.add(asked)
        assert await approvals.get(asked.id) == asked
        assert await approvals.get(secrets.token_hex(16)) is None

    async def test_another_store_object_sees_requests_and_decisions(
        self, new_approvals: ApprovalsFactory
    ) -> None:
        first, second = new_approvals(), new_approvals()
        asked = request()
        await first.add(asked)
        assert [r.id for r in await second.pending()] == [asked.id]
        decided = await second.approve(asked.id, by="bob", reason="looks fine")
        assert (decided.status, decided.decided_by, decided.reason) == (
            ApprovalStatus.APPROVED,
            "bob",
            "looks fine",
        )
        assert decided.decided_at is not None
        assert await first.get(asked.id) == decided
        assert await first.pending() == []

    async def test_pending_lists_the_waiting_oldest_first_under_a_namespace(
        self, approvals: ApprovalStore
    ) -> None:
        records = [
            request("acme:alice"),
            request("acme:bob"),
            request("acme"),
            request("acmex:carol"),
            request("other"),
        ]
        for record in records:
            await approvals.add(record)
        await approvals.deny(records[1].id, by="ops")
        expired = request("acme:dave").model_copy(
            update={"expires_at": records[0].requested_at - timedelta(seconds=1)}
        )
        await approvals.add(expired)
        assert [r.id for r in await approvals.pending()] == [records[i].id for i in (0, 2, 3, 4)]
        assert [r.namespace for r in await approvals.pending("acme")] == ["acme:alice", "acme"]
        assert [r.namespace for r in await approvals.pending(Namespace("acme", "alice"))] == [
            "acme:alice"
        ]

    async def test_the_first_decision_wins(self, new_approvals: ApprovalsFactory) -> None:
        first, second = new_approvals(), new_approvals()
        asked = request()
        await first.add(asked)
        outcomes: list[ApprovalRecord] = []

        async def decide(store: ApprovalStore, approved: bool, by: str) -> None:
            outcomes.append(await store.decide(asked.id, approved=approved, by=by))

        async with anyio.create_task_group() as tg:
            for i in range(3):
                tg.start_soon(decide, first, True, f"a{i}")
                tg.start_soon(decide, second, False, f"d{i}")
        stored = await first.get(asked.id)
        assert stored is not None and not stored.pending
        assert all(outcome == stored for outcome in outcomes)  # every caller learns the winner
        later = await second.approve(asked.id, by="late")
        assert later == stored

    async def test_an_expired_request_cannot_be_approved(self, approvals: ApprovalStore) -> None:
        asked = request()
        expired = asked.model_copy(update={"expires_at": asked.requested_at})
        await approvals.add(expired)
        decided = await approvals.approve(expired.id, by="alice")
        assert decided.status is ApprovalStatus.DENIED
        assert decided.decided_by == SYSTEM and "expired" in (decided.reason or "")

    async def test_bad_ids_and_missing_deciders_are_clear_errors(
        self, approvals: ApprovalStore
    ) -> None:
        for bad in ("../../etc/passwd", "x" * 32, "", "ABCDEF" + "0" * 26):
            with pytest.raises(ApprovalError, match="not an approval id"):
                await approvals.approve(bad, by="alice")
            with pytest.raises(ApprovalError, match="not an approval id"):
                await approvals.get(bad)
        with pytest.raises(ApprovalError, match="no approval request"):
            await approvals.approve(secrets.token_hex(16), by="alice")
        asked = request()
        await approvals.add(asked)
        with pytest.raises(ApprovalError, match="say who decides"):
            await approvals.approve(asked.id, by="  ")
        assert (await approvals.get(asked.id)) == asked  # nothing recorded

    async def test_a_waiter_wakes_on_a_decision_from_another_store_object(
        self, new_approvals: ApprovalsFactory
    ) -> None:
        waiting, answering = new_approvals(), new_approvals()
        records = [request(call_id=f"c{i}") for i in range(4)]
        for record in records:
            await waiting.add(record)
        seen: dict[str, ApprovalRecord] = {}

        async def wait(record: ApprovalRecord) -> None:
            seen[record.id] = await waiting.wait(record.id)

        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:
                for record in records:
                    tg.start_soon(wait, record)
                await anyio.sleep(0.1)  # let them start waiting (the test holds either way)
                for i, record in enumerate(reversed(records)):
                    await answering.decide(record.id, approved=i % 2 == 0, by="bob")
        assert {k: v.status for k, v in seen.items()} == {
            r.id: ApprovalStatus.APPROVED if i % 2 == 0 else ApprovalStatus.DENIED
            for i, r in enumerate(reversed(records))
        }

    async def test_next_pending_waits_for_a_request_added_elsewhere(
        self, new_approvals: ApprovalsFactory
    ) -> None:
        watching, asking = new_approvals(), new_approvals()
        first, second = request("acme:alice"), request("acme:alice", call_id="c2")
        other = request("other:bob")
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:

                async def ask() -> None:
                    await asking.add(other)  # not under acme: not what is watched
                    await asking.add(first)
                    await asking.add(second)

                tg.start_soon(ask)
                seen = await watching.next_pending("acme")
                assert seen.id == first.id
                assert (await watching.next_pending("acme", seen={first.id})).id == second.id

    async def test_waiting_for_an_unknown_request_fails(self, approvals: ApprovalStore) -> None:
        with pytest.raises(ApprovalError, match="no approval request"):
            await approvals.wait(secrets.token_hex(16))

    async def test_history_is_the_audit_trail(self, new_approvals: ApprovalsFactory) -> None:
        approvals = new_approvals()
        alice, bob, carol = request("acme:alice"), request("acme:bob"), request("other:carol")
        for record in (alice, bob, carol):
            await approvals.add(record)
        auto = request("acme:alice", call_id="c9").decide(
            approved=True, by="auto-approve", reason="auto mode"
        )
        await approvals.add(auto)
        await approvals.approve(alice.id, by="ops", reason="ok")
        await approvals.deny(carol.id, by="sec", reason="no")
        trail = await new_approvals().history()  # what a restarted process reads
        assert [(r.id, r.status, r.decided_by, r.reason) for r in trail] == [
            (carol.id, ApprovalStatus.DENIED, "sec", "no"),
            (alice.id, ApprovalStatus.APPROVED, "ops", "ok"),
            (auto.id, ApprovalStatus.APPROVED, "auto-approve", "auto mode"),
        ]
        assert trail[1].call_id == "c1" and trail[1].arguments == {"cmd": "ls"}
        assert [r.id for r in await approvals.history("acme")] == [alice.id, auto.id]
        assert [r.id for r in await approvals.history(limit=1)] == [carol.id]
        with pytest.raises(ValueError, match="limit"):
            await approvals.history(limit=0)

    async def test_writes_through_the_same_object_wake_its_waiters_at_once(
        self, new_sessions: SessionsFactory
    ) -> None:
        """One process answering its own requests (one ``orra-di serve`` on SQLite, the
        default) needs no polling: a request added or decided through the store object the
        waiters use wakes them at once, on every backend."""
        sessions = new_sessions()
        try:
            store = approval_store_for(sessions, poll_interval=3600)
            announced: list[str] = []
            decided: list[bool] = []

            async def watch() -> None:
                announced.append((await store.next_pending("acme")).id)

            async def wait(record: ApprovalRecord) -> None:
                decided.append(bool((await store.wait(record.id)).approved))

            record = request(call_id="c-local")
            with anyio.fail_after(BOUND):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(watch)
                    await anyio.sleep(0.05)  # watching, with nothing pending yet
                    await store.add(record)
                    tg.start_soon(wait, record)
                    await anyio.sleep(0.05)  # waiting on the decision
                    await store.approve(record.id, by="alice")
            assert announced == [record.id] and decided == [True]
        finally:
            await sessions.aclose()


class NotifyingConformance:
    """For backends that notify (PostgreSQL, Redis): a decision wakes waiters without polling."""

    pytestmark = pytest.mark.anyio

    async def test_a_decision_wakes_waiters_without_polling(
        self, new_sessions: SessionsFactory
    ) -> None:
        opened = [new_sessions(), new_sessions()]
        try:
            # Polling once an hour: only the notification can end these waits in time.
            waiting = approval_store_for(opened[0], poll_interval=3600)
            answering = approval_store_for(opened[1], poll_interval=3600)
            records = [request(call_id=f"c{i}") for i in range(3)]
            for record in records:
                await waiting.add(record)
            done: list[str] = []

            async def wait(record: ApprovalRecord) -> None:
                done.append((await waiting.wait(record.id)).id)

            with anyio.fail_after(BOUND):
                async with anyio.create_task_group() as tg:
                    for record in records:
                        tg.start_soon(wait, record)
                    await anyio.sleep(0.2)  # subscribed by now; if not, the bound fails it
                    for record in records:
                        await answering.approve(record.id, by="bob")
            assert sorted(done) == sorted(r.id for r in records)
        finally:
            for sessions in opened:
                await sessions.aclose()
