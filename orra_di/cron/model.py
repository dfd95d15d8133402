"""Cron jobs and their run history: orra's ``CronJob`` JSON shape, plus run policies.

A job's JSON is orra's (spec §2A.20): ``schedule`` and ``payload`` internally tagged
by ``type``, ``delivery`` ``announce``/``silent``, ``status``
``active``/``paused``/``completed``, ``run_count``, ``last_run``/``next_run``, and
``model`` left out when unset. orra-di adds the agent that runs it and the policies
a product needs, each with a default that keeps orra's behaviour where it had one:

``missed``
    what to do when the service finds a due time older than ``grace`` seconds (it was
    not running then): ``skip`` it and wait for the next one, or ``run_once`` now
    (one catch-up run however many were missed). Default ``run_once``.
``retries``, ``retry_delay``
    further attempts after a failed run, within the same due time.
``timeout``
    seconds one attempt may take before it is cancelled and recorded as ``timeout``.

Runs of one job never overlap: the job stays claimed while its run goes on, and the
next fire time is computed from when the run ended, so due times that passed during
a long run are skipped (never queued, never run concurrently).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orra_di.cron.schedule import AtSchedule, CronExpressionSchedule, EverySchedule, Schedule
from orra_di.errors import CronError
from orra_di.namespace import Namespace
from orra_di.provider import Usage

__all__ = [
    "AgentTurnPayload",
    "CronDelivery",
    "CronJob",
    "CronJobStatus",
    "CronPayload",
    "CronRun",
    "PruneSessionsPayload",
    "RunOutcome",
    "SystemEventPayload",
    "run_id_for",
]

OUTPUT_LIMIT = 4000
"""Characters of the agent's answer kept in the run history."""


def _now() -> datetime:
    return datetime.now(UTC)


class CronDelivery(StrEnum):
    """Where an agent turn's answer goes: ``announce`` it to the job's session (or the
    application's delivery callback), or keep it ``silent`` (only in the run's session)."""

    ANNOUNCE = "announce"
    SILENT = "silent"


class CronJobStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemEventPayload(_Payload):
    """Append ``message`` to the job's session as a system message."""

    type: Literal["system_event"] = "system_event"
    message: str = Field(min_length=1)


class AgentTurnPayload(_Payload):
    """Run the job's agent on ``prompt`` in the job's own child session."""

    type: Literal["agent_turn"] = "agent_turn"
    prompt: str = Field(min_length=1)


class PruneSessionsPayload(_Payload):
    """Delete the sessions idle for longer than ``idle_for`` seconds
    (:meth:`SessionStore.prune`): the built-in retention job that
    ``ORRA_CRON__PRUNE_EVERY`` schedules, so SQLite, files and PostgreSQL honour
    ``store.session_ttl`` without an external cron. Not offered to the ``cron`` tool."""

    type: Literal["prune_sessions"] = "prune_sessions"
    idle_for: float = Field(gt=0, allow_inf_nan=False)


CronPayload = Annotated[
    SystemEventPayload | AgentTurnPayload | PruneSessionsPayload, Field(discriminator="type")
]
"""What a job does, internally tagged by ``type`` as in orra's JSON (``prune_sessions``
is orra-di's own, for the built-in retention job)."""


class CronJob(BaseModel):
    """A persistent job: what to do, when, in which namespace, and how it has gone."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    name: str = Field(min_length=1, max_length=200)
    schedule: Schedule
    payload: CronPayload
    delivery: CronDelivery = CronDelivery.ANNOUNCE
    namespace: str
    model: str | None = None
    agent: str | None = None
    """The agent that runs an ``agent_turn`` (the default agent when unset)."""
    status: CronJobStatus = CronJobStatus.ACTIVE
    created_at: datetime = Field(default_factory=_now)
    last_run: datetime | None = None
    next_run: datetime | None = None
    run_count: int = Field(0, ge=0)
    missed: Literal["skip", "run_once"] = "run_once"
    grace: float = Field(60.0, ge=0)
    """Seconds after its due time within which a run still counts as on time."""
    retries: int = Field(0, ge=0, le=10)
    retry_delay: float = Field(5.0, ge=0)
    timeout: float | None = Field(None, gt=0)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        return Namespace.parse(value).key

    @field_validator("created_at", "last_run", "next_run")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("times are stored with a zone (UTC)")
        return None if value is None else value.astimezone(UTC)

    @classmethod
    def new(
        cls,
        name: str,
        schedule: AtSchedule | EverySchedule | CronExpressionSchedule,
        payload: SystemEventPayload | AgentTurnPayload,
        namespace: str | Namespace,
        *,
        now: datetime | None = None,
        **options: Any,
    ) -> CronJob:
        """orra's ``CronJob::new``: active, announced, ``next_run`` computed from ``now``."""
        moment = now or _now()
        key = namespace.key if isinstance(namespace, Namespace) else namespace
        job = cls(
            name=name,
            schedule=schedule,
            payload=payload,
            namespace=key,
            created_at=moment,
            **options,
        )
        job.next_run = job.compute_next_run(moment)
        return job

    def compute_next_run(self, moment: datetime) -> datetime | None:
        """The next fire time strictly after ``moment``; None when there is none.

        ``every`` counts whole intervals from ``last_run`` (orra's fast-forward);
        ``cron`` returns whole minutes in UTC (orra kept the seconds: bug 36).
        """
        schedule = self.schedule
        if isinstance(schedule, EverySchedule):
            return schedule.next_after(moment, self.last_run)
        return schedule.next_after(moment)

    def should_fire(self, now: datetime) -> bool:
        return (
            self.status is CronJobStatus.ACTIVE
            and self.next_run is not None
            and now >= self.next_run
        )

    def mark_fired(self, now: datetime) -> None:
        """orra's bookkeeping after a run: count it, schedule the next, complete an ``at``."""
        self.last_run = now
        self.run_count += 1
        if isinstance(self.schedule, AtSchedule):
            self.status = CronJobStatus.COMPLETED
            self.next_run = None
        else:
            self.next_run = self.compute_next_run(now)

    @property
    def one_shot(self) -> bool:
        return isinstance(self.schedule, AtSchedule)

    def to_json(self, *, indent: int | None = None) -> str:
        data = self.model_dump(mode="json")
        for optional in ("model", "agent", "timeout"):
            if data[optional] is None:
                del data[optional]
        return json.dumps(data, indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> CronJob:
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise CronError(f"a stored cron job cannot be read: {exc}") from exc


RunOutcome = Literal["running", "ok", "error", "timeout", "skipped", "abandoned"]


def run_id_for(job_id: str, due: datetime) -> str:
    """One history entry per job and due time, so whoever records it writes the same one."""
    return f"{job_id}@{int(due.timestamp() * 1000)}"


class CronRun(BaseModel):
    """One due time of a job: when it ran, how it ended, what it cost."""

    model_config = ConfigDict(extra="forbid")

    id: str
    job_id: str
    namespace: str
    """The job's namespace (history is erased with it)."""
    due_at: datetime
    started_at: datetime
    finished_at: datetime | None = None
    outcome: RunOutcome = "running"
    attempts: int = 0
    error: str | None = None
    output: str | None = None
    session: str | None = None
    """The namespace whose session the run wrote to."""
    usage: Usage = Field(default_factory=Usage)
    runner: str | None = None
    """Which service instance ran it."""

    @property
    def duration(self) -> timedelta | None:
        return None if self.finished_at is None else self.finished_at - self.started_at

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> CronRun:
        return cls.model_validate_json(text)
