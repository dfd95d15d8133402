"""The cron service: it claims due jobs, runs them, records how it went, and sleeps.

orra's ``CronService`` ticked every 30 s, read a cache, and handed each due job to
an application callback that had to do the work (spec §5.7, bug 36). This one
**executes**:

- ``agent_turn``: the job's agent (through the :class:`~orra_di.runtime_set.RuntimeMap`,
  so hooks, policies and budgets apply) answers the prompt in the job's own session
  ``<job namespace>:cron:<job id>``, a child of the job's namespace: policies inherit,
  usage rolls up to the tenant, and erasing the tenant erases it. With ``announce``,
  the answer is then delivered: to the application's ``deliver`` callback if given,
  else appended to the job's namespace session as an assistant message.
- ``system_event``: the message is appended to the job's namespace session as a
  system message (under the session's single-writer lock).

Every due time leaves one :class:`~orra_di.cron.model.CronRun` in the history
(outcome ``ok``, ``error``, ``timeout``, ``skipped`` or ``abandoned``, with the
error text, the answer and the usage); a failing job still fires at its next due time.

Several services (processes, replicas) may share one backend: each due job is
claimed by exactly one of them (:meth:`CronStore.claim`). A service killed mid-run
stops renewing its claim; when the claim lapses (``lease`` seconds) another service
records that run as ``abandoned`` and schedules the job's next due time: a run is
never silently lost and never repeated (at most once per due time).

:meth:`serve` sleeps until the earliest due time in the store (an indexed query),
waking early when a job is changed through this process's store object and at
least every ``poll_interval`` seconds to see jobs other processes added.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from orra_di.cron.model import (
    OUTPUT_LIMIT,
    AgentTurnPayload,
    CronDelivery,
    CronJob,
    CronJobStatus,
    CronRun,
    PruneSessionsPayload,
    SystemEventPayload,
    run_id_for,
)
from orra_di.cron.schedule import AtSchedule, EverySchedule
from orra_di.cron.stores import Claim, CronStore
from orra_di.errors import CronError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import SessionStore

if TYPE_CHECKING:
    from orra_di.runtime_set import RuntimeMap

__all__ = ["PRUNE_JOB_ID", "Clock", "CronService", "Deliver", "erase_tenant", "job_session"]

log = logging.getLogger("orra_di.cron")

Clock = Callable[[], datetime]
"""Returns the current time, aware; tests give one they move by hand."""

Deliver = Callable[[CronJob, CronRun, str], Awaitable[None]]
"""Receives an ``announce`` job's answer (the channels issue adds channel delivery)."""


def _system_clock() -> datetime:
    return datetime.now(UTC)


def job_session(job: CronJob) -> Namespace:
    """The namespace an ``agent_turn`` job's runs talk in: ``<namespace>:cron:<id>``."""
    return Namespace.parse(job.namespace).child("cron").child(job.id)


PRUNE_JOB_ID = "orra-prune-sessions"
"""The built-in retention job's id (``orra-di cron list`` shows it, in namespace ``orra-di``)."""

PRUNE_NAMESPACE = "orra-di"


async def erase_tenant(
    sessions: SessionStore, namespace: NamespaceLike, cron: CronStore | None = None
) -> tuple[int, int]:
    """Erase a namespace subtree everywhere: its cron jobs and their run history, then
    its sessions (the jobs' own ``<namespace>:cron:<id>`` sessions among them).

    :meth:`SessionStore.delete_tree` reaches only the sessions; cron jobs live beside
    them in tables (keys, files) of their own, so erasing a tenant goes through this
    (``orra-di sessions delete --tree`` does). Jobs go first, so none fires into a
    half-erased tenant. Returns ``(sessions deleted, jobs deleted)``. ``cron`` defaults
    to the cron store beside ``sessions``.
    """
    from orra_di.cron.stores import cron_store_for

    jobs = await (cron or cron_store_for(sessions)).delete_tree(namespace)
    return await sessions.delete_tree(namespace), jobs


def next_due(job: CronJob, after: datetime, anchor: datetime | None) -> datetime | None:
    """The job's next due time strictly after ``after`` (``every`` counted from ``anchor``)."""
    schedule = job.schedule
    if isinstance(schedule, EverySchedule):
        return schedule.next_after(after, anchor)
    return schedule.next_after(after)


class CronService:
    """Runs the jobs of ``store``; see the module docstring."""

    def __init__(
        self,
        store: CronStore,
        sessions: SessionStore,
        runtimes: RuntimeMap | None = None,
        *,
        clock: Clock = _system_clock,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        batch: int = 100,
        deliver: Deliver | None = None,
        owner: str | None = None,
        prune_every: float | None = None,
        session_ttl: float | None = None,
    ) -> None:
        if lease <= 0 or poll_interval <= 0 or batch < 1:
            raise CronError("lease and poll_interval must be > 0 and batch >= 1")
        if prune_every is not None and (prune_every <= 0 or not session_ttl or session_ttl <= 0):
            raise CronError(
                "pruning sessions every so often needs a positive interval and a session "
                "TTL: set ORRA_STORE__SESSION_TTL (seconds) with ORRA_CRON__PRUNE_EVERY"
            )
        self.prune_every = prune_every
        self.session_ttl = session_ttl
        self.store = store
        self.sessions = sessions
        self.runtimes = runtimes
        self.clock = clock
        self.lease = lease
        self.poll_interval = poll_interval
        self.batch = batch
        self.deliver = deliver
        self.owner = owner or f"{os.uname().nodename}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = anyio.Event()

    # -- managing jobs -----------------------------------------------------------------

    def _check_agent(self, job: CronJob) -> None:
        if self.runtimes is None or not isinstance(job.payload, AgentTurnPayload):
            return
        if job.agent is not None and job.agent not in self.runtimes:
            known = ", ".join(p.name for p in self.runtimes.profiles)
            raise CronError(
                f"no agent named {job.agent!r} to run cron job {job.name!r}; "
                f"the agents are: {known}"
            )

    async def add_job(self, job: CronJob) -> CronJob:
        """Store a new job, its next due time computed now.

        A one-shot ``at`` time that has already passed is refused (orra stored it
        and it never fired): give a future time, or use ``run_now``.
        """
        self._check_agent(job)
        now = self.clock()
        if isinstance(job.schedule, AtSchedule) and job.schedule.datetime <= now:
            raise CronError(
                f"the 'at' time {job.schedule.datetime.isoformat()} of cron job {job.name!r} "
                "has passed; give a future time"
            )
        if job.status is CronJobStatus.ACTIVE:
            job.next_run = next_due(job, now, None)
        await self.store.add(job)
        log.info("[cron] Added job %r (id: %s)", job.name, job.id)
        return job

    async def get_job(self, job_id: str) -> CronJob | None:
        return await self.store.get(job_id)

    async def list_jobs(self, namespace: NamespaceLike | None = None) -> list[CronJob]:
        return await self.store.list(namespace)

    async def delete_job(self, job_id: str) -> bool:
        deleted = await self.store.delete(job_id)
        if deleted:
            log.info("[cron] Deleted job %s", job_id)
        return deleted

    async def pause_job(self, job_id: str) -> bool:
        job = await self.store.get(job_id)
        if job is None:
            return False
        job.status = CronJobStatus.PAUSED
        return await self.store.update(job)

    async def resume_job(self, job_id: str) -> bool:
        """Make a job active again, due next after now.

        A paused one-shot whose time passed while it was paused runs once now with
        ``missed="run_once"`` and completes with ``missed="skip"`` (orra left it
        active and never firing: bug 36). A completed one-shot stays completed.
        """
        job = await self.store.get(job_id)
        if job is None:
            return False
        if job.status is CronJobStatus.COMPLETED:
            return True
        now = self.clock()
        job.status = CronJobStatus.ACTIVE
        job.next_run = next_due(job, now, job.last_run)
        if job.next_run is None and isinstance(job.schedule, AtSchedule):
            if job.missed == "run_once":
                job.next_run = now
            else:
                job.status = CronJobStatus.COMPLETED
        return await self.store.update(job)

    async def run_now(self, job_id: str) -> CronRun | None:
        """Run an active job at once (its regular schedule is kept; a one-shot ``at`` job
        has then had its one run and completes); None if not found.

        The job is made due now and claimed like any due job, so a service running
        elsewhere cannot run it at the same time.
        """
        job = await self.store.get(job_id)
        if job is None:
            return None
        if job.status is CronJobStatus.COMPLETED:  # resuming would not help: it stays completed
            raise CronError(
                f"cron job {job_id} is completed: a one-shot job runs once; "
                "add a new job to run its payload again"
            )
        if job.status is not CronJobStatus.ACTIVE:
            raise CronError(
                f"cron job {job_id} is {job.status.value}; resume it first "
                f"(`orra-di cron resume {job_id}`)"
            )
        now = self.clock()
        job.next_run = now
        await self.store.update(job)
        for run in await self.run_due(now, only=job_id):  # other due jobs wait their turn
            if run.job_id == job_id:
                return run
        return None

    async def ensure_prune_job(self) -> CronJob | None:
        """Make the built-in retention job match the settings; the job, or None when off.

        With ``prune_every`` (and ``session_ttl``) the store holds one job,
        :data:`PRUNE_JOB_ID`, that prunes sessions idle for longer than the TTL every
        ``prune_every`` seconds; being a job, it runs on one replica per due time and
        leaves a history. Without them the job is deleted, so the settings decide; a
        paused job stays paused when they change. Every service calls this when it starts
        serving; replicas starting together agree.
        """
        current = await self.store.get(PRUNE_JOB_ID)
        if self.prune_every is None or self.session_ttl is None:
            if current is not None:
                await self.store.delete(PRUNE_JOB_ID)
                log.info("[cron] Removed the built-in session pruning job (prune_every unset)")
            return None
        schedule = EverySchedule(interval_ms=max(round(self.prune_every * 1000), 1))
        payload = PruneSessionsPayload(idle_for=self.session_ttl)
        if current is not None:
            if current.schedule == schedule and current.payload == payload:
                return current
            # The status stays: an operator's pause outlives a change of interval or TTL,
            # or pruning would start deleting sessions again behind their back.
            current.schedule, current.payload = schedule, payload
            current.next_run = next_due(current, self.clock(), None)
            await self.store.update(current)
            return current
        job = CronJob(
            id=PRUNE_JOB_ID,
            name="prune idle sessions",
            schedule=schedule,
            payload=payload,
            namespace=PRUNE_NAMESPACE,
            delivery=CronDelivery.SILENT,
            missed="run_once",
        )
        job.next_run = next_due(job, self.clock(), None)
        try:
            await self.store.add(job)
        except CronError:  # another replica added it meanwhile
            return await self.store.get(PRUNE_JOB_ID)
        log.info("[cron] Added the built-in session pruning job (every %s s)", self.prune_every)
        return job

    # -- running ---------------------------------------------------------------------------

    async def run_due(
        self, now: datetime | None = None, *, only: str | None = None
    ) -> list[CronRun]:
        """Claim every job due at ``now`` (the clock's time) and run them; their runs.

        This is orra's manual ``tick``: a job runs at most once per due time however
        often it is called, since a run moves the job's next due time on. ``only``
        restricts it to that one job (``run_now``: a tenant's "run it now" runs nobody
        else's due jobs, nor waits for them).
        """
        moment = now or self.clock()
        runs: list[CronRun] = []
        while True:
            until = moment + timedelta(seconds=self.lease)
            claims = await self.store.claim(moment, self.owner, until, self.batch, only=only)
            if not claims:
                return runs
            async with anyio.create_task_group() as tg:
                await self._dispatch(claims, moment, tg, runs)
            if len(claims) < self.batch:
                return runs

    async def _dispatch(
        self, claims: list[Claim], now: datetime, tg: TaskGroup, runs: list[CronRun]
    ) -> None:
        """Start the claimed jobs in ``tg``, their "running" entries written in one call.

        One write for the whole wake-up instead of one per job keeps the time from
        the due time to each agent turn short when many jobs fall due together. If
        that write fails, none of them starts: their claims lapse and the next
        claimer records those runs as abandoned (never run twice).
        """
        prepared = [(claim, self._prepare(claim, now)) for claim in claims]
        starting = [run for _, run in prepared if run.outcome == "running"]
        if starting:
            try:
                await self.store.record_runs(starting)
            except Exception:
                log.exception("[cron] could not record the start of %d runs", len(starting))
                prepared = [(c, r) for c, r in prepared if r.outcome != "running"]
        for claim, run in prepared:
            tg.start_soon(self._handle, claim, run, now, runs)

    async def _handle(self, claim: Claim, run: CronRun, now: datetime, runs: list[CronRun]) -> None:
        try:
            runs.append(await self._execute(claim, run, now))
        except Exception:  # a store failure for one job must not stop the others
            log.exception("[cron] job %s could not be handled", claim.job.id)

    def _prepare(self, claim: Claim, now: datetime) -> CronRun:
        """The history entry of a claimed job's due time: ``running`` when it is to run,
        else already ``abandoned`` (its previous claimer died) or ``skipped`` (missed)."""
        job = claim.job
        due = job.next_run or now
        run = CronRun(
            id=run_id_for(job.id, due),
            job_id=job.id,
            namespace=job.namespace,
            due_at=due,
            started_at=now,
            runner=self.owner,
        )
        if claim.abandoned_by is not None:
            run.outcome, run.finished_at = "abandoned", now
            run.runner = claim.abandoned_by
            run.error = (
                f"the service {claim.abandoned_by} stopped before finishing this run "
                "(its claim lapsed); not run again, the job goes on at its next due time"
            )
        elif (now - due).total_seconds() > job.grace and job.missed == "skip":
            run.outcome, run.finished_at = "skipped", now
            run.error = f"missed by {int((now - due).total_seconds())} s (missed='skip')"
        return run

    async def _execute(self, claim: Claim, run: CronRun, now: datetime) -> CronRun:
        job = claim.job
        due = run.due_at
        one_shot = isinstance(job.schedule, AtSchedule)
        if run.outcome == "abandoned":
            return await self._close(job, run, due, now, ran=1, one_shot=one_shot)
        if run.outcome == "skipped":
            return await self._close(job, run, due, now, ran=0, one_shot=one_shot)
        log.info("[cron] Firing job %r (id: %s)", job.name, job.id)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_claim, job.id)
            try:
                await self._attempts(job, run)
            finally:
                tg.cancel_scope.cancel()
        run.finished_at = self.clock()
        return await self._close(job, run, due, max(now, run.finished_at), ran=1, one_shot=one_shot)

    async def _close(
        self,
        job: CronJob,
        run: CronRun,
        due: datetime,
        after: datetime,
        *,
        ran: int,
        one_shot: bool,
    ) -> CronRun:
        await self.store.record_run(run)
        following = None if one_shot else next_due(job, after, due)
        kept = await self.store.finish(
            job.id,
            self.owner,
            next_run=following,
            last_run=run.started_at if ran else None,
            ran=ran,
            completed=one_shot,
        )
        if not kept:
            if await self.store.get(job.id) is None:
                # deleted while it ran (or its tenant erased): leave no history behind
                await self.store.delete(job.id)
                log.info("[cron] job %s was deleted while it ran; its run is not kept", job.id)
            else:
                log.warning("[cron] lost the claim on job %s before finishing its run", job.id)
        return run

    async def _keep_claim(self, job_id: str) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            until = self.clock() + timedelta(seconds=self.lease)
            if not await self.store.renew(job_id, self.owner, until):
                return

    async def _attempts(self, job: CronJob, run: CronRun) -> None:
        for attempt in range(job.retries + 1):
            run.attempts = attempt + 1
            try:
                if job.timeout is not None:
                    with anyio.fail_after(job.timeout):
                        await self._perform(job, run)
                else:
                    await self._perform(job, run)
            except TimeoutError:
                run.outcome, run.error = "timeout", f"the run took longer than {job.timeout} s"
            except Exception as exc:
                run.outcome = "error"
                run.error = f"{type(exc).__name__}: {exc}"[:OUTPUT_LIMIT]
            else:
                run.outcome, run.error = "ok", None
                return
            log.warning("[cron] job %r attempt %d failed: %s", job.name, attempt + 1, run.error)
            if attempt < job.retries and job.retry_delay:
                await anyio.sleep(job.retry_delay)

    async def _perform(self, job: CronJob, run: CronRun) -> None:
        payload = job.payload
        home = Namespace.parse(job.namespace)
        if isinstance(payload, PruneSessionsPayload):
            pruned = await self.sessions.prune(payload.idle_for)
            run.output = f"pruned {pruned} session{'' if pruned == 1 else 's'} idle for over "
            run.output += f"{payload.idle_for:g} s"
            return
        if isinstance(payload, SystemEventPayload):
            async with self.sessions.lock(home):
                await self.sessions.append(home, [Message.system(payload.message)])
            run.session = home.key
            return
        if self.runtimes is None:
            raise CronError("this CronService has no runtimes: it cannot run an agent_turn job")
        agent = job.agent or self.runtimes.default_agent
        runtime = self.runtimes[agent]
        where = job_session(job)
        run.session = where.key
        result = await runtime.run(where, payload.prompt, model=job.model)
        text = result.final_message.content
        run.output = text[:OUTPUT_LIMIT]
        run.usage = result.total_usage
        if job.delivery is CronDelivery.ANNOUNCE and text:
            if self.deliver is not None:
                await self.deliver(job, run, text)
            else:
                async with self.sessions.lock(home):
                    await self.sessions.append(home, [Message.assistant(text)])

    # -- the loop --------------------------------------------------------------------------

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Run due jobs until :meth:`stop`, then wait for the runs in flight to finish.

        Claimed jobs run in the background, so a long run does not delay the others;
        in between, it sleeps until the next due time (or a change, or ``poll_interval``).
        """
        self._stop = anyio.Event()
        try:
            await self.ensure_prune_job()
        except Exception:  # the store may come back; the jobs already stored still run
            log.exception("[cron] could not set up the built-in session pruning job")
        async with anyio.create_task_group() as runs:
            task_status.started()
            while not self._stop.is_set():
                # taken before reading the store, so a change made meanwhile still wakes us
                changed = self.store.changed_event()
                try:
                    now = self.clock()
                    claims = await self.store.claim(
                        now, self.owner, now + timedelta(seconds=self.lease), self.batch
                    )
                    await self._dispatch(claims, now, runs, [])
                    if len(claims) == self.batch:
                        continue  # more may be due
                    wake = await self.store.next_wake()
                except Exception:
                    log.exception("[cron] the service could not read its jobs; trying again")
                    wake = None
                delay = self.poll_interval
                if wake is not None:
                    # a floor, so a clock behind the store's cannot make a busy loop
                    delay = min(delay, max((wake - self.clock()).total_seconds(), 0.02))
                await self._sleep(delay, changed)

    async def _sleep(self, delay: float, changed: anyio.Event) -> None:
        """Wait ``delay`` seconds, less if a job changes here or :meth:`stop` is called."""
        if delay <= 0:
            await anyio.lowlevel.checkpoint()
            return
        with anyio.move_on_after(delay):
            async with anyio.create_task_group() as tg:

                async def woken() -> None:
                    await changed.wait()
                    tg.cancel_scope.cancel()

                async def stopped() -> None:
                    await self._stop.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(woken)
                tg.start_soon(stopped)

    def stop(self) -> None:
        """Let :meth:`serve` return after the runs in flight finish."""
        self._stop.set()
