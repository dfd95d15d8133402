"""Round 17 review: docs/cron.md's command line and its retention job, from outside.

Each test runs ``orra-di cron ...`` through the Typer app on a SQLite file of its own
(``tmp_path``), with no key and no ``ORRA_*`` variable but the ones it sets, and checks
what the page says: the walkthrough's commands, the errors that name what was wrong and
what to do (and store nothing), delivery, one-shots, and the built-in
``orra-prune-sessions`` job whose pause is kept.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.cron import CronService, CronTool, cron_store_for
from orra_di.cron.model import CronJobStatus
from orra_di.cron.service import PRUNE_JOB_ID
from orra_di.stores import InMemoryStore
from orra_di.tool import ToolContext

pytestmark = pytest.mark.anyio


@pytest.fixture
def orra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``orra-di`` in-process on a SQLite file of this test; no key, no other setting."""
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


def _add(orra: Any, *options: str) -> str:
    """``orra-di cron add acme --name <name> ...``; the id it printed."""
    added = orra("cron", "add", "acme", "--name", *options)
    assert added.exit_code == 0, added.output
    return _added_id(added.output)


def _added_id(output: str) -> str:
    """The id in ``added <id> (<name>); next run ...``."""
    found = re.match(r"added (\S+) \(", output)
    assert found, output
    return found.group(1)


# -- the walkthrough ------------------------------------------------------------------------------


def test_the_pages_add_without_agent_runs_the_default_agent_and_announces(orra: Any) -> None:
    added = orra(
        "cron", "add", "acme", "--name", "daily", "--cron", "0 9 * * 1-5", "--tz", "Europe/Paris",
        "--prompt", "What is 2+2?",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    job_id = _added_id(added.output)
    ran = orra("cron", "run", job_id)
    assert ran.exit_code == 0, ran.output
    run = json.loads(ran.output)
    assert (run["outcome"], run["session"]) == ("ok", f"acme:cron:{job_id}")
    assert run["output"].startswith("2+2 = 4")
    own = orra("sessions", "show", f"acme:cron:{job_id}").output
    assert "user: What is 2+2?" in own and "assistant: 2+2 = 4" in own
    home = orra("sessions", "show", "acme").output  # announced (the default delivery)
    assert "assistant: 2+2 = 4" in home


def test_an_agent_that_is_not_configured_is_named_with_the_agents_and_nothing_is_added(
    orra: Any,
) -> None:
    added = orra(
        "cron", "add", "acme", "--name", "daily", "--cron", "0 9 * * 1-5",
        "--agent", "assistant", "--prompt", "hi",
    )  # fmt: skip
    assert added.exit_code == 1
    assert "no agent named 'assistant'" in added.output and "the agents are: Atlas" in added.output
    assert orra("cron", "list").output.strip() == "no cron jobs"


def test_a_silent_job_keeps_its_answer_in_its_own_session(orra: Any) -> None:
    job_id = _add(orra, "q", "--every", "3600", "--prompt", "What is 3*3?", "--silent")
    assert json.loads(orra("cron", "run", job_id).output)["outcome"] == "ok"
    assert "3*3 = 9" in orra("sessions", "show", f"acme:cron:{job_id}").output
    listed = orra("sessions", "list").output.split()
    assert "acme" not in listed  # nothing announced to the job's namespace


def test_a_message_job_appends_a_system_message_to_its_namespace(orra: Any) -> None:
    job_id = _add(orra, "m", "--every", "3600", "--message", "Stand-up in 15 minutes")
    run = json.loads(orra("cron", "run", job_id).output)
    assert run["outcome"] == "ok" and run["output"] is None
    assert orra("sessions", "show", "acme").output.strip() == "system: Stand-up in 15 minutes"


def test_a_job_shows_the_documented_policy_defaults(orra: Any) -> None:
    job_id = _add(orra, "d", "--every", "60", "--prompt", "x")
    job = json.loads(orra("cron", "show", job_id).output)
    assert job["delivery"] == "announce"
    assert (job["missed"], job["grace"], job["retries"], job["retry_delay"]) == (
        "run_once",
        60.0,
        0,
        5.0,
    )
    assert job["schedule"] == {"type": "every", "interval_ms": 60000}


def test_missed_runs_setting_reaches_jobs_added_on_the_command_line(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_CRON__MISSED_RUNS", "skip")
    job_id = _add(orra, "d", "--every", "60", "--prompt", "x")
    assert json.loads(orra("cron", "show", job_id).output)["missed"] == "skip"


def test_cron_tz_defaults_to_the_default_timezone_setting(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_CRON__DEFAULT_TIMEZONE", "Asia/Tokyo")
    job_id = _add(orra, "d", "--cron", "0 9 * * *", "--prompt", "x")
    schedule = json.loads(orra("cron", "show", job_id).output)["schedule"]
    assert schedule == {"type": "cron", "expression": "0 9 * * *", "timezone": "Asia/Tokyo"}


def test_a_job_without_runs_has_an_empty_history_said_in_words(orra: Any) -> None:
    job_id = _add(orra, "d", "--every", "60", "--prompt", "x")
    history = orra("cron", "history", job_id)
    assert history.exit_code == 0 and history.output.strip() == "no runs recorded"


# -- errors: what was wrong, what to do, nothing stored -------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--at", "2020-01-01T00:00:00Z"], "has passed; give a future time"),
        (["--at", "2031-01-01T00:00:00"], "an 'at' time needs a zone"),
        (["--cron", "0 25 * * *"], "bad hour (fields: minute 0-59, hour 0-23"),
        (["--cron", "0 9 * * *", "--tz", "Europe/Pariss"], "unknown time zone 'Europe/Pariss'"),
    ],
)
def test_a_bad_schedule_is_one_error_and_stores_nothing(
    orra: Any, options: list[str], expected: str
) -> None:
    added = orra("cron", "add", "acme", "--name", "bad", *options, "--prompt", "x")
    assert added.exit_code == 1
    assert expected in added.output and "Traceback" not in added.output
    assert orra("cron", "list").output.strip() == "no cron jobs"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--cron", "0 9 * * *", "--every", "5", "--prompt", "x"], "one of --cron, --every, --at"),
        (["--cron", "0 9 * * *"], "exactly one of --prompt, --message"),
        (["--every", "5", "--prompt", "x", "--message", "y"], "one of --prompt, --message"),
    ],
)
def test_options_that_contradict_each_other_are_a_usage_error(
    orra: Any, options: list[str], expected: str
) -> None:
    added = orra("cron", "add", "acme", "--name", "bad", *options)
    assert added.exit_code == 2 and expected in added.output
    assert orra("cron", "list").output.strip() == "no cron jobs"


@pytest.mark.parametrize("command", ["run", "show", "pause", "resume", "delete", "history"])
def test_an_unknown_id_says_where_the_ids_are(orra: Any, command: str) -> None:
    result = orra("cron", command, "no-such-job")
    assert result.exit_code == 1
    assert "no cron job no-such-job; `orra-di cron list` shows them" in result.output


def test_a_deleted_job_is_gone_for_every_command(orra: Any) -> None:
    job_id = _add(orra, "d", "--every", "60", "--prompt", "x")
    assert orra("cron", "delete", job_id).output.strip() == f"deleted {job_id}"
    again = orra("cron", "delete", job_id)
    assert again.exit_code == 1 and f"no cron job {job_id}" in again.output


def test_running_a_paused_job_says_how_to_resume_it(orra: Any) -> None:
    job_id = _add(orra, "d", "--every", "60", "--prompt", "x")
    orra("cron", "pause", job_id)
    ran = orra("cron", "run", job_id)
    assert ran.exit_code == 1
    assert f"is paused; resume it first (`orra-di cron resume {job_id}`)" in ran.output
    assert orra("cron", "history", job_id).output.strip() == "no runs recorded"


def test_a_one_shot_run_now_is_done_and_is_not_sent_to_resume(orra: Any) -> None:
    """A completed one-shot stays completed: `resume` cannot help, so nobody says to use it."""
    job_id = _add(orra, "once", "--at", "2031-01-01T00:00:00Z", "--prompt", "What is 1+1?")
    assert json.loads(orra("cron", "run", job_id).output)["outcome"] == "ok"
    job = json.loads(orra("cron", "show", job_id).output)
    assert (job["status"], job["next_run"]) == ("completed", None)

    resumed = orra("cron", "resume", job_id)
    assert resumed.exit_code == 0
    assert f"resumed {job_id}" not in resumed.output
    assert "stays completed" in resumed.output and "add a new job" in resumed.output
    assert json.loads(orra("cron", "show", job_id).output)["status"] == "completed"

    again = orra("cron", "run", job_id)
    assert again.exit_code == 1
    assert "is completed" in again.output and "resume it first" not in again.output
    assert "add a new job" in again.output
    assert len(orra("cron", "history", job_id).output.strip().splitlines()) > 1  # the one run
    assert json.loads(orra("cron", "show", job_id).output)["run_count"] == 1


async def test_the_cron_tool_does_not_claim_to_resume_a_completed_one_shot() -> None:
    sessions = InMemoryStore()
    service = CronService(cron_store_for(sessions), sessions)
    tool = CronTool(service)
    alice = ToolContext("acme:alice")
    at = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    created = await tool.execute(
        {
            "action": "create",
            "name": "once",
            "schedule": {"type": "at", "datetime": at},
            "payload": {"type": "system_event", "message": "hello"},
        },
        alice,
    )
    (job,) = await service.list_jobs("acme:alice")
    assert job.name == "once", created
    ran = await tool.execute({"action": "run", "id": job.id}, alice)
    assert ran.startswith(f"Ran job {job.id}: ok")
    answer = await tool.execute({"action": "resume", "id": job.id}, alice)
    assert "completed" in answer and not answer.startswith("Resumed")
    stored = await service.get_job(job.id)
    assert stored is not None and stored.status is CronJobStatus.COMPLETED


# -- the built-in retention job -----------------------------------------------------------------


def _pruner(sessions: InMemoryStore, every: float | None, ttl: float | None = 3600) -> CronService:
    return CronService(cron_store_for(sessions), sessions, prune_every=every, session_ttl=ttl)


async def test_a_paused_prune_job_stays_paused_when_a_service_starts_again() -> None:
    sessions = InMemoryStore()
    first = _pruner(sessions, 60)
    assert await first.ensure_prune_job() is not None
    assert await first.pause_job(PRUNE_JOB_ID)
    job = await _pruner(sessions, 60).ensure_prune_job()
    assert job is not None and job.status is CronJobStatus.PAUSED


async def test_a_paused_prune_job_stays_paused_when_the_settings_change() -> None:
    """The page: "Change the settings and the next service ... updates the job ... Pausing it
    is kept." A new interval or TTL must not start deleting sessions again unasked."""
    sessions = InMemoryStore()
    assert await _pruner(sessions, 60).ensure_prune_job() is not None
    assert await _pruner(sessions, 60).pause_job(PRUNE_JOB_ID)

    changed = CronService(cron_store_for(sessions), sessions, prune_every=120, session_ttl=7200)
    job = await changed.ensure_prune_job()
    assert job is not None and job.status is CronJobStatus.PAUSED
    assert job.schedule.model_dump() == {"type": "every", "interval_ms": 120000}
    stored = await changed.get_job(PRUNE_JOB_ID)
    assert stored is not None and stored.status is CronJobStatus.PAUSED
    assert await changed.run_due(datetime.now(UTC) + timedelta(days=1)) == []

    assert await changed.resume_job(PRUNE_JOB_ID)  # and resuming it follows the new interval
    resumed = await changed.get_job(PRUNE_JOB_ID)
    assert resumed is not None and resumed.status is CronJobStatus.ACTIVE
    assert resumed.next_run is not None and resumed.next_run > datetime.now(UTC)


async def test_unsetting_prune_every_removes_the_job_even_when_paused() -> None:
    sessions = InMemoryStore()
    assert await _pruner(sessions, 60).ensure_prune_job() is not None
    assert await _pruner(sessions, 60).pause_job(PRUNE_JOB_ID)
    assert await _pruner(sessions, None).ensure_prune_job() is None
    assert await _pruner(sessions, None).list_jobs() == []


def test_prune_every_without_a_ttl_names_the_setting_to_add(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_CRON__PRUNE_EVERY", "60")
    served = orra("cron", "serve")
    assert served.exit_code == 1
    assert "ORRA_STORE__SESSION_TTL" in served.output and "Traceback" not in served.output
