"""The README's "Scheduled jobs" flow with real processes, as a user runs it: ``orra-di cron
add``, ``orra-di serve`` in the foreground, the agent's answer in the job's session, then
SIGTERM. On the default store (SQLite in the user's data directory) and the offline test
model. The job is ``--every 1`` (seconds) so no test waits for a cron minute; that a cron
job fires at its due minute is tested with a moved clock in test_service.py."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio

import orra_di
from orra_di.cron import cron_store_for
from orra_di.message import Role
from orra_di.stores import SQLiteStore

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


def orra(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from orra_di.cli import main; main()", *args],
        env=process_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=BOUND,
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

    serve = subprocess.Popen(
        [sys.executable, "-c", "from orra_di.cli import main; main()", "serve"],
        env=process_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
