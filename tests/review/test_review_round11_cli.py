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


def test_sessions_list_show_delete_by_whole_segments_and_prune(orra: Any) -> None:
    for key, text in [
        ("acme:alice", "What is 6*7?"),
        ("acme:alice:sub", "hi"),
        ("acmeother", "hi"),
    ]:
        assert orra("ask", "-n", key, text).exit_code == 0

    listed = orra("sessions", "list", "acme")
    assert listed.stdout.split() == ["acme:alice", "acme:alice:sub"]  # never acmeother

    shown = orra("sessions", "show", "acme:alice")
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[:3] == ["user: What is 6*7?", '  → calculate {"expression": "6*7"}', "  ← 42"]

    missing = orra("sessions", "delete", "acme")  # no session at acme itself
    assert missing.exit_code == 1 and "no session acme" in missing.stderr
    tree = orra("sessions", "delete", "acme", "--tree")
    assert tree.exit_code == 0 and tree.stdout.strip() == "deleted 2 sessions"
    assert orra("sessions", "list").stdout.split() == ["acmeother"]

    bad = orra("sessions", "show", "bad::key")
    assert bad.exit_code == 1 and bad.stderr.startswith("error: namespace segment is empty")
    assert orra("sessions", "prune", "--idle", "0s").exit_code == 1
    trimmed = orra("sessions", "prune", "--keep-last", "1")
    assert trimmed.stdout.strip() == "trimmed 1 message from 1 session"


def test_agents_and_config_show_models_and_mask_the_key(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    agents = orra("agents")
    assert agents.exit_code == 0
    rows = {line.split("│")[1].strip(): line for line in agents.stdout.splitlines() if "│" in line}
    assert "gpt-4o-mini" in rows["Atlas"] and "yes" in rows["Code Bot"]
    assert "vendor offline" in agents.stdout

    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-abcdefgh12345678")
    shown = orra("config")
    assert shown.exit_code == 0
    assert "abcdefgh" not in shown.output
    (key_row,) = [line for line in shown.stdout.splitlines() if "llm.api_key" in line]
    assert "env ORRA_LLM__API_KEY" in key_row and "**" in key_row
