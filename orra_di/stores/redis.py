"""Redis: sessions shared by every process that can reach one Redis server.

Data layout
-----------
Every key starts with ``key_prefix`` (``P``, default ``orra:``); ``K`` is the
namespace key (``acme:alice``), used verbatim: no key is ever matched by a
glob pattern (no ``KEYS``/``SCAN``), so ``*?[]`` in namespaces are plain text.

``P session:K`` (HASH)
    ``segments`` (JSON list), ``created_at`` and ``updated_at`` (fixed-width
    UTC ISO 8601), ``metadata`` (JSON object), ``origin`` (a random id given
    when the session is created, kept by every write: which session a lease
    is on) and ``revision``: a random id that every write replaces. It never
    repeats for a key, not even after a delete, an expiry or a server restart
    that lost the data, so it is what the load cache checks. The hash is what
    makes a session exist.
``P messages:K`` (LIST)
    One JSON document per message, oldest first: appending is ``RPUSH``,
    O(1) per message. An empty session has no list.
``P index:keys`` (ZSET, every score 0)
    Every namespace key, so ``ZRANGEBYLEX`` lists them sorted (byte order of
    UTF-8 is code-point order, as Python sorts). A prefix's subtree is the
    prefix itself plus ``[prefix:`` … ``(prefix;``: whole segments only.
``P index:updated`` (ZSET, score = ``updated_at`` in epoch seconds)
    What :meth:`RedisStore.prune` scans.
``P lease:K`` (STRING with ``PX`` expiry) and ``P fence:K`` (counter)
    The single-writer lease ``"<fence>:<random token>"`` and the last fence
    number handed out for ``K`` (see below).
``P waiters:K`` (ZSET, score = arrival in µs) and ``P waiting:K`` (HASH)
    The runs waiting for the lease, by token, and when each one's place
    expires; they exist only while someone waits.

Every write is one Lua script (``EVALSHA``), so it is atomic across these keys
and one round trip: an append pushes the messages, replaces the revision,
sets ``updated_at`` (and the metadata, if given) and updates both indexes. A
load is one ``HGET revision`` when the session is in this process's cache at
that revision; otherwise one script reads the header and the messages,
joined 32 to a reply string (after that check, if anything is cached). ``list``,
``delete``, ``delete_tree``, ``trim`` and each batch of ``prune`` are scripts
too. Some scripts touch keys they find in the indexes, so the store needs one
Redis server, not a cluster.

Expiry
------
With ``session_ttl``, every write sets that expiry on the session's hash and
list, and Redis drops idle sessions by itself. A session under a lease is
never idle: claiming and renewing the lease lengthen its keys' expiry to at
least ``lease_seconds``, and writes under it set ``max(session_ttl,
lease_seconds)``; releasing the lease starts the ``session_ttl`` anew. The indexes cannot expire
members, so their stale entries are removed three ways: each write also looks
at the 16 oldest entries idle for longer than ``session_ttl`` and drops those
whose hash has expired, ``list`` skips and drops every entry whose hash has
gone, and ``prune`` removes everything idle for longer than its argument. So
the indexes stay about as large as the live data, without a scan.

Single writer across processes
------------------------------
:meth:`RedisStore.lock` takes the in-process lock, then the lease: a script
that, if ``P lease:K`` is free, increments ``P fence:K`` (seeded from the
server clock in microseconds when absent, so fences keep growing even if the
counter expires) and sets the lease to ``"<fence>:<token>"`` with
``PX lease_seconds``. A task renews it every ``lease_seconds / 3``; it is
released by a compare-and-delete script (shielded from cancellation). A
process that dies frees its sessions when the lease expires.

Appends, saves and trims by a store holding the session's lease first check,
in the same script, that the lease is still its own. A lease that expired
without anyone taking it is re-claimed if the fence counter still holds our
fence (nobody locked the session since); otherwise the write is refused with
:class:`~orra_di.errors.StoreError` and changes nothing. The same script
checks that the session's ``origin`` is the one the lease was claimed on (or
that the lease's own first write created): a session deleted, pruned or
expired under the lease is refused, not recreated with only the later steps.

The claim script queues a run that finds the lease taken, or an older live
waiter, and lets only the first waiter take a free lease; each attempt
renews the waiter's place for ``lease_seconds``. The fence counter
lives ten leases (at least a minute) after the last acquisition or renewal.

Connections
-----------
One ``redis.asyncio`` client with its connection pool, speaking RESP2: with it
the pool sees that the server closed an idle connection (a restart, ``CLIENT
KILL``, an idle timeout) and reconnects before sending. Commands are not
retried, since a write whose reply was lost may have run: an operation cut off
in flight fails with a :class:`~orra_di.errors.StoreError`, and as every write
is one script, it either happened completely or not at all. Options such as
``socket_timeout``, ``max_connections`` or ``client_name`` go in the URL's
query string. The URL's password never appears in ``repr`` or in errors.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import anyio

from orra_di.errors import ConfigurationError, NamespaceError, StoreError, install_hint
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.redaction import check_password_parsed, mask_url
from orra_di.session import Session, utc_now
from orra_di.store import check_keep_last, prune_cutoff
from orra_di.stores._cache import SessionCache
from orra_di.stores._codec import (
    Held,
    dump_messages,
    dump_metadata,
    hold_lease,
    lease_lapsed,
    load_messages,
    session_gone,
    time_text,
)
from orra_di.stores._locks import KeyedLocks

try:
    from redis.asyncio import Redis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised by a test that hides redis
    raise ConfigurationError(
        f"the Redis store needs the redis package: {install_hint('redis')}"
    ) from exc

__all__ = ["RedisStore"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

_PRUNE_BATCH = 500
_FENCE_LEASES = 10  # the fence counter outlives the lease by this many lease periods
_MIN_FENCE_MS = 60_000

# -- Lua ------------------------------------------------------------------------------------
# Shared functions, prepended to the scripts that use them. ``held`` is the fence check;
# ``subtree`` lists a key and the keys below it (whole segments); ``drop`` deletes sessions
# by key and returns how many existed; ``touch`` updates both indexes and, with a TTL, sets
# the expiry and drops a few index entries whose session expired.

_HELD = """
local function held(lease, fence, value, lease_ms)
  if value == '' then return true end
  local current = redis.call('GET', lease)
  if current == value then return true end
  if not current and redis.call('GET', fence) == string.match(value, '^(%d+):') then
    redis.call('SET', lease, value, 'PX', lease_ms)
    return true
  end
  return false
end
"""

# The holder's session check: ``origin`` ('' if unknown) is the origin of the session the
# lease is on. Returns the session's origin, or nil if it is not that session (deleted,
# expired, or created anew under the lease).
_SAME = """
local function same(session, origin)
  local current = redis.call('HGET', session, 'origin')
  if origin ~= '' and current ~= origin then return nil end
  return current
end
"""

# Lengthen (never shorten) the expiry of a session's keys to ``ms``: a held session
# outlives its lease. Keys without an expiry are left alone.
_KEEP = """
local function keep(ms, ...)
  for _, key in ipairs({...}) do
    local left = redis.call('PTTL', key)
    if left >= 0 and left < tonumber(ms) then redis.call('PEXPIRE', key, ms) end
  end
end
"""

_SUBTREE = """
local function subtree(keys, prefix)
  local members = redis.call('ZRANGEBYLEX', keys, '[' .. prefix, '[' .. prefix)
  local below = redis.call('ZRANGEBYLEX', keys, '[' .. prefix .. ':', '(' .. prefix .. ';')
  for _, member in ipairs(below) do members[#members + 1] = member end
  return members
end
"""

_DROP = """
local function drop(members, keys, updated, session_prefix, messages_prefix)
  local existed = 0
  for _, member in ipairs(members) do
    existed = existed + redis.call('DEL', session_prefix .. member)
    redis.call('DEL', messages_prefix .. member)
    redis.call('ZREM', keys, member)
    redis.call('ZREM', updated, member)
  end
  return existed
end
"""

_TOUCH = (
    _DROP
    + """
local function touch(session, messages, keys, updated, member, score, ttl_ms, cutoff,
                     session_prefix, messages_prefix)
  redis.call('ZADD', keys, 0, member)
  redis.call('ZADD', updated, score, member)
  if ttl_ms ~= '0' then
    redis.call('PEXPIRE', session, ttl_ms)
    redis.call('PEXPIRE', messages, ttl_ms)
    local gone = {}
    for _, idle in ipairs(redis.call('ZRANGEBYSCORE', updated, '-inf', '(' .. cutoff,
                                     'LIMIT', 0, 16)) do
      if redis.call('EXISTS', session_prefix .. idle) == 0 then gone[#gone + 1] = idle end
    end
    drop(gone, keys, updated, session_prefix, messages_prefix)
  end
end

local function push(messages, first)
  for i = first, #ARGV, 1000 do
    redis.call('RPUSH', messages, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
"""
)

# KEYS: session, messages, index:keys, index:updated, lease, fence.
# ARGV: 1 member, 2 new revision, 3 now, 4 now as score, 5 metadata or '', 6 segments,
# 7 ttl ms or '0', 8 sweep cutoff, 9 lease value or '', 10 lease ms, 11 session key prefix,
# 12 messages key prefix, 13 the lease's session origin or '', 14... message bodies.
# Returns {previous revision ('' for a new session), origin}, nil if the lease was lost,
# or 0 if the session the lease is on is gone.
_APPEND = (
    _HELD
    + _SAME
    + _TOUCH
    + """
if not held(KEYS[5], KEYS[6], ARGV[9], ARGV[10]) then return false end
local origin = same(KEYS[1], ARGV[13])
if origin == nil then return 0 end
local previous = redis.call('HGET', KEYS[1], 'revision')
if previous then
  redis.call('HSET', KEYS[1], 'revision', ARGV[2], 'updated_at', ARGV[3])
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'metadata', ARGV[5]) end
  if not origin then  -- written before sessions had one
    origin = ARGV[2]
    redis.call('HSET', KEYS[1], 'origin', origin)
  end
else
  previous = ''
  origin = ARGV[2]
  redis.call('DEL', KEYS[2])  -- what is left of an expired session
  local metadata = ARGV[5]
  if metadata == '' then metadata = '{}' end
  redis.call('HSET', KEYS[1], 'segments', ARGV[6], 'created_at', ARGV[3],
             'updated_at', ARGV[3], 'metadata', metadata, 'revision', ARGV[2], 'origin', origin)
end
push(KEYS[2], 14)
touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[4], ARGV[7], ARGV[8], ARGV[11],
      ARGV[12])
return {previous, origin}
"""
)

# KEYS as for _APPEND. ARGV: 1 member, 2 revision, 3 created_at, 4 updated_at, 5 its score,
# 6 metadata, 7 segments, 8 ttl ms, 9 sweep cutoff, 10 lease value, 11 lease ms,
# 12 session key prefix, 13 messages key prefix, 14 the lease's session origin or '',
# 15... message bodies. Returns the session's origin (a save keeps it), nil if the lease
# was lost, 0 if the session the lease is on is gone.
_SAVE = (
    _HELD
    + _SAME
    + _TOUCH
    + """
if not held(KEYS[5], KEYS[6], ARGV[10], ARGV[11]) then return false end
local origin = same(KEYS[1], ARGV[14])
if origin == nil then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'segments', ARGV[7], 'created_at', ARGV[3],
           'updated_at', ARGV[4], 'metadata', ARGV[6], 'revision', ARGV[2],
           'origin', origin or ARGV[2])
push(KEYS[2], 15)
touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[5], ARGV[8], ARGV[9], ARGV[12],
      ARGV[13])
return origin or ARGV[2]
"""
)

# KEYS as for _APPEND. ARGV: 1 member, 2 keep_last, 3 new revision, 4 now, 5 its score,
# 6 ttl ms, 7 sweep cutoff, 8 lease value, 9 lease ms, 10 session key prefix,
# 11 messages key prefix, 12 the lease's session origin or ''. Returns how many messages
# went, -1 if the lease was lost, or -2 if the session the lease is on is gone.
# The cut moves past tool-result messages (a JSON ``tool_results`` list that is not empty),
# as orra_di.store.trim_start does; a message cjson cannot decode is not a tool result
# (those are shallow: only deep tool-call arguments exceed cjson's nesting limit).
_TRIM = (
    _HELD
    + _SAME
    + _TOUCH
    + """
local function is_result(body)
  local ok, message = pcall(cjson.decode, body)
  return ok and type(message) == 'table' and type(message.tool_results) == 'table'
    and next(message.tool_results) ~= nil
end

if not held(KEYS[5], KEYS[6], ARGV[8], ARGV[9]) then return -1 end
if same(KEYS[1], ARGV[12]) == nil then return -2 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local count = redis.call('LLEN', KEYS[2])
local start = math.max(count - tonumber(ARGV[2]), 0)
local scanning = true
while scanning and start < count do
  local batch = redis.call('LRANGE', KEYS[2], start, start + 63)
  for _, body in ipairs(batch) do
    if not is_result(body) then scanning = false break end
    start = start + 1
  end
end
if start > 0 then
  redis.call('LTRIM', KEYS[2], start, -1)
  redis.call('HSET', KEYS[1], 'revision', ARGV[3], 'updated_at', ARGV[4])
  touch(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[5], ARGV[6], ARGV[7], ARGV[10],
        ARGV[11])
end
return start
"""
)

# KEYS: session, messages. Returns nil, or the revision, created_at, updated_at, metadata
# and then the message bodies joined by commas, 32 to a string: redis-py parses every reply
# element in Python (some 6 µs each) and Lua's table.concat slows down on long lists, so
# 10,000 messages arrive in about 15 ms instead of 70.
_READ = """
local found = redis.call('HMGET', KEYS[1], 'revision', 'created_at', 'updated_at', 'metadata')
if not found[1] then return false end
local bodies = redis.call('LRANGE', KEYS[2], 0, -1)
for i = 1, #bodies, 32 do
  found[#found + 1] = table.concat(bodies, ',', i, math.min(i + 31, #bodies))
end
return found
"""

# KEYS: index:keys, index:updated. ARGV: 1 session key prefix, 2 messages key prefix,
# 3 namespace key. Returns 1 if the session existed.
_DELETE = (
    _DROP
    + """
return drop({ARGV[3]}, KEYS[1], KEYS[2], ARGV[1], ARGV[2])
"""
)

# KEYS: index:keys, index:updated. ARGV: 1 session key prefix, 2 messages key prefix,
# 3 namespace key. Deletes the key and its subtree; returns how many sessions existed.
_DELETE_TREE = (
    _SUBTREE
    + _DROP
    + """
return drop(subtree(KEYS[1], ARGV[3]), KEYS[1], KEYS[2], ARGV[1], ARGV[2])
"""
)

# KEYS: index:keys, index:updated. ARGV: 1 session key prefix, 2 messages key prefix,
# 3 cutoff score, 4 batch size, 5 lease key prefix, 6 offset (held sessions passed over).
# Sessions under a live lease are spared: a run is writing them. Returns
# {sessions deleted, index entries examined}.
_PRUNE = (
    _DROP
    + """
local members = redis.call(
  'ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3], 'LIMIT', ARGV[6], ARGV[4])
local idle = {}
for _, m in ipairs(members) do
  if redis.call('EXISTS', ARGV[5] .. m) == 0 then idle[#idle + 1] = m end
end
return {drop(idle, KEYS[1], KEYS[2], ARGV[1], ARGV[2]), #members}
"""
)

# KEYS: index:keys, index:updated. ARGV: 1 session key prefix, 2 messages key prefix,
# 3 namespace key or '' for all. Returns the live members, dropping those that expired.
_LIST = (
    _SUBTREE
    + _DROP
    + """
local members
if ARGV[3] == '' then
  members = redis.call('ZRANGEBYLEX', KEYS[1], '-', '+')
else
  members = subtree(KEYS[1], ARGV[3])
end
local live, gone = {}, {}
for _, member in ipairs(members) do
  if redis.call('EXISTS', ARGV[1] .. member) == 1 then
    live[#live + 1] = member
  else
    gone[#gone + 1] = member
  end
end
drop(gone, KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return live
"""
)

# KEYS: lease, fence, waiters, waiting, session, messages. ARGV: 1 token, 2 lease ms,
# 3 fence ms, 4 a new origin (for a session written before sessions had one).
# Takes the lease if it is free and no live waiter queued before us, else queues us (or
# keeps our place: a waiter's place lives one lease, renewed by each of its attempts).
# Returns {lease value, origin of the session ('' if none)}, or nil if queued.
_ACQUIRE = (
    _KEEP
    + """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local head
repeat  -- drop waiters that stopped asking (gave up without a word, or died)
  head = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  local expired = head and tonumber(redis.call('HGET', KEYS[4], head) or '0') <= now
  if expired then
    redis.call('ZREM', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
  end
until not expired
if redis.call('EXISTS', KEYS[1]) == 1 or (head and head ~= ARGV[1]) then
  if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
    redis.call('ZADD', KEYS[3], string.format('%d', now), ARGV[1])
  end
  redis.call('HSET', KEYS[4], ARGV[1], string.format('%d', now + tonumber(ARGV[2]) * 1000))
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
  redis.call('PEXPIRE', KEYS[4], ARGV[2])
  return false
end
if head then
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HDEL', KEYS[4], ARGV[1])
end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], clock[1] .. string.format('%06d', tonumber(clock[2])))
end
local value = string.format('%d', redis.call('INCR', KEYS[2])) .. ':' .. ARGV[1]
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
local origin = ''
if redis.call('EXISTS', KEYS[5]) == 1 then
  origin = redis.call('HGET', KEYS[5], 'origin')
  if not origin then
    origin = ARGV[4]
    redis.call('HSET', KEYS[5], 'origin', origin)
  end
  keep(ARGV[2], KEYS[5], KEYS[6])
end
return {value, origin}
"""
)

# KEYS: lease, fence, session, messages. ARGV: 1 lease value, 2 lease ms, 3 fence ms.
# 1 if still held. A held session's keys live at least as long as the lease.
_RENEW = (
    _HELD
    + _KEEP
    + """
if not held(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
keep(ARGV[2], KEYS[3], KEYS[4])
return 1
"""
)

# KEYS: lease, waiters, waiting, session, messages. ARGV: 1 owner token, 2 ttl ms or '0'.
# The lease value is "<fence>:<token>"; matching the token alone lets a claim whose reply
# was lost (a cancelled wait) be released too. Leaves the queue; with a TTL, the session
# is idle from now on (the run kept it alive until here).
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, -(#ARGV[1] + 1)) == ':' .. ARGV[1] then
  if ARGV[2] ~= '0' then
    for _, key in ipairs({KEYS[4], KEYS[5]}) do
      if redis.call('PTTL', key) >= 0 then redis.call('PEXPIRE', key, ARGV[2]) end
    end
  end
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisStore:
    """Sessions in Redis; see the module docstring for the layout and the guarantees.

    ``key_prefix`` starts every key (several stores can share a database);
    ``lease_seconds`` bounds how long a crashed process keeps a session
    locked; ``session_ttl`` (seconds, ``None`` = keep) lets Redis drop
    sessions idle for that long; ``session_cache`` is how many parsed
    sessions this object keeps for cheap reloads.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "orra:",
        lease_seconds: float = 30.0,
        session_ttl: float | None = None,
        session_cache: int = 1000,
    ) -> None:
        if lease_seconds <= 0:
            raise ConfigurationError(f"lease_seconds must be positive, got {lease_seconds}")
        if session_ttl is not None and session_ttl <= 0:
            raise ConfigurationError(f"session_ttl must be positive or None, got {session_ttl}")
        self._where = mask_url(url)
        try:
            self._client = Redis.from_url(url, decode_responses=True, protocol=2)
            pool = self._client.connection_pool  # unknown URL options fail here, not later
            pool.connection_class(**pool.connection_kwargs)
        except (ValueError, TypeError) as exc:
            # A password cut short by an unescaped "/" fails here, naming part of it.
            check_password_parsed(url, None, what="Redis")
            raise ConfigurationError(
                f"invalid Redis URL {self._where}: {_url_problem(exc)}"
            ) from None
        password = pool.connection_kwargs.get("password")
        check_password_parsed(url, password, what="Redis")
        self._where = mask_url(url, [password])
        self._prefix = key_prefix
        self._keys = f"{key_prefix}index:keys"
        self._updated = f"{key_prefix}index:updated"
        self._lease_seconds = lease_seconds
        self._lease_ms = str(max(round(lease_seconds * 1000), 1))
        self._fence_ms = str(max(round(lease_seconds * 1000 * _FENCE_LEASES), _MIN_FENCE_MS))
        self._ttl = session_ttl
        self._ttl_ms = "0" if session_ttl is None else str(max(round(session_ttl * 1000), 1))
        self._cache = SessionCache(session_cache)
        self._locks = KeyedLocks()
        self._held: dict[str, Held] = {}  # key -> a lease this store holds
        self._closed = False
        script = self._client.register_script
        self._read, self._append, self._save = script(_READ), script(_APPEND), script(_SAVE)
        self._trim = script(_TRIM)
        self._delete, self._delete_tree = script(_DELETE), script(_DELETE_TREE)
        self._prune, self._list = script(_PRUNE), script(_LIST)
        self._acquire, self._renew, self._release = (
            script(_ACQUIRE),
            script(_RENEW),
            script(_RELEASE),
        )

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r}, key_prefix={self._prefix!r})"

    # -- the SessionStore operations --------------------------------------------------

    async def load(self, namespace: NamespaceLike) -> Session | None:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        what = f"load session {key!r}"
        if self._cache.version(key) is not None:  # is it cached at the stored revision?
            revision = await self._run(
                what, lambda: self._client.hget(self._session(key), "revision")
            )
            if revision is None:
                self._cache.discard(key)
                return None
            cached = self._cache.get(key, revision)
            if cached is not None:
                return cached

        found = await self._run(
            what, lambda: self._read([self._session(key), self._messages(key)], [])
        )
        if found is None:
            self._cache.discard(key)
            return None
        try:
            revision, created, updated, metadata, *bodies = found
            session = Session(
                namespace=namespace,
                messages=load_messages(bodies),
                created_at=datetime.fromisoformat(created),
                updated_at=datetime.fromisoformat(updated),
                metadata=json.loads(metadata),
            )
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{what} failed: the stored session is corrupt: {exc}") from exc
        result = session.snapshot()
        self._cache.put(key, revision, session)
        return result

    async def save(self, session: Session) -> None:
        namespace = session.namespace
        key = namespace.key
        what = f"save session {key!r}"
        bodies = dump_messages(session.messages)
        metadata = dump_metadata(session.metadata, what)
        created, updated = time_text(session.created_at), time_text(session.updated_at)
        # What a later load would return, so cache hits and misses agree.
        stored = Session(
            namespace=namespace,
            messages=list(session.messages),
            created_at=datetime.fromisoformat(created),
            updated_at=datetime.fromisoformat(updated),
            metadata=json.loads(metadata),
        )
        revision = secrets.token_hex(8)
        held = self._held.get(key)
        args = [
            key,
            revision,
            created,
            updated,
            repr(stored.updated_at.timestamp()),
            metadata,
            _segments(namespace),
            self._ttl_for(held),
            self._sweep_cutoff(utc_now()),
            *self._fence_args(held),
            *self._key_prefixes(),
            _origin(held),
            *bodies,
        ]
        origin = await self._run(what, lambda: self._save(self._write_keys(key), args))
        self._refuse_unless(origin, what)
        if held is not None:
            held.session = origin
        self._cache.put(key, revision, stored)

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        what = f"append to session {key!r}"
        added = tuple(messages)
        new_metadata = "" if metadata is None else dump_metadata(metadata, what)
        now = utc_now()
        revision = secrets.token_hex(8)
        held = self._held.get(key)
        args = [
            key,
            revision,
            time_text(now),
            repr(now.timestamp()),
            new_metadata,
            _segments(namespace),
            self._ttl_for(held),
            self._sweep_cutoff(now),
            *self._fence_args(held),
            *self._key_prefixes(),
            _origin(held),
            *dump_messages(added),
        ]
        written = await self._run(what, lambda: self._append(self._write_keys(key), args))
        self._refuse_unless(written, what)
        previous, origin = written
        if held is not None:
            held.session = origin
        self._cache.advance(
            key,
            previous,
            revision,
            added,
            updated_at=now,
            metadata=json.loads(new_metadata) if new_metadata else None,
        )

    async def delete(self, namespace: NamespaceLike) -> bool:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        existed = await self._run(
            f"delete session {key!r}",
            lambda: self._delete([self._keys, self._updated], [*self._key_prefixes(), key]),
        )
        self._cache.discard(key)
        return bool(existed)

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        count = await self._run(
            f"delete the sessions under {key!r}",
            lambda: self._delete_tree([self._keys, self._updated], [*self._key_prefixes(), key]),
        )
        self._cache.discard_tree(key)
        return int(count)

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        prefix = None if prefix is None else Namespace.coerce(prefix)
        what = "list sessions" if prefix is None else f"list sessions under {prefix.key!r}"
        args = [*self._key_prefixes(), "" if prefix is None else prefix.key]
        members = await self._run(what, lambda: self._list([self._keys, self._updated], args))
        try:
            return [Namespace.parse(member) for member in members]
        except NamespaceError as exc:
            raise StoreError(f"{what} failed: a key in {self._keys!r} is corrupt: {exc}") from exc

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        namespace = Namespace.coerce(namespace)
        keep_last = check_keep_last(keep_last)
        key = namespace.key
        what = f"trim session {key!r}"
        now = utc_now()
        held = self._held.get(key)
        args: list[str | int] = [
            key,
            keep_last,
            secrets.token_hex(8),
            time_text(now),
            repr(now.timestamp()),
            self._ttl_for(held),
            self._sweep_cutoff(now),
            *self._fence_args(held),
            *self._key_prefixes(),
            _origin(held),
        ]
        removed = int(await self._run(what, lambda: self._trim(self._write_keys(key), args)))
        if removed == -1:
            raise lease_lapsed(what, self._lease_seconds)
        if removed == -2:
            raise session_gone(what)
        if removed:
            self._cache.discard(key)
        return removed

    async def prune(self, idle_for: float) -> int:
        moment = prune_cutoff(idle_for)
        if moment is None:
            return 0
        cutoff = repr(moment.timestamp())
        total, skipped = 0, 0
        while True:  # in batches, so that the server is never blocked for long
            args = [*self._key_prefixes(), cutoff, _PRUNE_BATCH, self._lease(""), skipped]
            deleted, examined = await self._run(
                f"prune sessions idle for {idle_for:g}s",
                lambda args=args: self._prune([self._keys, self._updated], args),  # type: ignore[misc]
            )
            total += int(deleted)
            skipped += int(examined) - int(deleted)
            if int(examined) < _PRUNE_BATCH:
                break
        return total

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        namespace = Namespace.coerce(namespace)
        return self._hold(namespace.key, timeout)

    async def aclose(self) -> None:
        self._closed = True
        await self._client.aclose()

    # -- other kinds of data in the same database -----------------------------------

    @property
    def client(self) -> Redis:
        """The redis-py client, for data kept beside the sessions (shares its pool)."""
        return self._client

    @property
    def key_prefix(self) -> str:
        """Every key this store writes starts with it; other kinds of data use it too."""
        return self._prefix

    # -- the single-writer lease ---------------------------------------------------------

    @asynccontextmanager
    async def _hold(self, key: str, wait: float | None) -> AsyncIterator[None]:
        started = anyio.current_time()
        async with self._locks.hold(key, wait):
            token = secrets.token_hex(16)
            held = Held("")  # the lease value "<fence>:<token>" once claimed
            lease, fence = self._lease(key), self._fence(key)
            session, messages = self._session(key), self._messages(key)
            waiters, waiting = f"{self._prefix}waiters:{key}", f"{self._prefix}waiting:{key}"

            async def claim() -> bool:
                keys = [lease, fence, waiters, waiting, session, messages]
                args = [token, self._lease_ms, self._fence_ms, secrets.token_hex(8)]
                got = await self._run(f"lock session {key!r}", lambda: self._acquire(keys, args))
                if got is None:
                    return False
                held.lease, held.session = got[0], got[1] or None
                return True

            async def renew() -> bool:
                keys = [lease, fence, session, messages]
                args = [held.lease, self._lease_ms, self._fence_ms]
                renewed = await self._run(
                    f"renew the lock on session {key!r}", lambda: self._renew(keys, args)
                )
                return bool(renewed)

            async def drop() -> None:  # by token: a claim whose reply was lost goes too
                keys = [lease, waiters, waiting, session, messages]
                await self._run(
                    f"unlock session {key!r}", lambda: self._release(keys, [token, self._ttl_ms])
                )

            async with hold_lease(
                key,
                wait,
                claim=claim,
                renew=renew,
                drop=drop,
                renew_every=self._lease_seconds / 3,
                started=started,
            ):
                self._held[key] = held
                try:
                    yield
                finally:
                    del self._held[key]

    # -- keys and calls ------------------------------------------------------------------

    def _session(self, key: str) -> str:
        return f"{self._prefix}session:{key}"

    def _messages(self, key: str) -> str:
        return f"{self._prefix}messages:{key}"

    def _lease(self, key: str) -> str:
        return f"{self._prefix}lease:{key}"

    def _fence(self, key: str) -> str:
        return f"{self._prefix}fence:{key}"

    def _key_prefixes(self) -> tuple[str, str]:
        return self._session(""), self._messages("")

    def _write_keys(self, key: str) -> tuple[str, ...]:
        return (
            self._session(key),
            self._messages(key),
            self._keys,
            self._updated,
            self._lease(key),
            self._fence(key),
        )

    def _ttl_for(self, held: Held | None) -> str:
        """The expiry a write sets: ``session_ttl``, but never shorter than a held lease."""
        if held is None or self._ttl_ms == "0":
            return self._ttl_ms
        return str(max(int(self._ttl_ms), int(self._lease_ms)))

    def _fence_args(self, held: Held | None) -> tuple[str, str]:
        return ("" if held is None else held.lease), self._lease_ms

    def _refuse_unless(self, written: Any, what: str) -> None:
        """Raise for a fenced write a script refused: nil (lease lost) or 0 (session gone)."""
        if written is None:
            raise lease_lapsed(what, self._lease_seconds)
        if written == 0:
            raise session_gone(what)

    def _sweep_cutoff(self, now: datetime) -> str:
        """The score below which an index entry's session must have expired ('' if none)."""
        return "" if self._ttl is None else repr(now.timestamp() - self._ttl)

    async def _run(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        """Await ``call()``, turning every Redis failure into a StoreError that says ``what``."""
        if self._closed:
            raise StoreError(f"{what} failed: the Redis store {self._where} is closed")
        try:
            return await call()
        except (RedisError, UnicodeDecodeError) as exc:
            reason = str(exc) or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} (Redis {self._where})") from exc


def _segments(namespace: Namespace) -> str:
    return json.dumps(namespace.segments, ensure_ascii=False)


def _origin(held: Held | None) -> str:
    """The origin of the session a held lease is on, '' if none (or no lease)."""
    return "" if held is None or held.session is None else str(held.session)


def _url_problem(exc: ValueError | TypeError) -> str:
    """What is wrong with a Redis URL, in the URL's terms: redis-py reports an unknown
    query option as a Python keyword argument of one of its classes."""
    unknown = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
    if isinstance(exc, TypeError) and unknown:
        return (
            f"unknown option {unknown.group(1)!r} in its query string; remove it (the options "
            "are redis-py's connection settings, e.g. socket_timeout, health_check_interval)"
        )
    return str(exc)
