"""Round 17 review: the docs/examples pages, run the way they say, offline.

The kanban and GitHub issues examples run as processes (``python examples/<name>``)
in a directory of this test, with no key and no ``ORRA_*`` variable, fed the page's
phrasings on stdin; the checks are the page's transcripts and its claims about where
data lives and what happens without a token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example(
    tmp_path: Path, name: str, *args: str, stdin: str = "/quit\n"
) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ORRA_")
        and key not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GITHUB_REPO")
    }
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_kanban_transcript_a_viewer_is_refused_and_both_kinds_of_data_resume(
    tmp_path: Path,
) -> None:
    first = _example(
        tmp_path,
        "kanban",
        stdin="move 2 to in progress\n/switch alice viewer\nadd Sneaky task\n/quit\n",
    )
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "now kanban:member:alice (new session)" in out
    assert '→ move_task {"to": "in-progress", "task_id": 2}' in out
    assert "Kanban: Moved task #2 'Set up CI pipeline' to 'in-progress'" in out
    assert "now kanban:viewer:alice (new session)" in out
    assert "✗ tool 'create_task' is not allowed in this session" in out
    data = tmp_path / "kanban-data"
    assert (data / "sessions.sqlite3").is_file() and (data / "boards.json").is_file()
    assert "Sneaky task" not in (data / "boards.json").read_text(encoding="utf-8")

    second = _example(tmp_path, "kanban", stdin="/board\n/quit\n")
    assert second.returncode == 0, second.stderr
    assert "now kanban:member:alice (resuming, " in second.stdout  # the session resumes
    board = second.stdout.split("[in-progress]", 1)[1].split("[done]", 1)[0]
    assert "#2: Set up CI pipeline" in board  # and so does the board


def test_kanban_member_adds_and_assigns_as_the_page_phrases_it(tmp_path: Path) -> None:
    ran = _example(
        tmp_path, "kanban", stdin="add Write tests\nassign Design to bob\ncolumns\n/quit\n"
    )
    assert ran.returncode == 0, ran.stderr
    assert '→ create_task {"title": "Write tests"}' in ran.stdout
    assert '→ assign_task {"assignee": "bob", "task_title": "Design"}' in ran.stdout
    assert "- backlog (4 tasks)" in ran.stdout


def test_github_issues_demo_triages_as_the_page_shows(tmp_path: Path) -> None:
    ran = _example(tmp_path, "github_issues", "--demo", stdin="triage the new issues\n/quit\n")
    assert ran.returncode == 0, ran.stderr
    out = ran.stdout
    assert '→ list_issues {"state": "open"}' in out
    assert "← Labelled issue #1: bug." in out
    assert "← Closed issue #4 (reason: not_planned)." in out
    assert "Triage: Triage done:" in out


@pytest.mark.parametrize("repo", [[], ["notarepo"]])
def test_github_issues_without_a_repository_says_how_to_give_one(
    tmp_path: Path, repo: list[str]
) -> None:
    ran = _example(tmp_path, "github_issues", *repo)
    assert ran.returncode == 2
    assert "give the repository as owner/repo (or set GITHUB_REPO), or use --demo" in ran.stderr


def test_github_issues_without_a_token_names_the_variable_and_the_demo(tmp_path: Path) -> None:
    ran = _example(tmp_path, "github_issues", "acme/app")
    assert ran.returncode != 0
    assert "set GITHUB_TOKEN" in ran.stderr and "--demo" in ran.stderr
    assert "Traceback" not in ran.stderr
