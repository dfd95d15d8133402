"""PostgreSQL: one store shared by every replica of an application.

Built on psycopg 3 (``pip install "orra-di[postgres]"``) with an
:class:`psycopg_pool.AsyncConnectionPool`, opened on first use (or by
:meth:`PostgresStore.open`) and closed by :meth:`PostgresStore.aclose`.

Schema
------
The store creates its tables in its own schema (``orra`` by default) and
migrates them: ``schema_version`` records each step applied, steps run in
order inside one transaction under an advisory lock (two processes starting
at once do not race), and a schema newer than this release is refused.

- ``sessions``: one row per namespace; ``key`` is ``COLLATE "C"`` so that
  index order is code-point order (what listing promises, and what the
  ``[key:, key;)`` subtree bounds need), ``revision`` counts writes. A key
  may be longer than a btree entry can hold (4 KiB of UTF-8 against about
  2.7 KiB), so it is unique by its SHA-256 (``key_digest(key)``, the
  ``ON CONFLICT`` target), found through a hash index, and subtrees are
  range scans of a btree on its first 512 characters (schema version 2);
- ``messages``: one row per message, ``(session_id, seq)``, the message as
  JSON text. Not ``jsonb``, which refuses the ``\\u0000`` escape: a NUL in
  content is written as those six characters, so ``text`` round-trips it;
- ``leases``: the cross-process half of the single-writer lock; ``UNLOGGED``,
  so taking and dropping a lease waits for no disk flush. A server crash
  empties it: a holder's next write is then refused as if taken over.

Every operation is one statement, hence one round trip, except ``save``
(one short transaction): an append inserts the messages and bumps the
session; a load returns the session row with all its messages aggregated
into one JSON text or, when this store's cached copy is at that ``(id,
revision)``, the row alone; ``list`` and ``delete_tree`` are range scans of
the key index (messages go by ``ON DELETE CASCADE``); ``trim`` moves its cut
past tool results in SQL (``has_tool_results``); ``prune`` scans the index
on ``updated_at`` and spares sessions under a live lease.

Each write commits as the server's ``synchronous_commit`` says. With the
default (``on``) an append waits for the WAL to reach the disk; a URL ending
in ``?options=-csynchronous_commit%3Doff`` trades the last fraction of a
second of acknowledged writes on a server crash (never consistency) for a
several times shorter append.

Single writer across processes
------------------------------
:meth:`PostgresStore.lock` takes the in-process lock, then a lease row with a
random owner token, renewed every ``lease_seconds / 3`` while held and deleted
on exit, so a holder that dies frees its sessions when its lease expires.
Each append, save or trim by the holder checks in the same statement that
the lease is still its own, holding the lease row ``FOR SHARE`` until it
commits (a takeover waits for that): a holder that stalled past its lease
and was taken over gets a :class:`~orra_di.errors.StoreError` and writes
nothing. Lease times are the server's ``now()``, so client clocks need not
agree. The claim also returns the id of the session the lease is on; once the
holder knows it, its appends are an ``UPDATE`` of that row (never an insert),
so a session deleted under the lease (``delete``, ``delete_tree``, ``prune``
after the lease lapsed) is not recreated with only the run's later steps: the
write is refused (one more round trip, on that path only, says which reason).

Waiters queue in ``lease_waiters`` (``UNLOGGED``): a claim that finds the
lease held, or an older live waiter, takes or keeps a ticket (renewed by each
attempt, expiring after ``lease_seconds``); only the first may take a free
lease. Claim, queueing and reading the session id are one statement.

Advisory locks were the alternative. They belong to a connection, so a lock
held for a whole run would pin one pooled connection per running session,
and when that connection drops the lock is gone while the run goes on
writing through other connections: nothing fences it.

Connection failures
-------------------
A pooled connection that the server closed while it sat idle (a restart, an
administrator) is noticed before use by reading the socket without waiting,
and replaced. An operation under way when its connection drops fails with a
:class:`~orra_di.errors.StoreError`; being one transaction, it was applied
in full or not at all. The URL's password never appears in ``repr`` or errors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import quote

import anyio

from orra_di.errors import ConfigurationError, StoreError, install_hint
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.redaction import check_password_parsed, mask_url
from orra_di.session import Session
from orra_di.store import check_keep_last, prune_cutoff, subtree_bounds
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

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["MIGRATIONS", "PostgresStore"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: sessions, their messages, and the single-writer leases
        """CREATE TABLE {s}.sessions (
            id bigserial PRIMARY KEY,
            key text COLLATE "C" NOT NULL UNIQUE,
            segments text[] NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            metadata text NOT NULL,
            revision bigint NOT NULL,
            next_seq bigint NOT NULL
        )""",
        "CREATE INDEX sessions_updated_at ON {s}.sessions (updated_at)",
        """CREATE TABLE {s}.messages (
            session_id bigint NOT NULL REFERENCES {s}.sessions (id) ON DELETE CASCADE,
            seq bigint NOT NULL,
            has_tool_results boolean NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (session_id, seq)
        )""",
        """CREATE UNLOGGED TABLE {s}.leases (
            key text COLLATE "C" PRIMARY KEY,
            owner text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
    ),
    (  # 2: keys of any length Namespace accepts (a btree entry holds at most ~2,700 bytes)
        # key_digest is sha256 of the key's UTF-8; immutable because the database must be
        # UTF8 (checked on connect), which an index expression needs.
        """CREATE FUNCTION {s}.key_digest(key text) RETURNS bytea
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS $$ SELECT pg_catalog.sha256(pg_catalog.convert_to(key, 'UTF8')) $$""",
        # Unique by digest (what ON CONFLICT names), found by a hash index on the key
        # (equality), listed by a btree on its first 512 characters (ranges).
        "CREATE UNIQUE INDEX sessions_key_digest ON {s}.sessions ({s}.key_digest(key))",
        "CREATE INDEX sessions_key ON {s}.sessions USING hash (key)",
        "CREATE INDEX sessions_key_prefix ON {s}.sessions (left(key, 512))",
        "ALTER TABLE {s}.sessions DROP CONSTRAINT sessions_key_key",
        "CREATE UNIQUE INDEX leases_key_digest ON {s}.leases ({s}.key_digest(key))",
        "CREATE INDEX leases_key ON {s}.leases USING hash (key)",
        "ALTER TABLE {s}.leases DROP CONSTRAINT leases_pkey",
    ),
    (  # 3: the queue of runs waiting for a lease, served in order of arrival
        """CREATE UNLOGGED TABLE {s}.lease_waiters (
            ticket bigserial PRIMARY KEY,
            key text COLLATE "C" NOT NULL,
            owner text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
        # By digest, like the sessions: a key may be longer than a btree entry holds.
        "CREATE UNIQUE INDEX lease_waiters_key_owner ON {s}.lease_waiters "
        "({s}.key_digest(key), owner)",
        "CREATE INDEX lease_waiters_by_key ON {s}.lease_waiters ({s}.key_digest(key), ticket)",
    ),
)
"""Schema steps (``{s}`` is the quoted schema); ``schema_version`` lists those applied.

Only ever append.
"""

_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_ACQUIRE_TIMEOUT = 10.0  # seconds to wait for a pooled connection

# The writer's own lease, locked until the statement commits (module docstring).
_FENCE = """fence AS (
    SELECT FROM {s}.leases WHERE key = %(key)s AND owner = %(owner)s FOR SHARE
),"""
_APPEND = """
WITH {fence} s AS (
    INSERT INTO {s}.sessions AS t
        (key, segments, created_at, updated_at, metadata, revision, next_seq)
    SELECT %(key)s, %(segments)s, now(), now(), coalesce(%(metadata)s::text, '{{}}'), 1,
        %(count)s::bigint
    {where}
    ON CONFLICT (({s}.key_digest(key))) DO UPDATE SET
        updated_at = excluded.updated_at,
        metadata = coalesce(%(metadata)s::text, t.metadata),
        revision = t.revision + 1,
        next_seq = t.next_seq + excluded.next_seq
    RETURNING id, revision, next_seq, updated_at
), added AS (
    INSERT INTO {s}.messages (session_id, seq, has_tool_results, body)
    SELECT s.id, s.next_seq - %(count)s::bigint + m.ord - 1, m.tools, m.body
    FROM s, unnest(%(bodies)b::text[], %(tools)b::boolean[]) WITH ORDINALITY AS m (body, tools, ord)
)
SELECT id, revision, updated_at FROM s
"""
# The holder's append once it knows which session its lease is on: that row or nothing, so
# a session deleted under the lease (even if created anew since) is never written.
_APPEND_KNOWN = """
WITH {fence} s AS (
    UPDATE {s}.sessions t SET
        updated_at = now(),
        metadata = coalesce(%(metadata)s::text, t.metadata),
        revision = t.revision + 1,
        next_seq = t.next_seq + %(count)s::bigint
    WHERE t.id = %(session)s::bigint AND EXISTS (SELECT FROM fence)
    RETURNING id, revision, next_seq, updated_at
), added AS (
    INSERT INTO {s}.messages (session_id, seq, has_tool_results, body)
    SELECT s.id, s.next_seq - %(count)s::bigint + m.ord - 1, m.tools, m.body
    FROM s, unnest(%(bodies)b::text[], %(tools)b::boolean[]) WITH ORDINALITY AS m (body, tools, ord)
)
SELECT id, revision, updated_at FROM s
"""
_SAVE = """
WITH {fence} s AS (
    INSERT INTO {s}.sessions AS t
        (key, segments, created_at, updated_at, metadata, revision, next_seq)
    SELECT %(key)s, %(segments)s, %(created)s::timestamptz, %(updated)s::timestamptz,
        %(metadata)s::text, 1, %(count)s::bigint
    {where}
    ON CONFLICT (({s}.key_digest(key))) DO UPDATE SET
        created_at = excluded.created_at,
        updated_at = excluded.updated_at,
        metadata = excluded.metadata,
        revision = t.revision + 1,
        next_seq = excluded.next_seq
    RETURNING id, revision
)
SELECT id, revision FROM s
"""
_SAVE_MESSAGES = """
INSERT INTO {s}.messages (session_id, seq, has_tool_results, body)
SELECT %(id)s::bigint, m.ord - 1, m.tools, m.body
FROM unnest(%(bodies)b::text[], %(tools)b::boolean[]) WITH ORDINALITY AS m (body, tools, ord)
"""
# The messages only when the caller's cached copy is not at this (id, revision).
_LOAD = """
SELECT s.id, s.revision, s.segments, s.created_at, s.updated_at, s.metadata,
    CASE WHEN s.id = %(id)s::bigint AND s.revision = %(revision)s::bigint THEN NULL ELSE (
        SELECT string_agg(m.body, ',' ORDER BY m.seq) FROM {s}.messages m
        WHERE m.session_id = s.id
    ) END
FROM {s}.sessions s WHERE s.key = %(key)s
"""
# The prefix bounds are implied by the exact ones (cutting keys to their first characters
# keeps their order) and let the planner range-scan the sessions_key_prefix index.
_SUBTREE = """(key = %(key)s OR (key >= %(low)s AND key < %(high)s
    AND left(key, 512) >= left(%(low)s, 512) AND left(key, 512) <= left(%(high)s, 512)))"""
# Keep the newest ``keep`` messages, then move the cut past leading tool results
# (orra_di.store.trim_start); with no message left to start at, everything goes.
_TRIM = """
WITH {fence} target AS (
    SELECT id FROM {s}.sessions WHERE key = %(key)s {and_fenced} FOR UPDATE
), boundary AS (
    SELECT min(newest.seq) AS seq FROM (
        SELECT m.seq FROM {s}.messages m, target WHERE m.session_id = target.id
        ORDER BY m.seq DESC LIMIT %(keep)s::bigint
    ) newest
), cut AS (
    SELECT min(m.seq) AS seq FROM {s}.messages m, target, boundary
    WHERE m.session_id = target.id AND m.seq >= boundary.seq AND NOT m.has_tool_results
), gone AS (
    DELETE FROM {s}.messages m USING target, cut
    WHERE m.session_id = target.id AND (cut.seq IS NULL OR m.seq < cut.seq)
    RETURNING 1
), bump AS (
    UPDATE {s}.sessions t SET revision = t.revision + 1, updated_at = now()
    FROM target WHERE t.id = target.id AND EXISTS (SELECT FROM gone)
)
SELECT count(*), {fenced}, (SELECT id FROM target) FROM gone
"""
# Sessions under a live lease are in use by a run, however long ago they were written.
_PRUNE = """
DELETE FROM {s}.sessions s
WHERE s.updated_at < now() - make_interval(secs => %(idle)s::float8)
AND NOT EXISTS (SELECT FROM {s}.leases l WHERE l.key = s.key AND l.expires_at > now())
"""
# Take the lease if it is free and nobody queued before us, else queue (or keep our place);
# returns whether it was taken and the id of the session it is on (NULL: none yet).
_CLAIM_LEASE = """
WITH first AS (
    SELECT owner FROM {s}.lease_waiters
    WHERE key = %(key)s AND expires_at > now() ORDER BY ticket LIMIT 1
), claimed AS (
    INSERT INTO {s}.leases AS l (key, owner, expires_at)
    SELECT %(key)s, %(owner)s, now() + make_interval(secs => %(seconds)s::float8)
    WHERE NOT EXISTS (SELECT FROM first WHERE owner <> %(owner)s)
    ON CONFLICT (({s}.key_digest(key)))
    DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE l.expires_at <= now()
    RETURNING 1
), queued AS (
    INSERT INTO {s}.lease_waiters AS w (key, owner, expires_at)
    SELECT %(key)s, %(owner)s, now() + make_interval(secs => %(seconds)s::float8)
    WHERE NOT EXISTS (SELECT FROM claimed)
    ON CONFLICT (({s}.key_digest(key)), owner) DO UPDATE SET expires_at = excluded.expires_at
), served AS (
    DELETE FROM {s}.lease_waiters
    WHERE key = %(key)s AND EXISTS (SELECT FROM claimed)
    AND (owner = %(owner)s OR expires_at <= now())
)
SELECT EXISTS (SELECT FROM claimed), (SELECT id FROM {s}.sessions WHERE key = %(key)s)
"""
_OWN_LEASE = "SELECT FROM {s}.leases WHERE key = %(key)s AND owner = %(owner)s"
_RENEW_LEASE = """
UPDATE {s}.leases SET expires_at = now() + make_interval(secs => %(seconds)s::float8)
WHERE key = %(key)s AND owner = %(owner)s
"""
_DROP_LEASE = """
WITH waiting AS (
    DELETE FROM {s}.lease_waiters WHERE key = %(key)s AND owner = %(owner)s
)
DELETE FROM {s}.leases WHERE key = %(key)s AND owner = %(owner)s
"""


def _driver() -> tuple[ModuleType, ModuleType]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ConfigurationError(
            f"PostgresStore needs psycopg 3 and psycopg-pool: {install_hint('postgres')}"
        ) from exc
    return psycopg, psycopg_pool


class _Statements:
    """The SQL of one store, with its schema filled in."""

    def __init__(self, schema: str) -> None:
        s = f'"{schema}"'
        fence, fenced = _FENCE.format(s=s), "EXISTS (SELECT FROM fence)"
        where = f"WHERE {fenced}"
        self.append = _APPEND.format(s=s, fence="", where="")
        self.append_fenced = _APPEND.format(s=s, fence=fence, where=where)
        self.append_known = _APPEND_KNOWN.format(s=s, fence=fence)
        self.save = _SAVE.format(s=s, fence="", where="")
        self.save_fenced = _SAVE.format(s=s, fence=fence, where=where)
        self.save_clear = f"DELETE FROM {s}.messages WHERE session_id = %(id)s::bigint"
        self.save_messages = _SAVE_MESSAGES.format(s=s)
        self.load = _LOAD.format(s=s)
        self.delete = f"DELETE FROM {s}.sessions WHERE key = %(key)s"
        self.delete_tree = f"DELETE FROM {s}.sessions WHERE {_SUBTREE}"
        self.list_all = f"SELECT segments FROM {s}.sessions ORDER BY key"
        self.list_tree = f"SELECT segments FROM {s}.sessions WHERE {_SUBTREE} ORDER BY key"
        self.trim = _TRIM.format(s=s, fence="", and_fenced="", fenced="true")
        self.trim_fenced = _TRIM.format(
            s=s,
            fence=fence,
            # Not a session created anew after the one the lease is on was deleted.
            and_fenced=f"AND {fenced} AND id = coalesce(%(session)s::bigint, id)",
            fenced=fenced,
        )
        self.prune = _PRUNE.format(s=s)
        self.claim = _CLAIM_LEASE.format(s=s)
        self.own = _OWN_LEASE.format(s=s)
        self.renew = _RENEW_LEASE.format(s=s)
        self.drop = _DROP_LEASE.format(s=s)


class PostgresStore:
    """Sessions in PostgreSQL; see the module docstring for the design.

    ``url`` is a libpq URL or ``key=value`` string. ``lease_seconds`` bounds
    how long a crashed process keeps a session locked; ``min_size`` and
    ``max_size`` size the connection pool; ``schema`` names the schema that
    holds the tables; ``session_cache`` is how many parsed sessions are kept.
    """

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = 30.0,
        min_size: int = 1,
        max_size: int = 10,
        schema: str = "orra",
        session_cache: int = 1000,
    ) -> None:
        self._psycopg, self._psycopg_pool = _driver()
        try:
            params = self._psycopg.conninfo.conninfo_to_dict(url)
        except self._psycopg.Error:
            # The parser's message quotes the URL, password included.
            raise ConfigurationError(
                "the PostgreSQL URL cannot be parsed; expected "
                "postgresql://user:password@host:port/dbname"
            ) from None
        check_password_parsed(url, params.get("password"), what="PostgreSQL")
        self._secrets = _secrets_of(params.get("password"))
        self._where = _describe(url, params)
        if lease_seconds <= 0:
            raise ConfigurationError(f"lease_seconds must be positive, got {lease_seconds}")
        if not 0 <= min_size <= max_size or max_size < 1:
            raise ConfigurationError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got {min_size}, {max_size}"
            )
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(
                f"schema must be a plain identifier (letters, digits, _), got {schema!r}"
            )
        self._url = url
        self._options: dict[str, Any] = {"autocommit": True}
        if "application_name" not in params:  # name the connections in pg_stat_activity
            self._options["application_name"] = "orra-di"
        self._schema = schema
        self._lease_seconds = lease_seconds
        self._min_size, self._max_size = min_size, max_size
        self._sql = _Statements(schema)
        self._pool: AsyncConnectionPool[Any] | None = None
        self._opening = anyio.Lock()
        self._closed = False
        self._cache = SessionCache(session_cache)
        self._locks = KeyedLocks()
        self._held: dict[str, Held] = {}  # key -> a lease this store holds

    def __repr__(self) -> str:
        return f"PostgresStore({self._where!r}, schema={self._schema!r})"

    # -- opening and closing ----------------------------------------------------------

    async def open(self) -> None:
        """Connect, create or migrate the schema and fill the pool (else done on first use)."""
        await self._ready()

    async def aclose(self) -> None:
        async with self._opening:  # not while a pool is being opened: it would be left open
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- other kinds of data in the same database -----------------------------------

    @property
    def schema(self) -> str:
        """The schema this store's tables live in; other kinds of data use it too."""
        return self._schema

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection (autocommit), for data kept beside the sessions.

        Approvals, usage counters and projects share this store's pool rather than
        opening their own; use ``async with conn.transaction():`` for several
        statements. Driver errors are the caller's to turn into StoreError.
        """
        pool = await self._ready()
        async with pool.connection() as conn:
            yield conn

    async def _ready(self) -> AsyncConnectionPool[Any]:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._closed:
                raise StoreError(f"the PostgreSQL store {self._where} is closed")
            if self._pool is None:
                self._pool = await self._connect()
        return self._pool

    async def _connect(self) -> AsyncConnectionPool[Any]:
        psycopg, psycopg_pool = self._psycopg, self._psycopg_pool
        try:
            # A connection of its own first: its error says why (refused, auth...),
            # where a pool would only time out.
            conn = await psycopg.AsyncConnection.connect(self._url, **self._options)
            async with conn:
                await self._migrate(conn)
            pool: AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
                self._url,
                kwargs=self._options,
                min_size=self._min_size,
                max_size=self._max_size,
                open=False,
                timeout=_ACQUIRE_TIMEOUT,
                name=f"orra-di {self._schema}",
            )
            try:
                await pool.open(wait=True, timeout=_ACQUIRE_TIMEOUT)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await pool.close()
                raise
        except psycopg.Error as exc:
            raise self._failure("open the PostgreSQL store", exc) from exc
        return pool

    async def _migrate(self, conn: AsyncConnection[Any]) -> None:
        """Bring the schema to ``len(MIGRATIONS)``; refuse one from a newer release."""
        encoding = conn.info.parameter_status("server_encoding")
        if encoding != "UTF8":
            raise StoreError(
                f"the PostgreSQL database {self._where} uses the {encoding!r} encoding; "
                "orra-di needs UTF8"
            )
        s = f'"{self._schema}"'
        errors = self._psycopg.errors
        try:  # the usual case, without taking the lock or needing CREATE rights
            if await self._schema_version(conn) == len(MIGRATIONS):
                return
        except (errors.UndefinedTable, errors.InvalidSchemaName):
            pass
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(self._schema),))
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.schema_version ("
                "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await self._schema_version(conn)
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in steps:
                    await conn.execute(statement.format(s=s))
                await conn.execute(
                    f"INSERT INTO {s}.schema_version (version) VALUES (%s)", (number,)
                )

    async def _schema_version(self, conn: AsyncConnection[Any]) -> int:
        cursor = await conn.execute(f'SELECT max(version) FROM "{self._schema}".schema_version')
        row = await cursor.fetchone()
        version: int = 0 if row is None or row[0] is None else row[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"the schema {self._schema!r} in {self._where} has schema version {version}, "
                f"newer than this orra-di understands ({len(MIGRATIONS)}); upgrade orra-di "
                "or configure another schema"
            )
        return version

    # -- the SessionStore operations --------------------------------------------------

    async def load(self, namespace: NamespaceLike) -> Session | None:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        what = f"load session {key!r}"
        known = cast("tuple[int, int] | None", self._cache.version(key))
        while True:
            session_id, revision = known or (None, None)
            row = await self._fetch_one(
                what, self._sql.load, {"key": key, "id": session_id, "revision": revision}
            )
            if row is None:
                self._cache.discard(key)
                return None
            session_id, revision, segments, created, updated, metadata, bodies = row
            version = (session_id, revision)
            if version == known:
                cached = self._cache.get(key, version)
                if cached is not None:
                    return cached
                known = None  # an append moved the cached copy on meanwhile: read it all
                continue
            try:
                session = Session(
                    namespace=Namespace(*segments),
                    # The messages come as one text, already comma-joined.
                    messages=load_messages((bodies,)) if bodies is not None else [],
                    created_at=created.astimezone(UTC),
                    updated_at=updated.astimezone(UTC),
                    metadata=json.loads(metadata),
                )
            except (ValueError, TypeError) as exc:
                raise StoreError(f"{what} failed: the stored session is corrupt: {exc}") from exc
            result = session.snapshot()
            self._cache.put(key, version, session)
            return result

    async def save(self, session: Session) -> None:
        namespace = session.namespace
        key = namespace.key
        what = f"save session {key!r}"
        messages = list(session.messages)
        bodies = dump_messages(messages)
        metadata = dump_metadata(session.metadata, what)
        created, updated = time_text(session.created_at), time_text(session.updated_at)
        # What a later load would return, so cache hits and misses agree.
        cached = Session(
            namespace=namespace,
            messages=messages,
            created_at=datetime.fromisoformat(created),
            updated_at=datetime.fromisoformat(updated),
            metadata=json.loads(metadata),
        )
        held = self._held.get(key)
        params = {
            "key": key,
            "owner": None if held is None else held.lease,
            "segments": list(namespace.segments),
            "created": created,
            "updated": updated,
            "metadata": metadata,
            "count": len(bodies),
        }

        async def write(conn: AsyncConnection[Any]) -> tuple[int, int] | None:
            async with conn.transaction():
                cursor = await conn.execute(
                    self._sql.save if held is None else self._sql.save_fenced, params
                )
                row = await cursor.fetchone()
                if row is None:
                    return None
                if held is not None and held.session not in (None, row[0]):
                    raise session_gone(what)  # the upsert created it anew: roll back
                ids = {"id": row[0]}
                await conn.execute(self._sql.save_clear, ids)
                await conn.execute(
                    self._sql.save_messages,
                    {**ids, "bodies": bodies, "tools": [bool(m.tool_results) for m in messages]},
                )
            return row[0], row[1]

        version = await self._run(what, write)
        if version is None:
            raise await self._refusal(key, held, what)
        if held is not None:
            held.session = version[0]
        self._cache.put(key, version, cached)

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
        new_metadata = None if metadata is None else dump_metadata(metadata, what)
        held = self._held.get(key)
        if held is None:
            sql = self._sql.append
        else:  # only the session the lease is on, once known
            sql = self._sql.append_fenced if held.session is None else self._sql.append_known
        row = await self._fetch_one(
            what,
            sql,
            {
                "key": key,
                "owner": None if held is None else held.lease,
                "session": None if held is None else held.session,
                "segments": list(namespace.segments),
                "metadata": new_metadata,
                "count": len(added),
                "bodies": dump_messages(added),
                "tools": [bool(m.tool_results) for m in added],
            },
        )
        if row is None:
            raise await self._refusal(key, held, what)
        session_id, revision, updated = row
        if held is not None:
            held.session = session_id
        self._cache.advance(
            key,
            (session_id, revision - 1),
            (session_id, revision),
            added,
            updated_at=updated.astimezone(UTC),
            metadata=None if new_metadata is None else json.loads(new_metadata),
        )

    async def delete(self, namespace: NamespaceLike) -> bool:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        count = await self._execute(f"delete session {key!r}", self._sql.delete, {"key": key})
        self._cache.discard(key)
        return count == 1

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        count = await self._execute(
            f"delete the sessions under {key!r}", self._sql.delete_tree, _subtree(key)
        )
        self._cache.discard_tree(key)
        return count

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        prefix = None if prefix is None else Namespace.coerce(prefix)
        if prefix is None:
            what, sql, params = "list sessions", self._sql.list_all, {}
        else:
            what = f"list sessions under {prefix.key!r}"
            sql, params = self._sql.list_tree, _subtree(prefix.key)

        async def select(conn: AsyncConnection[Any]) -> list[Any]:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

        rows = await self._run(what, select)
        try:
            return [Namespace(*segments) for (segments,) in rows]
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{what} failed: a stored session key is corrupt: {exc}") from exc

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        namespace = Namespace.coerce(namespace)
        keep_last = check_keep_last(keep_last)
        key = namespace.key
        what = f"trim session {key!r}"
        held = self._held.get(key)
        removed, fenced, session_id = await self._fetch_one(
            what,
            self._sql.trim if held is None else self._sql.trim_fenced,
            {
                "key": key,
                "owner": None if held is None else held.lease,
                "session": None if held is None else held.session,
                "keep": keep_last,
            },
        )
        if not fenced:
            raise lease_lapsed(what, self._lease_seconds)
        if held is not None and held.session is not None and session_id is None:
            raise session_gone(what)
        if removed:
            self._cache.discard(key)
        count: int = removed
        return count

    async def prune(self, idle_for: float) -> int:
        if prune_cutoff(idle_for) is None:
            return 0
        return await self._execute(
            f"prune sessions idle for {idle_for:g}s", self._sql.prune, {"idle": idle_for}
        )

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        namespace = Namespace.coerce(namespace)
        return self._hold(namespace.key, timeout)

    # -- the single-writer lease ---------------------------------------------------------

    @asynccontextmanager
    async def _hold(self, key: str, wait: float | None) -> AsyncIterator[None]:
        started = anyio.current_time()
        async with self._locks.hold(key, wait):
            token = secrets.token_hex(16)
            held = Held(token)
            params = {"key": key, "owner": token, "seconds": self._lease_seconds}

            async def claim() -> bool:
                taken, held.session = await self._fetch_one(
                    f"lock session {key!r}", self._sql.claim, params
                )
                return bool(taken)

            async def renew() -> bool:
                what = f"renew the lock on session {key!r}"
                return await self._execute(what, self._sql.renew, params) == 1

            async def drop() -> None:
                if self._pool is None:  # closed: nothing to drop it with; it expires
                    return
                what = f"unlock session {key!r}"
                await self._execute(what, self._sql.drop, {"key": key, "owner": token})

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

    async def _refusal(self, key: str, held: Held | None, what: str) -> StoreError:
        """Why a fenced write changed nothing: the lease was lost, or the session deleted.

        One more round trip, on this rare path only.
        """
        assert held is not None  # only fenced writes are refused
        params = {"key": key, "owner": held.lease}
        if await self._fetch_one(f"{what} (checking the lock)", self._sql.own, params) is None:
            return lease_lapsed(what, self._lease_seconds)
        return session_gone(what)

    # -- running statements --------------------------------------------------------------

    async def _execute(self, what: str, sql: str, params: Mapping[str, Any]) -> int:
        """Run one statement; return how many rows it changed."""

        async def execute(conn: AsyncConnection[Any]) -> int:
            return (await conn.execute(sql, params)).rowcount

        return await self._run(what, execute)

    async def _fetch_one(self, what: str, sql: str, params: Mapping[str, Any]) -> Any:
        """Run one statement; return its first row, or ``None``."""

        async def fetch(conn: AsyncConnection[Any]) -> Any:
            return await (await conn.execute(sql, params)).fetchone()

        return await self._run(what, fetch)

    async def _run(self, what: str, op: Callable[[AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        """Run ``op`` on a pooled connection, turning driver errors into StoreError."""
        pool = await self._ready()
        conn: AsyncConnection[Any] | None = None
        try:
            conn = await self._checkout(pool)
            try:
                return await op(conn)
            finally:
                with anyio.CancelScope(shield=True):  # a connection lost here is lost for good
                    await pool.putconn(conn)
        except self._psycopg.Error as exc:
            raise self._failure(what, exc, lost=conn is not None and conn.broken) from exc

    async def _checkout(self, pool: AsyncConnectionPool[Any]) -> AsyncConnection[Any]:
        """A pooled connection, skipping those the server closed while they sat idle."""
        conn: AsyncConnection[Any]
        for _ in range(self._max_size):
            conn = await pool.getconn()
            try:
                # Non-blocking reads: the server's farewell message, then the close.
                conn.pgconn.consume_input()
                conn.pgconn.consume_input()
            except self._psycopg.OperationalError:
                with anyio.CancelScope(shield=True):
                    await pool.putconn(conn)  # broken: the pool replaces it
                continue
            return conn
        conn = await pool.getconn()
        return conn

    def _failure(self, what: str, exc: BaseException, *, lost: bool = False) -> StoreError:
        reason = str(exc).strip() or type(exc).__name__
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        if lost:
            reason = (
                f"the connection was lost ({reason}); the operation was applied in full "
                "or not at all, and the next one gets a new connection"
            )
        elif isinstance(exc, self._psycopg_pool.PoolTimeout):
            reason = (
                f"no connection within {_ACQUIRE_TIMEOUT:g}s: the server is unreachable, "
                f"or all {self._max_size} connections of the pool are busy"
            )
        return StoreError(f"{what} failed: {reason} (PostgreSQL {self._where})")


def _subtree(key: str) -> dict[str, str]:
    low, high = subtree_bounds(key)
    return {"key": key, "low": low, "high": high}


def _lock_id(schema: str) -> int:
    """The advisory lock that serialises migrations of ``schema`` (stable across processes)."""
    digest = hashlib.blake2b(f"orra-di migrate {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _secrets_of(password: str | None) -> tuple[str, ...]:
    """The password as it may appear in a message: plain and percent-encoded."""
    if not password:
        return ()
    return tuple({password, quote(password, safe="")})


def _describe(url: str, params: Mapping[str, str]) -> str:
    """Where the database is, password masked: a URL as written, through the one masking
    path (:func:`orra_di.redaction.mask_url`); a ``key=value`` string as a URL rebuilt
    from its parse, which is unambiguous there."""
    if "://" in url:
        return mask_url(url, [params.get("password")])
    user = params.get("user", "")
    if params.get("password"):
        user += ":***"
    host = params.get("host", "")
    if params.get("port"):
        host += f":{params['port']}"
    at = f"{user}@" if user else ""
    return f"postgresql://{at}{host}/{params.get('dbname', '')}"
