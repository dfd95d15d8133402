"""examples/github_issues: the triage agent as a user runs it, against the loopback GitHub.

The agent's GitHub calls go through orra-di's GitHub tools (gidgethub over httpx) to
:mod:`tests.tools.github_fake`, which speaks GitHub's JSON and checks the token; the
model is the example's scripted offline model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gidgethub")

from tests.tools.github_fake import FakeGitHub

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from github_issues.offline import QUESTION_COMMENT, parse_issues, plan  # noqa: E402

VENDOR_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "GITHUB_REPO")


def agent(*args: str, lines: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """``python examples/github_issues ARGS`` fed ``lines``; its stdout (exit 0 checked)."""
    done = run(*args, lines=lines, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run(
    *args: str, lines: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in VENDOR_KEYS
    }
    (cwd / "no-secrets").mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(EXAMPLES / "github_issues"), *args],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**base, "NO_COLOR": "1", "ORRA_SECRETS_DIR": str(cwd / "no-secrets"), **(env or {})},
        check=False,
    )


def seeded(github: FakeGitHub) -> None:
    github.add_issue("Login fails with an error 500", "Stack trace attached.")
    github.add_issue("Support SSO with Okta")
    github.add_issue("Why is the export so slow?")
    github.add_issue("Login fails with error 500", "Me too.", user="hubot")
    github.add_issue("Already triaged", labels=["docs"])
    github.add_issue("Old crash", state="closed")
    github.add_pull("Fix the login error")


def test_triage_with_a_token_against_the_github_url(tmp_path: Path) -> None:
    with FakeGitHub(token="ghp_loopback") as github:
        seeded(github)
        out = agent(
            "acme/app",
            "--github-url",
            github.url,
            lines=["triage the new issues", "triage the new issues", "/quit"],
            cwd=tmp_path,
            env={"GITHUB_TOKEN": "ghp_loopback"},
        )
        items = github.items
        labels = {n: [x["name"] for x in i["labels"]] for n, i in items.items()}
        comments = {n: [c["body"] for c in github.comments[n]] for n in items}
    assert out.startswith("github issues agent on acme/app: scripted offline model")
    assert labels == {
        1: ["bug"],
        2: ["enhancement"],
        3: ["question"],
        4: ["duplicate"],
        5: ["docs"],
        6: [],  # closed: not listed, not touched
        7: [],  # the pull request is not an issue to triage
    }
    assert comments[3] == [QUESTION_COMMENT]
    assert comments[4] == ["Closing as a duplicate of #1; please follow that issue."]
    assert [(n, i["state_reason"]) for n, i in items.items() if i["state"] == "closed"] == [
        (4, "not_planned"),
        (6, None),
    ]
    assert "Triage: Triage done:\n- Labelled issue #1: bug." in out
    assert "Triage: Nothing to triage: every open issue has a label." in out  # the 2nd time
    assert "ghp_loopback" not in out


def test_a_wrong_token_is_reported_not_shown(tmp_path: Path) -> None:
    with FakeGitHub(token="right") as github:
        seeded(github)
        out = agent(
            "acme/app",
            "--github-url",
            github.url,
            lines=["triage the new issues"],
            cwd=tmp_path,
            env={"GITHUB_TOKEN": "wrong-token"},
        )
        assert all(not i["labels"] for n, i in github.items.items() if n != 5)
    assert "  ✗ execution failed: GitHub API 401: Bad credentials" in out
    assert "Triage: I could not list the issues" in out
    assert "wrong-token" not in out


def test_the_demo_needs_no_account(tmp_path: Path) -> None:
    out = agent("--demo", lines=["triage the new issues", "show #4", "/quit"], cwd=tmp_path)
    assert out.startswith("demo: a loopback GitHub at http://127.0.0.1:")
    for expected in [
        "  ← Labelled issue #1: bug.",
        "  ← Labelled issue #2: enhancement.",
        "  ← Labelled issue #3: question.",
        '  → close_issue {"number": 4, "comment": "Closing as a duplicate of #1; please '
        'follow that issue.", "reason": "not_planned"}',
        "Triage: #4 [closed] Crash on start under Python 3.13",
    ]:
        assert expected in out, expected


def test_it_says_what_is_missing(tmp_path: Path) -> None:
    no_repo = run(lines=[], cwd=tmp_path)
    assert no_repo.returncode == 2
    assert "give the repository as owner/repo (or set GITHUB_REPO)" in no_repo.stderr
    no_token = run("acme/app", lines=[], cwd=tmp_path)
    assert no_token.returncode == 1
    assert "set GITHUB_TOKEN" in no_token.stderr


def test_the_scripted_triage_plan() -> None:
    listing = (
        "#1 [open] Crash when saving\n  by @a, 0 comments\n"
        "#2 [open] Crashes when saving!\n  by @b, 0 comments\n"
        "#3 [open] Nice work\n  by @c, 0 comments\n"
        "#4 [open] How to save\n  labels: question\n  by @d, 0 comments"
    )
    assert parse_issues(listing) == [
        (1, "Crash when saving", False),
        (2, "Crashes when saving!", False),
        (3, "Nice work", False),
        (4, "How to save", True),
    ]
    calls = [(c.name, c.arguments.get("number"), c.arguments.get("labels")) for c in plan(listing)]
    assert calls == [
        ("add_labels", 1, ["bug"]),
        ("add_labels", 2, ["duplicate"]),
        ("close_issue", 2, None),
    ]  # "Nice work" matches no kind: left for a person
