"""LangGraph's Postgres checkpointer (``langgraph-checkpoint-postgres``, ``AsyncPostgresSaver``).

A LangGraph agent keeps its conversation in a ``messages`` channel (a list of
LangChain messages under the ``add_messages`` reducer) and, after every
super-step, writes a checkpoint whose channel values hold that list. The
Postgres saver stores the list as one blob per channel version, so each
checkpoint carries the whole conversation so far. Mapping onto the benchmark:

- a step is ``aput`` of the next checkpoint of the thread, its ``messages``
  channel holding the list with one more message (as a running graph holds
  it in memory between super-steps);
- loading a session is ``aget_tuple`` of the thread's latest checkpoint;
- a store object is one saver from ``AsyncPostgresSaver.from_conn_string``
  (one connection, the documented way to open it);
- a W1/W3 user message is ``aget_tuple`` then four ``aput`` calls: after the
  user message, the model's tool call, the tool's result and the answer (the
  checkpoints of a ReAct-style graph run; no LLM). ``aput_writes``, which a
  real run also calls for each node, is left out, to the peer's advantage.

This is the default ``add_messages`` channel. LangGraph also has a beta
``DeltaChannel`` that stores deltas with periodic snapshots; it is opt-in and
not what ``add_messages`` uses, so it is not measured here.

A thread has no lock that other processes respect, and two processes writing
checkpoints of one thread each write their own list (the last one wins), so
both "one session" figures do not apply.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench_core import ANSWER, TOOL_OUTPUT
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

CHANNEL = "messages"
NO_SHARED = "no atomic append: concurrent checkpoints of one thread each hold their own list"
NO_LOCK = "no lock that other processes respect"


@dataclass
class _Thread:
    """What a running graph holds for one thread between super-steps."""

    messages: list[BaseMessage] = field(default_factory=list)
    checkpoint_id: str | None = None
    version: str | None = None
    step: int = -1


def _message(index: int, text: str) -> BaseMessage:
    message_id = str(uuid.uuid4())
    if index % 2 == 0:
        return HumanMessage(content=text, id=message_id)
    return AIMessage(content=text, id=message_id)


def _turn_messages(m: int) -> list[BaseMessage]:
    call_id = f"call_{m}"
    return [
        HumanMessage(content=f"message {m}", id=str(uuid.uuid4())),
        AIMessage(
            content="",
            tool_calls=[
                {"name": "lookup", "args": {"key": "k"}, "id": call_id, "type": "tool_call"}
            ],
            id=str(uuid.uuid4()),
        ),
        ToolMessage(content=TOOL_OUTPUT, tool_call_id=call_id, id=str(uuid.uuid4())),
        AIMessage(content=ANSWER, id=str(uuid.uuid4())),
    ]


class LangGraphBackend:
    def __init__(self, saver: AsyncPostgresSaver, stack: contextlib.AsyncExitStack) -> None:
        self._saver = saver
        self._stack = stack
        self._threads: dict[str, _Thread] = {}

    @staticmethod
    def _config(thread_id: str, checkpoint_id: str | None = None) -> Any:
        configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
        if checkpoint_id is not None:
            configurable["checkpoint_id"] = checkpoint_id
        return {"configurable": configurable}

    async def _put(self, thread_id: str, thread: _Thread) -> None:
        """Write the thread's next checkpoint, holding its whole message list."""
        thread.step += 1
        version = self._saver.get_next_version(thread.version, None)
        checkpoint: Checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=thread.step))
        checkpoint["ts"] = datetime.now(UTC).isoformat()
        checkpoint["channel_values"] = {CHANNEL: thread.messages}
        checkpoint["channel_versions"] = {CHANNEL: version}
        checkpoint["updated_channels"] = [CHANNEL]
        metadata: Any = {"source": "loop", "step": thread.step, "parents": {}}
        written = await self._saver.aput(
            self._config(thread_id, thread.checkpoint_id), checkpoint, metadata, {CHANNEL: version}
        )
        thread.checkpoint_id = written["configurable"]["checkpoint_id"]
        thread.version = version

    async def _read(self, thread_id: str) -> _Thread:
        found = await self._saver.aget_tuple(self._config(thread_id))
        if found is None:
            return _Thread()
        checkpoint = found.checkpoint
        return _Thread(
            messages=list(checkpoint["channel_values"].get(CHANNEL, [])),
            checkpoint_id=found.config["configurable"]["checkpoint_id"],
            version=str(checkpoint["channel_versions"][CHANNEL]),
            step=int(found.metadata.get("step", -1)),
        )

    def message(self, index: int, text: str) -> BaseMessage:
        return _message(index, text)

    async def warm(self, session: str) -> None:
        await self._saver.aget_tuple(self._config("warm-up"))  # a thread that does not exist

    async def append(self, session: str, message: object) -> None:
        thread = self._threads.setdefault(session, _Thread())
        assert isinstance(message, BaseMessage)
        thread.messages.append(message)
        await self._put(session, thread)

    async def append_locked(self, session: str, message: object) -> None:
        raise NotImplementedError(NO_LOCK)

    async def seed(self, session: str, messages: list[object]) -> None:
        thread = self._threads.setdefault(session, _Thread())
        thread.messages.extend(m for m in messages if isinstance(m, BaseMessage))
        await self._put(session, thread)

    async def load(self, session: str) -> int:
        return len((await self._read(session)).messages)

    async def turn(self, session: str, m: int) -> None:
        thread = await self._read(session)
        for message in _turn_messages(m):
            thread.messages.append(message)
            await self._put(session, thread)

    async def aclose(self) -> None:
        self._threads.clear()
        await self._stack.aclose()


class LangGraphTarget:
    """``AsyncPostgresSaver`` in a database of its own."""

    label = "LangGraph AsyncPostgresSaver"
    shared_note: str | None = NO_SHARED
    lock_note: str | None = NO_LOCK
    cold_note: str | None = None

    def __init__(self, url: str) -> None:
        self._url = url

    async def prepare(self) -> None:
        async with AsyncPostgresSaver.from_conn_string(self._url) as saver:
            await saver.setup()

    async def open(self) -> LangGraphBackend:
        stack = contextlib.AsyncExitStack()
        saver = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(self._url))
        return LangGraphBackend(saver, stack)
