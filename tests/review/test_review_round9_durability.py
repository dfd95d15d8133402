"""Round 9 review: ``ORRA_STORE__SQLITE_SYNCHRONOUS=run`` (orra_di/stores/sqlite.py).

The docstrings' claim: a locked run's steps commit without an fsync (each in the WAL
before the next model call, so a process crash loses none) and its last write, or its
unlock when the run fails, commits with one, which makes the earlier frames durable;
one fsync per finished run. Checked by tracing the store's connection: after every
transaction that wrote session data there must be a commit at ``synchronous=FULL``
before the run returns, whatever way it ends.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orra_di.hook import Hook
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.runtime import Runtime
from orra_di.session import Session
from orra_di.stores import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import ToolContext, tool

pytestmark = pytest.mark.anyio

ALICE = Namespace.parse("acme:alice")


def trace(store: SQLiteStore) -> list[str]:
    assert store._conn is not None
    statements: list[str] = []
    store._conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
    return statements


def transactions(statements: list[str]) -> list[tuple[bool, bool]]:
    """Each write transaction as (wrote session data, committed with an fsync)."""
    full, current, found = True, None, []
    for s in statements:
        if s.startswith("PRAGMA synchronous"):
            full = s.endswith("FULL")
        elif s == "BEGIN IMMEDIATE":
            current = False
        elif current is not None and (
            s.startswith(("INSERT INTO messages", "UPDATE sessions", "DELETE FROM messages"))
            or "INTO sessions" in s
        ):
            current = True
        elif s == "COMMIT" and current is not None:
            found.append((current, full))
            current = None
    return found


def every_step_covered(found: list[tuple[bool, bool]]) -> bool:
    """Whether the last transaction that wrote session data is followed by (or is) a
    durable commit."""
    last_data = max((i for i, (data, _) in enumerate(found) if data), default=-1)
    return last_data == -1 or any(full for _, full in found[last_data:])


async def opened(path: Path) -> SQLiteStore:
    store = SQLiteStore(path, synchronous="run")
    await store.append(ALICE, [Message.user("before")])  # opens the connection
    return store


async def test_the_setting_reaches_the_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from orra_di.containers import Container

    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/env.db")
    monkeypatch.setenv("ORRA_STORE__SQLITE_SYNCHRONOUS", "run")
    container = Container()
    store = container.store()
    assert isinstance(store, SQLiteStore)
    assert store._synchronous == "RUN"
    monkeypatch.setenv("ORRA_STORE__SQLITE_SYNCHRONOUS", "sometimes")
    from orra_di.errors import ConfigurationError
    from orra_di.settings import load_settings

    with pytest.raises((ConfigurationError, ValueError)):
        load_settings()


async def test_a_cancelled_run_leaves_its_steps_durable(tmp_path: Path) -> None:
    started = anyio.Event()

    @tool(blocking=False)
    async def slow(key: str) -> str:
        """Take a while."""
        started.set()
        await anyio.sleep(30)
        return key

    store = await opened(tmp_path / "c.db")
    script = [tool_calls(call("slow", {"key": "k"}, id="c1")), reply("never")]
    runtime = Runtime(ScriptedProvider(script), store, tools=[slow])
    statements = trace(store)
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run, ALICE, "go")
        with anyio.fail_after(10):
            await started.wait()
        tg.cancel_scope.cancel()
    found = transactions(statements)
    assert any(data for data, _ in found)
    assert every_step_covered(found), found
    session = await store.load(ALICE)
    assert session is not None and session.messages[1].content == "go"
    async with store.lock(ALICE, timeout=0):  # unlocked
        pass
    await store.aclose()


class Rewrite(Hook):
    """Drops the tool round of the run from the history: the runtime must ``save``."""

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        kept = [m for m in session.messages if not m.tool_calls and not m.tool_results]
        session.messages[:] = kept


async def test_a_run_whose_hook_rewrites_history_is_durable_with_one_fsync(
    tmp_path: Path,
) -> None:
    @tool(blocking=False)
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    store = await opened(tmp_path / "h.db")
    script = [tool_calls(call("lookup", {"key": "k"}, id="c1")), reply("done")]
    runtime = Runtime(ScriptedProvider(script), store, tools=[lookup], hooks=[Rewrite()])
    statements = trace(store)
    await runtime.run(ALICE, "go")
    found = transactions(statements)
    assert every_step_covered(found), found
    assert sum(full for _, full in found) == 1, found  # one fsync per finished run
    session = await store.load(ALICE)
    assert session is not None
    assert [m.content for m in session.messages] == ["before", "go", "done"]
    await store.aclose()


async def test_a_delegated_run_in_the_same_store_is_durable_before_the_parent_answers(
    tmp_path: Path,
) -> None:
    store = await opened(tmp_path / "d.db")
    sub = Runtime(ScriptedProvider([reply("sub answer")]), store)

    @tool(blocking=False)
    async def delegate(task: str, ctx: ToolContext) -> str:
        """Hand a task to the sub-agent."""
        result = await sub.run(ctx.namespace.child("delegation.sub"), task)
        return result.final_message.content

    script = [tool_calls(call("delegate", {"task": "t"}, id="c1")), reply("parent done")]
    parent = Runtime(ScriptedProvider(script), store, tools=[delegate])
    statements = trace(store)
    result = await parent.run(ALICE, "go")
    assert result.final_message.content == "parent done"
    found = transactions(statements)
    assert every_step_covered(found), found
    child = await store.load(ALICE.child("delegation.sub"))
    assert child is not None and [m.content for m in child.messages] == ["t", "sub answer"]
    assert sum(full for _, full in found) == 2, found  # one per finished run
    await store.aclose()


async def test_writes_outside_a_run_are_durable_at_once(tmp_path: Path) -> None:
    store = await opened(tmp_path / "o.db")
    statements = trace(store)
    await store.append(ALICE, [Message.user("plain")])
    session = await store.load(ALICE)
    assert session is not None
    await store.save(session)
    found = transactions(statements)
    assert found and all(full for data, full in found if data), found
    await store.aclose()


@pytest.mark.parametrize("usage", [False, True])
async def test_in_the_container_a_run_costs_one_fsync_with_its_usage_records(
    tmp_path: Path, usage: bool
) -> None:
    """The container records usage per model call (on by default): at ``run`` those records
    wait for the run's one fsync with its steps, as the setting's docs say."""
    from dependency_injector import providers

    from orra_di.containers import Container, lifespan
    from orra_di.settings import load_settings

    container = Container()
    settings = load_settings(
        store={"url": f"sqlite:///{tmp_path}/c.db", "sqlite_synchronous": "run"},
        agents=[{"name": "Atlas"}],
        usage={"enabled": usage},
    )
    container.settings.override(providers.Object(settings))
    script = [tool_calls(call("calculate", {"expression": "1+1"}, id="c1")), reply("done")]
    container.llm.override(providers.Object(ScriptedProvider(script * 2)))
    async with lifespan(container):
        runtime = container.runtimes().default
        await runtime.run(ALICE, "first")
        store = container.store()
        assert isinstance(store, SQLiteStore)
        statements = trace(store)
        await runtime.run(ALICE, "second")
    found = transactions(statements)
    assert every_step_covered(found), found
    assert sum(full for _, full in found) == 1, found
