"""Round 19 review: bad input arriving in the middle of a run, on every session store.

A tool that returns something other than text, a hook that returns garbage or leaves
the session unstorable, a provider that fails mid-stream, two runs on one session
with ``busy_timeout=0``: each must give an error that names what went wrong, and the
stored history must stay whole (what was there, plus every step that happened).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di import (
    Hook,
    Message,
    Namespace,
    Runtime,
    RuntimeConfig,
    Session,
    SessionBusyError,
    StoreError,
    ToolCall,
    ToolResult,
    tool,
)
from orra_di.provider import CompletionRequest, StreamEvent, TextDelta
from orra_di.store import SessionStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import ToolContext, ToolDefinition
from tests.memory.backends import BACKENDS, open_sessions

pytestmark = pytest.mark.anyio

NS = Namespace("round19", "run")
OLD = ["old question", "old answer"]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A store of each backend holding an earlier exchange, with metadata."""
    async for opened in open_sessions(request.param, tmp_path):
        await opened.append(
            NS, [Message.user(OLD[0]), Message.assistant(OLD[1])], metadata={"k": 1}
        )
        yield opened


async def history(store: SessionStore) -> list[Message]:
    session = await store.load(NS)
    assert session is not None
    assert [m.content for m in session.messages[:2]] == OLD  # the earlier exchange is kept
    return list(session.messages[2:])


class Raw:
    """A Tool (not a FunctionTool) whose ``execute`` returns ``value`` as it is."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.definition = ToolDefinition(
            name="raw", description="Return a value.", input_schema={"type": "object"}
        )

    async def execute(self, arguments: Any, context: ToolContext) -> Any:
        return self.value


def one_call_then(answer: str = "done") -> ScriptedProvider:
    return ScriptedProvider([tool_calls(call("raw", {}, id="c1")), reply(answer)])


# -- tools ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [None, {"a": 1}, b"abc", b"\xff", ["x"] * 10_000, 42], ids=lambda v: type(v).__name__
)
async def test_a_tool_returning_no_text_is_answered_with_an_error_naming_the_tool(
    store: SessionStore, value: object, caplog: pytest.LogCaptureFixture
) -> None:
    """``bytes`` of ASCII rode into the stored result unvalidated (a serializer warning,
    ``b'abc'`` given back by InMemoryStore); None and a dict gave "AttributeError:
    'NoneType' object has no attribute 'isascii'", naming neither tool nor fix."""
    caplog.set_level(logging.CRITICAL)
    runtime = Runtime(one_call_then(), store, tools=[Raw(value)])  # type: ignore[list-item]
    result = await runtime.run(NS, "go")
    assert result.final_message.content == "done"
    (tool_result,) = result.turns[0].tool_results
    assert tool_result.is_error
    assert tool_result.content == (
        f"execution failed: tool 'raw' returned {type(value).__name__}, not text; "
        "its execute() must return a str (e.g. json.dumps of the data)"
    )
    stored = await history(store)
    assert [m.content for m in stored] == ["go", "", "", "done"]
    assert stored[2].tool_results == (tool_result,)


@tool
def lots() -> list[int]:
    """A long list."""
    return list(range(200_000))


async def test_a_function_tool_returning_a_huge_list_is_stored_truncated(
    store: SessionStore,
) -> None:
    provider = ScriptedProvider([tool_calls(call("lots", {}, id="c1")), reply("done")])
    result = await Runtime(provider, store, tools=[lots]).run(NS, "go")
    (tool_result,) = result.turns[0].tool_results
    assert not tool_result.is_error and tool_result.content.startswith("[0, 1, 2")
    assert "[truncated — original was" in tool_result.content
    stored = await history(store)
    assert stored[2].tool_results[0].content == tool_result.content


# -- hooks -----------------------------------------------------------------------------------


@tool
def echo(text: str) -> str:
    """Repeat the text."""
    return f"echo {text}"


class ReturnsText(Hook):
    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        return "not a call"  # type: ignore[return-value]


class ReturnsDict(Hook):
    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        return {"content": "redacted"}  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (
            ReturnsText(),
            "execution failed: TypeError: ReturnsText.before_tool_call returned str; "
            "return a ToolCall to replace it, or None to keep it",
        ),
        (
            ReturnsDict(),
            "execution failed: TypeError: ReturnsDict.after_tool_call returned dict; "
            "return a ToolResult to replace it, or None to keep it",
        ),
    ],
)
async def test_a_hook_returning_garbage_around_a_tool_call_is_named(
    store: SessionStore, hook: Hook, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Was "AttributeError: 'str' object has no attribute 'id'": the hook went unnamed."""
    caplog.set_level(logging.CRITICAL)
    provider = ScriptedProvider([tool_calls(call("echo", {"text": "a"}, id="c1")), reply("ok")])
    result = await Runtime(provider, store, tools=[echo], hooks=[hook]).run(NS, "go")
    (tool_result,) = result.turns[0].tool_results
    assert tool_result.is_error and tool_result.content == expected
    assert [m.content for m in await history(store)] == ["go", "", "", "ok"]


class Unstorable(Hook):
    """A ``before_session_save`` that leaves the session as no store can keep it."""

    def __init__(self, what: str) -> None:
        self.what = what

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        if self.what == "metadata":
            session.metadata["seen"] = {1, 2}
        elif self.what == "messages":
            session.messages.append("a note")  # type: ignore[arg-type]
        else:
            session.messages[:] = ["garbage"]  # type: ignore[list-item]


@pytest.mark.parametrize("what", ["metadata", "messages", "replaced"])
async def test_a_session_save_hook_leaving_it_unstorable_fails_the_run_but_keeps_the_answer(
    store: SessionStore, what: str
) -> None:
    """The final write failed as a whole, so the model's answer (paid for) was lost,
    unlike when such a hook raises; InMemoryStore stored the garbage instead, and
    on SQLite/file the error was a pydantic ValidationError."""
    provider = ScriptedProvider([tool_calls(call("echo", {"text": "a"}, id="c1")), reply("ok")])
    runtime = Runtime(provider, store, tools=[echo], hooks=[Unstorable(what)])
    with pytest.raises(StoreError, match=r"not JSON-serialisable|it is a str, not a Message"):
        await runtime.run(NS, "go")
    stored = await history(store)
    assert [m.content for m in stored] == ["go", "", "", "ok"]
    session = await store.load(NS)
    assert session is not None and session.metadata == {"k": 1}  # the hook's change is not


# -- the provider ------------------------------------------------------------------------------


class BreaksMidStream:
    """Streams part of an answer, then fails like a dropped connection."""

    async def complete(self, request: CompletionRequest) -> Any:
        raise AssertionError("the streaming run streams")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        yield TextDelta("half an ans")
        raise ConnectionResetError("connection reset by peer")


async def test_a_provider_failing_mid_stream_stores_no_half_answer(store: SessionStore) -> None:
    runtime = Runtime(BreaksMidStream(), store)  # type: ignore[arg-type]
    seen: list[str] = []
    with pytest.raises(ConnectionResetError, match="connection reset by peer"):
        async with runtime.run_streaming(NS, "go") as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    seen.append(event.text)
    assert seen == ["half an ans"]
    assert [m.content for m in await history(store)] == ["go"]
    # the next run goes on from there
    after = await Runtime(ScriptedProvider(["fine"]), store).run(NS, "again")
    assert after.final_message.content == "fine"
    assert [m.content for m in await history(store)] == ["go", "again", "fine"]


# -- two runs on one session ---------------------------------------------------------------------


async def test_two_runs_on_one_session_with_busy_timeout_zero(store: SessionStore) -> None:
    """One run holds the session while its provider thinks; the other is refused at
    once with SessionBusyError naming the session, and writes nothing."""
    entered, release = anyio.Event(), anyio.Event()

    async def slow(request: CompletionRequest) -> str:
        entered.set()
        await release.wait()
        return "first"

    config = RuntimeConfig(busy_timeout=0)
    first = Runtime(ScriptedProvider(slow), store, config=config)
    second = Runtime(ScriptedProvider(["second"]), store, config=config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(first.run, NS, "one")
        await entered.wait()
        with pytest.raises(SessionBusyError, match="round19:run"):
            await second.run(NS, "two")
        release.set()
    assert [m.content for m in await history(store)] == ["one", "first"]
