"""exec: orra's tests as behaviour, and what orra let through (spec §5.6/25)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from dependency_injector import providers

from orra_di import InMemoryStore, Runtime, ToolContext, ToolExecutionError, ToolInputError
from orra_di.approvals.hook import ApprovalHook
from orra_di.containers import Container
from orra_di.hooks.working_directory import WorkingDirectoryHook, set_working_directory
from orra_di.message import ToolCall
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tools.exec import exec_tool
from orra_di.tools.settings import ExecSettings

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")


def make(**options: Any) -> Any:
    options.setdefault("allow", ["echo", "ls", "cat", "pwd", "sh", "printf", "env"])
    return exec_tool(ExecSettings(enabled=True, **options))


async def run(command: str, **options: Any) -> str:
    cwd = options.pop("working_directory", None)
    arguments: dict[str, Any] = {"command": command}
    if cwd is not None:
        arguments["working_directory"] = str(cwd)
    return await make(**options).execute(arguments, CTX)  # type: ignore[no-any-return]


def pid_in(path: Path, within: float = 20.0) -> int:
    """The process id the command wrote to ``path`` (waiting for it: the machine may be busy)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def gone(pid: int, within: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (gone, or a zombie waiting for init)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


# -- orra's tests ------------------------------------------------------------------


async def test_allowed_list_filters() -> None:
    assert (await run("echo hello")) == "hello\n"
    with pytest.raises(ToolInputError, match="'rm' is not in the allowed list"):
        await run("rm -rf x")


def test_allow_any_permits_every_program_and_an_empty_allowlist_needs_it() -> None:
    with pytest.raises(ValueError, match="allow_any"):
        ExecSettings(enabled=True)
    assert (
        "Allowed commands"
        not in exec_tool(ExecSettings(enabled=True, allow_any=True)).definition.description
    )


def test_tool_definition_includes_the_allowed_list_and_the_schema() -> None:
    definition = make(allow=["ls", "cat"]).definition
    assert definition.name == "exec"
    assert "Allowed commands: ls, cat" in definition.description
    assert "No shell" in definition.description
    assert definition.input_schema["required"] == ["command"]
    assert set(definition.input_schema["properties"]) == {
        "command",
        "timeout_secs",
        "working_directory",
    }


async def test_missing_or_blank_command_is_an_input_error() -> None:
    with pytest.raises(ToolInputError, match="command"):
        await make().execute({}, CTX)
    with pytest.raises(ToolInputError, match="missing 'command'"):
        await run("   ")


async def test_working_directory_changes_cwd(tmp_path: Path) -> None:
    expected = str(tmp_path.resolve())  # noqa: ASYNC240
    assert (await run("pwd", working_directory=tmp_path)).strip() == expected


async def test_failing_command_shows_exit_code() -> None:
    out = await run("sh -c 'echo oops >&2; exit 42'")
    assert out == "[stderr]\noops\n\n[exit code: 42]"


async def test_no_output_says_so() -> None:
    assert await run("printf ''") == "(no output)"


# -- no shell, allowlist by path ------------------------------------------------------


async def test_a_semicolon_is_an_argument_not_a_second_command(tmp_path: Path) -> None:
    out = await run("echo hi; touch pwned", working_directory=tmp_path)
    assert out == "hi; touch pwned\n"
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    "line",
    [
        "echo $(touch pwned)",
        "echo `touch pwned`",
        "echo a | touch pwned",
        "echo a && touch pwned",
        "echo > pwned",
    ],
)
async def test_shell_metacharacters_are_plain_text(line: str, tmp_path: Path) -> None:
    out = await run(line, working_directory=tmp_path)
    assert "pwned" in out
    assert not (tmp_path / "pwned").exists()


async def test_a_disallowed_program_is_refused_whatever_its_spelling(tmp_path: Path) -> None:
    (tmp_path / "ls").symlink_to(shutil.which("rm") or "/bin/rm")
    for line in ("./ls -rf x", "/usr/bin/rm -rf x", "touch x", "'rm' x"):
        with pytest.raises(ToolInputError, match="not in the allowed list"):
            await run(line, working_directory=tmp_path)


async def test_the_same_program_by_its_path_is_allowed(tmp_path: Path) -> None:
    from shutil import which

    echo = which("echo")
    assert echo is not None
    assert await run(f"{echo} same", working_directory=tmp_path) == "same\n"


@pytest.mark.parametrize(
    "line",
    ["cat /etc/passwd", "ls ..", "cat ../../etc/passwd", "cat sub/../../x", "ls --directory=/root"],
)
async def test_paths_outside_the_working_directory_are_refused(line: str, tmp_path: Path) -> None:
    with pytest.raises(ToolInputError, match="outside the working directory"):
        await run(line, working_directory=tmp_path)


async def test_paths_inside_the_working_directory_are_fine(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.txt").write_text("inside")
    assert await run("cat sub/../sub/f.txt", working_directory=tmp_path) == "inside"
    assert await run("cat /etc/hostname", confine_paths=False) != ""


async def test_a_root_bounds_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    inside = await run("pwd", working_directory="sub", root=str(tmp_path))
    assert inside.strip() == str((tmp_path / "sub").resolve())
    default = await run("pwd", root=str(tmp_path))
    assert default.strip() == str(tmp_path.resolve())  # noqa: ASYNC240
    for escape in ("/", "..", str(tmp_path / "sub" / ".." / "..")):
        with pytest.raises(ToolInputError, match=r"outside .*where commands must run"):
            await run("pwd", working_directory=escape, root=str(tmp_path))


async def test_unbalanced_quotes_are_an_input_error() -> None:
    with pytest.raises(ToolInputError, match="cannot split"):
        await run("echo 'oops")


async def test_shell_mode_is_an_explicit_opt_in() -> None:
    with pytest.raises(ValueError, match="allow_any"):
        ExecSettings(enabled=True, shell=True, allow=["ls"])
    tool = exec_tool(ExecSettings(enabled=True, shell=True, allow_any=True))
    assert await tool.execute({"command": "echo a; echo b | tr b c"}, CTX) == "a\nc\n"


# -- environment, output, processes -----------------------------------------------------


async def test_the_servers_secrets_never_reach_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-secret")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-other")
    out = await run("env", env={"GREETING": "hi"})
    assert "sk-secret" not in out and "sk-other" not in out
    assert "GREETING=hi" in out
    assert "PATH=" in out


async def test_output_is_cut_on_characters_with_a_marker() -> None:
    out = await run(
        "sh -c 'i=0; while [ $i -lt 3000 ]; do echo é; i=$((i+1)); done'", max_output_chars=1000
    )
    assert out.startswith("é\n" * 500)
    assert out.endswith("\n[output truncated at 1000 characters]")
    assert len(out) == 1000 + len("\n[output truncated at 1000 characters]")


async def test_invalid_utf8_is_replaced_not_a_crash() -> None:
    out = await run(r"printf '\377\376ok\000'")
    assert out == "\ufffd\ufffdok\ufffd"


async def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    line = "sh -c 'sleep 60 & echo $! > grandchild.pid; sleep 60'"
    started = time.monotonic()
    with pytest.raises(ToolExecutionError, match=r"timed out after 2 seconds"):
        await make().execute(
            {"command": line, "timeout_secs": 2, "working_directory": str(tmp_path)}, CTX
        )
    assert time.monotonic() - started < 20  # not the 60 s the command wanted
    assert gone(pid_in(tmp_path / "grandchild.pid"))


async def test_background_processes_end_with_the_command(tmp_path: Path) -> None:
    line = "sh -c 'sleep 60 & echo $! > grandchild.pid; echo started'"
    assert await run(line, working_directory=tmp_path) == "started\n"
    assert gone(pid_in(tmp_path / "grandchild.pid"))


async def test_cancelling_the_call_kills_the_process_group(tmp_path: Path) -> None:
    line = "sh -c 'sleep 60 & echo $! > grandchild.pid; sleep 60'"
    tool = make()
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tool.execute, {"command": line, "working_directory": str(tmp_path)}, CTX)
        pid = await anyio.to_thread.run_sync(pid_in, tmp_path / "grandchild.pid")
        tasks.cancel_scope.cancel()
    assert gone(pid)


async def test_a_timeout_above_the_maximum_is_capped() -> None:
    with pytest.raises(ToolExecutionError, match=r"after 0\.3 seconds"):
        await make(max_timeout=0.3, timeout=0.2).execute(
            {"command": "sh -c 'sleep 5'", "timeout_secs": 100}, CTX
        )


async def test_the_sessions_directory_with_and_without_the_hook(tmp_path: Path) -> None:
    store = InMemoryStore()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    await set_working_directory(store, "alice", tmp_path / "a")
    await set_working_directory(store, "bob", tmp_path / "b")
    tool = make()
    for hooks in ([WorkingDirectoryHook([tool])], []):
        for who in ("alice", "bob"):
            script = [tool_calls(call("exec", {"command": "pwd"})), reply("ok")]
            runtime = Runtime(ScriptedProvider(script), store, tools=[tool], hooks=hooks)
            result = await runtime.run(who, "where am I?")
            where = result.turns[0].tool_results[0].content.strip()
            assert where == str((tmp_path / ("a" if who == "alice" else "b")).resolve())


async def test_a_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(ToolInputError, match="does not exist"):
        await run("pwd", working_directory=tmp_path / "nope")


# -- settings and the container ------------------------------------------------------------


def test_the_container_gives_exec_and_approvals_always_cover_it(tmp_path: Path) -> None:
    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        tools={"exec": {"enabled": True, "allow": ["echo"]}},
        approval={"enabled": True, "tools": ["something_else"]},
    )
    container.settings.override(providers.Object(settings))
    runtime = container.runtimes()[settings.agents[0].name]
    assert [d.name for d in runtime.tools.definitions()][:3] == [
        "calculate",
        "current_time",
        "exec",
    ]
    hook = container.approval_hook()
    assert isinstance(hook, ApprovalHook)
    assert hook.needs_approval(ToolCall(id="1", name="exec", arguments={"command": "echo"}))
    assert not hook.needs_approval(ToolCall(id="2", name="calculate", arguments={}))


def test_the_environment_variables_configure_exec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ENABLED", "true")
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ALLOW", '["git","ls"]')
    settings = load_settings()
    assert settings.tools.exec.allow == ["git", "ls"]
    assert settings.tools.enabled() == ["calculate", "current_time", "exec"]


def test_the_old_list_form_still_names_the_tools() -> None:
    assert load_settings(tools=["calculate"]).tools.enabled() == ["calculate"]
    assert load_settings(tools=[]).tools.enabled() == []
    with pytest.raises(Exception, match="needs options"):
        load_settings(tools=["exec"])
    with pytest.raises(Exception, match="unknown built-in tool 'shell'"):
        load_settings(tools=["shell"])


def test_pid_helper_sees_a_live_process() -> None:
    assert not gone(os.getpid(), within=0.1)
