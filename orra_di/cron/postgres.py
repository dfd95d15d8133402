"""Cron jobs in PostgreSQL, in the sessions' schema, on the session store's pool.

The ``cron_jobs_v1`` and ``cron_runs_v1`` tables (layout version in the name) are
created on first use. A claim is one statement::

    WITH due AS (SELECT id, claimed_by FROM cron_jobs_v1
                 WHERE wake_at <= now ORDER BY wake_at LIMIT n FOR UPDATE SKIP LOCKED)
    UPDATE cron_jobs_v1 j SET claimed_by = me, wake_at = lease_end FROM due
    WHERE j.id = due.id RETURNING ..., due.claimed_by

so replicas claiming at the same instant each get different jobs (a row locked by
one is skipped by the others, and once committed its ``wake_at`` is in the future),
and the cost is that of the due rows, found through the partial index on ``wake_at``.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection

from orra_di.cron.model import CronJob, CronRun
from orra_di.cron.stores import (
    _SQL_FINISH,
    Claim,
    CronStore,
    _finish_args,
    job_from_columns,
    stamp,
    unstamp,
    wake_for,
)
from orra_di.errors import StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.stores.postgres import PostgresStore

__all__ = ["PostgresCronStore"]

_T = TypeVar("_T")

_COLUMNS = "body, status, next_run, last_run, run_count"


class PostgresCronStore(CronStore):
    """Cron jobs beside the sessions of ``sessions`` (same database and schema)."""

    def __init__(self, sessions: PostgresStore) -> None:
        super().__init__()
        self._sessions = sessions
        s = f'"{sessions.schema}"'
        self._jobs = f"{s}.cron_jobs_v1"
        self._runs = f"{s}.cron_runs_v1"
        self._ready = False
        self._creating = anyio.Lock()

    async def _run(self, what: str, op: Callable[[AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        try:
            if not self._ready:
                async with self._creating:
                    if not self._ready:
                        async with self._sessions.connection() as conn:
                            await self._create(conn)
                        self._ready = True
            async with self._sessions.connection() as conn:
                return await op(conn)
        except psycopg.Error as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise StoreError(f"{what} failed: {reason} ({self._sessions!r})") from exc

    async def _create(self, conn: AsyncConnection[Any]) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._jobs,))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._jobs} ("
                'id text PRIMARY KEY, namespace text COLLATE "C" NOT NULL, status text NOT NULL, '
                "next_run double precision, last_run double precision, "
                "run_count bigint NOT NULL DEFAULT 0, claimed_by text, wake_at double precision, "
                "created_at double precision NOT NULL, body text NOT NULL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS cron_jobs_v1_wake ON {self._jobs} (wake_at) "
                "WHERE wake_at IS NOT NULL"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS cron_jobs_v1_namespace ON {self._jobs} (namespace)"
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._runs} (id text PRIMARY KEY, "
                "job_id text NOT NULL, due_at double precision NOT NULL, body text NOT NULL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS cron_runs_v1_job ON {self._runs} (job_id, due_at)"
            )

    async def _insert(self, job: CronJob) -> bool:
        async def insert(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(
                f"INSERT INTO {self._jobs} (id, namespace, status, next_run, last_run, "
                "run_count, wake_at, created_at, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (
                    job.id,
                    job.namespace,
                    job.status.value,
                    stamp(job.next_run),
                    stamp(job.last_run),
                    job.run_count,
                    wake_for(job.status, job.next_run),
                    job.created_at.timestamp(),
                    job.to_json(),
                ),
            )
            return cursor.rowcount > 0

        return await self._run(f"add cron job {job.id}", insert)

    async def get(self, job_id: str) -> CronJob | None:
        async def select(conn: AsyncConnection[Any]) -> Any:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM {self._jobs} WHERE id = %s", (job_id,)
            )
            return await cursor.fetchone()

        row = await self._run(f"read cron job {job_id}", select)
        return None if row is None else job_from_columns(*row)

    async def _update(self, job: CronJob) -> bool:
        async def update(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(
                f"UPDATE {self._jobs} SET status = %s, next_run = %s, body = %s, "
                "wake_at = CASE WHEN claimed_by IS NULL THEN %s ELSE wake_at END WHERE id = %s",
                (
                    job.status.value,
                    stamp(job.next_run),
                    job.to_json(),
                    wake_for(job.status, job.next_run),
                    job.id,
                ),
            )
            return cursor.rowcount > 0

        return await self._run(f"update cron job {job.id}", update)

    async def _delete(self, job_ids: builtins.list[str]) -> int:
        async def delete(conn: AsyncConnection[Any]) -> int:
            async with conn.transaction():
                await conn.execute(f"DELETE FROM {self._runs} WHERE job_id = ANY(%s)", (job_ids,))
                cursor = await conn.execute(
                    f"DELETE FROM {self._jobs} WHERE id = ANY(%s)", (job_ids,)
                )
                return cursor.rowcount

        return await self._run("delete cron jobs", delete)

    async def list(self, namespace: NamespaceLike | None = None) -> builtins.list[CronJob]:
        prefix = None if namespace is None else Namespace.coerce(namespace).key

        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            if prefix is None:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {self._jobs} ORDER BY created_at, id"
                )
            else:
                cursor = await conn.execute(
                    f"SELECT {_COLUMNS} FROM {self._jobs} WHERE namespace = %s "
                    "OR starts_with(namespace, %s) ORDER BY created_at, id",
                    (prefix, prefix + ":"),
                )
            return await cursor.fetchall()

        return [job_from_columns(*row) for row in await self._run("list cron jobs", select)]

    async def claim(
        self,
        now: datetime,
        owner: str,
        until: datetime,
        limit: int = 100,
        *,
        only: str | None = None,
    ) -> builtins.list[Claim]:
        async def claim(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            cursor = await conn.execute(
                f"WITH due AS (SELECT id, claimed_by FROM {self._jobs} "
                "WHERE wake_at IS NOT NULL AND wake_at <= %(now)s "
                "AND (%(only)s::text IS NULL OR id = %(only)s) ORDER BY wake_at, id "
                f"LIMIT %(limit)s FOR UPDATE SKIP LOCKED) UPDATE {self._jobs} AS j "
                "SET claimed_by = %(owner)s, wake_at = %(until)s FROM due WHERE j.id = due.id "
                "RETURNING due.claimed_by, j.body, j.status, j.next_run, j.last_run, j.run_count",
                {
                    "now": now.timestamp(),
                    "limit": limit,
                    "only": only,
                    "owner": owner,
                    "until": until.timestamp(),
                },
            )
            return await cursor.fetchall()

        rows = await self._run("claim due cron jobs", claim)
        return [Claim(job_from_columns(*row[1:]), row[0]) for row in rows]

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        async def renew(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(
                f"UPDATE {self._jobs} SET wake_at = %s WHERE id = %s AND claimed_by = %s",
                (until.timestamp(), job_id, owner),
            )
            return cursor.rowcount > 0

        return await self._run(f"renew the claim on cron job {job_id}", renew)

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
        statement = _SQL_FINISH.replace("cron_jobs_v1", self._jobs)

        async def finish(conn: AsyncConnection[Any]) -> bool:
            cursor = await conn.execute(
                statement,
                _finish_args(job_id, owner, next_run, last_run, ran, completed),
            )
            return cursor.rowcount > 0

        return await self._run(f"finish a run of cron job {job_id}", finish)

    async def next_wake(self) -> datetime | None:
        async def select(conn: AsyncConnection[Any]) -> Any:
            cursor = await conn.execute(
                f"SELECT min(wake_at) FROM {self._jobs} WHERE wake_at IS NOT NULL"
            )
            row = await cursor.fetchone()
            return None if row is None else row[0]

        return unstamp(await self._run("find the next cron wake-up", select))

    async def record_run(self, run: CronRun) -> None:
        await self.record_runs([run])

    async def record_runs(self, runs: builtins.list[CronRun]) -> None:
        """One statement for all of them (arrays unnested), so a wake-up that starts
        a hundred runs makes one round trip, not a hundred."""
        if not runs:
            return
        columns = (
            [r.id for r in runs],
            [r.job_id for r in runs],
            [r.due_at.timestamp() for r in runs],
            [r.to_json() for r in runs],
        )

        async def upsert(conn: AsyncConnection[Any]) -> None:
            await conn.execute(
                f"INSERT INTO {self._runs} (id, job_id, due_at, body) "
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::double precision[], %s::text[]) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                columns,
            )

        what = f"record run {runs[0].id}" if len(runs) == 1 else f"record {len(runs)} runs"
        await self._run(what, upsert)

    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[CronRun]:
        async def select(conn: AsyncConnection[Any]) -> builtins.list[Any]:
            cursor = await conn.execute(
                f"SELECT body FROM {self._runs} WHERE job_id = %s "
                "ORDER BY due_at DESC, id DESC LIMIT %s",
                (job_id, limit),
            )
            return await cursor.fetchall()

        rows = await self._run(f"read the runs of cron job {job_id}", select)
        return [CronRun.from_json(body) for (body,) in rows]
