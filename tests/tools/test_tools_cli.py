"""The built-in tools work from the command line with settings only (an orra.toml)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from tests.tools.github_fake import FakeGitHub


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # the schema-driven TestModel calls every tool it is offered (the offline default
    # model calls only calculate and current_time, and only when the message asks)
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    monkeypatch.chdir(tmp_path)


def ask(tmp_path: Path, toml: str) -> dict[str, str]:
    (tmp_path / "orra.toml").write_text(toml)
    result = CliRunner().invoke(app, ["ask", "--json", "go"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    answer = json.loads(result.stdout)["answer"]
    return json.loads(answer.split("Tool results: ", 1)[1])  # type: ignore[no-any-return]


def test_exec_from_an_orra_toml(tmp_path: Path) -> None:
    results = ask(
        tmp_path,
        """
[tools.calculate]
enabled = false
[tools.current_time]
enabled = false
[tools.exec]
enabled = true
allow = ["pwd"]
""",
    )
    # the test model calls each tool with the schema's example: "pwd --help"
    assert list(results) == ["exec"]
    assert results["exec"].startswith("Usage: ") and "pwd" in results["exec"]


def test_github_from_an_orra_toml(tmp_path: Path) -> None:
    with FakeGitHub(token="t0ken") as github:
        github.add_issue("From the CLI")
        results = ask(
            tmp_path,
            """
tools = ["calculate"]
""",
        )
        assert list(results) == ["calculate"]
        results = ask(
            tmp_path,
            f"""
[runtime]
parallel_tool_execution = false
[tools.calculate]
enabled = false
[tools.current_time]
enabled = false
[tools.github]
enabled = true
token = "t0ken"
owner = "acme"
repo = "app"
base_url = "{github.url}"
""",
        )
    # the nine tools run one after the other, in order, with example arguments
    assert len(results) == 9
    assert results["list_issues"] == "#1 [open] From the CLI\n  by @octocat, 0 comments"
    assert results["get_issue"].startswith("#1 [open] From the CLI\nby @octocat on ")
    assert results["close_issue"] == "Closed issue #1 (reason: completed)."
    assert github.items[1]["state"] == "closed"
