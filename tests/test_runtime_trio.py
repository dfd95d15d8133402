"""The runtime on trio, anyio's other backend: tools, per-tool timeouts and a cancelled run.

The asyncio paths have shortcuts of their own (the tool threads' handoff, one timer for
all deadlines); off asyncio the runtime takes anyio's generic calls, tested here.
"""

from __future__ import annotations

import threading

import anyio
import pytest

from orra_di import InMemoryStore, Runtime, RuntimeConfig, tool
from orra_di.runtime import INTERRUPTED
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@tool
def shout(text: str) -> str:
    """Upper-case text (a plain def: a worker thread)."""
    return text.upper()


@tool
async def whisper(text: str) -> str:
    """Lower-case text."""
    return text.lower()


async def test_a_run_calls_sync_and_async_tools_and_stores_every_step() -> None:
    store = InMemoryStore()
    script = [
        tool_calls(call("shout", {"text": "hi"}, id="a"), call("whisper", {"text": "HO"}, id="b")),
        reply("done"),
    ]
    runtime = Runtime(ScriptedProvider(script), store, tools=[shout, whisper])
    result = await runtime.run("acme:alice", "go")
    assert [r.content for r in result.turns[0].tool_results] == ["HI", "ho"]
    session = await store.load("acme:alice")
    assert session is not None and [m.role for m in session.messages] == [
        "user",
        "assistant",
        "user",
        "assistant",
    ]


async def test_per_tool_timeouts_fire_for_sync_and_async_tools() -> None:
    release = threading.Event()

    @tool
    def stuck() -> str:
        """Blocks its thread."""
        release.wait(5)
        return "late"

    @tool
    async def asleep() -> str:
        """Never answers in time."""
        await anyio.sleep(5)
        return "late"

    script = [tool_calls(call("stuck", {}, id="a"), call("asleep", {}, id="b")), reply("ok")]
    runtime = Runtime(
        ScriptedProvider(script),
        InMemoryStore(),
        tools=[stuck, asleep],
        config=RuntimeConfig(tool_timeout=0.1),
    )
    try:
        result = await runtime.run("acme:alice", "go")
    finally:
        release.set()
    contents = [r.content for r in result.turns[0].tool_results]
    assert contents == ["execution failed: timed out after 0.1s"] * 2


async def test_a_cancelled_run_records_its_tool_call_as_interrupted() -> None:
    started = anyio.Event()

    @tool
    async def slow() -> str:
        """Takes long."""
        started.set()
        await anyio.sleep(5)
        return "late"

    store = InMemoryStore()
    runtime = Runtime(
        ScriptedProvider([tool_calls(call("slow", {}, id="a")), reply("ok")]),
        store,
        tools=[slow],
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run, "acme:alice", "go")
        await started.wait()
        tg.cancel_scope.cancel()
    session = await store.load("acme:alice")
    assert session is not None
    assert session.messages[-1].tool_results[0].content == INTERRUPTED
