"""Approvals in PostgreSQL, in the sessions' schema, on the session store's pool.

The ``approvals_v1`` table (its layout version in its name) is created on first
use. A decision is one ``UPDATE ... WHERE status = 'pending'`` and a
``pg_notify`` in the same transaction, so the notification goes out exactly when
the decision is committed; waiting runs of every process listening on that
schema's channel wake up (one ``LISTEN`` connection per approval store, see
:mod:`orra_di.approvals._notify`), and read the record again every
``poll_interval`` seconds in case a notification was missed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import anyio
import psycopg
from psycopg import AsyncConnection

from orra_di.approvals._notify import SharedSubscription
from orra_di.approvals.model import ApprovalRecord
from orra_di.approvals.stores import ApprovalStore
from orra_di.errors import ApprovalError, StoreError
from orra_di.stores.postgres import PostgresStore

__all__ = ["PostgresApprovalStore"]

_T = TypeVar("_T")

DEFAULT_POLL_INTERVAL = 5.0
"""With notifications, reading the record again is only a safety net."""


class PostgresApprovalStore(ApprovalStore):
    """Approval records beside the sessions of ``sessions`` (same database and schema)."""

    def __init__(
        self, sessions: PostgresStore, *, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        super().__init__(poll_interval=poll_interval)
        self._sessions = sessions
        s = f'"{sessions.schema}"'
        self._table = f"{s}.approvals_v1"
        # A channel name is an identifier of at most 63 bytes; a schema may use them all.
        digest = hashlib.sha256(sessions.schema.encode()).hexdigest()[:24]
        self._channel = f"orra_approvals_{digest}"
        self._ready = False
        self._creating = anyio.Lock()
        self._shared = SharedSubscription(self._subscribe)

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
            # Serialised across processes: concurrent CREATE ... IF NOT EXISTS can collide.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._table,))
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} ("
                'id text PRIMARY KEY, namespace text COLLATE "C" NOT NULL, '
                "status text NOT NULL, decided_at timestamptz, body text NOT NULL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS approvals_v1_pending ON {self._table} (status) "
                "WHERE status = 'pending'"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS approvals_v1_by_decision ON {self._table} (decided_at)"
            )

    async def _insert(self, record: ApprovalRecord) -> None:
        async def insert(conn: AsyncConnection[Any]) -> None:
            await conn.execute(
                f"INSERT INTO {self._table} (id, namespace, status, decided_at, body) "
                "VALUES (%s, %s, %s, %s, %s)",
                (
                    record.id,
                    record.namespace,
                    record.status.value,
                    record.decided_at,
                    record.to_json(),
                ),
            )

        await self._run(f"record approval request {record.id}", insert)

    async def _load(self, request_id: str) -> ApprovalRecord | None:
        async def select(conn: AsyncConnection[Any]) -> Any:
            cursor = await conn.execute(
                f"SELECT body FROM {self._table} WHERE id = %s", (request_id,)
            )
            return await cursor.fetchone()

        row = await self._run(f"read approval request {request_id}", select)
        return None if row is None else ApprovalRecord.from_json(row[0])

    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        async def replace(conn: AsyncConnection[Any]) -> Any:
            async with conn.transaction():
                cursor = await conn.execute(
                    f"UPDATE {self._table} SET status = %s, decided_at = %s, body = %s "
                    "WHERE id = %s AND status = 'pending' RETURNING body",
                    (record.status.value, record.decided_at, record.to_json(), record.id),
                )
                row = await cursor.fetchone()
                if row is not None:
                    await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, record.id))
                    return row
                cursor = await conn.execute(
                    f"SELECT body FROM {self._table} WHERE id = %s", (record.id,)
                )
                return await cursor.fetchone()

        row = await self._run(f"decide approval request {record.id}", replace)
        return None if row is None else ApprovalRecord.from_json(row[0])

    async def _pending(self) -> list[ApprovalRecord]:
        async def select(conn: AsyncConnection[Any]) -> list[Any]:
            cursor = await conn.execute(f"SELECT body FROM {self._table} WHERE status = 'pending'")
            return await cursor.fetchall()

        rows = await self._run("list approval requests", select)
        return [ApprovalRecord.from_json(body) for (body,) in rows]

    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        async def select(conn: AsyncConnection[Any]) -> list[Any]:
            if namespace is None:
                cursor = await conn.execute(
                    f"SELECT body FROM {self._table} WHERE decided_at IS NOT NULL "
                    "ORDER BY decided_at DESC, id DESC LIMIT %s",
                    (limit,),
                )
            else:
                cursor = await conn.execute(
                    f"SELECT body FROM {self._table} WHERE decided_at IS NOT NULL "
                    "AND (namespace = %s OR starts_with(namespace, %s)) "
                    "ORDER BY decided_at DESC, id DESC LIMIT %s",
                    (namespace, namespace + ":", limit),
                )
            return await cursor.fetchall()

        rows = await self._run("read the approval trail", select)
        return [ApprovalRecord.from_json(body) for (body,) in rows]

    async def _delete(self, request_ids: list[str]) -> int:
        async def delete(conn: AsyncConnection[Any]) -> int:
            cursor = await conn.execute(
                f"DELETE FROM {self._table} WHERE id = ANY(%s)", (request_ids,)
            )
            return cursor.rowcount

        return await self._run("erase approval requests", delete)

    # -- waiting ---------------------------------------------------------------------

    async def wait(self, request_id: str) -> ApprovalRecord:
        record = await self.get(request_id)
        if record is None:
            raise ApprovalError(f"no approval request {request_id}")

        async def check() -> ApprovalRecord | None:
            current = await self._load(request_id)
            if current is None:
                raise ApprovalError(f"no approval request {request_id}")
            return None if current.pending else current

        return await self._shared.wait(request_id, check, self.poll_interval)

    @asynccontextmanager
    async def _subscribe(self) -> AsyncIterator[_Listening]:
        try:
            async with self._sessions.connection() as conn:
                await conn.execute(f'LISTEN "{self._channel}"')
                try:
                    yield _Listening(conn)
                finally:
                    with anyio.CancelScope(shield=True):
                        # The connection goes back to the pool: it must not keep listening.
                        with suppress(psycopg.Error):
                            await conn.execute("UNLISTEN *")
        except psycopg.Error as exc:
            raise StoreError(f"listen for approval decisions failed: {exc}") from exc


class _Listening:
    def __init__(self, conn: AsyncConnection[Any]) -> None:
        self._conn = conn

    async def next(self, seconds: float) -> list[str]:
        return [n.payload async for n in self._conn.notifies(timeout=seconds, stop_after=1)]
