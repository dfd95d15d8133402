"""The GitHub tools against a loopback fake of the REST API (tests/tools/github_fake.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from orra_di import ToolContext, ToolExecutionError, ToolInputError
from orra_di.settings import load_settings
from orra_di.tools.build import settings_tools
from orra_di.tools.github import github_tools
from orra_di.tools.settings import GitHubSettings
from tests.tools.github_fake import FakeGitHub

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")
TOKEN = "ghp_not_a_real_token_123"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as fake:
        yield fake


def tools(github: FakeGitHub, token: str = TOKEN) -> dict[str, Any]:
    settings = GitHubSettings(
        enabled=True, token=token, owner=github.owner, repo=github.repo, base_url=github.url
    )
    return {t.definition.name: t for t in github_tools(settings)}


async def use(github: FakeGitHub, name: str, **arguments: Any) -> str:
    return await tools(github)[name].execute(arguments, CTX)  # type: ignore[no-any-return]


def test_the_tools_and_their_schemas(github: FakeGitHub) -> None:
    names = list(tools(github))
    orra_six = ["list_issues", "get_issue", "create_issue", "add_comment", "close_issue"]
    assert {*orra_six, "search_issues"} <= set(names)
    assert {"list_comments", "list_pull_requests", "get_pull_request"} <= set(names)
    for tool in tools(github).values():
        assert tool.definition.input_schema["type"] == "object"
        assert tool.definition.description


def test_settings_need_token_owner_and_repo() -> None:
    with pytest.raises(ValueError, match=r"token, \.owner and \.repo"):
        GitHubSettings(enabled=True, owner="a")
    settings = GitHubSettings(enabled=True, token=TOKEN, owner="a", repo="b")
    assert TOKEN not in repr(settings)


async def test_list_issues_leaves_pull_requests_out(github: FakeGitHub) -> None:
    github.add_issue("Crash on start", labels=["bug"], assignees=["ana"])
    github.add_pull("Fix crash")
    github.add_issue("Old", state="closed")
    text = await use(github, "list_issues")
    assert (
        text
        == "#1 [open] Crash on start\n  labels: bug\n  assigned: ana\n  by @octocat, 0 comments"
    )
    assert await use(github, "list_issues", state="closed") == (
        "#3 [closed] Old\n  by @octocat, 0 comments"
    )
    assert await use(github, "list_issues", labels="docs") == "No open issues found."


async def test_get_issue_shows_the_latest_comments(github: FakeGitHub) -> None:
    github.add_issue("Slow build", "It takes ages.", labels=["ci"])
    for n in range(1, 8):
        github.add_comment(1, f"comment {n}")
    text = await use(github, "get_issue", number=1)
    assert text.startswith("#1 [open] Slow build\nby @octocat on ")
    assert "labels: ci\nassigned: none\n\nIt takes ages." in text
    assert "--- Comments (latest 5 of 7) ---" in text
    assert "comment 3" in text and "comment 7" in text
    assert "comment 2" not in text  # orra showed comments 1-5 as "recent" (bug 31)


async def test_list_comments(github: FakeGitHub) -> None:
    github.add_issue("Q")
    assert await use(github, "list_comments", number=1) == "No comments on #1."
    github.add_comment(1, "first", user="ana")
    github.add_comment(1, "second", user="bo")
    text = await use(github, "list_comments", number=1, limit=1)
    assert text.startswith("@bo (") and text.endswith(")\nsecond")


async def test_create_comment_and_close(github: FakeGitHub) -> None:
    created = await use(github, "create_issue", title="New bug", body="Steps", labels=["bug"])
    assert created == "Created issue #1: New bug"
    assert github.items[1]["labels"] == [{"name": "bug"}]
    assert await use(github, "add_comment", number=1, body="Looking") == (
        "Added comment to issue #1."
    )
    closed = await use(github, "close_issue", number=1, comment="Fixed", reason="completed")
    assert closed == "Closed issue #1 (reason: completed)."
    assert github.items[1]["state"] == "closed"
    assert [c["body"] for c in github.comments[1]] == ["Looking", "Fixed"]


async def test_a_failed_closing_comment_leaves_the_issue_open(github: FakeGitHub) -> None:
    github.add_issue("Keep me")
    github.fail_comment_posts = True
    with pytest.raises(ToolExecutionError, match="GitHub API 500"):
        await use(github, "close_issue", number=1, comment="bye")
    assert github.items[1]["state"] == "open"  # orra closed it anyway (bug 31)


async def test_search_issues(github: FakeGitHub) -> None:
    github.add_issue("Login fails with SSO", labels=["auth"])
    github.add_pull("Login fix")
    github.add_issue("Dark mode")
    text = await use(github, "search_issues", query="login")
    assert text == "1 results:\n  #1 [open] Login fails with SSO [auth]"
    assert await use(github, "search_issues", query="nothing") == "No issues found for 'nothing'."


async def test_pull_requests(github: FakeGitHub) -> None:
    github.add_pull("Add caching", "Speeds up builds.", head="cache", base="main")
    github.add_comment(1, "LGTM", user="ana")
    listed = await use(github, "list_pull_requests")
    assert listed == "#1 [open] Add caching\n  cache → main, by @hubot"
    text = await use(github, "get_pull_request", number=1)
    assert "cache → main\n2 commits, 3 files changed, +40 -7\n\nSpeeds up builds." in text
    assert text.endswith("@ana (" + github.comments[1][0]["created_at"] + ")\nLGTM")


async def test_errors_name_the_status_and_never_the_token(github: FakeGitHub) -> None:
    with pytest.raises(ToolExecutionError, match="GitHub API 404") as missing:
        await use(github, "get_issue", number=99)
    with pytest.raises(ToolExecutionError, match="GitHub API 401") as refused:
        await tools(github, token="wrong-token")["list_issues"].execute({}, CTX)
    for caught in (missing, refused):
        assert TOKEN not in str(caught.value) and "wrong-token" not in str(caught.value)


async def test_bad_arguments_are_input_errors(github: FakeGitHub) -> None:
    with pytest.raises(ToolInputError, match="number"):
        await use(github, "get_issue")
    with pytest.raises(ToolInputError, match="title"):
        await use(github, "create_issue", body="no title")
    assert github.requests == []


def test_enabled_from_settings(github: FakeGitHub) -> None:
    settings = load_settings(
        tools={
            "calculate": {"enabled": False},
            "current_time": {"enabled": False},
            "github": {
                "enabled": True,
                "token": TOKEN,
                "owner": "acme",
                "repo": "app",
                "base_url": github.url,
            },
        }
    )
    names = [t.definition.name for t in settings_tools(settings.tools)]
    assert names[:2] == ["list_issues", "get_issue"] and len(names) == 9
