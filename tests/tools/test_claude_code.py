"""claude_code / claude_code_resume: orra's tests as behaviour, against a fake ``claude``
executable on PATH that answers like the CLI and reports its arguments and directory."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from orra_di import InMemoryStore, Runtime, ToolContext, ToolExecutionError, ToolInputError
from orra_di.hooks.working_directory import WorkingDirectoryHook, set_working_directory
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tools.claude_code import base_args, claude_code_tools, format_response
from orra_di.tools.settings import ClaudeCodeSettings

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")

FAKE = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
mode = os.environ.get("FAKE_CLAUDE", "ok")
if mode == "fail":
    print("no credentials", file=sys.stderr); sys.exit(3)
if mode == "slow":
    time.sleep(30)
if mode == "error":
    print(json.dumps({{"result": "rate limited", "is_error": True}})); sys.exit(1)
if mode == "garbage":
    sys.stdout.buffer.write(b"\\xff not json"); sys.exit(0)
answer = {{"args": args, "cwd": os.getcwd()}}
print(json.dumps({{"result": json.dumps(answer), "session_id": "sess_123",
                  "duration_ms": 5000, "is_error": False}}))
"""


@pytest.fixture
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "claude"
    script.write_text(FAKE.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    work = tmp_path / "work"
    work.mkdir()
    return work.resolve()


def tools(**options: Any) -> dict[str, Any]:
    return {t.definition.name: t for t in claude_code_tools(ClaudeCodeSettings(**options))}


def answer(text: str) -> dict[str, Any]:
    assert text.startswith("[session_id: sess_123 | completed in 5.0s]\n\n")
    return json.loads(text.split("\n\n", 1)[1])  # type: ignore[no-any-return]


# -- orra's tests ---------------------------------------------------------------------


def test_tool_definitions() -> None:
    both = tools()
    assert list(both) == ["claude_code", "claude_code_resume"]
    code = both["claude_code"].definition
    assert "coding task" in code.description and code.input_schema["required"] == ["task"]
    resume = both["claude_code_resume"].definition
    assert resume.input_schema["required"] == ["session_id", "follow_up"]
    assert "working_directory" in resume.input_schema["properties"]  # bug 32


@pytest.mark.parametrize(
    ("name", "arguments", "complaint"),
    [
        ("claude_code", {"task": "  "}, "task cannot be empty"),
        ("claude_code", {}, "task"),
        ("claude_code_resume", {"session_id": "", "follow_up": "x"}, "session_id cannot be empty"),
        ("claude_code_resume", {"session_id": "s"}, "follow_up"),
    ],
)
async def test_bad_arguments_are_input_errors(
    name: str, arguments: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ToolInputError, match=complaint):
        await tools()[name].execute(arguments, CTX)


def test_format_response() -> None:
    raw = json.dumps({"result": "done", "session_id": "sess_123", "duration_ms": 5000})
    assert format_response(raw) == "[session_id: sess_123 | completed in 5.0s]\n\ndone"
    with pytest.raises(ToolExecutionError, match="reported an error: boom"):
        format_response(json.dumps({"result": "boom", "is_error": True}))
    with pytest.raises(ToolExecutionError, match="Failed to parse claude CLI output"):
        format_response("not json")


def test_the_answer_is_cut_on_characters() -> None:
    raw = json.dumps({"result": "é" * 50, "session_id": "s"})
    assert format_response(raw, max_chars=10).endswith("é" * 10 + "\n\n[output truncated]")


def test_base_args() -> None:
    default = base_args(ClaudeCodeSettings())
    assert default == [
        "--output-format",
        "json",
        "--max-turns",
        "10",
        "--allowedTools",
        "Read,Edit,Bash",
    ]
    assert "--dangerously-skip-permissions" in base_args(ClaudeCodeSettings(skip_permissions=True))
    assert "--allowedTools" not in base_args(ClaudeCodeSettings(allowed_tools=[]))


def test_default_settings() -> None:
    settings = ClaudeCodeSettings()
    assert (settings.max_turns, settings.timeout, settings.skip_permissions) == (10, 300.0, False)


# -- against the fake CLI ------------------------------------------------------------------


async def test_claude_code_runs_the_cli_in_the_given_directory(fake_claude: Path) -> None:
    text = await tools()["claude_code"].execute(
        {"task": "fix the bug", "working_directory": str(fake_claude)}, CTX
    )
    seen = answer(text)
    assert seen["cwd"] == str(fake_claude)
    assert seen["args"][:2] == ["-p", "fix the bug"]
    assert "--output-format" in seen["args"]


async def test_resume_honours_the_sessions_directory(fake_claude: Path) -> None:
    """Bug 32: orra's resume ignored every directory but the configured one."""
    store = InMemoryStore()
    await set_working_directory(store, "dev", fake_claude)
    both = tools(working_directory="/")
    runtime = Runtime(
        ScriptedProvider(
            [
                tool_calls(
                    call(
                        "claude_code_resume", {"session_id": "sess_123", "follow_up": "and tests?"}
                    )
                ),
                reply("done"),
            ]
        ),
        store,
        tools=list(both.values()),
        hooks=[WorkingDirectoryHook(list(both.values()))],
    )
    result = await runtime.run("dev", "go")
    seen = answer(result.turns[0].tool_results[0].content)
    assert seen["cwd"] == str(fake_claude)
    assert seen["args"][:4] == ["--resume", "sess_123", "-p", "and tests?"]


async def test_the_configured_directory_is_the_fallback(fake_claude: Path) -> None:
    text = await tools(working_directory=str(fake_claude))["claude_code"].execute(
        {"task": "x"}, CTX
    )
    assert answer(text)["cwd"] == str(fake_claude)


@pytest.mark.parametrize(
    ("mode", "complaint"),
    [
        ("fail", "exited with status 3.\nstderr: no credentials"),
        ("error", "reported an error: rate limited"),
        ("garbage", "Failed to parse claude CLI output"),
    ],
)
async def test_cli_failures_become_clear_errors(
    fake_claude: Path, monkeypatch: pytest.MonkeyPatch, mode: str, complaint: str
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE", mode)
    with pytest.raises(ToolExecutionError) as caught:
        await tools()["claude_code"].execute({"task": "x"}, CTX)
    assert complaint in caught.value.message


async def test_a_timeout_kills_the_cli(fake_claude: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CLAUDE", "slow")
    with pytest.raises(ToolExecutionError, match=r"timed out after 0\.5 seconds"):
        await tools(timeout=0.5)["claude_code"].execute({"task": "x"}, CTX)


async def test_a_missing_cli_says_how_to_fix_it() -> None:
    with pytest.raises(ToolExecutionError, match="available in PATH"):
        await tools(command="no-such-claude-cli")["claude_code"].execute({"task": "x"}, CTX)
