"""The GitHub issues agent: the container, its settings, and a small REPL.

One agent, ``Triage``, works on one repository through orra-di's GitHub tools plus
``add_labels`` (``labels.py``): list the new issues, label them, answer questions
with a comment, close duplicates. The session is ``github:<owner>:<repo>``. With no
model key the scripted model in ``offline.py`` answers.

    GITHUB_TOKEN=... python examples/github_issues owner/repo
    python examples/github_issues --demo          # a loopback GitHub, no account needed
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.to_thread
from dependency_injector import providers

from orra_di import Namespace, OrraError, RunResult
from orra_di.containers import Container, lifespan
from orra_di.settings import OrraSettings, load_settings
from orra_di.testing import ScriptedProvider

from .labels import labels_tool
from .offline import triage_model

__all__ = ["SYSTEM_PROMPT", "make_triage", "session_namespace"]

SYSTEM_PROMPT = (
    "You triage the GitHub issues of {owner}/{repo}. When asked to triage, list the open "
    "issues; give each issue without a label one of bug, enhancement or question "
    "(add_labels); answer a question with a short, friendly comment; close an issue that "
    "repeats an older one as not_planned with a comment naming the original (and the "
    "duplicate label). Never close anything else. Finish with a short report of what you did."
)
OFF = ("calculate", "current_time")
"""Built-in tools that are on by default, and of no use to triage."""
TOKEN_VARIABLES = ("GITHUB_TOKEN", "ORRA_TOOLS__GITHUB__TOKEN")


def session_namespace(owner: str, repo: str) -> Namespace:
    """``github:<owner>:<repo>``: one conversation per repository."""
    return Namespace("github", owner, repo)


def make_triage(
    owner: str,
    repo: str,
    token: str,
    *,
    base_url: str | None = None,
    data: Path | None = None,
    offline: bool | None = None,
) -> Container:
    """The agent's container for ``owner/repo``; sessions in ``data`` (memory without).

    The model comes from the environment like any orra-di entry point
    (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``ORRA_LLM__*``); with none configured (or
    ``offline=True``) the scripted ``triage_model`` answers. ``base_url``: another
    GitHub API root (GitHub Enterprise, or a loopback fake).
    """
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    github = {"enabled": True, "token": token, "owner": owner, "repo": repo}
    if base_url:
        github["base_url"] = base_url.rstrip("/")
    default_store = f"sqlite:///{data / 'sessions.sqlite3'}" if data else "memory://"
    settings: OrraSettings = load_settings(
        agents=[{"name": "Triage", "system_prompt": SYSTEM_PROMPT.format(owner=owner, repo=repo)}],
        runtime={"max_turns": 5, "max_tokens": 2048, "enable_delegation": False},
        tools={
            "calculate": {"enabled": False},
            "current_time": {"enabled": False},
            "github": github,
        },
        store={"url": os.environ.get("ORRA_STORE__URL") or default_store},
    )
    container = Container()
    container.settings.override(providers.Object(settings))
    extra = [labels_tool(settings.tools.github)]
    container.tool_factory.override(providers.Object(lambda profile: extra))
    if offline or (offline is None and settings.llm.resolved_kind == "offline"):
        container.llm.override(providers.Object(ScriptedProvider(triage_model)))
    return container


def describe(result: RunResult) -> list[str]:
    """The tool calls of a run and the first line of each result."""
    lines: list[str] = []
    for turn in result.turns:
        for call, outcome in zip(turn.response.message.tool_calls, turn.tool_results, strict=True):
            lines.append(f"  → {call.name} {json.dumps(call.arguments)}")
            first, *rest = outcome.content.splitlines() or [""]
            more = f" (+{len(rest)} lines)" if rest else ""
            lines.append(f"  {'✗' if outcome.is_error else '←'} {first}{more}")
    return lines


async def repl(container: Container, owner: str, repo: str) -> None:
    async with lifespan(container):
        runtime = container.runtimes()["Triage"]
        ns = session_namespace(owner, repo)
        print('Try "triage the new issues". /quit ends.')
        while True:
            try:
                text = (await anyio.to_thread.run_sync(input, "you> ")).strip()
            except EOFError:
                print()
                return
            if text in ("/quit", "/exit"):
                return
            if text:
                result = await runtime.run(ns, text)
                print("\n".join(describe(result)))
                print(f"Triage: {result.final_message.content}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="github_issues", description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default=os.environ.get("GITHUB_REPO"))
    parser.add_argument("--github-url", help="API root (GitHub Enterprise, a loopback fake)")
    parser.add_argument("--demo", action="store_true", help="a loopback GitHub with issues")
    parser.add_argument("--data", type=Path, default=None, help="keep sessions in DIR")
    parser.add_argument("--offline", action="store_true", help="the scripted model, key or not")
    args = parser.parse_args(argv)
    token = next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)
    if args.demo:
        from .demo import DEMO_TOKEN, demo_github

        github = demo_github()
        with github:
            print(f"demo: a loopback GitHub at {github.url} holding acme/app's issues")
            _run("acme", "app", DEMO_TOKEN, github.url, args)
        return
    if not args.repo or args.repo.count("/") != 1:
        parser.error("give the repository as owner/repo (or set GITHUB_REPO), or use --demo")
    if token is None:
        raise SystemExit(
            "error: set GITHUB_TOKEN to a token with access to the repository "
            "(examples/github_issues/README.md says which), or try --demo"
        )
    owner, repo = args.repo.split("/")
    _run(owner, repo, token, args.github_url, args)


def _run(owner: str, repo: str, token: str, url: str | None, args: argparse.Namespace) -> None:
    try:
        container = make_triage(
            owner, repo, token, base_url=url, data=args.data, offline=args.offline or None
        )
        kind: str = container.settings().llm.resolved_kind
        if args.offline or kind == "offline":
            kind = "scripted offline model (set ANTHROPIC_API_KEY or OPENAI_API_KEY for a real one)"
        print(f"github issues agent on {owner}/{repo}: {kind}")
        anyio.run(repl, container, owner, repo)
    except OrraError as exc:  # a bad store URL, a missing extra, a provider outage
        raise SystemExit(f"error: {exc}") from None
