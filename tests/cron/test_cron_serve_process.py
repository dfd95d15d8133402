"""The README's "Scheduled jobs" flow with real processes, as a user runs it: ``orra-di cron
add``, ``orra-di cron serve`` in the foreground, the agent's answer in the job's session, then
SIGTERM. On the default store (SQLite in the user's data directory) and the offline test
model. The job is ``--every 1`` (seconds) so no test waits for a cron minute; that a cron
job fires at its due minute is tested with a moved clock in test_service.py."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from services import POSTGRES_URL, require_postgres

import orra_di
from orra_di.cron import cron_store_for
from orra_di.message import Role
from orra_di.stores import SQLiteStore, open_store

BOUND = 120  # seconds: a hang guard on a loaded machine, never asserted on


def process_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # the default store lives there
    env["PYTHONPATH"] = str(Path(orra_di.__file__).resolve().parent.parent)
    env["NO_COLOR"] = "1"
    env["COLUMNS"] = "250"
    return env


CLI = [sys.executable, "-c", "from orra_di.cli import main; main()"]


def orra(
    *args: str, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        env=env or process_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )


def serve_process(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``orra-di cron serve`` in the foreground, as in the README."""
    return subprocess.Popen(
        [*CLI, "cron", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def answers_in(db: Path, namespace: str) -> list[str]:
    sessions = SQLiteStore(db)
    try:
        session = await sessions.load(namespace)
        if session is None:
            return []
        return [m.content for m in session.messages if m.role is Role.ASSISTANT and m.content]
    finally:
        await sessions.aclose()


def test_add_a_job_run_orra_di_serve_and_the_answer_lands_in_the_jobs_session(
    tmp_path: Path,
) -> None:
    added = orra(
        "cron", "add", "acme", "--name", "hello", "--every", "1", "--prompt", "Say hello",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    job_id = re.search(r"added (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
    db = tmp_path / "data" / "orra-di" / "sessions.sqlite3"
    job_session = f"acme:cron:{job_id}"

    serve = serve_process(tmp_path, process_env(tmp_path))
    try:
        deadline = time.monotonic() + BOUND
        while not anyio.run(answers_in, db, job_session):
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "no answer from the served job"
            time.sleep(0.2)
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=BOUND)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, err
    assert "cron service" in err and "sessions.sqlite3" in err

    shown = orra("sessions", "show", job_session, tmp_path=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "user: Say hello" in shown.stdout
    assert "assistant: (test model, no LLM configured) You said: Say hello" in shown.stdout
    home = orra("sessions", "show", "acme", tmp_path=tmp_path)  # announced there too
    assert "You said: Say hello" in home.stdout

    async def history() -> list[str]:
        sessions = SQLiteStore(db)
        try:
            return [r.outcome for r in await cron_store_for(sessions).runs(job_id)]
        finally:
            await sessions.aclose()

    outcomes = anyio.run(history)
    # SIGTERM let the run in flight finish: every run is recorded, none left "running"
    assert outcomes and set(outcomes) == {"ok"}


@pytest.mark.service
def test_two_orra_di_serve_processes_on_postgresql_run_each_due_time_once(
    tmp_path: Path,
) -> None:
    """The README's "several processes on one PostgreSQL": two ``orra-di cron serve`` on one
    database, a job due every second; every due time is answered once, by one of them."""
    require_postgres()
    import psycopg

    database = f"orra_test_serve_{secrets.token_hex(4)}"
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + database
    env = {**process_env(tmp_path), "ORRA_STORE__URL": url}
    servers: list[subprocess.Popen[str]] = []
    try:
        added = orra(
            "cron", "add", "acme", "--name", "tick", "--every", "1", "--prompt", "Tick",
            tmp_path=tmp_path, env=env,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        job_id = re.search(r"added (\S+)", added.stdout).group(1)  # type: ignore[union-attr]
        servers = [serve_process(tmp_path, env) for _ in range(2)]

        async def state() -> tuple[int, list[str], list[str]]:
            sessions = open_store(url)
            try:
                job = await cron_store_for(sessions).get(job_id)
                runs = await cron_store_for(sessions).runs(job_id, 1000)
                session = await sessions.load(f"acme:cron:{job_id}")
                answers = (
                    []
                    if session is None
                    else [
                        m.content
                        for m in session.messages
                        if m.role is Role.ASSISTANT and m.content
                    ]
                )
                assert job is not None
                return job.run_count, [r.outcome for r in runs], answers
            finally:
                await sessions.aclose()

        deadline = time.monotonic() + BOUND
        while anyio.run(state)[0] < 4:
            assert all(s.poll() is None for s in servers), [s.communicate() for s in servers]
            assert time.monotonic() < deadline, "the served job did not run 4 times"
            time.sleep(0.3)
        for server in servers:
            server.send_signal(signal.SIGTERM)
        for server in servers:
            _, err = server.communicate(timeout=BOUND)
            assert server.returncode == 0, err
        run_count, outcomes, answers = anyio.run(state)
        # one history entry, one counted run and one answer per due time: none twice
        assert set(outcomes) == {"ok"}
        assert run_count == len(outcomes) == len(answers)
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait()
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
