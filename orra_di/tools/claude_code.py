"""``claude_code`` and ``claude_code_resume``: delegate a coding task to the ``claude`` CLI.

The CLI runs as ``claude -p TASK --output-format json --max-turns N
[--allowedTools A,B] [--dangerously-skip-permissions]`` (``--resume ID`` first to
continue a session), in the call's working directory, else the session's (the
working-directory hook), else ``tools.claude_code.working_directory``; orra's resume
ignored every directory but the configured one (spec §5.6/32). It runs in its own
process group, killed whole at the timeout, and its answer is cut on characters
(bug 26). A task, follow-up or session id starting with ``-`` is refused: the CLI
would read it as one of its options. The CLI gets the server's environment: it needs
its own credentials.
"""

# No ``from __future__ import annotations``: see orra_di/tools/exec.py.

import json
import os
from typing import Annotated, Any

from pydantic import Field

from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.tool import FunctionTool, tool
from orra_di.tools._process import run_process
from orra_di.tools._text import clean, decode, truncate
from orra_di.tools.exec import directory_for
from orra_di.tools.settings import ClaudeCodeSettings

__all__ = ["base_args", "claude_code_tools", "format_response"]

_CUT = "\n\n[output truncated]"


def base_args(settings: ClaudeCodeSettings) -> list[str]:
    """The arguments every call passes after the prompt."""
    args = ["--output-format", "json", "--max-turns", str(settings.max_turns)]
    if settings.allowed_tools:
        args += ["--allowedTools", ",".join(settings.allowed_tools)]
    if settings.skip_permissions:
        args.append("--dangerously-skip-permissions")
    return args


def format_response(raw: str, max_chars: int = 8000) -> str:
    """The CLI's JSON answer as the model reads it: session id, duration, result."""
    try:
        data: Any = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise ToolExecutionError(
            f"Failed to parse claude CLI output: {exc}.\nRaw output: {truncate(raw, 500, _CUT)}"
        ) from None
    result = str(data.get("result") or "")
    if data.get("is_error"):
        raise ToolExecutionError(f"Claude CLI reported an error: {truncate(result, 2000, _CUT)}")
    seconds = float(data.get("duration_ms") or 0) / 1000
    session = data.get("session_id") or ""
    return f"[session_id: {session} | completed in {seconds:.1f}s]\n\n" + truncate(
        result, max_chars, _CUT
    )


async def _run(settings: ClaudeCodeSettings, args: list[str], requested: str | None) -> str:
    cwd = directory_for(requested, settings.working_directory)
    try:
        outcome = await run_process(
            [settings.command, *args],
            cwd=cwd,
            env=dict(os.environ),
            timeout=settings.timeout,
            max_bytes=4 * settings.max_output_chars + 65536,
        )
    except OSError as exc:
        raise ToolExecutionError(
            f"Failed to run claude CLI: {exc}. Make sure the `{settings.command}` command is "
            "installed and available in PATH."
        ) from None
    if outcome.timed_out:
        raise ToolExecutionError(
            f"Claude CLI timed out after {settings.timeout:g} seconds. Consider breaking the "
            "task into smaller pieces or increasing the timeout."
        )
    stdout = clean(decode(outcome.stdout))
    if outcome.returncode and not stdout.strip():
        stderr = truncate(clean(decode(outcome.stderr)), 2000, _CUT)
        raise ToolExecutionError(
            f"Claude CLI exited with status {outcome.returncode}.\nstderr: {stderr}"
        )
    return format_response(stdout, settings.max_output_chars)


def _required(value: str, name: str) -> str:
    if not value.strip():
        raise ToolInputError(f"{name} cannot be empty")
    if value.lstrip().startswith("-"):
        # it is an argument of its own: the CLI would read it as an option, such as
        # --dangerously-skip-permissions or --allowedTools, lifting the settings' bounds
        raise ToolInputError(
            f"{name} cannot start with '-': the claude CLI would read it as an option; reword it"
        )
    return value


def claude_code_tools(settings: ClaudeCodeSettings) -> list[FunctionTool]:
    """Both tools, configured by ``settings`` (``tools.claude_code``)."""
    directory = Field(description="Directory to work in (default: the session's)")

    @tool(
        name="claude_code",
        description="Delegate a coding task to the locally installed Claude CLI. It can "
        "read, write, and execute code autonomously. Returns a session_id you can use "
        "with claude_code_resume to continue.",
    )
    async def claude_code(
        task: Annotated[str, Field(description="The coding task, in plain words")],
        working_directory: Annotated[str | None, directory] = None,
    ) -> str:
        args = ["-p", _required(task, "task"), *base_args(settings)]
        return await _run(settings, args, working_directory)

    @tool(
        name="claude_code_resume",
        description="Resume a previous Claude CLI session using its session_id. Use this to "
        "continue work on a coding task or ask follow-up questions about the code.",
    )
    async def claude_code_resume(
        session_id: Annotated[str, Field(description="The session_id claude_code returned")],
        follow_up: Annotated[str, Field(description="What to do or ask next")],
        working_directory: Annotated[str | None, directory] = None,
    ) -> str:
        args = [
            "--resume",
            _required(session_id, "session_id"),
            "-p",
            _required(follow_up, "follow_up"),
            *base_args(settings),
        ]
        return await _run(settings, args, working_directory)

    return [claude_code, claude_code_resume]
