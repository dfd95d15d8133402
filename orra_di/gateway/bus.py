"""Run events shared between gateway replicas, for WebSocket clients that ``subscribe``.

A replica publishes the events of the runs it serves (not the text deltas: a token
stream is for the client that asked) on its session store's own notification channel:
PostgreSQL ``NOTIFY`` on the store's schema, Redis ``PUBLISH`` under the store's key
prefix. Every replica listens (one connection while it has subscribers, not one per
client) and hands each event to its local subscribers. The other stores (memory,
SQLite, files) serve one process, so their bus is in-process only.

PostgreSQL caps a notification at 8000 bytes: long texts are cut (``"truncated": true``);
the session itself has them whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

__all__ = ["EventBus", "bus_for"]

log = logging.getLogger("orra_di.gateway")

Published = dict[str, Any]
"""``{"namespace": key, "run": run id, "replica": id, "event": name, "data": {...}}``."""

_LIMIT = 7000  # bytes of JSON per notification, under PostgreSQL's 8000


def _shrink(message: Published) -> str:
    text = json.dumps(message)
    if len(text.encode()) <= _LIMIT:
        return text
    data = dict(message["data"])
    for field in ("message", "content", "text"):
        if isinstance(data.get(field), str):
            data[field] = data[field][:1000]
    if "arguments" in data:
        data["arguments"] = None
    data["truncated"] = True
    text = json.dumps({**message, "data": data})
    if len(text.encode()) > _LIMIT:  # still too long (a huge tool call list...): the gist
        keep = {k: data[k] for k in ("namespace", "agent", "id", "call_id") if k in data}
        text = json.dumps({**message, "data": {**keep, "truncated": True}})
    return text


class EventBus:
    """In-process fan-out; subclasses carry it between processes."""

    def __init__(self) -> None:
        self.replica = os.urandom(8).hex()
        self._subscribers: set[MemoryObjectSendStream[Published]] = set()
        self._pump: asyncio.Task[None] | None = None

    async def publish(self, message: Published) -> None:
        """Send ``message`` to every subscriber of every replica."""
        self._deliver(message)

    def _deliver(self, message: Published) -> None:
        for subscriber in list(self._subscribers):
            with suppress(anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                subscriber.send_nowait(message)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[AsyncIterator[Published]]:
        """Every message published from now on (this replica's and the others')."""
        send, receive = anyio.create_memory_object_stream[Published](1000)
        self._subscribers.add(send)
        if self._pump is None and self._listens:
            self._pump = asyncio.get_running_loop().create_task(self._listen_forever())
        try:
            async with receive:
                yield receive
        finally:
            self._subscribers.discard(send)
            send.close()
            if not self._subscribers and self._pump is not None:
                self._pump.cancel()
                self._pump = None

    _listens = False

    async def _listen_forever(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the server went away: listen again shortly
                log.warning("gateway event bus: %s: %s; listening again", type(exc).__name__, exc)
                await anyio.sleep(1)

    async def _listen(self) -> None:
        raise NotImplementedError

    def _received(self, payload: str | bytes) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("replica") != self.replica:
            self._deliver(message)


class PostgresBus(EventBus):
    _listens = True

    def __init__(self, store: Any) -> None:
        super().__init__()
        self._store = store
        digest = hashlib.sha256(store.schema.encode()).hexdigest()[:16]
        self._channel = f"orra_gateway_{digest}"

    async def publish(self, message: Published) -> None:
        self._deliver(message)
        async with self._store.connection() as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, _shrink(message)))

    async def _listen(self) -> None:
        async with self._store.connection() as conn:
            await conn.execute(f'LISTEN "{self._channel}"')
            try:
                async for note in conn.notifies():
                    self._received(note.payload)
            finally:
                with anyio.CancelScope(shield=True), suppress(Exception):
                    await conn.execute("UNLISTEN *")  # back to the pool: stop listening


class RedisBus(EventBus):
    _listens = True

    def __init__(self, store: Any) -> None:
        super().__init__()
        self._client = store.client
        self._channel = f"{store.key_prefix}gateway:events"

    async def publish(self, message: Published) -> None:
        self._deliver(message)
        await self._client.publish(self._channel, json.dumps(message))

    async def _listen(self) -> None:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                if message is not None and message.get("type") == "message":
                    self._received(message["data"])
        finally:
            with anyio.CancelScope(shield=True), suppress(Exception):
                await pubsub.aclose()


def bus_for(store: object) -> EventBus:
    """The bus that reaches every replica sharing ``store``."""
    module = type(store).__module__
    if module == "orra_di.stores.postgres":
        return PostgresBus(store)
    if module == "orra_di.stores.redis":
        return RedisBus(store)
    return EventBus()
