"""WorkingDirectoryHook: orra's tests as behaviour, with the directory kept per session."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orra_di import ConfigurationError, InMemoryStore, OrraError, Runtime, tool
from orra_di.hooks.working_directory import (
    WorkingDirectoryHook,
    set_working_directory,
    takes_working_directory,
    working_directory,
    working_directory_tool,
)
from orra_di.message import ToolResult
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


@tool(name="exec")
def exec_tool(command: str, working_directory: str | None = None) -> str:
    """Pretend to run a command; report where."""
    return f"{command} in {working_directory}"


@tool
def claude_code(prompt: str, working_directory: str | None = None) -> str:
    """Pretend to ask a coding agent; report where."""
    return f"{prompt} in {working_directory}"


@tool
def web_search(query: str) -> str:
    """Search (knows no directories)."""
    return f"results for {query}"


@tool
def where() -> str:
    """Read the session's directory without taking it as an argument."""
    return str(working_directory())


async def run_one(store: InMemoryStore, namespace: str, *calls: object) -> list[ToolResult]:
    hook = WorkingDirectoryHook([exec_tool, claude_code])
    rt = Runtime(
        ScriptedProvider([tool_calls(*calls), reply("done")]),  # type: ignore[arg-type]
        store,
        tools=[exec_tool, claude_code, web_search, where, working_directory_tool()],
        hooks=[hook],
    )
    result = await rt.run(namespace, "go")
    return list(result.turns[0].tool_results)


async def test_captures_dir_from_the_session_and_injects_it_into_exec(tmp_path: Path) -> None:
    store = InMemoryStore()
    assert await set_working_directory(store, "acme:alice", tmp_path) == str(tmp_path)
    (result,) = await run_one(store, "acme:alice", call("exec", {"command": "ls"}))
    assert result.content == f"ls in {tmp_path}"


async def test_injects_dir_into_claude_code_tool(tmp_path: Path) -> None:
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    (result,) = await run_one(store, "acme:alice", call("claude_code", {"prompt": "fix"}))
    assert result.content == f"fix in {tmp_path}"


async def test_does_not_override_explicit_dir(tmp_path: Path) -> None:
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    explicit = call("exec", {"command": "ls", "working_directory": "/elsewhere"})
    (result,) = await run_one(store, "acme:alice", explicit)
    assert result.content == "ls in /elsewhere"


async def test_ignores_non_dir_aware_tools(tmp_path: Path) -> None:
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    (result,) = await run_one(store, "acme:alice", call("web_search", {"query": "x"}))
    assert result.content == "results for x" and not result.is_error


async def test_no_injection_when_no_dir_set() -> None:
    (result,) = await run_one(InMemoryStore(), "acme:alice", call("exec", {"command": "ls"}))
    assert result.content == "ls in None"


async def test_one_sessions_directory_never_reaches_another(tmp_path: Path) -> None:
    # orra kept the directory on the hook: the last session loaded set it for all (bug 11).
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    gate = anyio.Event()
    seen: dict[str, str] = {}

    @tool(name="exec")
    async def slow_exec(command: str, working_directory: str | None = None) -> str:
        """Wait for the other session, then report."""
        if command == "alice":
            await gate.wait()
        else:
            gate.set()
        seen[command] = str(working_directory)
        return "ok"

    def runtime() -> Runtime:
        return Runtime(
            ScriptedProvider(
                lambda r: (
                    reply("done")
                    if r.messages[-1].tool_results
                    else tool_calls(call("exec", {"command": r.messages[-1].content}))
                )
            ),
            store,
            tools=[slow_exec],
            hooks=[hook],
        )

    hook = WorkingDirectoryHook([slow_exec])
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime().run, "acme:alice", "alice")
        tg.start_soon(runtime().run, "acme:bob", "bob")
    assert seen == {"alice": str(tmp_path), "bob": "None"}


async def test_the_model_changes_directory_relative_to_the_current_one(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    changed, _, _ = await run_one(
        store,
        "acme:alice",
        call("set_working_directory", {"path": "sub"}),
        call("exec", {"command": "ls"}),
        call("where"),
    )
    assert changed.content == f"working directory is now {tmp_path / 'sub'}"
    # Calls of one answer run concurrently: the change is for the next answer.
    (after,) = await run_one(store, "acme:alice", call("exec", {"command": "ls"}))
    assert after.content == f"ls in {tmp_path / 'sub'}"
    session = await store.load("acme:alice")
    assert session is not None
    assert session.metadata["state"]["working_directory"] == str(tmp_path / "sub")


async def test_a_missing_directory_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    (result,) = await run_one(
        store, "acme:alice", call("set_working_directory", {"path": "no-such-dir"})
    )
    assert result.is_error
    missing = tmp_path / "no-such-dir"
    assert result.content == (
        f"tool error: cannot use {missing} as the working directory: it does not exist"
    )
    (after,) = await run_one(store, "acme:alice", call("exec", {"command": "ls"}))
    assert after.content == f"ls in {tmp_path}"
    with pytest.raises(OrraError, match="is not a directory"):
        (tmp_path / "file").write_text("x")
        await set_working_directory(store, "acme:alice", tmp_path / "file")


async def test_the_app_clears_a_directory_and_keeps_other_state(tmp_path: Path) -> None:
    store = InMemoryStore()
    await set_working_directory(store, "acme:alice", tmp_path)
    session = await store.load("acme:alice")
    assert session is not None
    await store.append("acme:alice", [], metadata={**session.metadata, "plan": "pro"})
    assert await set_working_directory(store, "acme:alice", None) is None
    session = await store.load("acme:alice")
    assert session is not None and session.metadata == {"plan": "pro", "state": {}}


def test_a_tool_without_the_argument_is_refused_with_advice() -> None:
    assert takes_working_directory(exec_tool) and not takes_working_directory(web_search)
    with pytest.raises(ConfigurationError, match="add a parameter 'working_directory"):
        WorkingDirectoryHook([web_search])
    assert WorkingDirectoryHook().tools == {"exec", "claude_code"}


def test_a_default_directory_that_does_not_exist_is_refused_where_it_is_set(
    tmp_path: Path,
) -> None:
    """Else every call of every directory-aware tool fails later, far from the cause."""
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigurationError, match=rf"cannot use {missing} .* it does not exist"):
        WorkingDirectoryHook(default=str(missing))
    with pytest.raises(ConfigurationError, match="ORRA_WORKING_DIRECTORY__DEFAULT"):
        WorkingDirectoryHook(default=str(missing))
    assert WorkingDirectoryHook(default=str(tmp_path)).default == str(tmp_path)
