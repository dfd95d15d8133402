"""CronService: orra's service tests (spec §3, src/cron/service.rs) and what orra never did:
executing payloads, history, policies, one claim per due time (bug 36). Time is a clock the
tests move; nothing sleeps for minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from orra_di import AgentProfile, Runtime
from orra_di.cron import (
    PRUNE_JOB_ID,
    AgentTurnPayload,
    AtSchedule,
    CronDelivery,
    CronExpressionSchedule,
    CronJob,
    CronJobStatus,
    CronService,
    EverySchedule,
    PruneSessionsPayload,
    SystemEventPayload,
    cron_store_for,
    erase_tenant,
    job_session,
)
from orra_di.errors import CronError
from orra_di.message import Role
from orra_di.provider import Usage
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import InMemoryStore
from orra_di.testing import ScriptedProvider, reply

pytestmark = pytest.mark.anyio

START = datetime(2025, 6, 13, 6, 0, tzinfo=UTC)  # a Friday


class Clock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_service(script: Any = None, **options: Any) -> tuple[CronService, InMemoryStore, Clock]:
    sessions = InMemoryStore()
    provider = ScriptedProvider(
        script or (lambda request: reply("all good", usage=Usage(input_tokens=7, output_tokens=3)))
    )

    def build(profile: AgentProfile) -> Runtime:
        return Runtime(provider, sessions)

    runtimes = RuntimeMap([AgentProfile(name="assistant"), AgentProfile(name="report")], build)
    clock = Clock()
    service = CronService(cron_store_for(sessions), sessions, runtimes, clock=clock, **options)
    return service, sessions, clock


def weekday_job(**options: Any) -> CronJob:
    return CronJob(
        name="summary",
        schedule=CronExpressionSchedule(expression="0 9 * * MON-FRI", timezone="Europe/Paris"),
        payload=AgentTurnPayload(prompt="summarise the day"),
        **{"namespace": "acme", "agent": "report", **options},
    )


# -- orra's service tests ------------------------------------------------------------


async def test_add_and_list_jobs() -> None:
    service, _, _ = make_service()
    job = await service.add_job(weekday_job())
    assert [j.id for j in await service.list_jobs()] == [job.id]


async def test_delete_job() -> None:
    service, _, _ = make_service()
    job = await service.add_job(weekday_job())
    assert await service.delete_job(job.id) is True
    assert await service.delete_job(job.id) is False
    assert await service.list_jobs() == []


async def test_pause_and_resume() -> None:
    service, _, _ = make_service()
    job = await service.add_job(weekday_job())
    assert await service.pause_job(job.id)
    assert (await service.get_job(job.id)).status is CronJobStatus.PAUSED  # type: ignore[union-attr]
    assert await service.resume_job(job.id)
    assert (await service.get_job(job.id)).status is CronJobStatus.ACTIVE  # type: ignore[union-attr]
    assert await service.pause_job("missing") is False


async def test_start_and_stop() -> None:
    service, _, _ = make_service()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(service.serve)
            service.stop()


# -- executing ------------------------------------------------------------------------


async def test_an_agent_turn_runs_at_its_due_minute_in_the_jobs_session() -> None:
    service, sessions, clock = make_service()
    job = await service.add_job(weekday_job())
    assert job.next_run == datetime(2025, 6, 13, 7, 0, tzinfo=UTC)  # 09:00 Paris
    clock.move(minutes=59)
    assert await service.run_due() == []  # 08:59 Paris: nothing yet
    clock.move(minutes=1)
    (run,) = await service.run_due()
    assert (run.outcome, run.output, run.attempts) == ("ok", "all good", 1)
    assert run.usage == Usage(input_tokens=7, output_tokens=3)
    assert run.session == job_session(job).key == f"acme:cron:{job.id}"
    turn = await sessions.load(job_session(job))
    assert turn is not None and [m.content for m in turn.messages] == [
        "summarise the day",
        "all good",
    ]
    home = await sessions.load("acme")  # announced to the job's own session
    assert home is not None and home.messages[-1].content == "all good"
    stored = await service.get_job(job.id)
    assert stored is not None and stored.run_count == 1 and stored.last_run == clock.now
    assert stored.next_run == datetime(2025, 6, 16, 7, 0, tzinfo=UTC)  # Monday
    assert [r.id for r in await service.store.runs(job.id)] == [run.id]


async def test_ticking_again_in_the_same_minute_does_not_run_it_twice() -> None:
    service, _, clock = make_service()
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    assert len(await service.run_due()) == 1
    clock.move(seconds=30)
    assert await service.run_due() == []


async def test_a_system_event_is_appended_to_the_session() -> None:
    service, sessions, clock = make_service()
    job = await service.add_job(
        CronJob(
            name="ping",
            schedule=EverySchedule(interval_ms=60_000),
            payload=SystemEventPayload(message="stand-up in 5 minutes"),
            namespace="acme:alice",
        )
    )
    clock.move(minutes=1)
    (run,) = await service.run_due()
    assert run.outcome == "ok" and run.session == "acme:alice"
    session = await sessions.load("acme:alice")
    assert session is not None
    assert [(m.role, m.content) for m in session.messages] == [
        (Role.SYSTEM, "stand-up in 5 minutes")
    ]
    assert (await service.get_job(job.id)).next_run == clock.now + timedelta(minutes=1)  # type: ignore[union-attr]


async def test_silent_delivery_keeps_the_answer_in_the_run_session_only() -> None:
    service, sessions, clock = make_service()
    job = await service.add_job(weekday_job(delivery=CronDelivery.SILENT))
    clock.now = job.next_run  # type: ignore[assignment]
    await service.run_due()
    assert await sessions.load("acme") is None


async def test_announce_goes_to_the_applications_callback_when_given() -> None:
    delivered: list[tuple[str, str]] = []

    async def deliver(job: CronJob, run: Any, text: str) -> None:
        delivered.append((job.name, text))

    service, sessions, clock = make_service(deliver=deliver)
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    await service.run_due()
    assert delivered == [("summary", "all good")]
    assert await sessions.load("acme") is None


async def test_a_failing_run_is_recorded_and_the_next_due_time_still_fires() -> None:
    calls = 0

    def script(request: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the model is down")
        return reply("recovered")

    service, _, clock = make_service(script)
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    (failed,) = await service.run_due()
    assert failed.outcome == "error" and "the model is down" in (failed.error or "")
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == datetime(2025, 6, 16, 7, tzinfo=UTC)
    clock.now = stored.next_run  # type: ignore[assignment]
    (ok,) = await service.run_due()
    assert ok.outcome == "ok" and ok.output == "recovered"
    assert [r.outcome for r in await service.store.runs(job.id)] == ["ok", "error"]


async def test_retries_within_one_due_time() -> None:
    answers: list[Any] = [RuntimeError("flaky"), reply("second time lucky")]
    service, _, clock = make_service(answers)
    job = await service.add_job(weekday_job(retries=2, retry_delay=0))
    clock.now = job.next_run  # type: ignore[assignment]
    (run,) = await service.run_due()
    assert (run.outcome, run.attempts, run.output) == ("ok", 2, "second time lucky")


async def test_a_run_over_its_timeout_is_cancelled_and_recorded() -> None:
    async def slow(request: Any) -> Any:
        await anyio.sleep(60)
        return reply("too late")

    service, _, clock = make_service(slow)
    job = await service.add_job(weekday_job(timeout=0.05))
    clock.now = job.next_run  # type: ignore[assignment]
    with anyio.fail_after(30):
        (run,) = await service.run_due()
    assert run.outcome == "timeout" and "0.05" in (run.error or "")


@pytest.mark.parametrize(("policy", "outcome"), [("skip", "skipped"), ("run_once", "ok")])
async def test_missed_runs_policy(policy: str, outcome: str) -> None:
    service, _, clock = make_service()
    job = await service.add_job(
        CronJob(
            name="hourly",
            schedule=CronExpressionSchedule(expression="0 * * * *"),
            payload=AgentTurnPayload(prompt="tick"),
            namespace="acme",
            missed=policy,  # type: ignore[arg-type]
        )
    )
    clock.move(hours=5, minutes=10)  # the service was down for five due times
    runs = await service.run_due()
    assert [r.outcome for r in runs] == [outcome]  # once, however many were missed
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == START + timedelta(hours=6)
    assert stored.run_count == (1 if policy == "run_once" else 0)


async def test_a_one_shot_runs_once_and_completes() -> None:
    service, _, clock = make_service()
    job = await service.add_job(
        CronJob(
            name="remind",
            schedule=AtSchedule(datetime=START + timedelta(minutes=10)),
            payload=AgentTurnPayload(prompt="remind me"),
            namespace="acme",
        )
    )
    clock.move(minutes=10)
    assert len(await service.run_due()) == 1
    stored = await service.get_job(job.id)
    assert stored is not None and stored.status is CronJobStatus.COMPLETED
    clock.move(days=1)
    assert await service.run_due() == []


async def test_a_one_shot_in_the_past_is_refused_and_nothing_stored() -> None:
    service, _, _ = make_service()
    with pytest.raises(CronError, match="has passed; give a future time"):
        await service.add_job(
            CronJob(
                name="late",
                schedule=AtSchedule(datetime=START - timedelta(minutes=1)),
                payload=AgentTurnPayload(prompt="x"),
                namespace="acme",
            )
        )
    assert await service.list_jobs() == []


async def test_a_job_for_an_unknown_agent_is_refused_and_nothing_stored() -> None:
    service, _, _ = make_service()
    with pytest.raises(CronError, match=r"no agent named 'ghost'.*assistant, report"):
        await service.add_job(weekday_job(agent="ghost"))
    assert await service.list_jobs() == []


async def test_resuming_a_one_shot_whose_time_passed_runs_it_once() -> None:
    # orra left it active with no next run: it never fired (bug 36)
    service, _, clock = make_service()
    job = await service.add_job(
        CronJob(
            name="remind",
            schedule=AtSchedule(datetime=START + timedelta(minutes=10)),
            payload=AgentTurnPayload(prompt="remind me"),
            namespace="acme",
        )
    )
    await service.pause_job(job.id)
    clock.move(hours=1)
    await service.resume_job(job.id)
    assert [r.outcome for r in await service.run_due()] == ["ok"]


async def test_run_now_keeps_the_schedule() -> None:
    service, _, _clock = make_service()
    job = await service.add_job(weekday_job())
    run = await service.run_now(job.id)
    assert run is not None and run.outcome == "ok"
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == datetime(2025, 6, 13, 7, tzinfo=UTC)
    await service.pause_job(job.id)
    with pytest.raises(CronError, match="paused; resume it first"):
        await service.run_now(job.id)


async def test_run_now_runs_that_job_only() -> None:
    """Another tenant's overdue job is not run (nor waited for) by a "run it now"; it runs
    at the next tick as usual."""
    service, _, clock = make_service()
    mine = await service.add_job(weekday_job(namespace="acme:alice"))
    theirs = await service.add_job(weekday_job(namespace="globex:bob"))
    clock.now = theirs.next_run  # type: ignore[assignment]
    clock.move(minutes=5)  # theirs is overdue now
    run = await service.run_now(mine.id)
    assert run is not None and run.job_id == mine.id
    assert await service.store.runs(theirs.id) == []
    assert [r.job_id for r in await service.run_due()] == [theirs.id]


async def test_a_lapsed_claim_is_recorded_as_abandoned_not_run_again() -> None:
    service, _, clock = make_service(lease=60)
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    # another replica claimed it and died
    await service.store.claim(clock.now, "dead-replica", clock.now + timedelta(seconds=60))
    assert await service.run_due() == []  # its claim still holds
    clock.move(seconds=61)
    (run,) = await service.run_due()
    assert run.outcome == "abandoned" and run.runner == "dead-replica"
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == datetime(2025, 6, 16, 7, tzinfo=UTC)


async def test_erasing_the_tenant_erases_jobs_runs_and_their_sessions() -> None:
    service, sessions, clock = make_service()
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    await service.run_due()
    assert await sessions.delete_tree("acme") >= 2
    assert await service.store.delete_tree("acme") == 1
    assert await service.store.runs(job.id) == []


async def test_serve_runs_a_job_due_now_without_waiting_for_a_tick() -> None:
    sessions = InMemoryStore()
    service = CronService(cron_store_for(sessions), sessions, poll_interval=30)
    done = anyio.Event()
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(service.serve)
            job = await service.add_job(
                CronJob(
                    name="ping",
                    schedule=AtSchedule(datetime=datetime.now(UTC) + timedelta(milliseconds=200)),
                    payload=SystemEventPayload(message="ping"),
                    namespace="acme",
                )
            )

            async def watch() -> None:
                while (  # noqa: ASYNC110 - watching the store, as another process would
                    not await service.store.runs(job.id)
                    or (await service.store.runs(job.id))[0].outcome == "running"
                ):
                    await anyio.sleep(0.05)
                done.set()

            tg.start_soon(watch)
            await done.wait()
            service.stop()
    (run,) = await service.store.runs(job.id)
    assert run.outcome == "ok"


# -- erasing a tenant, deleting a running job ----------------------------------------------


async def test_erase_tenant_erases_its_jobs_their_runs_and_sessions() -> None:
    service, sessions, clock = make_service()
    acme = await service.add_job(weekday_job())
    alice = await service.add_job(weekday_job(namespace="acme:alice"))
    globex = await service.add_job(weekday_job(namespace="globex"))
    clock.now = acme.next_run  # type: ignore[assignment]
    assert len(await service.run_due()) == 3
    assert await sessions.load(job_session(alice)) is not None

    erased_sessions, erased_jobs = await erase_tenant(sessions, "acme", service.store)

    assert erased_jobs == 2 and erased_sessions >= 4  # acme, acme:alice, their cron sessions
    assert [j.id for j in await service.list_jobs()] == [globex.id]
    assert await service.store.runs(acme.id) == [] and await service.store.runs(alice.id) == []
    assert await sessions.list("acme") == []
    assert await sessions.load(job_session(globex)) is not None  # another tenant: untouched
    assert len(await service.store.runs(globex.id)) == 1
    clock.now = datetime(2025, 6, 16, 7, tzinfo=UTC)
    assert [r.job_id for r in await service.run_due()] == [globex.id]  # nothing fires for acme


async def test_a_job_deleted_while_it_runs_leaves_no_history() -> None:
    release = anyio.Event()
    started = anyio.Event()

    async def slow(request: Any) -> Any:
        started.set()
        await release.wait()
        return reply("done")

    service, _, clock = make_service(slow)
    job = await service.add_job(weekday_job())
    clock.now = job.next_run  # type: ignore[assignment]
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run_due)
            await started.wait()
            assert [r.outcome for r in await service.store.runs(job.id)] == ["running"]
            assert await service.delete_job(job.id)  # e.g. its tenant is erased meanwhile
            release.set()
    assert await service.store.runs(job.id) == []
    assert await service.get_job(job.id) is None


# -- the built-in retention job ----------------------------------------------------------------


async def test_the_prune_job_prunes_idle_sessions_on_schedule_and_follows_the_settings() -> None:
    from orra_di.session import Session

    service, sessions, clock = make_service(prune_every=3600, session_ttl=86_400)
    real_now = datetime.now(UTC)
    await sessions.save(Session(namespace="acme:old", updated_at=real_now - timedelta(days=2)))
    await sessions.save(Session(namespace="acme:new", updated_at=real_now))

    job = await service.ensure_prune_job()
    assert job is not None and job.id == PRUNE_JOB_ID and job.namespace == "orra-di"
    assert job.next_run == START + timedelta(hours=1)
    assert await service.ensure_prune_job() == job  # idempotent: one job, however many starts
    assert [j.id for j in await service.list_jobs()] == [PRUNE_JOB_ID]

    clock.move(hours=1)
    (run,) = await service.run_due()
    assert run.outcome == "ok" and run.output == "pruned 1 session idle for over 86400 s"
    assert [ns.key for ns in await sessions.list()] == ["acme:new"]
    stored = await service.get_job(PRUNE_JOB_ID)
    assert stored is not None and stored.next_run == START + timedelta(hours=2)

    service.prune_every = 600  # the settings changed: the job follows
    changed = await service.ensure_prune_job()
    assert changed is not None and changed.schedule == EverySchedule(interval_ms=600_000)
    service.prune_every = None  # switched off: the job goes
    assert await service.ensure_prune_job() is None
    assert await service.list_jobs() == []


def test_the_prune_job_needs_a_session_ttl() -> None:
    with pytest.raises(CronError, match="ORRA_STORE__SESSION_TTL"):
        make_service(prune_every=3600)


async def test_serve_sets_up_the_prune_job() -> None:
    sessions = InMemoryStore()
    service = CronService(
        cron_store_for(sessions), sessions, prune_every=60, session_ttl=3600, poll_interval=30
    )
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(service.serve)
            service.stop()
    (job,) = await service.list_jobs()
    assert job.id == PRUNE_JOB_ID and job.payload == PruneSessionsPayload(idle_for=3600)


async def test_a_job_whose_agent_is_gone_is_recorded_as_failed_and_still_fires_later() -> None:
    service, sessions, clock = make_service()
    job = await service.add_job(weekday_job())  # for "report"
    # the configuration changed since: no agent "report" any more
    model = ScriptedProvider(lambda request: reply("hi"))
    service.runtimes = RuntimeMap(
        [AgentProfile(name="assistant")], lambda profile: Runtime(model, sessions)
    )
    clock.now = job.next_run  # type: ignore[assignment]
    (run,) = await service.run_due()
    assert run.outcome == "error" and "report" in (run.error or "")
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == datetime(2025, 6, 16, 7, tzinfo=UTC)
    assert [r.outcome for r in await service.store.runs(job.id)] == ["error"]
