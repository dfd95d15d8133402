"""The usage ledger in Redis, beside the sessions, on the RedisStore's client.

Keys, under the store's prefix (``orra:`` by default):

- ``usage:c:<key>:<hour>``: a hash of the counters of one namespace key in one
  UTC hour, increased with ``HINCRBY``;
- ``usage:h:<key>``: a sorted set of the hours that key has counters for, so a
  window is one range query however sparse the history;
- ``usage:r:<key>``: a hash of the reservations in flight on that key,
  ``id -> "tokens:cost:expires_at"``.

Recording is one ``MULTI``/``EXEC`` transaction (the increments for the key and
every ancestor, and the reservation dropped); a reservation is one Lua script
that sums each budget's window and the live reservations and, if every budget
still fits, adds its own. Redis runs both without interleaving anything, so
concurrent checks from any number of processes are serialised. The script
builds the counter keys of the hours it finds from the prefix, so the ledger
needs a single Redis server (or a cluster with all of a prefix in one slot),
like the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orra_di.errors import StoreError
from orra_di.store import in_subtree
from orra_di.usage.ledger import (
    COUNTERS,
    BudgetCheck,
    BudgetRefusal,
    Reservation,
    UsageTotals,
    sum_totals,
)

if TYPE_CHECKING:
    from orra_di.stores.redis import RedisStore

__all__ = ["RedisUsageBackend"]

_RESERVE = """
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[4])
local cost = tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local function held(rk)
  local t, c = 0, 0
  local all = redis.call('HGETALL', rk)
  for j = 1, #all, 2 do
    local a, b, e = string.match(all[j + 1], '^(%-?%d+):(%-?%d+):(.+)$')
    if tonumber(e) <= now then
      redis.call('HDEL', rk, all[j])
    else
      t = t + tonumber(a)
      c = c + tonumber(b)
    end
  end
  return t, c
end
for i = 1, n do
  local base = 6 + (i - 1) * 4
  local prefix = ARGV[base + 1]
  local tl = tonumber(ARGV[base + 3])
  local cl = tonumber(ARGV[base + 4])
  local used = {0, 0, 0, 0, 0}
  for _, h in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2 * i - 1], ARGV[base + 2], '+inf')) do
    local v = redis.call('HMGET', prefix .. h, 'input_tokens', 'output_tokens', 'model_calls',
                         'tool_calls', 'cost_nanousd')
    for f = 1, 5 do used[f] = used[f] + (tonumber(v[f]) or 0) end
  end
  local ht, hc = held(KEYS[2 * i])
  if (tl >= 0 and used[1] + used[2] + ht + tokens > tl)
     or (cl >= 0 and used[5] + hc + cost > cl) then
    return {i, used[1], used[2], used[3], used[4], used[5], ht, hc}
  end
end
for j = 2 * n + 1, #KEYS do
  redis.call('HSET', KEYS[j], ARGV[3], ARGV[4] .. ':' .. ARGV[5] .. ':' .. ARGV[2])
end
return 0
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisUsageBackend:
    """The ledger under the RedisStore's key prefix, on its client (and connection pool)."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self._prefix = f"{store.key_prefix}usage:"
        self._reserve = store.client.register_script(_RESERVE)

    def __repr__(self) -> str:
        return f"RedisUsageBackend({self.store!r})"

    def _counters(self, key: str, hour: int | str = "") -> str:
        return f"{self._prefix}c:{key}:{hour}"

    def _hours(self, key: str) -> str:
        return f"{self._prefix}h:{key}"

    def _held(self, key: str) -> str:
        return f"{self._prefix}r:{key}"

    async def _call(self, what: str, coroutine: Any) -> Any:
        from redis.exceptions import RedisError

        try:
            return await coroutine
        except RedisError as exc:
            raise StoreError(
                f"{what} failed: {type(exc).__name__}: {exc} ({self.store!r})"
            ) from exc

    async def delete_tree(self, prefix: str) -> int:
        """Erase the counters and reservations of ``prefix`` and every key below it;
        how many keys (found by their ``usage:h:`` sets, one ``SCAN``)."""
        client = self.store.client
        start = self._hours("")
        pattern = self._hours(_glob_escape(prefix)) + "*"
        what = f"erase the usage under {prefix!r}"
        keys = []
        async for name in client.scan_iter(match=pattern, count=1000):
            key = str(name)[len(start) :]
            if in_subtree(key, prefix):
                keys.append(key)
        for key in keys:
            hours = await self._call(what, client.zrange(self._hours(key), 0, -1))
            names = [self._counters(key, h) for h in hours]
            await self._call(what, client.delete(*names, self._hours(key), self._held(key)))
        return len(keys)

    async def add(
        self, keys: Sequence[str], hour: int, delta: UsageTotals, release: Reservation | None
    ) -> None:
        pipe = self.store.client.pipeline(transaction=True)
        for key in keys:
            counters = self._counters(key, hour)
            for name, value in zip(COUNTERS, delta.values(), strict=True):
                pipe.hincrby(counters, name, value)
            pipe.zadd(self._hours(key), {str(hour): hour})
        for key in release.keys if release else ():
            pipe.hdel(self._held(key), release.id)  # type: ignore[union-attr]
        await self._call("record usage", pipe.execute())

    async def totals(self, key: str, since_hour: int | None, until_hour: int | None) -> UsageTotals:
        client = self.store.client
        low = "-inf" if since_hour is None else since_hour
        high = "+inf" if until_hour is None else f"({until_hour}"
        what = f"read the usage of {key!r}"
        hours = await self._call(what, client.zrangebyscore(self._hours(key), low, high))
        pipe = client.pipeline(transaction=False)
        for hour in hours:
            pipe.hmget(self._counters(key, hour), list(COUNTERS))
        rows = await self._call(what, pipe.execute()) if hours else []
        return sum_totals(rows)

    async def reserve(
        self, reservation: Reservation, checks: Sequence[BudgetCheck], now: float, expires: float
    ) -> BudgetRefusal | None:
        keys: list[str] = []
        args: list[str | int | float] = [
            repr(now),
            repr(expires),
            reservation.id,
            reservation.tokens,
            reservation.cost_nanousd,
            len(checks),
        ]
        for check in checks:
            keys += [self._hours(check.key), self._held(check.key)]
            args += [
                self._counters(check.key),
                check.since_hour,
                -1 if check.tokens is None else check.tokens,
                -1 if check.cost_nanousd is None else check.cost_nanousd,
            ]
        keys += [self._held(key) for key in reservation.keys]
        result = await self._call("reserve usage", self._reserve(keys=keys, args=args))
        if not result:
            return None
        index, *used, held_tokens, held_cost = (int(v) for v in result)
        return BudgetRefusal(checks[index - 1], UsageTotals(*used), held_tokens, held_cost)

    async def release(self, reservation: Reservation) -> None:
        pipe = self.store.client.pipeline(transaction=True)
        for key in reservation.keys:
            pipe.hdel(self._held(key), reservation.id)
        await self._call("release a usage reservation", pipe.execute())
