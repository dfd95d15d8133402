"""Scheduler: orra's tests (spec §3, src/scheduler.rs) and bug 37 (a manual tick fired twice)."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from orra_di.cron import JobInfo, Scheduler
from orra_di.errors import CronError

pytestmark = pytest.mark.anyio


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2025, 6, 15, hour, minute, second, tzinfo=UTC)


async def test_scheduler_add_and_list() -> None:
    s = Scheduler()
    job_id = await s.add_job("ping", "*/5 * * * *", lambda: None)
    (info,) = await s.list_jobs()
    assert (info.id, info.name, info.schedule, info.enabled, info.run_count) == (
        job_id,
        "ping",
        "*/5 * * * *",
        True,
        0,
    )


async def test_scheduler_remove_job() -> None:
    s = Scheduler()
    job_id = await s.add_job("ping", "* * * * *", lambda: None)
    assert await s.remove_job(job_id) is True
    assert await s.remove_job(job_id) is False


async def test_scheduler_enable_disable() -> None:
    s = Scheduler()
    job_id = await s.add_job("ping", "* * * * *", lambda: None)
    assert await s.set_enabled(job_id, False)
    assert not (await s.list_jobs())[0].enabled
    assert await s.set_enabled("nope", True) is False


async def test_scheduler_tick_fires_matching_job() -> None:
    s = Scheduler()
    fired: list[int] = []
    await s.add_job("report", "30 10 * * *", lambda: fired.append(1))
    assert await s.tick(at(10, 30)) == 1
    await s.tick(at(11, 0))
    assert fired == [1]


async def test_a_manual_tick_never_fires_twice_for_one_minute() -> None:
    # bug 37: orra's manual tick skipped the same-minute de-duplication
    s = Scheduler()
    fired: list[int] = []

    async def callback() -> None:
        fired.append(1)

    await s.add_job("report", "30 10 * * *", callback)
    await s.tick(at(10, 30, 1))
    await s.tick(at(10, 30, 45))
    assert fired == [1]
    assert (await s.list_jobs())[0].run_count == 1


async def test_scheduler_disabled_job_doesnt_fire() -> None:
    s = Scheduler()
    fired: list[int] = []
    job_id = await s.add_job("report", "* * * * *", lambda: fired.append(1))
    await s.set_enabled(job_id, False)
    await s.tick(at(10, 30))
    assert fired == []


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    s = Scheduler()
    fired: list[str] = []

    def boom() -> None:
        raise RuntimeError("boom")

    await s.add_job("bad", "* * * * *", boom)
    await s.add_job("good", "* * * * *", lambda: fired.append("good"))
    assert await s.tick(at(10, 30)) == 2
    assert fired == ["good"]


async def test_scheduler_start_and_stop() -> None:
    fired = anyio.Event()
    s = Scheduler(clock=lambda: at(10, 30))  # the loop's first pass sees 10:30
    await s.add_job("report", "30 10 * * *", fired.set)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(s.run)
            assert s.running
            await fired.wait()
            s.stop()
    assert not s.running


async def test_an_invalid_expression_is_refused() -> None:
    with pytest.raises(CronError, match="expected 5 fields"):
        await Scheduler().add_job("bad", "* *", lambda: None)


def test_job_info_serialization() -> None:
    info = JobInfo(id="1", name="n", schedule="* * * * *", enabled=True, last_run=None, run_count=0)
    assert JobInfo.model_validate_json(info.model_dump_json()) == info
