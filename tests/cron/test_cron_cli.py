"""``orra-di cron ...`` through CliRunner, and the settings/container wiring."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app
from orra_di.containers import Container, lifespan
from orra_di.cron import (
    PRUNE_JOB_ID,
    CronJob,
    CronService,
    EverySchedule,
    PruneSessionsPayload,
    SystemEventPayload,
    cron_store_for,
)
from orra_di.errors import ConfigurationError
from orra_di.settings import OrraSettings
from orra_di.stores import SQLiteStore


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def added_id(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return re.search(r"added (\S+)", result.output).group(1)  # type: ignore[union-attr]


def test_add_list_show_pause_resume_run_history_delete() -> None:
    job_id = added_id(
        run(
            "cron",
            "add",
            "acme",
            "--name",
            "daily",
            "--cron",
            "0 9 * * 1-5",
            "--tz",
            "Europe/Paris",
            "--prompt",
            "summarise the day",
        )
    )
    listed = run("cron", "list")
    assert "daily" in listed.output and "cron: 0 9 * * 1-5 (Europe/Paris)" in listed.output
    shown = json.loads(run("cron", "show", job_id).output)
    assert shown["schedule"]["timezone"] == "Europe/Paris" and shown["namespace"] == "acme"
    assert run("cron", "pause", job_id).exit_code == 0
    assert "paused" in run("cron", "list").output
    assert "resume it first" in run("cron", "run", job_id).output
    assert run("cron", "resume", job_id).exit_code == 0
    ran = run("cron", "run", job_id)  # the offline model answers
    assert ran.exit_code == 0, ran.output
    assert '"outcome": "ok"' in ran.output
    history = run("cron", "history", job_id)
    assert "ok" in history.output
    assert run("cron", "delete", job_id).exit_code == 0
    assert run("cron", "list").output.strip() == "no cron jobs"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--cron", "61 * * * *", "--prompt", "x"], "bad minute"),
        (["--cron", "0 9 * * *", "--tz", "Mars/Base", "--prompt", "x"], "unknown time zone"),
        (["--cron", "0 9 * * *", "--prompt", "x", "--agent", "ghost"], "no agent named 'ghost'"),
        (["--at", "2001-01-01T00:00:00Z", "--prompt", "x"], "has passed"),
        (["--every", "5", "--cron", "* * * * *", "--prompt", "x"], "exactly one of"),
    ],
)
def test_bad_input_is_one_clear_error_and_nothing_stored(args: list[str], says: str) -> None:
    result = run("cron", "add", "acme", "--name", "bad", *args)
    assert result.exit_code != 0
    assert says in " ".join(result.output.split())
    assert run("cron", "list").output.strip() == "no cron jobs"


def test_unknown_job_ids_are_named() -> None:
    result = run("cron", "pause", "nope")
    assert result.exit_code == 1 and "no cron job nope" in result.output


def test_history_of_an_unknown_job_is_an_error_not_an_empty_history() -> None:
    result = run("cron", "history", "nope")
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "no cron job nope" in said and "orra-di cron list" in said
    assert "no runs recorded" not in said


def test_history_of_a_job_that_never_ran_is_empty_and_fine() -> None:
    job_id = added_id(run("cron", "add", "acme", "--name", "a", "--every", "3600", "--prompt", "x"))
    result = run("cron", "history", job_id)
    assert result.exit_code == 0 and result.output.strip() == "no runs recorded"


def test_settings_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_CRON__DEFAULT_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("ORRA_CRON__MISSED_RUNS", "skip")
    section = OrraSettings().cron
    assert (section.default_timezone, section.missed_runs, section.enabled) == (
        "Europe/Paris",
        "skip",
        False,
    )
    monkeypatch.setenv("ORRA_CRON__DEFAULT_TIMEZONE", "Nowhere/Town")
    with pytest.raises(ConfigurationError, match="unknown time zone"):
        OrraSettings()


def test_the_tool_reaches_agents_when_switched_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_CRON__TOOL", "true")
    container = Container()
    assert "cron" in container.runtimes().default.tools
    monkeypatch.delenv("ORRA_CRON__TOOL")
    assert "cron" not in Container().runtimes().default.tools


@pytest.mark.anyio
async def test_the_lifespan_runs_the_service_when_enabled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_CRON__ENABLED", "true")
    container = Container()
    from datetime import UTC, datetime

    async with lifespan(container):
        service: CronService = container.cron_service()
        job = CronJob(
            name="ping",
            schedule=EverySchedule(interval_ms=3_600_000),
            payload=SystemEventPayload(message="ping"),
            namespace="acme",
            next_run=datetime.now(UTC),
        )
        await service.store.add(job)
        with anyio.fail_after(60):
            while not (await service.store.get(job.id)).run_count:  # type: ignore[union-attr]  # noqa: ASYNC110
                await anyio.sleep(0.05)
    sessions = SQLiteStore(tmp_path / "s.sqlite3")
    try:
        session = await sessions.load("acme")
        assert session is not None and session.messages[-1].content == "ping"
        (run_,) = await cron_store_for(sessions).runs(job.id)
        assert run_.outcome == "ok"
    finally:
        await sessions.aclose()


def test_sessions_delete_tree_erases_the_tenants_cron_jobs_and_history() -> None:
    acme = added_id(run("cron", "add", "acme", "--name", "a", "--every", "3600", "--prompt", "x"))
    alice = added_id(
        run("cron", "add", "acme:alice", "--name", "b", "--every", "3600", "--message", "y")
    )
    globex = added_id(
        run("cron", "add", "globex", "--name", "c", "--every", "3600", "--prompt", "z")
    )
    for job_id in (acme, alice, globex):
        assert run("cron", "run", job_id).exit_code == 0

    erased = run("sessions", "delete", "acme", "--tree")

    assert erased.exit_code == 0, erased.output
    assert "and 2 cron jobs with their history" in erased.output
    listed = run("cron", "list").output
    assert globex in listed and acme not in listed and alice not in listed
    assert "no cron job" in run("cron", "history", acme).output  # the job went with the tree
    assert "acme" not in run("sessions", "list").output
    assert "ok" in run("cron", "history", globex).output


def test_prune_every_without_a_session_ttl_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_CRON__PRUNE_EVERY", "3600")
    result = run("cron", "list")
    assert result.exit_code == 1
    assert "ORRA_STORE__SESSION_TTL" in " ".join(result.output.split())


def test_the_containers_service_keeps_the_prune_job_the_settings_ask_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_CRON__PRUNE_EVERY", "600")
    monkeypatch.setenv("ORRA_STORE__SESSION_TTL", "86400")

    async def start() -> CronJob | None:
        container = Container()
        async with lifespan(container):
            service: CronService = container.cron_service()
            return await service.ensure_prune_job()  # what serve() does first

    job = anyio.run(start)
    assert job is not None and job.id == PRUNE_JOB_ID
    assert job.schedule == EverySchedule(interval_ms=600_000)
    assert job.payload == PruneSessionsPayload(idle_for=86_400)
    listed = run("cron", "list").output
    assert PRUNE_JOB_ID in listed and "every" in listed


def test_the_clis_every_limit_is_the_schedules() -> None:
    """The CLI keeps its own copy (the schedule module is not imported at start-up)."""
    from orra_di.cron import cli as cron_cli
    from orra_di.cron.schedule import MAX_EVERY_MS

    assert cron_cli.MAX_EVERY_MS == MAX_EVERY_MS
