"""CronJob: orra's types tests (spec §3, src/cron/types.rs) as behaviour, and its JSON shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from orra_di.cron import (
    AgentTurnPayload,
    AtSchedule,
    CronExpressionSchedule,
    CronJob,
    CronJobStatus,
    EverySchedule,
    SystemEventPayload,
)

NOW = datetime(2025, 6, 15, 10, 30, tzinfo=UTC)


def job(schedule: object, **options: object) -> CronJob:
    return CronJob.new(
        "report",
        schedule,
        AgentTurnPayload(prompt="summary"),
        "acme",
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def test_at_schedule_future() -> None:
    j = job(AtSchedule(datetime=NOW + timedelta(hours=1)))
    assert j.status is CronJobStatus.ACTIVE and j.next_run == NOW + timedelta(hours=1)
    assert j.should_fire(NOW + timedelta(hours=2))


def test_at_schedule_past() -> None:
    assert job(AtSchedule(datetime=NOW - timedelta(hours=1))).next_run is None


def test_every_schedule() -> None:
    j = job(EverySchedule(interval_ms=60_000))
    assert j.next_run == NOW + timedelta(minutes=1)


def test_cron_schedule_next_run() -> None:
    assert job(CronExpressionSchedule(expression="0 * * * *")).next_run == NOW.replace(
        hour=11, minute=0
    )


def test_mark_fired_at_completes() -> None:
    j = job(AtSchedule(datetime=NOW + timedelta(minutes=5)))
    j.mark_fired(NOW + timedelta(minutes=5))
    assert (j.status, j.next_run, j.run_count) == (CronJobStatus.COMPLETED, None, 1)


def test_mark_fired_every_reschedules() -> None:
    j = job(EverySchedule(interval_ms=60_000))
    fired = NOW + timedelta(minutes=1)
    j.mark_fired(fired)
    assert j.status is CronJobStatus.ACTIVE and j.next_run is not None and j.next_run > fired
    assert j.run_count == 1


def test_paused_job_does_not_fire() -> None:
    j = job(EverySchedule(interval_ms=1000))
    j.status = CronJobStatus.PAUSED
    assert not j.should_fire(NOW + timedelta(hours=1))


def test_serialization_roundtrip_in_orras_shape() -> None:
    j = job(CronExpressionSchedule(expression="0 9 * * *", timezone="Europe/Paris"))
    text = j.to_json(indent=2)
    data = json.loads(text)
    assert data["schedule"] == {
        "type": "cron",
        "expression": "0 9 * * *",
        "timezone": "Europe/Paris",
    }
    assert data["payload"] == {"type": "agent_turn", "prompt": "summary"}
    assert (data["delivery"], data["status"], data["namespace"]) == ("announce", "active", "acme")
    assert "model" not in data  # omitted when unset, as orra's serde did
    back = CronJob.from_json(text)
    assert (back.id, back.name, back.schedule, back.next_run) == (
        j.id,
        j.name,
        j.schedule,
        j.next_run,
    )


def test_orras_own_json_is_read() -> None:
    text = json.dumps(
        {
            "id": "0b0e4c2c-8d5e-4c1a-9a55-5f6a3f1d2e7b",
            "name": "ping",
            "schedule": {"type": "every", "interval_ms": 3600000},
            "payload": {"type": "system_event", "message": "ping"},
            "delivery": "silent",
            "namespace": "discord:123",
            "status": "paused",
            "created_at": "2025-06-15T10:30:00Z",
            "last_run": None,
            "next_run": "2025-06-15T11:30:00Z",
            "run_count": 3,
        }
    )
    j = CronJob.from_json(text)
    assert isinstance(j.payload, SystemEventPayload) and j.run_count == 3
    assert j.status is CronJobStatus.PAUSED


def test_a_bad_expression_or_zone_cannot_make_a_job() -> None:
    # pydantic reports the CronError as the field's error (a ValueError)
    with pytest.raises(ValueError, match="invalid cron expression 'not a cron'"):
        CronExpressionSchedule(expression="not a cron")
    with pytest.raises(ValueError, match="unknown time zone"):
        CronExpressionSchedule(expression="0 9 * * *", timezone="Nowhere/City")
