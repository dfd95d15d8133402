"""Round 10 review: docs/cron.md and ``orra-di cron ...`` against the code.

Schedules in a time zone (daylight-saving time as documented), missed runs
(``skip``/``run_once`` and ``ORRA_CRON__MISSED_RUNS``), the ``cron`` tool's tenant
checks, and the CLI's ``add``/``run``/``history``/``sessions delete --tree``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from orra_di import AgentProfile, Runtime
from orra_di.cli import app
from orra_di.cron import (
    AgentTurnPayload,
    CronExpressionSchedule,
    CronJob,
    CronSchedule,
    CronService,
    CronTool,
    EverySchedule,
    SystemEventPayload,
    cron_store_for,
)
from orra_di.errors import ToolInputError
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import InMemoryStore
from orra_di.testing import ScriptedProvider, reply
from orra_di.tool import ToolContext

pytestmark = pytest.mark.anyio

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("COLUMNS", "80")  # a terminal's width, as rich sees one when piped
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def service_at(now: datetime) -> tuple[CronService, InMemoryStore, Clock]:
    sessions = InMemoryStore()
    llm = ScriptedProvider(lambda request: reply("done"))
    runtimes = RuntimeMap([AgentProfile(name="assistant")], lambda profile: Runtime(llm, sessions))
    clock = Clock(now)
    return CronService(cron_store_for(sessions), sessions, runtimes, clock=clock), sessions, clock


# -- schedules and daylight-saving time -------------------------------------------------------


def test_a_repeated_wall_clock_time_fires_once_at_its_first_occurrence() -> None:
    """Clocks fall back in Paris on 26 October 2025 (03:00 CEST -> 02:00 CET)."""
    daily = CronSchedule.parse("30 2 * * *", "Europe/Paris")
    first = daily.next_after(datetime(2025, 10, 25, 12, tzinfo=UTC))
    assert first == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST, the first pass
    second = daily.next_after(first)
    assert second is not None and second.astimezone(PARIS).date().day == 27  # not 02:30 CET


def test_an_elapsed_time_job_fires_in_both_passes_and_skips_the_gap() -> None:
    every_half_hour = CronSchedule.parse("*/30 * * * *", "Europe/Paris")
    fired, moment = [], datetime(2025, 10, 25, 23, 45, tzinfo=UTC)  # 01:45 CEST
    for _ in range(4):
        moment = every_half_hour.next_after(moment)  # type: ignore[assignment]
        fired.append(moment)
    # 02:00 and 02:30 happen twice that night: each pass fires, 30 minutes apart
    assert [m - fired[0] for m in fired] == [timedelta(minutes=30 * i) for i in range(4)]
    spring, moment = [], datetime(2025, 3, 30, 0, 45, tzinfo=UTC)  # 01:45 CET
    for _ in range(2):
        moment = every_half_hour.next_after(moment)  # type: ignore[assignment]
        spring.append(moment.astimezone(PARIS).strftime("%H:%M"))
    assert spring == ["03:00", "03:30"]  # nothing in the skipped hour


def test_fire_times_are_whole_minutes_strictly_after_the_instant() -> None:
    nine = CronSchedule.parse("0 9 * * *")
    at_nine = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    assert nine.next_after(at_nine) == at_nine + timedelta(days=1)
    assert nine.next_after(at_nine - timedelta(seconds=1)) == at_nine
    assert nine.next_after(at_nine + timedelta(microseconds=1)) == at_nine + timedelta(days=1)


# -- missed runs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("missed", "outcome"), [("skip", "skipped"), ("run_once", "ok")])
async def test_a_due_time_missed_by_more_than_grace(missed: str, outcome: str) -> None:
    start = datetime(2025, 6, 13, 6, 0, tzinfo=UTC)
    service, sessions, clock = service_at(start)
    job = await service.add_job(
        CronJob(
            name="hourly",
            schedule=EverySchedule(interval_ms=3_600_000),
            payload=AgentTurnPayload(prompt="report"),
            namespace="acme",
            missed=missed,  # type: ignore[arg-type]
        )
    )
    clock.now = start + timedelta(hours=5, minutes=10)  # no service ran for five due times
    runs = await service.run_due()
    assert [r.outcome for r in runs] == [outcome]  # one entry, not five
    assert runs[0].due_at == start + timedelta(hours=1)
    stored = await service.get_job(job.id)
    assert stored is not None and stored.next_run == start + timedelta(hours=6)
    assert await service.run_due() == []
    assert (await sessions.load(f"acme:cron:{job.id}") is not None) is (outcome == "ok")


async def test_a_late_run_within_grace_still_runs_with_skip() -> None:
    start = datetime(2025, 6, 13, 6, 0, tzinfo=UTC)
    service, _, clock = service_at(start)
    await service.add_job(
        CronJob(
            name="m",
            schedule=EverySchedule(interval_ms=60_000),
            payload=SystemEventPayload(message="tick"),
            namespace="acme",
            missed="skip",
        )
    )
    clock.now = start + timedelta(seconds=110)  # 50 s late, grace is 60
    (run,) = await service.run_due()
    assert run.outcome == "ok"


async def test_jobs_the_cron_tool_creates_follow_missed_runs_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``cron.missed_runs`` is "new jobs' policy"; the tool's jobs are new jobs too."""
    from orra_di.containers import Container, lifespan

    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("ORRA_CRON__TOOL", "true")
    monkeypatch.setenv("ORRA_CRON__MISSED_RUNS", "skip")
    container = Container()
    async with lifespan(container):
        runtime = container.runtimes()[container.runtimes().default_agent]
        tool = runtime.tools.get("cron")
        assert tool is not None
        await tool.execute(
            {
                "action": "create",
                "name": "digest",
                "schedule": {"type": "every", "interval_ms": 60_000},
                "payload": {"type": "system_event", "message": "digest"},
            },
            ToolContext("acme:alice"),
        )
        (job,) = await container.cron_service().list_jobs("acme")
        assert job.missed == "skip"


# -- the cron tool's tenant checks --------------------------------------------------------------


async def test_the_cron_tool_sees_only_the_callers_subtree() -> None:
    service, _, _ = service_at(datetime(2025, 6, 13, 6, 0, tzinfo=UTC))
    tool = CronTool(service)

    def event(namespace: str, name: str) -> CronJob:
        return CronJob(
            name=name,
            schedule=CronExpressionSchedule(expression="0 9 * * *"),
            payload=SystemEventPayload(message=name),
            namespace=namespace,
        )

    mine = await service.add_job(event("acme:alice:sub", "mine"))
    sibling = await service.add_job(event("acme:alice2", "sibling"))  # a prefix, not a child
    parent = await service.add_job(event("acme", "parent"))
    alice = ToolContext("acme:alice")
    listed = await tool.execute({"action": "list"}, alice)
    assert "mine" in listed and "sibling" not in listed and "parent" not in listed
    for other in (sibling, parent):
        for action in ("get", "pause", "delete", "run"):
            out = await tool.execute({"action": action, "id": other.id}, alice)
            assert out == f"Job not found: {other.id}"
        stored = await service.get_job(other.id)
        assert stored is not None and stored.status.value == "active" and stored.run_count == 0
    assert "Paused" in await tool.execute({"action": "pause", "id": mine.id}, alice)
    for outside in ("acme:alice2", "acme", "globex:alice"):
        with pytest.raises(ToolInputError, match="outside this conversation's"):
            await tool.execute(
                {
                    "action": "create",
                    "namespace": outside,
                    "name": "x",
                    "schedule": {"type": "every", "interval_ms": 1000},
                    "payload": {"type": "system_event", "message": "x"},
                },
                alice,
            )
    created = await tool.execute(
        {
            "action": "create",
            "namespace": "acme:alice:team",
            "name": "below",
            "schedule": {"type": "cron", "expression": "0 9 * * *"},
            "payload": {"type": "system_event", "message": "x"},
        },
        alice,
    )
    assert created.startswith("Created cron job 'below'")
    assert [j.name for j in await service.list_jobs("acme:alice:team")] == ["below"]


# -- the command line ------------------------------------------------------------------------


def test_cron_run_prints_the_answer_as_it_is(shell: Any) -> None:
    """The JSON of ``cron run`` is data: brackets in the answer are not rich markup."""
    added = shell("cron", "add", "acme", "--name", "m", "--every", "3600", "--prompt", "hello")
    assert added.exit_code == 0, added.output
    job_id = added.output.split()[1]
    ran = shell("cron", "run", job_id)
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.output)
    assert run["outcome"] == "ok"
    assert 'pip install "orra-di[anthropic]"' in run["output"]  # the offline model's notice
    assert run["session"] == f"acme:cron:{job_id}"


def test_cron_add_prints_the_name_as_it_is(shell: Any) -> None:
    name = "[bold]x[/bold]"
    added = shell("cron", "add", "acme", "--name", name, "--every", "60", "--message", "m")
    assert added.exit_code == 0, added.output
    assert "([bold]x[/bold])" in added.output


def test_cron_history_shows_the_whole_due_time(shell: Any) -> None:
    added = shell("cron", "add", "acme", "--name", "m", "--every", "3600", "--message", "hi")
    job_id = added.output.split()[1]
    ran = json.loads(shell("cron", "run", job_id).output)
    history = shell("cron", "history", job_id)
    assert history.exit_code == 0, history.output
    due = datetime.fromisoformat(ran["due_at"]).isoformat(timespec="seconds")
    rows = [line for line in history.output.splitlines() if line.startswith("│")]
    first_column = [line.split("│")[1].strip() for line in rows]
    assert "…" not in history.output
    assert due == "".join(cell for cell in first_column if cell)  # wrapped, not cut


def test_a_bad_at_time_names_the_option_and_the_format(shell: Any) -> None:
    added = shell("cron", "add", "acme", "--name", "x", "--at", "tomorrow", "--message", "m")
    assert added.exit_code != 0
    assert "--at" in added.output and "2025-06-15T09:00:00Z" in added.output


def test_sessions_delete_tree_erases_the_tenants_jobs_and_history(shell: Any) -> None:
    added = shell("cron", "add", "acme:alice", "--name", "m", "--every", "60", "--prompt", "hi")
    job_id = added.output.split()[1]
    assert shell("cron", "run", job_id).exit_code == 0
    kept = shell("cron", "add", "acme2", "--name", "k", "--every", "60", "--message", "m")
    deleted = shell("sessions", "delete", "acme", "--tree")
    assert deleted.exit_code == 0 and "1 cron job" in deleted.output, deleted.output
    assert shell("cron", "show", job_id).exit_code == 1
    history = shell("cron", "history", job_id)  # the job and its runs are gone
    assert history.exit_code == 1 and f"no cron job {job_id}" in history.output
    assert shell("cron", "show", kept.output.split()[1]).exit_code == 0
    assert shell("sessions", "show", f"acme:alice:cron:{job_id}").exit_code != 0
