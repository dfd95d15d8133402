"""Usage ledgers in SQL, beside the sessions: SQLite and PostgreSQL.

Two tables (schema version 1, created with ``CREATE TABLE IF NOT EXISTS`` on
first use):

- ``usage_counters``: one row per (namespace key, UTC hour), its counters
  increased by ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x``;
- ``usage_reservations``: one row per (namespace key, admitted call) while the
  call is in flight, with the tokens and cost it may use and when it expires.

Keys are identified by their SHA-256 (a PostgreSQL btree entry holds about
2.7 KB; a key may hold 4 KiB). A reservation is one transaction that reads each
budget's window and the reservations in flight, then inserts its own rows:

- SQLite runs it in the store's write transaction (``BEGIN IMMEDIATE``: one
  writer at a time across processes);
- PostgreSQL first takes a transaction-level advisory lock per budgeted key, in
  key order (no deadlock), and so does a recording that drops a reservation,
  so no check can see a call's reservation gone before its usage arrived.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orra_di.errors import StoreError
from orra_di.store import subtree_bounds
from orra_di.usage.ledger import (
    BudgetCheck,
    BudgetRefusal,
    Reservation,
    UsageTotals,
    fits,
    key_digest,
    sum_totals,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from orra_di.stores.postgres import PostgresStore
    from orra_di.stores.sqlite import SQLiteStore

__all__ = ["PostgresUsageBackend", "SQLiteUsageBackend"]

_FAR = 2**62
"""An hour bound no bucket reaches (``since``/``until`` left open)."""
_LOCK_CLASS = 0x7573
"""First half of the two-int advisory lock keys (a space apart from the store's bigint keys)."""

_COLUMNS = "input_tokens, output_tokens, model_calls, tool_calls, cost_nanousd"


def _ddl(t: str, integer: str, real: str) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {t}usage_counters ("
        f" key_sha TEXT NOT NULL, hour {integer} NOT NULL, key TEXT NOT NULL,"
        f" input_tokens {integer} NOT NULL DEFAULT 0, output_tokens {integer} NOT NULL DEFAULT 0,"
        f" model_calls {integer} NOT NULL DEFAULT 0, tool_calls {integer} NOT NULL DEFAULT 0,"
        f" cost_nanousd {integer} NOT NULL DEFAULT 0, PRIMARY KEY (key_sha, hour))",
        f"CREATE TABLE IF NOT EXISTS {t}usage_reservations ("
        f" key_sha TEXT NOT NULL, id TEXT NOT NULL, tokens {integer} NOT NULL,"
        f" cost_nanousd {integer} NOT NULL, expires_at {real} NOT NULL,"
        f" PRIMARY KEY (key_sha, id))",
    ]


class _Statements:
    """The ledger's SQL for one table prefix and placeholder style."""

    def __init__(self, prefix: str, mark: str) -> None:
        t = prefix

        def q(sql: str) -> str:
            return sql.replace("?", mark)

        self.add = q(
            f"INSERT INTO {t}usage_counters (key_sha, hour, key, {_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_sha, hour) DO UPDATE SET "
            + ", ".join(f"{c} = {t}usage_counters.{c} + excluded.{c}" for c in _COLUMNS.split(", "))
        )
        self.sum = q(
            "SELECT "
            + ", ".join(f"COALESCE(SUM({c}), 0)" for c in _COLUMNS.split(", "))
            + f" FROM {t}usage_counters WHERE key_sha = ? AND hour >= ? AND hour < ?"
        )
        self.expire = q(f"DELETE FROM {t}usage_reservations WHERE key_sha = ? AND expires_at <= ?")
        self.held = q(
            "SELECT COALESCE(SUM(tokens), 0), COALESCE(SUM(cost_nanousd), 0) "
            f"FROM {t}usage_reservations WHERE key_sha = ?"
        )
        self.hold = q(
            f"INSERT INTO {t}usage_reservations (key_sha, id, tokens, cost_nanousd, expires_at) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        self.drop = q(f"DELETE FROM {t}usage_reservations WHERE key_sha = ? AND id = ?")


def _bounds(since: int | None, until: int | None) -> tuple[int, int]:
    return (-_FAR if since is None else since, _FAR if until is None else until)


class SQLiteUsageBackend:
    """The ledger in the SQLite store's database, through its connection and worker thread."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._sql = _Statements("", "?")
        self._ready = False

    def __repr__(self) -> str:
        return f"SQLiteUsageBackend({self.store!r})"

    async def _ensure(self) -> None:
        if self._ready:
            return

        def create(conn: sqlite3.Connection) -> None:
            for statement in _ddl("", "INTEGER", "REAL"):
                conn.execute(statement)

        await self.store.run_in_connection("create the usage tables", create, write=True)
        self._ready = True

    async def add(
        self, keys: Sequence[str], hour: int, delta: UsageTotals, release: Reservation | None
    ) -> None:
        await self._ensure()
        sql = self._sql

        def op(conn: sqlite3.Connection) -> None:
            for key in keys:
                conn.execute(sql.add, (key_digest(key), hour, key, *delta.values()))
            for key in release.keys if release else ():
                conn.execute(sql.drop, (key_digest(key), release.id))  # type: ignore[union-attr]

        await self.store.run_in_connection("record usage", op, write=True, deferrable=True)

    async def totals(self, key: str, since_hour: int | None, until_hour: int | None) -> UsageTotals:
        await self._ensure()

        def op(conn: sqlite3.Connection) -> UsageTotals:
            row = conn.execute(self._sql.sum, (key_digest(key), *_bounds(since_hour, until_hour)))
            return sum_totals([row.fetchone()])

        return await self.store.run_in_connection(f"read the usage of {key!r}", op)

    async def reserve(
        self, reservation: Reservation, checks: Sequence[BudgetCheck], now: float, expires: float
    ) -> BudgetRefusal | None:
        await self._ensure()
        sql = self._sql

        def op(conn: sqlite3.Connection) -> BudgetRefusal | None:
            held: dict[str, tuple[int, int]] = {}
            for key in reservation.keys:
                digest = key_digest(key)
                conn.execute(sql.expire, (digest, now))
                tokens, cost = conn.execute(sql.held, (digest,)).fetchone()
                held[key] = (int(tokens), int(cost))
            for check in checks:
                digest = key_digest(check.key)
                used = sum_totals(
                    [conn.execute(sql.sum, (digest, check.since_hour, _FAR)).fetchone()]
                )
                tokens, cost = held[check.key]
                if not fits(
                    check, used, tokens + reservation.tokens, cost + reservation.cost_nanousd
                ):
                    return BudgetRefusal(check, used, tokens, cost)
            for key in reservation.keys:
                conn.execute(
                    sql.hold,
                    (
                        key_digest(key),
                        reservation.id,
                        reservation.tokens,
                        reservation.cost_nanousd,
                        expires,
                    ),
                )
            return None

        return await self.store.run_in_connection("reserve usage", op, write=True, deferrable=True)

    async def release(self, reservation: Reservation) -> None:
        await self._ensure()

        def op(conn: sqlite3.Connection) -> None:
            for key in reservation.keys:
                conn.execute(self._sql.drop, (key_digest(key), reservation.id))

        await self.store.run_in_connection(
            "release a usage reservation", op, write=True, deferrable=True
        )

    async def delete_tree(self, prefix: str) -> int:
        """Erase the counters and reservations of ``prefix`` and every key below it;
        how many keys."""
        await self._ensure()
        low, high = subtree_bounds(prefix)

        def delete(conn: sqlite3.Connection) -> int:
            digests = [
                row[0]
                for row in conn.execute(
                    "SELECT DISTINCT key_sha FROM usage_counters WHERE key = ? "
                    "OR (key >= ? AND key < ?)",
                    (prefix, low, high),
                )
            ]
            for digest in digests:
                conn.execute("DELETE FROM usage_reservations WHERE key_sha = ?", (digest,))
                conn.execute("DELETE FROM usage_counters WHERE key_sha = ?", (digest,))
            return len(digests)

        count: int = await self.store.run_in_connection(
            f"erase the usage under {prefix!r}", delete, write=True
        )
        return count


class PostgresUsageBackend:
    """The ledger in the PostgreSQL store's schema, on its connection pool."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._sql = _Statements(f'"{store.schema}".', "%s")
        self._ready = False

    def __repr__(self) -> str:
        return f"PostgresUsageBackend({self.store!r})"

    async def _run(self, what: str, op: Any, *, transaction: bool = True) -> Any:
        import psycopg

        try:
            async with self.store.connection() as conn:
                if not self._ready:
                    async with conn.transaction():
                        # Two processes creating the tables at once would collide in pg_type.
                        await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_CLASS,))
                        for statement in _ddl(
                            f'"{self.store.schema}".', "BIGINT", "DOUBLE PRECISION"
                        ):
                            await conn.execute(statement)
                    self._ready = True
                if not transaction:
                    return await op(conn)
                async with conn.transaction():
                    return await op(conn)
        except psycopg.Error as exc:
            raise StoreError(
                f"{what} failed: {type(exc).__name__}: {exc} ({self.store!r})"
            ) from exc

    async def delete_tree(self, prefix: str) -> int:
        """Erase the counters and reservations of ``prefix`` and every key below it;
        how many keys."""
        t = f'"{self.store.schema}".'

        async def delete(conn: AsyncConnection[Any]) -> int:
            cursor = await conn.execute(
                f"SELECT DISTINCT key_sha FROM {t}usage_counters "
                'WHERE key = %s OR starts_with(key COLLATE "C", %s)',
                (prefix, prefix + ":"),
            )
            digests = [row[0] for row in await cursor.fetchall()]
            await conn.execute(
                f"DELETE FROM {t}usage_reservations WHERE key_sha = ANY(%s)", (digests,)
            )
            await conn.execute(f"DELETE FROM {t}usage_counters WHERE key_sha = ANY(%s)", (digests,))
            return len(digests)

        count: int = await self._run(f"erase the usage under {prefix!r}", delete)
        return count

    @staticmethod
    async def _lock(conn: AsyncConnection[Any], keys: Sequence[str]) -> None:
        """Serialise checks and settlements on ``keys`` (in digest order: no deadlock)."""
        for digest in sorted(key_digest(k) for k in keys):
            lock = int.from_bytes(bytes.fromhex(digest[:8]), "big", signed=True)
            await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_CLASS, lock))

    async def add(
        self, keys: Sequence[str], hour: int, delta: UsageTotals, release: Reservation | None
    ) -> None:
        sql = self._sql

        async def op(conn: AsyncConnection[Any]) -> None:
            if release is not None:
                await self._lock(conn, release.keys)
            for key in sorted(keys, key=key_digest):  # row locks in one order
                await conn.execute(sql.add, (key_digest(key), hour, key, *delta.values()))
            for key in release.keys if release else ():
                await conn.execute(sql.drop, (key_digest(key), release.id))  # type: ignore[union-attr]

        await self._run("record usage", op)

    async def totals(self, key: str, since_hour: int | None, until_hour: int | None) -> UsageTotals:
        async def op(conn: AsyncConnection[Any]) -> UsageTotals:
            cursor = await conn.execute(
                self._sql.sum, (key_digest(key), *_bounds(since_hour, until_hour))
            )
            return sum_totals([await cursor.fetchone() or ()])

        result: UsageTotals = await self._run(f"read the usage of {key!r}", op, transaction=False)
        return result

    async def reserve(
        self, reservation: Reservation, checks: Sequence[BudgetCheck], now: float, expires: float
    ) -> BudgetRefusal | None:
        sql = self._sql

        async def op(conn: AsyncConnection[Any]) -> BudgetRefusal | None:
            await self._lock(conn, reservation.keys)
            held: dict[str, tuple[int, int]] = {}
            for key in reservation.keys:
                digest = key_digest(key)
                await conn.execute(sql.expire, (digest, now))
                row = await (await conn.execute(sql.held, (digest,))).fetchone()
                assert row is not None
                held[key] = (int(row[0]), int(row[1]))
            for check in checks:
                cursor = await conn.execute(
                    sql.sum, (key_digest(check.key), check.since_hour, _FAR)
                )
                used = sum_totals([await cursor.fetchone() or ()])
                tokens, cost = held[check.key]
                if not fits(
                    check, used, tokens + reservation.tokens, cost + reservation.cost_nanousd
                ):
                    return BudgetRefusal(check, used, tokens, cost)
            for key in reservation.keys:
                await conn.execute(
                    sql.hold,
                    (
                        key_digest(key),
                        reservation.id,
                        reservation.tokens,
                        reservation.cost_nanousd,
                        expires,
                    ),
                )
            return None

        result: BudgetRefusal | None = await self._run("reserve usage", op)
        return result

    async def release(self, reservation: Reservation) -> None:
        async def op(conn: AsyncConnection[Any]) -> None:
            for key in reservation.keys:
                await conn.execute(self._sql.drop, (key_digest(key), reservation.id))

        await self._run("release a usage reservation", op)
