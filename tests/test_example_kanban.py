"""examples/kanban: the REPL as a user runs it (offline, then with a "real" key against a
loopback server speaking Anthropic's Messages API), and its board tools in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di import CompletionRequest, CompletionResponse, Message, ToolInputError
from orra_di.containers import lifespan
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from kanban.app import make_kanban, session_namespace  # noqa: E402
from kanban.board import Board, Boards  # noqa: E402
from kanban.offline import OFFLINE_HELP, board_model  # noqa: E402

VENDOR_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in VENDOR_KEYS:
            monkeypatch.delenv(name)
    (tmp_path / "no-secrets").mkdir()
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(tmp_path / "no-secrets"))  # not /run/secrets
    monkeypatch.chdir(tmp_path)


def kanban(*lines: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """``python examples/kanban`` fed ``lines``, as from a terminal's paste; its stdout."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in VENDOR_KEYS
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / "kanban"), "--data", "data"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**base, "NO_COLOR": "1", **(env or {})},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_the_repl_runs_offline_and_keeps_each_users_board(tmp_path: Path) -> None:
    out = kanban(
        "add Write tests",
        "move 4 to done",
        "assign Design to bob",
        "move CI to nowhere",
        "/switch bob",
        "show tasks in done",
        "/switch alice viewer",
        "add Sneaky task",
        "/board",
        "/quit",
        cwd=tmp_path,
    )
    assert out.startswith("kanban assistant: scripted offline model (set ANTHROPIC_API_KEY")
    for expected in [
        "now kanban:member:alice (new session)",
        '  → create_task {"title": "Write tests"}',
        "Kanban: Created task #4 'Write tests' in 'backlog'",
        "Kanban: Moved task #4 'Write tests' to 'done'",
        '  → assign_task {"assignee": "bob", "task_title": "Design"}',
        "Kanban: Assigned task #1 'Design login page' to bob",
        '  → move_task {"to": "nowhere", "task_title": "CI"}',
        "  ✗ invalid input: unknown column 'nowhere'; columns: backlog, in-progress, done",
        "now kanban:member:bob (new session)",
        '  → list_tasks {"column": "done"}',
        "now kanban:viewer:alice (new session)",
        "  ✗ tool 'create_task' is not allowed in this session",
        "  #1: Design login page (assigned to bob)",
        "  #4: Write tests",
    ]:
        assert expected in out, expected
    # bob's board is his own: nothing alice did is on it
    bob_done = out.split('  → list_tasks {"column": "done"}')[1].split("you>")[0]
    assert "(+1 lines)" in bob_done and "Kanban: [done]\n  (empty)" in bob_done
    refused = out.split("Kanban: tool 'create_task' is not allowed in this session")[1]
    assert "Sneaky" not in refused  # /board after the refusal: nothing was added

    boards = json.loads((tmp_path / "data" / "boards.json").read_text(encoding="utf-8"))
    assert set(boards) == {"alice"}  # bob only read his (starter) board: nothing to save
    assert [(t["id"], t["column"]) for t in boards["alice"]["tasks"]][-1] == (4, "done")

    again = kanban("/quit", cwd=tmp_path)  # resumes alice's session: 4 runs of 4 messages
    assert "now kanban:member:alice (resuming, 16 messages)" in again


@pytest.mark.parametrize(
    ("said", "name", "arguments"),
    [
        ("move CI to in progress", "move_task", {"to": "in-progress", "task_title": "CI"}),
        ("Move #2 to Done.", "move_task", {"to": "done", "task_id": 2}),
        ("assign task 3 to carol", "assign_task", {"assignee": "carol", "task_id": 3}),
        ("create a task: Ship v2", "create_task", {"title": "Ship v2"}),
        ("columns?", "list_columns", {}),
        ("what is in progress", "list_tasks", {"column": "in-progress"}),
        ("show me the board", "list_tasks", {}),
    ],
)
def test_the_scripted_model_reads_a_few_phrasings(
    said: str, name: str, arguments: dict[str, Any]
) -> None:
    asked = board_model(CompletionRequest(messages=[Message.user(said)]))
    (called,) = asked.message.tool_calls
    assert (called.name, called.arguments) == (name, arguments)


def test_anything_else_gets_the_offline_help() -> None:
    answer = board_model(CompletionRequest(messages=[Message.user("hello")]))
    assert answer.message.content == OFFLINE_HELP
    assert "ANTHROPIC_API_KEY" in OFFLINE_HELP


# -- with a key: the Anthropic adapter against a loopback Messages API ------------------


def messages_api(request: Request) -> Response:
    """A model that lists the board, then reports how many tasks the backlog holds."""
    body: dict[str, Any] = request.get_json()
    assert request.headers["Authorization"] == "Bearer sk-ant-loopback"
    assert body["max_tokens"] == 1024
    assert "kanban board" in json.dumps(body["system"])
    last = body["messages"][-1]["content"]
    results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"]
    if results:
        listed = results[0]["content"]
        text = listed if isinstance(listed, str) else listed[0]["text"]
        count = text.split("[in-progress]")[0].count("#")
        content = [{"type": "text", "text": f"The backlog holds {count} tasks."}]
        stop = "end_turn"
    else:
        names = [t["name"] for t in body["tools"]]
        assert names == ["list_columns", "list_tasks", "create_task", "move_task", "assign_task"]
        content = [{"type": "tool_use", "id": "toolu_1", "name": "list_tasks", "input": {}}]
        stop = "tool_use"
    return Response(
        json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": 40, "output_tokens": 9},
            }
        ),
        content_type="application/json",
    )


def test_with_a_key_the_real_adapter_drives_the_tools(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/messages", method="POST").respond_with_handler(messages_api)
    out = kanban(
        "how full is my backlog?",
        "/quit",
        cwd=tmp_path,
        env={
            "ANTHROPIC_API_KEY": "sk-ant-loopback",
            "ORRA_LLM__KIND": "anthropic",
            "ORRA_LLM__BASE_URL": httpserver.url_for(""),
            "ORRA_LLM__MAX_RETRIES": "0",
        },
    )
    assert out.startswith("kanban assistant: anthropic; data in data")
    assert "  → list_tasks {}" in out
    assert "Kanban: The backlog holds 3 tasks." in out
    assert "  (tokens: 80 in, 18 out)" in out
    assert "sk-ant-loopback" not in out
    httpserver.check_assertions()


# -- in-process: the tools under a scripted model ---------------------------------------


def acting_on(task_id: int) -> ScriptedProvider:
    """Moves ``task_id`` to done in whichever session it runs, then repeats the result."""

    def script(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(last.tool_results[0].content)
        return tool_calls(call("move_task", {"task_id": task_id, "to": "done"}))

    return ScriptedProvider(script)


@pytest.mark.anyio
async def test_two_users_boards_are_apart_and_a_viewer_only_reads() -> None:
    app = make_kanban(None, offline=True)
    app.container.llm.override(acting_on(2))
    async with lifespan(app.container):
        runtime = app.container.runtimes()["Kanban"]
        alice = await runtime.run(session_namespace("alice"), "finish task 2")
        viewer = await runtime.run(session_namespace("bob", "viewer"), "finish task 2")

    assert alice.final_message.content == "Moved task #2 'Set up CI pipeline' to 'done'"
    assert viewer.final_message.content == "tool 'move_task' is not allowed in this session"
    assert [t.column for t in app.boards.get("alice").tasks] == ["backlog", "done", "backlog"]
    assert [t.column for t in app.boards.get("bob").tasks] == ["backlog"] * 3


def test_a_title_must_name_one_task_and_a_failed_change_is_not_saved(tmp_path: Path) -> None:
    boards = Boards(tmp_path / "boards.json")
    with boards.editing("carol") as board:
        board.add("Write tests")
    with (
        pytest.raises(ToolInputError, match=r"'Write' must name exactly one task \(matches: #3"),
        boards.editing("carol") as board,
    ):
        board.find(None, "Write")
    with (
        pytest.raises(ToolInputError, match="unknown column 'later'"),
        boards.editing("carol") as board,
    ):
        board.add("Ship it", "later")
    assert [t.title for t in boards.get("carol").tasks] == [
        "Design login page",
        "Set up CI pipeline",
        "Write API docs",
        "Write tests",
    ]
    assert Board.starter().render("done") == "[done]\n  (empty)"
