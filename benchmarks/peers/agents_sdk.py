"""The OpenAI Agents SDK's sessions (``openai-agents``): ``SQLiteSession`` and ``RedisSession``.

Mapping onto the benchmark (see ``bench_stores.py``):

- a step is ``add_items([item])`` with one item;
- loading a session is ``get_items()`` (the whole history, as ``Runner`` reads it);
- a store object is one ``SQLiteSession`` per conversation on a shared file,
  or one ``redis.asyncio`` client shared by ``RedisSession`` objects;
- a W1/W3 user message is ``get_items()`` then four ``add_items`` calls: the
  user message, the assistant's ``function_call``, its ``function_call_output``
  and the assistant's answer (the items a Runner turn produces; no LLM).

Neither session type has a lock that other processes respect, so the
"one session, via lock()" figure does not apply. Their appends are atomic
(one SQLite transaction; one Redis MULTI), so 8 processes appending to one
session without a lock is measured, and checked for lost items.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis.asyncio as aioredis
from agents import SQLiteSession
from agents.extensions.memory.redis_session import RedisSession
from bench_core import ANSWER, TOOL_OUTPUT

Item = dict[str, Any]

NO_LOCK = "no lock that other processes respect"


def _message(index: int, text: str) -> Item:
    return {"role": "user" if index % 2 == 0 else "assistant", "content": text}


def _turn_items(m: int) -> list[Item]:
    call_id = f"call_{m}"
    return [
        {"role": "user", "content": f"message {m}"},
        {
            "type": "function_call",
            "id": f"fc_{m}",
            "call_id": call_id,
            "name": "lookup",
            "arguments": json.dumps({"key": "k"}),
            "status": "completed",
        },
        {"type": "function_call_output", "call_id": call_id, "output": TOOL_OUTPUT},
        {
            "type": "message",
            "id": f"msg_{m}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": ANSWER, "annotations": []}],
        },
    ]


class _SessionsBackend:
    """What both session types share: one session object per conversation, made on first use."""

    def __init__(self) -> None:
        self._sessions: dict[str, Any] = {}

    def _new(self, session_id: str) -> Any:
        raise NotImplementedError

    def _session(self, session_id: str) -> Any:
        found = self._sessions.get(session_id)
        if found is None:
            found = self._sessions[session_id] = self._new(session_id)
        return found

    def message(self, index: int, text: str) -> Item:
        return _message(index, text)

    async def warm(self, session: str) -> None:
        # Opens the session object and its connection; reads at most one item.
        await self._session(session).get_items(limit=1)

    async def append(self, session: str, message: object) -> None:
        await self._session(session).add_items([message])

    async def append_locked(self, session: str, message: object) -> None:
        raise NotImplementedError(NO_LOCK)

    async def seed(self, session: str, messages: list[object]) -> None:
        await self._session(session).add_items(messages)

    async def load(self, session: str) -> int:
        return len(await self._session(session).get_items())

    async def turn(self, session: str, m: int) -> None:
        conversation = self._session(session)
        await conversation.get_items()
        for item in _turn_items(m):
            await conversation.add_items([item])


class _SQLiteBackend(_SessionsBackend):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def _new(self, session_id: str) -> SQLiteSession:
        return SQLiteSession(session_id, self._path)

    async def aclose(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()


class SQLiteSessionTarget:
    """``SQLiteSession`` on one file (the SDK's defaults: WAL, ``synchronous=FULL``)."""

    label = "Agents SDK SQLiteSession (file)"
    shared_note: str | None = None
    lock_note: str | None = NO_LOCK
    cold_note: str | None = None

    def __init__(self, tmp: str) -> None:
        self._path = os.path.join(tmp, "agents.sqlite3")

    async def prepare(self) -> None:
        SQLiteSession("prepare", self._path).close()  # creates the schema

    async def open(self) -> _SQLiteBackend:
        return _SQLiteBackend(self._path)


class _RedisBackend(_SessionsBackend):
    def __init__(self, url: str, key_prefix: str) -> None:
        super().__init__()
        self._client = aioredis.from_url(url)
        self._prefix = key_prefix

    def _new(self, session_id: str) -> RedisSession:
        return RedisSession(session_id, redis_client=self._client, key_prefix=self._prefix)

    async def warm(self, session: str) -> None:
        await self._client.ping()
        self._session(session)

    async def aclose(self) -> None:
        self._sessions.clear()
        await self._client.aclose()


class RedisSessionTarget:
    """``RedisSession`` with one shared ``redis.asyncio`` client per store object."""

    label = "Agents SDK RedisSession"
    shared_note: str | None = None
    lock_note: str | None = NO_LOCK
    cold_note: str | None = None

    def __init__(self, url: str, key_prefix: str) -> None:
        self._url = url
        self._prefix = key_prefix.rstrip(":")  # the SDK adds its own ":" separator

    async def prepare(self) -> None:
        return None

    async def open(self) -> _RedisBackend:
        return _RedisBackend(self._url, self._prefix)
