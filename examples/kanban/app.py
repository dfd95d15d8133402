"""The kanban assistant: the container, its settings, and a small REPL.

Sessions are keyed ``kanban:<role>:<user>``; each user has a board of their own,
and the ``kanban:viewer`` subtree may only read (a policy from the settings, enforced
when a tool runs). With no key the scripted model in ``offline.py`` answers.

    python examples/kanban [--user alice] [--role member] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
from dependency_injector import providers

from orra_di import Namespace, OrraError, RunResult, SessionStore
from orra_di.containers import Container, lifespan
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider

from .board import Boards, kanban_tools
from .offline import board_model

__all__ = ["SYSTEM_PROMPT", "Kanban", "make_kanban", "session_namespace"]

SYSTEM_PROMPT = (
    "You manage the user's kanban board through your tools. The columns are backlog, "
    "in-progress and done. Look at the board before changing it when unsure, act with "
    "the tools rather than describing what you would do, and answer in a sentence or two."
)
READ_ONLY = ["list_columns", "list_tasks"]


def session_namespace(user: str, role: str = "member") -> Namespace:
    """``kanban:<role>:<user>``: a session per user and role; the board is the user's."""
    return Namespace("kanban", role, user)


@dataclass(frozen=True)
class Kanban:
    """The assistant's container, and the boards its tools work on."""

    container: Container
    boards: Boards


def make_kanban(data: Path | None, *, offline: bool | None = None) -> Kanban:
    """The container for the assistant, its boards in ``data`` (in memory without one).

    The model comes from the environment like any orra-di entry point
    (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``, ``ORRA_LLM__*``); ``ORRA_STORE__URL``
    moves the sessions. With no model configured (or ``offline=True``) the
    scripted ``board_model`` answers, since the generic offline model never calls an
    application's tools.
    """
    if data is not None:
        data.mkdir(parents=True, exist_ok=True)
    default_store = f"sqlite:///{data / 'sessions.sqlite3'}" if data else "memory://"
    settings = load_settings(
        agents=[{"name": "Kanban", "system_prompt": SYSTEM_PROMPT}],
        runtime={
            "max_turns": 5,
            "max_tokens": 1024,
            # orra's example asked for temperature 0.3; Anthropic's current API refuses it
            # (the adapter drops it with a warning), so it is left to the model's default.
            "enable_delegation": False,
        },
        policies={"kanban:viewer": {"allow": READ_ONLY}},
        tools=[],
        store={"url": os.environ.get("ORRA_STORE__URL") or default_store},
    )
    container = Container()
    container.settings.override(providers.Object(settings))
    boards = Boards(data / "boards.json" if data else None)
    tools = kanban_tools(boards)
    container.tool_factory.override(providers.Object(lambda profile: tools))
    if offline or (offline is None and settings.llm.resolved_kind == "offline"):
        container.llm.override(providers.Object(ScriptedProvider(board_model)))
    return Kanban(container, boards)


def describe(result: RunResult) -> list[str]:
    """The tool calls of a run, their results, and the tokens it cost."""
    lines: list[str] = []
    for turn in result.turns:
        for call, outcome in zip(turn.response.message.tool_calls, turn.tool_results, strict=True):
            lines.append(f"  → {call.name} {json.dumps(call.arguments)}")
            first, *rest = outcome.content.splitlines() or [""]
            more = f" (+{len(rest)} lines)" if rest else ""
            lines.append(f"  {'✗' if outcome.is_error else '←'} {first}{more}")
    usage = result.total_usage
    if usage.input_tokens or usage.output_tokens:  # the scripted model counts none
        lines.append(f"  (tokens: {usage.input_tokens} in, {usage.output_tokens} out)")
    return lines


async def _switch(store: SessionStore, ns: Namespace) -> str:
    session = await store.load(ns)
    if session is None:
        return f"now {ns} (new session)"
    return f"now {ns} (resuming, {len(session.messages)} messages)"


async def repl(kanban: Kanban, user: str, role: str) -> None:
    container, boards = kanban.container, kanban.boards
    async with lifespan(container):
        runtime = container.runtimes()["Kanban"]
        store: SessionStore = container.store()
        ns = session_namespace(user, role)
        print(await _switch(store, ns))
        print("Commands: /board, /switch <user> [role], /quit. Anything else goes to the agent.")
        while True:
            try:
                text = (await anyio.to_thread.run_sync(input, "you> ")).strip()
            except EOFError:
                print()
                return
            if text in ("/quit", "/exit"):
                return
            if text == "/board":
                print(boards.get(ns.segments[-1]).render())
            elif text.startswith("/switch"):
                words = text.split()[1:]
                if not 1 <= len(words) <= 2:
                    print("usage: /switch <user> [role]")
                    continue
                ns = session_namespace(words[0], words[1] if len(words) > 1 else "member")
                print(await _switch(store, ns))
            elif text:
                result = await runtime.run(ns, text)
                print("\n".join(describe(result)))
                print(f"Kanban: {result.final_message.content}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="kanban", description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="alice", help="whose board (default alice)")
    parser.add_argument("--role", default="member", help="member, or viewer to only read")
    parser.add_argument(
        "--data", type=Path, default=Path("kanban-data"), help="sessions and boards directory"
    )
    parser.add_argument("--offline", action="store_true", help="the scripted model, key or not")
    args = parser.parse_args(argv)
    kanban = make_kanban(args.data, offline=True if args.offline else None)
    kind: str = kanban.container.settings().llm.resolved_kind
    if args.offline or kind == "offline":
        kind = "scripted offline model (set ANTHROPIC_API_KEY or OPENAI_API_KEY for a real one)"
    print(f"kanban assistant: {kind}; data in {args.data}")
    try:
        anyio.run(repl, kanban, args.user, args.role)
    except OrraError as exc:  # a bad store URL, a missing extra, a provider outage
        raise SystemExit(f"error: {exc}") from None
