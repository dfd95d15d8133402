"""Round 10 review: README.md's "Run it" and docs/getting-started.md's command line, as a
new user meets them: no ``ORRA_*`` variable, no key, a fresh data directory, so the
offline model answers and the sessions go to ``$XDG_DATA_HOME/orra-di``.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str) -> Any:
        result = runner.invoke(app, list(args))
        return result

    return run


def test_the_readme_run_it_line_in_a_fresh_process(tmp_path: Path) -> None:
    """``orra-di ask "What is 2+2?" && orra-di ask "Do you remember me?" &&
    orra-di sessions show "cli:$(whoami)"``, each its own process."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")

    def orra(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from orra_di.cli import main; main()", *args]
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done

    first = orra("ask", "What is 2+2?")
    assert first.stdout.startswith("2+2 = 4 (worked out by the calculate tool)")
    assert "offline model" in first.stderr
    second = orra("ask", "Do you remember me?")
    assert "remembers 1 earlier message" in second.stdout and "What is 2+2?" in second.stdout
    shown = orra("sessions", "show", f"cli:{getpass.getuser()}")
    lines = shown.stdout.splitlines()
    assert lines[:3] == [
        "user: What is 2+2?",
        '  → calculate {"expression": "2+2"}',
        "  ← 4",
    ]
    assert "user: Do you remember me?" in lines
    assert (tmp_path / "xdg" / "orra-di" / "sessions.sqlite3").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["xdg"]  # nothing in the cwd


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["sessions", "list"], "cli:"),
        (["agents"], "Atlas"),
        (["config"], "llm.kind"),
        (["usage", "cli", "--since", "30d"], "cli"),
        (["approvals", "list"], "no approval is pending"),
        (["projects", "list"], "no project"),
        (["plugins", "list"], "No plugin installed"),
        (["cron", "list"], "no cron jobs"),
    ],
)
def test_every_getting_started_command_works_from_a_fresh_start(
    fresh: Any, command: list[str], expected: str
) -> None:
    assert fresh("ask", "What is 2+2?").exit_code == 0
    result = fresh(*command)
    assert result.exit_code == 0, result.output
    assert expected in result.output


def test_the_time_question_goes_to_current_time(fresh: Any) -> None:
    asked = fresh("ask", "What time is it in Asia/Tokyo?")
    assert asked.exit_code == 0, asked.output
    shown = fresh("sessions", "show", f"cli:{getpass.getuser()}")
    assert '→ current_time {"timezone": "Asia/Tokyo"}' in shown.output
    assert "+09:00" in shown.output


def test_the_test_model_calls_every_tool_it_is_offered(
    fresh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    asked = fresh("ask", "hello")
    assert asked.exit_code == 0, asked.output
    assert asked.output.startswith("(test model, no LLM configured) You said: hello")
    results = json.loads(asked.output.split("Tool results: ", 1)[1])
    assert set(results) == {"calculate", "current_time"}  # the default agent's two tools


def test_config_says_what_chose_the_vendor_and_masks_the_key(
    fresh: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = fresh("config")
    assert "auto: no ANTHROPIC_API_KEY, OPENAI_API_KEY or ORRA_LLM__BASE_URL" in shown.output
    monkeypatch.setenv("OPENAI_API_KEY", "sk-round10-should-not-show")
    shown = fresh("config")
    assert shown.exit_code == 0, shown.output
    assert "sk-round10-should-not-show" not in shown.output
    assert '"openai"' in shown.output and "OPENAI_API_KEY" in shown.output
