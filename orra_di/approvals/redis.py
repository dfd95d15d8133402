"""Approvals in Redis, under the session store's key prefix, on its client.

Keys (``P`` is the store's ``key_prefix``):

``P approval:<id>`` (STRING)
    The record's JSON.
``P approvals:pending`` (ZSET, score = requested time)
    The ids still waiting; membership is what "pending" means to ``decide``.
``P approvals:decided`` (ZSET, score = decision time)
    The audit trail, newest last.

Adding and deciding are Lua scripts, so each is atomic; a decision is published
on the channel ``P approvals`` in the same script, and waiting runs of every
process subscribed to it wake up (one subscription per approval store, see
:mod:`orra_di.approvals._notify`). They also read the record again every
``poll_interval`` seconds in case a message was missed (pub/sub does not
deliver to a subscriber that is reconnecting).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import anyio
from redis.exceptions import RedisError

from orra_di.approvals._notify import SharedSubscription
from orra_di.approvals.model import ApprovalRecord
from orra_di.approvals.stores import ApprovalStore
from orra_di.errors import ApprovalError, StoreError
from orra_di.store import in_subtree
from orra_di.stores.redis import RedisStore

__all__ = ["RedisApprovalStore"]

_T = TypeVar("_T")

DEFAULT_POLL_INTERVAL = 5.0

_ADD = """
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == 'pending' then
    redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
    redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
end
return 1
"""

_DECIDE = """
local current = redis.call('GET', KEYS[1])
if not current then return false end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return current end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return ARGV[2]
"""

_BATCH = 200


class RedisApprovalStore(ApprovalStore):
    """Approval records beside the sessions of ``sessions`` (same server, same prefix)."""

    def __init__(
        self, sessions: RedisStore, *, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        super().__init__(poll_interval=poll_interval)
        self._sessions = sessions
        self._client = sessions.client
        prefix = sessions.key_prefix
        self._record_prefix = f"{prefix}approval:"
        self._pending_key = f"{prefix}approvals:pending"
        self._decided_key = f"{prefix}approvals:decided"
        self._channel = f"{prefix}approvals"
        self._add = self._client.register_script(_ADD)
        self._decide = self._client.register_script(_DECIDE)
        self._shared = SharedSubscription(self._subscribe)

    def _key(self, request_id: str) -> str:
        return self._record_prefix + request_id

    async def _run(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except RedisError as exc:
            reason = str(exc) or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} ({self._sessions!r})") from exc

    async def _insert(self, record: ApprovalRecord) -> None:
        moment = record.requested_at if record.decided_at is None else record.decided_at
        keys = [self._key(record.id), self._pending_key, self._decided_key]
        args = [record.id, record.to_json(), record.status.value, repr(moment.timestamp())]
        await self._run(
            f"record approval request {record.id}", lambda: self._add(keys=keys, args=args)
        )

    async def _load(self, request_id: str) -> ApprovalRecord | None:
        body: Any = await self._run(
            f"read approval request {request_id}", lambda: self._client.get(self._key(request_id))
        )
        return None if body is None else ApprovalRecord.from_json(body)

    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        assert record.decided_at is not None
        keys = [self._key(record.id), self._pending_key, self._decided_key]
        args = [record.id, record.to_json(), repr(record.decided_at.timestamp()), self._channel]
        body: Any = await self._run(
            f"decide approval request {record.id}", lambda: self._decide(keys=keys, args=args)
        )
        return None if body is None else ApprovalRecord.from_json(body)

    async def _records(self, ids: list[str], what: str) -> list[ApprovalRecord]:
        if not ids:
            return []
        bodies: list[Any] = await self._run(
            what, lambda: self._client.mget([self._key(i) for i in ids])
        )
        return [ApprovalRecord.from_json(b) for b in bodies if b is not None]

    async def _pending_ids(self) -> list[str]:
        ids: Any = await self._client.zrange(self._pending_key, 0, -1)
        return list(ids)

    async def _decided_ids(self, start: int) -> list[str]:
        ids: Any = await self._client.zrevrange(self._decided_key, start, start + _BATCH - 1)
        return list(ids)

    async def _pending(self) -> list[ApprovalRecord]:
        what = "list approval requests"
        ids: list[str] = await self._run(what, self._pending_ids)
        return [r for r in await self._records(ids, what) if r.pending]

    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        what = "read the approval trail"
        found: list[ApprovalRecord] = []
        start = 0
        while len(found) < limit:
            ids = await self._run(what, lambda s=start: self._decided_ids(s))  # type: ignore[misc]
            if not ids:
                break
            start += len(ids)
            found += [
                r
                for r in await self._records(ids, what)
                if namespace is None or in_subtree(r.namespace, namespace)
            ]
        return found[:limit]

    async def _delete(self, request_ids: list[str]) -> int:
        async def delete() -> int:
            pipe = self._client.pipeline(transaction=True)
            pipe.delete(*[self._key(i) for i in request_ids])
            pipe.zrem(self._pending_key, *request_ids)
            pipe.zrem(self._decided_key, *request_ids)
            deleted, _, _ = await pipe.execute()
            return int(deleted)

        return await self._run("erase approval requests", delete)

    # -- waiting ---------------------------------------------------------------------

    async def wait(self, request_id: str) -> ApprovalRecord:
        if await self.get(request_id) is None:
            raise ApprovalError(f"no approval request {request_id}")

        async def check() -> ApprovalRecord | None:
            current = await self._load(request_id)
            if current is None:
                raise ApprovalError(f"no approval request {request_id}")
            return None if current.pending else current

        return await self._shared.wait(request_id, check, self.poll_interval)

    @asynccontextmanager
    async def _subscribe(self) -> AsyncIterator[_Listening]:
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._run(
                "listen for approval decisions", lambda: pubsub.subscribe(self._channel)
            )
            yield _Listening(pubsub, self._run)
        finally:
            with anyio.CancelScope(shield=True):
                with suppress(RedisError):
                    await pubsub.aclose()


class _Listening:
    def __init__(self, pubsub: Any, run: Callable[..., Awaitable[Any]]) -> None:
        self._pubsub = pubsub
        self._run = run

    async def next(self, seconds: float) -> list[str]:
        message = await self._run(
            "listen for approval decisions",
            lambda: self._pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds),
        )
        if message is None or message.get("type") != "message":
            return []
        return [str(message["data"])]
