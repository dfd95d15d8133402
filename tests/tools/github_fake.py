"""A small GitHub REST API on loopback, for tests and examples of the GitHub tools.

It keeps issues, pull requests (which GitHub also lists as issues) and comments
in memory, checks the token, and answers the endpoints the tools use with
GitHub's JSON shapes (and adding labels, for examples/github_issues)::

    with FakeGitHub(token="t0ken") as github:
        github.add_issue("Crash on start", labels=["bug"])
        settings = GitHubSettings(enabled=True, token="t0ken", owner=github.owner,
                                  repo=github.repo, base_url=github.url)

Standard library only (``http.server`` in a thread), so an example can use it
without the test dependencies. ``fail_comment_posts`` makes posting a comment
answer 500, and ``requests`` records (method, path) of every request.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeGitHub"]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeGitHub:
    def __init__(self, *, token: str = "t0ken", owner: str = "acme", repo: str = "app") -> None:
        self.token, self.owner, self.repo = token, owner, repo
        self.items: dict[int, dict[str, Any]] = {}  # issues and pull requests by number
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_comment_posts = False
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- data --------------------------------------------------------------------

    def _new(self, title: str, body: str | None, user: str, **extra: Any) -> dict[str, Any]:
        number = len(self.items) + 1
        item = {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "state_reason": None,
            "user": {"login": user},
            "labels": [],
            "assignees": [],
            "comments": 0,
            "created_at": _now(),
            **extra,
        }
        self.items[number] = item
        self.comments[number] = []
        return item

    def add_issue(
        self,
        title: str,
        body: str | None = None,
        *,
        labels: list[str] = (),  # type: ignore[assignment]
        assignees: list[str] = (),  # type: ignore[assignment]
        user: str = "octocat",
        state: str = "open",
    ) -> dict[str, Any]:
        with self._lock:
            issue = self._new(title, body, user)
            issue["labels"] = [{"name": n} for n in labels]
            issue["assignees"] = [{"login": n} for n in assignees]
            issue["state"] = state
            return issue

    def add_pull(
        self, title: str, body: str | None = None, *, head: str = "feature", base: str = "main"
    ) -> dict[str, Any]:
        with self._lock:
            return self._new(
                title,
                body,
                "hubot",
                pull_request={"url": f"{self.url}/repos/{self.owner}/{self.repo}/pulls"},
                head={"ref": head},
                base={"ref": base},
                draft=False,
                merged=False,
                commits=2,
                changed_files=3,
                additions=40,
                deletions=7,
            )

    def add_comment(self, number: int, body: str, user: str = "octocat") -> dict[str, Any]:
        with self._lock:
            comment = {"id": len(self.comments[number]) + 1, "body": body, "user": {"login": user}}
            comment["created_at"] = _now()
            self.comments[number].append(comment)
            self.items[number]["comments"] += 1
            return comment

    # -- HTTP --------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        repo = f"/repos/{self.owner}/{self.repo}"
        parts = path.removeprefix(repo).strip("/").split("/") if path.startswith(repo) else []
        per_page = int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        if path == "/search/issues" and method == "GET":
            words = [w for w in query.get("q", "").split() if ":" not in w]
            wanted = [w for w in query.get("q", "").split() if w.startswith("is:")]
            hits = [
                i
                for i in self.items.values()
                if all(w.lower() in f"{i['title']} {i['body'] or ''}".lower() for w in words)
                and ("is:issue" not in wanted or "pull_request" not in i)
                and all(f"is:{i['state']}" == w for w in wanted if w in ("is:open", "is:closed"))
            ]
            return 200, {"total_count": len(hits), "items": hits[:per_page]}
        if not parts or parts == [""]:
            return 404, {"message": "Not Found"}
        kind = parts[0]
        number = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if kind == "issues" and number is None:
            if method == "POST":
                issue = self._new(body["title"], body.get("body"), "orra-bot")
                issue["labels"] = [{"name": n} for n in body.get("labels", [])]
                issue["assignees"] = [{"login": n} for n in body.get("assignees", [])]
                return 201, issue
            state = query.get("state", "open")
            labels = [n for n in query.get("labels", "").split(",") if n]
            found = [
                i
                for i in self.items.values()
                if state in ("all", i["state"])
                and all(n in [x["name"] for x in i["labels"]] for n in labels)
            ]
            return 200, found[:per_page]
        if kind == "pulls" and number is None:
            state = query.get("state", "open")
            pulls = [
                self._pull_fields(i)
                for i in self.items.values()
                if "pull_request" in i and state in ("all", i["state"])
            ]
            return 200, pulls[:per_page]
        if number is None or number not in self.items:
            return 404, {"message": "Not Found"}
        item = self.items[number]
        if kind == "issues" and len(parts) == 2:
            if method == "PATCH":
                item.update({k: v for k, v in body.items() if k in ("state", "state_reason")})
            return 200, item
        if kind == "issues" and parts[2:] == ["labels"] and method == "POST":
            names = [x["name"] for x in item["labels"]]
            names += [n for n in body.get("labels", []) if n not in names]
            item["labels"] = [{"name": n} for n in names]
            return 200, item["labels"]
        if kind == "issues" and parts[2:] == ["comments"]:
            if method == "POST":
                if self.fail_comment_posts:
                    return 500, {"message": "Server Error"}
                comment = {"id": len(self.comments[number]) + 1, "body": body["body"]}
                comment.update({"user": {"login": "orra-bot"}, "created_at": _now()})
                self.comments[number].append(comment)
                item["comments"] += 1
                return 201, comment
            start = (page - 1) * per_page
            return 200, self.comments[number][start : start + per_page]
        if kind == "pulls" and "pull_request" in item:
            return 200, self._pull_fields(item)
        return 404, {"message": "Not Found"}

    @staticmethod
    def _pull_fields(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k != "pull_request"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                split = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(split.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, unquote(split.path)))
                auth = self.headers.get("Authorization", "")
                if auth not in (f"token {fake.token}", f"Bearer {fake.token}"):
                    status, answer = 401, {"message": "Bad credentials"}
                elif split.path.startswith("/repos/") and not split.path.startswith(
                    f"/repos/{fake.owner}/{fake.repo}/"
                ):
                    status, answer = 404, {"message": "Not Found"}
                else:
                    with fake._lock:
                        body = json.loads(raw) if raw else None
                        status, answer = fake._answer(self.command, split.path, query, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = _serve

        return Handler
