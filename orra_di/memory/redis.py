"""Memories in Redis, under the session store's key prefix, on its client.

Keys (``P`` is the store's ``key_prefix``):

``P memory:<id>`` (HASH)
    ``body`` (the entry's JSON, vector included) and ``namespace``.
``P memories:<namespace>`` (ZSET, score = creation time)
    The ids of one namespace's memories.
``P memory-namespaces`` (SET)
    Every namespace that has memories, for erasing a subtree.

Redis has no full-text index without the RediSearch module, which plain servers lack,
so searching reads the visible namespaces' entries (one ``ZRANGE`` and one pipelined
read) and scores them in the process like the in-memory store: whole-word keyword
score, brute-force cosine. That suits per-person memories (thousands); for a large
shared corpus use PostgreSQL or SQLite. Storing, deleting and erasing are Lua scripts,
so each is atomic.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

from orra_di.errors import StoreError
from orra_di.memory.model import MemoryEntry
from orra_di.memory.stores import _ScanStore
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.stores.redis import RedisStore

__all__ = ["RedisMemoryStore"]

_T = TypeVar("_T")

_STORE = """
local old = redis.call('HGET', KEYS[1], 'namespace')
if old and old ~= ARGV[2] then redis.call('ZREM', ARGV[5] .. old, ARGV[1]) end
redis.call('HSET', KEYS[1], 'body', ARGV[3], 'namespace', ARGV[2])
redis.call('ZADD', ARGV[5] .. ARGV[2], ARGV[4], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""

_DELETE = """
local ns = redis.call('HGET', KEYS[1], 'namespace')
if not ns then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[2] .. ns, ARGV[1])
return 1
"""

_DELETE_TREE = """
local prefix, below = ARGV[1], ARGV[1] .. ':'
local n = 0
for _, ns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    if ns == prefix or string.sub(ns, 1, #below) == below then
        local set = ARGV[2] .. ns
        for _, id in ipairs(redis.call('ZRANGE', set, 0, -1)) do
            n = n + redis.call('DEL', ARGV[3] .. id)
        end
        redis.call('DEL', set)
        redis.call('SREM', KEYS[1], ns)
    end
end
return n
"""


class RedisMemoryStore(_ScanStore):
    """Memories beside the sessions of ``sessions`` (same server, same prefix)."""

    def __init__(self, sessions: RedisStore) -> None:
        self._sessions = sessions
        self._client = sessions.client
        prefix = sessions.key_prefix
        self._entry_prefix = f"{prefix}memory:"
        self._set_prefix = f"{prefix}memories:"
        self._namespaces = f"{prefix}memory-namespaces"
        register = self._client.register_script
        self._store_script = register(_STORE)
        self._delete_script = register(_DELETE)
        self._delete_tree_script = register(_DELETE_TREE)

    async def _run(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except RedisError as exc:
            reason = str(exc) or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} ({self._sessions!r})") from exc

    async def store(self, entry: MemoryEntry) -> str:
        keys = [self._entry_prefix + entry.id, self._namespaces]
        args = [
            entry.id,
            entry.namespace,
            entry.to_json(),
            repr(entry.created_at.timestamp()),
            self._set_prefix,
        ]
        await self._run(
            f"store memory {entry.id}", lambda: self._store_script(keys=keys, args=args)
        )
        return entry.id

    async def get(self, memory_id: str) -> MemoryEntry | None:
        body: Any = await self._run(
            f"read memory {memory_id}",
            lambda: self._client.hget(self._entry_prefix + memory_id, "body"),
        )
        return None if body is None else MemoryEntry.from_json(body)

    async def delete(self, memory_id: str) -> bool:
        done: Any = await self._run(
            f"delete memory {memory_id}",
            lambda: self._delete_script(
                keys=[self._entry_prefix + memory_id], args=[memory_id, self._set_prefix]
            ),
        )
        return bool(done)

    async def _entries(self, keys: builtins.list[str]) -> builtins.list[MemoryEntry]:
        async def read() -> builtins.list[Any]:
            ids: builtins.list[str] = []
            for key in keys:
                members: Any = await self._client.zrange(self._set_prefix + key, 0, -1)
                ids += members
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for memory_id in ids:
                pipe.hget(self._entry_prefix + memory_id, "body")
            return list(await pipe.execute())

        bodies = await self._run("read memories", read)
        return [MemoryEntry.from_json(b) for b in bodies if b is not None]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key
        count: Any = await self._run(
            f"erase the memories under {prefix!r}",
            lambda: self._delete_tree_script(
                keys=[self._namespaces], args=[prefix, self._set_prefix, self._entry_prefix]
            ),
        )
        return int(count)
