"""Round 11 review: ``orra-di chat`` / ``ask`` / ``sessions`` / ``agents`` / ``config`` as
docs/getting-started.md and ``--help`` describe them, run as a new user would: no
``ORRA_*`` variable, no key, a fresh data directory (the offline model answers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app

TWO_AGENTS = json.dumps([{"name": "Code Bot"}, {"name": "Atlas", "model": "gpt-4o-mini"}])


@pytest.fixture
def orra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name.endswith("_API_KEY") or name.endswith("_AUTH_TOKEN"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    return run


def test_a_mention_of_a_default_agent_whose_name_has_a_space_is_no_unknown_agent(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``@Name`` picks an agent; the "no agent is named" note is for names no agent has.
    ``@code bot`` addresses the default agent "Code Bot" correctly: no note."""
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    done = orra("ask", "--json", "@code bot What is 3*3?")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["agent"] == "Code Bot"
    assert answer["answer"].startswith("3*3 = 9")
    assert "no agent is named" not in done.stderr

    chat = orra("chat", input="@Code Bot What is 2*5?\n/quit\n")
    assert chat.exit_code == 0, chat.output
    assert "no agent is named" not in chat.stderr
    assert "2*5 = 10" in chat.stdout

    # A name no agent has still gets the note, and the default agent answers.
    unknown = orra("ask", "@Nobody hi")
    assert unknown.exit_code == 0, unknown.output
    assert "note: no agent is named Nobody (agents: Code Bot, Atlas); Code Bot answers" in (
        unknown.stderr
    )
