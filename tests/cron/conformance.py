"""The cron-store contract every backend passes (run by tests/cron/test_cron_stores.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from orra_di.cron import (
    AgentTurnPayload,
    CronExpressionSchedule,
    CronJob,
    CronJobStatus,
    CronRun,
    EverySchedule,
    cron_store_for,
)
from orra_di.cron.model import run_id_for
from orra_di.errors import CronError
from orra_di.store import SessionStore

pytestmark = pytest.mark.anyio

SessionsFactory = Callable[[], SessionStore]

NOW = datetime(2025, 6, 15, 10, 30, tzinfo=UTC)


def make_job(namespace: str = "acme", *, due: datetime | None = NOW, **options: Any) -> CronJob:
    job = CronJob(
        name=options.pop("name", "report"),
        schedule=EverySchedule(interval_ms=60_000),
        payload=AgentTurnPayload(prompt="summary"),
        namespace=namespace,
        created_at=options.pop("created_at", NOW - timedelta(days=1)),
        **options,
    )
    job.next_run = due
    return job


class CronStoreConformance:
    @pytest.fixture
    def new_sessions(self) -> SessionsFactory:
        raise NotImplementedError

    @pytest.fixture
    async def sessions(self, new_sessions: SessionsFactory) -> Any:
        store = new_sessions()
        yield store
        await store.aclose()

    # -- orra's store tests ------------------------------------------------------------

    async def test_crud(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        loaded = await store.get(job.id)
        assert loaded is not None and loaded.to_json() == job.to_json()
        assert [j.id for j in await store.list()] == [job.id]
        assert await store.delete(job.id) is True
        assert await store.get(job.id) is None
        assert await store.delete(job.id) is False

    async def test_a_new_store_object_sees_the_jobs(self, new_sessions: SessionsFactory) -> None:
        first, second = new_sessions(), new_sessions()
        try:
            a, b = make_job(name="a"), make_job(name="b", created_at=NOW)
            await cron_store_for(first).add(a)
            await cron_store_for(first).add(b)
            assert [j.name for j in await cron_store_for(second).list()] == ["a", "b"]
            await cron_store_for(second).delete(a.id)
            assert [j.name for j in await cron_store_for(first).list()] == ["b"]
        finally:
            await first.aclose()
            await second.aclose()

    async def test_an_empty_store_lists_nothing(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        assert await store.list() == []
        assert await store.next_wake() is None
        assert await store.claim(NOW, "me", NOW + timedelta(minutes=1)) == []

    async def test_adding_an_id_twice_is_refused(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        with pytest.raises(CronError, match="exists already"):
            await store.add(job)

    # -- listing and erasure -------------------------------------------------------------

    async def test_list_and_delete_tree_by_whole_segments(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        jobs = [make_job(ns, name=ns) for ns in ("acme", "acme:alice", "acmeother", "beta")]
        for job in jobs:
            await store.add(job)
        await store.record_run(_run(jobs[1], NOW))
        assert sorted(j.namespace for j in await store.list("acme")) == ["acme", "acme:alice"]
        assert await store.delete_tree("acme") == 2
        assert sorted(j.namespace for j in await store.list()) == ["acmeother", "beta"]
        assert await store.runs(jobs[1].id) == []

    # -- the claim ---------------------------------------------------------------------------

    async def test_only_due_active_jobs_are_claimed_once(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        due = make_job(name="due")
        later = make_job(name="later", due=NOW + timedelta(hours=1))
        paused = make_job(name="paused", status=CronJobStatus.PAUSED)
        for job in (due, later, paused):
            await store.add(job)
        lease = NOW + timedelta(minutes=1)
        (claim,) = await store.claim(NOW, "one", lease)
        assert claim.job.id == due.id and claim.job.next_run == NOW
        assert claim.abandoned_by is None
        assert await store.claim(NOW + timedelta(seconds=30), "two", lease) == []
        assert await store.next_wake() == lease  # the claim's end, then the later job

    async def test_a_claim_for_one_job_claims_no_other(self, sessions: SessionStore) -> None:
        """``only`` (run_now): that job if it is due, and nobody else's due job."""
        store = cron_store_for(sessions)
        mine = make_job("acme:alice", name="mine")
        theirs = make_job("globex:bob", name="theirs", due=NOW - timedelta(minutes=5))
        later = make_job("acme:alice", name="later", due=NOW + timedelta(hours=1))
        for job in (mine, theirs, later):
            await store.add(job)
        lease = NOW + timedelta(minutes=1)
        assert await store.claim(NOW, "one", lease, only=later.id) == []  # not due
        assert await store.claim(NOW, "one", lease, only="no-such-job") == []
        (claim,) = await store.claim(NOW, "one", lease, only=mine.id)
        assert claim.job.id == mine.id
        (other,) = await store.claim(NOW, "two", lease)  # the other due job is still there
        assert other.job.id == theirs.id

    async def test_finish_releases_with_the_next_due_time(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        await store.claim(NOW, "one", NOW + timedelta(minutes=1))
        assert not await store.finish(job.id, "intruder", next_run=NOW)  # fenced
        following = NOW + timedelta(minutes=1)
        assert await store.finish(job.id, "one", next_run=following, last_run=NOW, ran=1)
        stored = await store.get(job.id)
        assert stored is not None
        assert (stored.next_run, stored.last_run, stored.run_count) == (following, NOW, 1)
        assert await store.next_wake() == following
        assert await store.claim(NOW + timedelta(seconds=59), "two", NOW + timedelta(hours=1)) == []
        (again,) = await store.claim(following, "two", following + timedelta(minutes=1))
        assert again.job.next_run == following and again.abandoned_by is None

    async def test_a_finished_one_shot_completes(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        await store.claim(NOW, "one", NOW + timedelta(minutes=1))
        await store.finish(job.id, "one", next_run=None, last_run=NOW, ran=1, completed=True)
        stored = await store.get(job.id)
        assert stored is not None and stored.status is CronJobStatus.COMPLETED
        assert await store.next_wake() is None

    async def test_a_lapsed_claim_is_claimed_again_and_says_by_whom(
        self, sessions: SessionStore
    ) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        await store.claim(NOW, "dead", NOW + timedelta(minutes=1))
        later = NOW + timedelta(minutes=2)
        (claim,) = await store.claim(later, "alive", later + timedelta(minutes=1))
        assert claim.abandoned_by == "dead" and claim.job.next_run == NOW
        assert not await store.finish(job.id, "dead", next_run=NOW)  # it lost its claim
        assert not await store.renew(job.id, "dead", later + timedelta(hours=1))

    async def test_renew_keeps_the_claim(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        await store.claim(NOW, "one", NOW + timedelta(minutes=1))
        assert await store.renew(job.id, "one", NOW + timedelta(minutes=10))
        assert await store.claim(NOW + timedelta(minutes=5), "two", NOW + timedelta(hours=1)) == []

    async def test_pausing_while_running_is_not_undone_by_finish(
        self, sessions: SessionStore
    ) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        (claim,) = await store.claim(NOW, "one", NOW + timedelta(minutes=1))
        paused = claim.job.model_copy(update={"status": CronJobStatus.PAUSED})
        assert await store.update(paused)
        await store.finish(job.id, "one", next_run=NOW + timedelta(minutes=1), last_run=NOW, ran=1)
        stored = await store.get(job.id)
        assert stored is not None and stored.status is CronJobStatus.PAUSED
        assert stored.run_count == 1
        assert await store.next_wake() is None

    async def test_update_keeps_the_run_state(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        await store.claim(NOW, "one", NOW + timedelta(minutes=1))
        await store.finish(job.id, "one", next_run=NOW + timedelta(minutes=1), last_run=NOW, ran=1)
        stale = job.model_copy(update={"name": "renamed", "run_count": 0, "last_run": None})
        assert await store.update(stale)
        stored = await store.get(job.id)
        assert stored is not None and (stored.name, stored.run_count, stored.last_run) == (
            "renamed",
            1,
            NOW,
        )
        assert not await store.update(make_job())  # unknown id

    async def test_claims_race_between_store_objects(self, new_sessions: SessionsFactory) -> None:
        stores = [new_sessions() for _ in range(4)]
        try:
            jobs = [make_job(name=f"j{i}") for i in range(40)]
            for job in jobs:
                await cron_store_for(stores[0]).add(job)
            got: list[str] = []

            async def claimer(i: int) -> None:
                store = cron_store_for(stores[i])
                while claims := await store.claim(NOW, f"r{i}", NOW + timedelta(minutes=1), 3):
                    got.extend(c.job.id for c in claims)

            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(claimer, i)
            assert sorted(got) == sorted(j.id for j in jobs)  # each exactly once
        finally:
            for store in stores:
                await store.aclose()

    # -- history -----------------------------------------------------------------------------

    async def test_runs_newest_first_and_replaced_by_id(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        job = make_job()
        await store.add(job)
        for minutes in range(3):
            await store.record_run(_run(job, NOW + timedelta(minutes=minutes)))
        finished = _run(job, NOW)
        finished.outcome, finished.error = "error", "boom"
        await store.record_run(finished)
        runs = await store.runs(job.id)
        assert [r.due_at for r in runs] == [NOW + timedelta(minutes=m) for m in (2, 1, 0)]
        assert (runs[-1].outcome, runs[-1].error) == ("error", "boom")
        assert len(await store.runs(job.id, limit=2)) == 2

    async def test_record_runs_stores_several_in_one_call(self, sessions: SessionStore) -> None:
        store = cron_store_for(sessions)
        jobs = [make_job(f"tenant:t{i}") for i in range(3)]
        for job in jobs:
            await store.add(job)
        await store.record_runs([])
        await store.record_runs([_run(job, NOW) for job in jobs])
        finished = _run(jobs[0], NOW)
        finished.outcome = "ok"
        await store.record_runs([finished, _run(jobs[0], NOW + timedelta(minutes=1))])
        assert [r.outcome for r in await store.runs(jobs[0].id)] == ["running", "ok"]
        for job in jobs[1:]:
            (run,) = await store.runs(job.id)
            assert (run.job_id, run.due_at, run.outcome) == (job.id, NOW, "running")


def _run(job: CronJob, due: datetime) -> CronRun:
    return CronRun(
        id=run_id_for(job.id, due),
        job_id=job.id,
        namespace=job.namespace,
        due_at=due,
        started_at=due,
    )


def cron_expression_job(namespace: str = "acme") -> CronJob:
    return CronJob.new(
        "daily",
        CronExpressionSchedule(expression="0 9 * * *", timezone="Europe/Paris"),
        AgentTurnPayload(prompt="summary"),
        namespace,
        now=NOW,
    )
