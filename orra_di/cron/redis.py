"""Cron jobs in Redis, under the session store's key prefix, on its client.

Keys (``P`` is the store's ``key_prefix``):

``P cronjob:<id>`` (HASH)
    ``body`` (the definition's JSON), ``status``, ``next_run``, ``last_run``,
    ``run_count``, ``claimed_by``, ``created_at``.
``P cron:wake`` (ZSET, score = ``wake_at``)
    Jobs with a next due time (or a claim's lease end); the claim reads it.
``P cron:jobs`` (ZSET, score = creation time)
    Every job id, for listing.
``P cron:runs:<job>`` (ZSET, score = due time) and ``P cronrun:<run id>`` (STRING)
    The run history.

Claiming, renewing, finishing and updating are Lua scripts, so each is atomic: a
claim takes the due ids from ``cron:wake`` and moves each to its lease end in one
step, so two replicas never get the same job for one due time.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError

from orra_di.cron.model import CronJob, CronRun
from orra_di.cron.stores import Claim, CronStore, job_from_columns, stamp, unstamp, wake_for
from orra_di.errors import StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import in_subtree
from orra_di.stores.redis import RedisStore

__all__ = ["RedisCronStore"]

_T = TypeVar("_T")

_INSERT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'status', ARGV[3], 'next_run', ARGV[4],
           'last_run', ARGV[5], 'run_count', ARGV[6], 'created_at', ARGV[7], 'claimed_by', '')
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
if ARGV[8] ~= '' then redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1]) end
return 1
"""

_UPDATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'status', ARGV[3], 'next_run', ARGV[4])
if redis.call('HGET', KEYS[1], 'claimed_by') == '' then
    if ARGV[5] == '' then redis.call('ZREM', KEYS[2], ARGV[1])
    else redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1]) end
end
return 1
"""

_CLAIM = """
local ids
if ARGV[6] ~= '' then
    local score = redis.call('ZSCORE', KEYS[1], ARGV[6])
    ids = {}
    if score and tonumber(score) <= tonumber(ARGV[1]) then ids[1] = ARGV[6] end
else
    ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
end
local out = {}
for _, id in ipairs(ids) do
    local key = ARGV[5] .. id
    local row = redis.call('HMGET', key, 'claimed_by', 'body', 'status', 'next_run',
                           'last_run', 'run_count')
    if row[2] then
        redis.call('HSET', key, 'claimed_by', ARGV[2])
        redis.call('ZADD', KEYS[1], ARGV[3], id)
        for i = 1, 6 do out[#out + 1] = row[i] end
    else
        redis.call('ZREM', KEYS[1], id)
    end
end
return out
"""

_RENEW = """
if redis.call('HGET', KEYS[1], 'claimed_by') ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""

_FINISH = """
if redis.call('HGET', KEYS[1], 'claimed_by') ~= ARGV[2] then return 0 end
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[6] == '1' and status == 'active' then status = 'completed' end
redis.call('HSET', KEYS[1], 'claimed_by', '', 'status', status, 'next_run', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'last_run', ARGV[4]) end
redis.call('HINCRBY', KEYS[1], 'run_count', tonumber(ARGV[5]))
if status == 'active' and ARGV[3] ~= '' then
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
else
    redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
"""

_DELETE = """
local n = 0
for _, id in ipairs(ARGV) do
    n = n + redis.call('DEL', KEYS[1] .. id)
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    local runs = KEYS[4] .. id
    for _, run in ipairs(redis.call('ZRANGE', runs, 0, -1)) do
        redis.call('DEL', KEYS[5] .. run)
    end
    redis.call('DEL', runs)
end
return n
"""


def _text(value: float | None) -> str:
    return "" if value is None else repr(value)


def _number(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


class RedisCronStore(CronStore):
    """Cron jobs beside the sessions of ``sessions`` (same server, same prefix)."""

    def __init__(self, sessions: RedisStore) -> None:
        super().__init__()
        self._sessions = sessions
        self._client = sessions.client
        prefix = sessions.key_prefix
        self._job_prefix = f"{prefix}cronjob:"
        self._wake = f"{prefix}cron:wake"
        self._all = f"{prefix}cron:jobs"
        self._runs_prefix = f"{prefix}cron:runs:"
        self._run_prefix = f"{prefix}cronrun:"
        register = self._client.register_script
        self._insert_script = register(_INSERT)
        self._update_script = register(_UPDATE)
        self._claim_script = register(_CLAIM)
        self._renew_script = register(_RENEW)
        self._finish_script = register(_FINISH)
        self._delete_script = register(_DELETE)

    async def _run(self, what: str, call: Callable[[], Awaitable[_T]]) -> _T:
        try:
            return await call()
        except RedisError as exc:
            reason = str(exc) or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} ({self._sessions!r})") from exc

    def _key(self, job_id: str) -> str:
        return self._job_prefix + job_id

    @staticmethod
    def _job(row: builtins.list[Any]) -> CronJob:
        body, status, next_run, last_run, count = row
        return job_from_columns(body, status, _number(next_run), _number(last_run), int(count))

    async def _insert(self, job: CronJob) -> bool:
        args: builtins.list[str | int] = [
            job.id,
            job.to_json(),
            job.status.value,
            _text(stamp(job.next_run)),
            _text(stamp(job.last_run)),
            job.run_count,
            repr(job.created_at.timestamp()),
            _text(wake_for(job.status, job.next_run)),
        ]
        keys = [self._key(job.id), self._wake, self._all]
        done: Any = await self._run(
            f"add cron job {job.id}", lambda: self._insert_script(keys=keys, args=args)
        )
        return bool(done)

    async def get(self, job_id: str) -> CronJob | None:
        row: Any = await self._run(
            f"read cron job {job_id}",
            lambda: self._client.hmget(
                self._key(job_id), ["body", "status", "next_run", "last_run", "run_count"]
            ),
        )
        return None if row[0] is None else self._job(row)

    async def _update(self, job: CronJob) -> bool:
        args = [
            job.id,
            job.to_json(),
            job.status.value,
            _text(stamp(job.next_run)),
            _text(wake_for(job.status, job.next_run)),
        ]
        keys = [self._key(job.id), self._wake]
        done: Any = await self._run(
            f"update cron job {job.id}", lambda: self._update_script(keys=keys, args=args)
        )
        return bool(done)

    async def _delete(self, job_ids: builtins.list[str]) -> int:
        keys = [self._job_prefix, self._wake, self._all, self._runs_prefix, self._run_prefix]
        count: Any = await self._run(
            "delete cron jobs", lambda: self._delete_script(keys=keys, args=job_ids)
        )
        return int(count)

    async def list(self, namespace: NamespaceLike | None = None) -> builtins.list[CronJob]:
        prefix = None if namespace is None else Namespace.coerce(namespace).key
        what = "list cron jobs"
        ids: Any = await self._run(what, lambda: self._client.zrange(self._all, 0, -1))
        jobs = []
        fields = ["body", "status", "next_run", "last_run", "run_count"]
        for start in range(0, len(ids), 200):
            pipe = self._client.pipeline(transaction=False)
            for job_id in ids[start : start + 200]:
                pipe.hmget(self._key(job_id), fields)
            rows: Any = await self._run(what, pipe.execute)
            jobs += [self._job(row) for row in rows if row[0] is not None]
        found = [j for j in jobs if prefix is None or in_subtree(j.namespace, prefix)]
        return sorted(found, key=lambda j: (j.created_at, j.id))

    async def claim(
        self,
        now: datetime,
        owner: str,
        until: datetime,
        limit: int = 100,
        *,
        only: str | None = None,
    ) -> builtins.list[Claim]:
        args: builtins.list[str | int] = [
            repr(now.timestamp()),
            owner,
            repr(until.timestamp()),
            limit,
            self._job_prefix,
            only or "",
        ]
        flat: Any = await self._run(
            "claim due cron jobs", lambda: self._claim_script(keys=[self._wake], args=args)
        )
        claims = []
        for i in range(0, len(flat), 6):
            previous, *row = flat[i : i + 6]
            claims.append(Claim(self._job(row), previous or None))
        return claims

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        keys = [self._key(job_id), self._wake]
        args = [job_id, owner, repr(until.timestamp())]
        done: Any = await self._run(
            f"renew the claim on cron job {job_id}",
            lambda: self._renew_script(keys=keys, args=args),
        )
        return bool(done)

    async def finish(
        self,
        job_id: str,
        owner: str,
        *,
        next_run: datetime | None,
        last_run: datetime | None = None,
        ran: int = 0,
        completed: bool = False,
    ) -> bool:
        keys = [self._key(job_id), self._wake]
        args: builtins.list[str | int] = [
            job_id,
            owner,
            _text(stamp(next_run)),
            _text(stamp(last_run)),
            ran,
            "1" if completed else "0",
        ]
        done: Any = await self._run(
            f"finish a run of cron job {job_id}",
            lambda: self._finish_script(keys=keys, args=args),
        )
        return bool(done)

    async def next_wake(self) -> datetime | None:
        first: Any = await self._run(
            "find the next cron wake-up",
            lambda: self._client.zrange(self._wake, 0, 0, withscores=True),
        )
        return unstamp(float(first[0][1])) if first else None

    async def record_run(self, run: CronRun) -> None:
        await self.record_runs([run])

    async def record_runs(self, runs: builtins.list[CronRun]) -> None:
        async def write() -> None:
            pipe = self._client.pipeline(transaction=True)
            for run in runs:
                pipe.set(self._run_prefix + run.id, run.to_json())
                pipe.zadd(self._runs_prefix + run.job_id, {run.id: run.due_at.timestamp()})
            await pipe.execute()

        if runs:
            what = f"record run {runs[0].id}" if len(runs) == 1 else f"record {len(runs)} runs"
            await self._run(what, write)

    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[CronRun]:
        what = f"read the runs of cron job {job_id}"
        ids: Any = await self._run(
            what, lambda: self._client.zrevrange(self._runs_prefix + job_id, 0, limit - 1)
        )
        if not ids:
            return []
        bodies: Any = await self._run(
            what, lambda: self._client.mget([self._run_prefix + i for i in ids])
        )
        return [CronRun.from_json(b) for b in bodies if b is not None]
