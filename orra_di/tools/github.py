"""The GitHub tools: issues (orra's six) and what bug 31 found missing, on ``gidgethub``.

orra's ``list_issues`` and ``search_issues`` also returned pull requests,
``get_issue`` showed the *first* five comments as "recent", and ``close_issue``
closed the issue even when its closing comment failed (spec §5.6/31). Here
pull requests are left out of the issue tools and have their own
(``list_pull_requests``, ``get_pull_request``), ``get_issue`` shows the latest
comments, ``list_comments`` reads a thread, and a failed closing comment stops
the close. One repository, from ``tools.github``; the token is a secret and
never appears in errors. Needs ``pip install "orra-di[github]"``.
"""

# No ``from __future__ import annotations``: see orra_di/tools/exec.py.

import math
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import Field

from orra_di.errors import ConfigurationError, ToolExecutionError, ToolInputError, install_hint
from orra_di.tool import FunctionTool, tool
from orra_di.tools._text import clean
from orra_di.tools.settings import GitHubSettings

__all__ = ["GitHub", "github_tools"]

_USER_AGENT = "orra-di"
_SCOPE_QUALIFIER = re.compile(r"(?:^|[\s(-])(?:repo|org|user):", re.IGNORECASE)
"""Search qualifiers that pick repositories; the tools work on the configured one only."""
Number = Annotated[int, Field(description="The issue or pull request number", ge=1)]


def _sdk() -> tuple[Any, Any, Any]:
    try:
        import gidgethub
        import gidgethub.httpx
        import httpx
    except ImportError as exc:
        raise ConfigurationError(
            f"the GitHub tools need gidgethub: {install_hint('github')}"
        ) from exc
    return gidgethub, gidgethub.httpx, httpx


class GitHub:
    """Requests to one repository, each through a short-lived ``gidgethub`` client."""

    def __init__(self, settings: GitHubSettings) -> None:
        self._gidgethub, self._adapter, self._httpx = _sdk()
        self.settings = settings
        self.repo_path = f"/repos/{settings.owner}/{settings.repo}"
        self._tls: Any = None  # built once: a TLS context costs tens of milliseconds

    def _verify(self) -> Any:
        if self._tls is None:
            import ssl

            try:
                import certifi

                self._tls = ssl.create_default_context(cafile=certifi.where())
            except ImportError:  # pragma: no cover - httpx depends on certifi
                self._tls = ssl.create_default_context()
        return self._tls

    def __repr__(self) -> str:
        return f"GitHub({self.settings.owner}/{self.settings.repo})"

    async def call(self, method: str, url: str, data: Any = None) -> Any:
        """``method`` (getitem, post, patch) on ``url``; failures as ToolExecutionError."""
        token = self.settings.token.get_secret_value() if self.settings.token else None
        try:
            async with self._httpx.AsyncClient(
                timeout=self.settings.timeout, verify=self._verify()
            ) as client:
                api = self._adapter.GitHubAPI(
                    client, _USER_AGENT, oauth_token=token, base_url=self.settings.base_url
                )
                operation: Callable[..., Awaitable[Any]] = getattr(api, method)
                if method == "getitem":
                    return await operation(url)
                return await operation(url, data=data)
        except self._gidgethub.HTTPException as exc:
            status = int(exc.status_code)
            detail = str(exc) or exc.status_code.phrase
            raise ToolExecutionError(f"GitHub API {status}: {detail}") from None
        except self._gidgethub.GitHubException as exc:
            raise ToolExecutionError(f"GitHub API error: {exc}") from None
        except self._httpx.HTTPError as exc:
            raise ToolExecutionError(
                f"GitHub request failed: {type(exc).__name__}: {exc}"
            ) from None


def _names(items: Any, key: str) -> list[str]:
    return [str(item.get(key, "")) for item in items or []]


def _issue_line(issue: dict[str, Any]) -> str:
    text = f"#{issue['number']} [{issue['state']}] {issue['title']}"
    labels = _names(issue.get("labels"), "name")
    assignees = _names(issue.get("assignees"), "login")
    if labels:
        text += "\n  labels: " + ", ".join(labels)
    if assignees:
        text += "\n  assigned: " + ", ".join(assignees)
    user = (issue.get("user") or {}).get("login", "?")
    return text + f"\n  by @{user}, {issue.get('comments', 0)} comments"


def _comment(comment: dict[str, Any]) -> str:
    user = (comment.get("user") or {}).get("login", "?")
    return f"@{user} ({comment.get('created_at', '')})\n{comment.get('body') or ''}"


def github_tools(settings: GitHubSettings) -> list[FunctionTool]:
    """The nine GitHub tools for ``settings``' repository."""
    hub = GitHub(settings)
    repo = hub.repo_path

    async def latest_comments(number: int, total: int, count: int) -> list[dict[str, Any]]:
        """The last ``count`` of an issue's ``total`` comments (the API lists oldest first)."""
        if total <= 0 or count <= 0:
            return []
        last_page = math.ceil(total / count)
        pages = [p for p in (last_page - 1, last_page) if p >= 1]
        comments: list[dict[str, Any]] = []
        for page in pages:
            url = f"{repo}/issues/{number}/comments?per_page={count}&page={page}"
            comments += await hub.call("getitem", url)
        return comments[-count:]

    @tool(
        name="list_issues",
        description="List issues in the repository (pull requests are not included). Returns "
        "issue number, title, state, labels, and assignees.",
    )
    async def list_issues(
        state: Literal["open", "closed", "all"] = "open",
        labels: Annotated[str | None, Field(description="Comma-separated label names")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> str:
        url = f"{repo}/issues?state={state}&per_page={limit}"
        if labels:
            url += f"&labels={labels}"
        issues = [i for i in await hub.call("getitem", url) if "pull_request" not in i]
        if not issues:
            return f"No {state} issues found."
        return clean("\n\n".join(_issue_line(i) for i in issues))

    @tool(
        name="get_issue",
        description="Get details of a specific issue by number, including its body and its "
        "latest comments.",
    )
    async def get_issue(number: Number) -> str:
        issue = await hub.call("getitem", f"{repo}/issues/{number}")
        labels = ", ".join(_names(issue.get("labels"), "name")) or "none"
        assignees = ", ".join(_names(issue.get("assignees"), "login")) or "none"
        user = (issue.get("user") or {}).get("login", "?")
        text = (
            f"#{issue['number']} [{issue['state']}] {issue['title']}\n"
            f"by @{user} on {issue.get('created_at', '')}\nlabels: {labels}\n"
            f"assigned: {assignees}\n\n{issue.get('body') or '(no description)'}"
        )
        total = int(issue.get("comments") or 0)
        comments = await latest_comments(number, total, 5)
        if comments:
            shown = f"latest {len(comments)} of {total}" if total > len(comments) else "all"
            text += f"\n\n--- Comments ({shown}) ---"
            text += "".join("\n\n" + _comment(c) for c in comments)
        return clean(text)

    @tool(
        name="list_comments",
        description="Read the comments of an issue or pull request, latest last.",
    )
    async def list_comments(
        number: Number,
        limit: Annotated[int, Field(ge=1, le=100, description="How many of the latest")] = 20,
    ) -> str:
        issue = await hub.call("getitem", f"{repo}/issues/{number}")
        comments = await latest_comments(number, int(issue.get("comments") or 0), limit)
        if not comments:
            return f"No comments on #{number}."
        return clean("\n\n".join(_comment(c) for c in comments))

    @tool(name="create_issue", description="Create a new issue in the repository.")
    async def create_issue(
        title: str,
        body: str | None = None,
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
    ) -> str:
        data: dict[str, Any] = {"title": title}
        if body is not None:
            data["body"] = body
        if labels:
            data["labels"] = labels
        if assignees:
            data["assignees"] = assignees
        issue = await hub.call("post", f"{repo}/issues", data)
        return f"Created issue #{issue['number']}: {issue['title']}"

    @tool(name="add_comment", description="Add a comment to an existing issue.")
    async def add_comment(number: Number, body: str) -> str:
        await hub.call("post", f"{repo}/issues/{number}/comments", {"body": body})
        return f"Added comment to issue #{number}."

    @tool(name="close_issue", description="Close an issue. Optionally add a closing comment.")
    async def close_issue(
        number: Number,
        comment: str | None = None,
        reason: Literal["completed", "not_planned"] = "completed",
    ) -> str:
        if comment:  # if it fails, the issue stays open and the model hears why
            await hub.call("post", f"{repo}/issues/{number}/comments", {"body": comment})
        await hub.call(
            "patch", f"{repo}/issues/{number}", {"state": "closed", "state_reason": reason}
        )
        return f"Closed issue #{number} (reason: {reason})."

    @tool(
        name="search_issues",
        description="Search issues by keyword. Searches in title and body.",
    )
    async def search_issues(query: str, state: Literal["open", "closed"] | None = None) -> str:
        from urllib.parse import quote

        if _SCOPE_QUALIFIER.search(query):  # GitHub ORs them: other repositories would answer
            raise ToolInputError(
                f"search_issues searches {settings.owner}/{settings.repo} only: leave "
                "repo:, org: and user: out of the query"
            )
        q = f"{query} repo:{settings.owner}/{settings.repo} is:issue"
        if state:
            q += f" is:{state}"
        found = await hub.call("getitem", f"/search/issues?q={quote(q)}&per_page=10")
        items = [i for i in found.get("items", []) if "pull_request" not in i]
        if not items:
            return f"No issues found for '{query}'."
        lines = [f"{found.get('total_count', len(items))} results:"]
        for item in items:
            labels = _names(item.get("labels"), "name")
            suffix = f" [{', '.join(labels)}]" if labels else ""
            lines.append(f"  #{item['number']} [{item['state']}] {item['title']}{suffix}")
        return clean("\n".join(lines))

    @tool(name="list_pull_requests", description="List pull requests in the repository.")
    async def list_pull_requests(
        state: Literal["open", "closed", "all"] = "open",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> str:
        pulls = await hub.call("getitem", f"{repo}/pulls?state={state}&per_page={limit}")
        if not pulls:
            return f"No {state} pull requests found."
        lines = []
        for pr in pulls:
            user = (pr.get("user") or {}).get("login", "?")
            draft = " (draft)" if pr.get("draft") else ""
            lines.append(
                f"#{pr['number']} [{pr['state']}]{draft} {pr['title']}\n"
                f"  {pr['head']['ref']} → {pr['base']['ref']}, by @{user}"
            )
        return clean("\n\n".join(lines))

    @tool(
        name="get_pull_request",
        description="Get a pull request by number: its description, branches, state, size "
        "and latest comments.",
    )
    async def get_pull_request(number: Number) -> str:
        pr = await hub.call("getitem", f"{repo}/pulls/{number}")
        user = (pr.get("user") or {}).get("login", "?")
        state = "merged" if pr.get("merged") else pr["state"]
        text = (
            f"#{pr['number']} [{state}] {pr['title']}\nby @{user} on {pr.get('created_at', '')}\n"
            f"{pr['head']['ref']} → {pr['base']['ref']}\n"
            f"{pr.get('commits', 0)} commits, {pr.get('changed_files', 0)} files changed, "
            f"+{pr.get('additions', 0)} -{pr.get('deletions', 0)}\n\n"
            f"{pr.get('body') or '(no description)'}"
        )
        comments = await latest_comments(number, int(pr.get("comments") or 0), 5)
        if comments:
            text += "\n\n--- Latest comments ---" + "".join("\n\n" + _comment(c) for c in comments)
        return clean(text)

    return [
        list_issues,
        get_issue,
        list_comments,
        create_issue,
        add_comment,
        close_issue,
        search_issues,
        list_pull_requests,
        get_pull_request,
    ]
