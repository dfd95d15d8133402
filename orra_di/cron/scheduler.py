"""An in-process scheduler of callbacks, for applications that want only that.

orra's ``Scheduler`` (spec §2A.19): add/remove/enable/list jobs with a cron
expression and a callback, a background loop, and a manual ``tick``. Here the
expressions are standard cron with a time zone (:class:`CronSchedule`), the loop
sleeps until the next due minute instead of waking every 30 s (so a job is not up
to 30 s late), and a job fires at most once per due minute whether the loop or a
manual :meth:`Scheduler.tick` sees it first (bug 37: orra's manual tick fired again).

Nothing is persisted: for jobs that survive restarts and run on one of several
replicas, use :class:`~orra_di.cron.service.CronService`.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from pydantic import BaseModel

from orra_di.cron.schedule import CronSchedule

__all__ = ["JobInfo", "ScheduledJob", "Scheduler"]

log = logging.getLogger("orra_di.cron")

JobCallback = Callable[[], Awaitable[None] | None]


class JobInfo(BaseModel):
    """What ``list_jobs`` reports (orra's JSON shape)."""

    id: str
    name: str
    schedule: str
    enabled: bool
    last_run: datetime | None
    run_count: int


@dataclass
class ScheduledJob:
    id: str
    name: str
    schedule: CronSchedule
    callback: JobCallback
    enabled: bool = True
    last_run: datetime | None = None
    run_count: int = 0
    last_due: datetime | None = None
    """The due minute it last fired for: it never fires twice for one."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Callbacks fired by cron expressions, in this process."""

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._jobs: dict[str, ScheduledJob] = {}
        self._clock = clock
        self._stop = anyio.Event()
        self._changed = anyio.Event()
        self.running = False

    async def add_job(
        self, name: str, cron_expr: str, callback: JobCallback, *, timezone: str = "UTC"
    ) -> str:
        """Add an enabled job; its id. CronError for a bad expression or zone."""
        schedule = CronSchedule.parse(cron_expr, timezone)
        job_id = str(uuid.uuid4())
        self._jobs[job_id] = ScheduledJob(job_id, name, schedule, callback)
        self._changed.set()
        return job_id

    async def remove_job(self, job_id: str) -> bool:
        return self._jobs.pop(job_id, None) is not None

    async def set_enabled(self, job_id: str, enabled: bool) -> bool:
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.enabled = enabled
        return True

    async def list_jobs(self) -> list[JobInfo]:
        return [
            JobInfo(
                id=j.id,
                name=j.name,
                schedule=j.schedule.expression,
                enabled=j.enabled,
                last_run=j.last_run,
                run_count=j.run_count,
            )
            for j in self._jobs.values()
        ]

    async def tick(self, now: datetime | None = None) -> int:
        """Fire every enabled job whose schedule matches ``now``'s minute; how many fired.

        A job already fired for that minute (by the loop or an earlier tick) is not
        fired again. Callbacks are awaited here, one after the other; one that
        raises is logged and does not stop the others.
        """
        moment = (now or self._clock()).astimezone(UTC)
        minute = moment.replace(second=0, microsecond=0)
        fired = 0
        for job in list(self._jobs.values()):
            if not job.enabled or job.last_due == minute or not job.schedule.matches(minute):
                continue
            job.last_due, job.last_run = minute, moment
            job.run_count += 1
            fired += 1
            try:
                result = job.callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("[scheduler] job %r failed", job.name)
        return fired

    def _next_due(self, now: datetime) -> datetime | None:
        found = [
            j.schedule.next_after(now - timedelta(seconds=1))
            for j in self._jobs.values()
            if j.enabled
        ]
        due = [d for d in found if d is not None]
        return min(due) if due else None

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Fire jobs at their minutes until :meth:`stop` (run it in a task group)."""
        self._stop = anyio.Event()
        self.running = True
        task_status.started()
        try:
            while not self._stop.is_set():
                now = self._clock()
                await self.tick(now)
                due = self._next_due(now.replace(second=0, microsecond=0) + timedelta(minutes=1))
                delay = 60.0 if due is None else max((due - self._clock()).total_seconds(), 0.05)
                self._changed = anyio.Event()
                with anyio.move_on_after(delay):
                    async with anyio.create_task_group() as tg:

                        async def changed() -> None:
                            await self._changed.wait()
                            tg.cancel_scope.cancel()

                        async def stopped() -> None:
                            await self._stop.wait()
                            tg.cancel_scope.cancel()

                        tg.start_soon(changed)
                        tg.start_soon(stopped)
        finally:
            self.running = False

    def stop(self) -> None:
        self._stop.set()
