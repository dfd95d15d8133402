"""SQLite: the embedded default store, one file shared by many tasks and processes.

Connection strategy
-------------------
One connection per store object, guarded by a ``threading.Lock``, with WAL
journaling (readers never wait for the writer) and, by default,
``synchronous=NORMAL`` (a commit writes the WAL without an fsync: it survives a
process crash, and a power cut can only lose the last commits). Pass
``synchronous="FULL"`` (setting ``store.sqlite_synchronous``) for an fsync per
commit of session data, so such a commit also survives a power cut (lease
bookkeeping commits without one: see below). ``synchronous="RUN"`` sits between:
a locked run's steps commit as at NORMAL (each survives a process crash as it is
written, before the next model call) and its last write, or its unlock, commits
with an fsync, which makes the run's earlier WAL frames durable with it; a power
cut can then lose only the steps of a run that had not finished, and a finished
run costs one fsync instead of one per step. The usage ledger's record of each
model call rides on the same fsync (``run_in_connection(deferrable=True)``); other
data written through :meth:`SQLiteStore.run_in_connection` during the run
(memories, approvals) still commits with an fsync of its own.

Measured on a 2-vCPU VM, a hop to a worker thread costs 100-170 µs while an
append is about 35 µs of SQLite work. Persisting one user message (lock,
load, four appends, unlock) took about 1.8 ms with every operation in a
thread, against a budget of 0.6 ms, and about 0.43 ms with this split, where
each operation runs in one of two places:

- *Inline*, on the event-loop thread, for the constant-cost hot path: the
  revision check of a cached load, appends up to 64 KiB, and the lease
  statements of :meth:`SQLiteStore.lock`. The connection's busy timeout is
  0 and the lock is only *tried*, so an inline operation never waits: it
  either finishes in microseconds (page-cache reads, a WAL write without an
  fsync) or, if another connection holds the write lock or a worker thread
  holds the connection, it rolls back and goes to a thread.
- *In a worker thread* (``anyio.to_thread``), with the busy timeout in
  force: everything that can wait or whose cost grows with the data — the
  first open and migrations, loads that miss the cache, ``save``,
  ``delete``, ``delete_tree``, ``list`` and large appends.

Automatic WAL checkpoints (which copy every page a second time, and fsync)
are off: every few hundred writes a background thread copies the WAL into
the database on its own connection, and the next operation copies what was
written meanwhile, so the WAL can restart from its beginning. Measured, this
keeps checkpoints out of the hot path and the WAL bounded under nonstop writes.

Single writer across processes
------------------------------
:meth:`SQLiteStore.lock` takes the in-process lock, then a lease row with a
random owner token, deleted on exit; a process that dies frees its sessions
when the lease expires. One daemon thread per store (``stores/_renewer.py``)
renews every lease the store holds in one statement every
``lease_seconds / 3``, and only while the event loop of the run holding it
still runs callbacks, so a stuck loop lets its leases lapse as a dead process
would. Appends and saves by a store that holds the session's lease also
check, in the same transaction, that the lease is still its own (for an
append, inside its ``UPDATE``: one statement): a holder that stalled past its
lease and was taken over gets a :class:`~orra_di.errors.StoreError` instead
of interleaving with the new run.
The claim also reads the id of the session the lease is on, and each write of
the holder checks the row it touches against it (row ids are never reused):
a session deleted under the lease (``delete``, ``delete_tree``, or ``prune``
once the lease lapsed) is never silently recreated holding only the run's
later steps; the write is refused instead. This costs no statement: the id
comes back from the ``UPDATE ... RETURNING`` the append runs anyway.

What a run costs: the claim (one statement in a transaction of its own, which
also returns the session's revision so that the run's load reads nothing
when the cache holds it), then one transaction per persisted step, the last
of which (:meth:`SQLiteStore.append_last`, called by the runtime) also
deletes the lease. The claim also reads the session's next sequence number, so
a holder knows its row (id, revision, next seq) and each append updates it
where the revision is still the one it knows, without ``RETURNING`` (which
SQLite buffers: about 10 µs more per append on a 2-vCPU VM); a row that changed
under it (a write without the lock, a trim) or a lease that went falls back to
the statements that say which. Transactions that touch only lease rows (claim, renewal,
release, the waiters' queue) commit with ``synchronous=NORMAL`` even on a
``FULL`` store: a lease is worth nothing after a power cut, which ends every
process on the machine, and the next durable commit syncs the WAL frames
before it anyway. So at ``FULL`` a run fsyncs once per persisted step.

Waiters are served in order of arrival: a claim that finds the lease taken,
or an older waiter queued, takes a ticket in ``lease_waiters`` (renewed by
each attempt, expiring after ``lease_seconds``), and only the first live
ticket may claim a free lease. Without it, a holder running back-to-back
turns released and re-claimed within microseconds, while a waiter polling
with backoff found the lease held every time.

Retention
---------
``trim`` is one ``DELETE`` of a session's oldest rows, whose cut moves past
leading tool results with SQLite's JSON functions (so it parses only the
rows it skips); ``next_seq`` keeps new messages numbered after the kept
ones. ``prune`` is one ``DELETE`` over the index on ``updated_at`` that
leaves alone sessions under a live lease; messages go with their session
(``ON DELETE CASCADE``).

Load cache
----------
Sessions carry ``(row id, revision)``; the revision is bumped by every write
and row ids are never reused, so the pair never repeats for a key. A load
reads that pair and, when it matches the cached copy, returns a snapshot of
it: the cost does not grow with the session's length.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    asynccontextmanager,
    contextmanager,
    suppress,
)
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from os import PathLike, fspath
from typing import Any, Final, Literal, TypeVar

import anyio

from orra_di.errors import ConfigurationError, StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.session import Session, utc_now
from orra_di.store import check_keep_last, prune_cutoff, subtree_bounds
from orra_di.stores._cache import SessionCache
from orra_di.stores._codec import (
    Held,
    drop_quietly,
    dump_messages,
    dump_metadata,
    encode_session,
    lease_lapsed,
    load_messages,
    poll_until,
    session_gone,
    time_text,
)
from orra_di.stores._locks import KeyedLocks
from orra_di.stores._renewer import LeaseRenewer

__all__ = ["MIGRATIONS", "SQLiteStore"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (  # 1: sessions, their messages, and the single-writer leases
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            segments TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            metadata TEXT NOT NULL,
            revision INTEGER NOT NULL,
            message_count INTEGER NOT NULL
        )""",
        """CREATE TABLE messages (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE leases (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
    ),
    (  # 2: retention; next_seq numbers messages on after a trim removed the first ones
        "ALTER TABLE sessions ADD COLUMN next_seq INTEGER NOT NULL DEFAULT 0",
        "UPDATE sessions SET next_seq = message_count",
        "CREATE INDEX sessions_by_updated_at ON sessions (updated_at)",
    ),
    (  # 3: the queue of runs waiting for a lease, served in order of arrival
        """CREATE TABLE lease_waiters (
            ticket INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            owner TEXT NOT NULL,
            expires_at REAL NOT NULL
        )""",
        "CREATE INDEX lease_waiters_by_key ON lease_waiters (key, ticket)",
    ),
)
"""Schema steps; ``PRAGMA user_version`` counts those applied. Only ever append."""

_INLINE_APPEND_BYTES = 64 * 1024
_CHECKPOINT_EVERY = 256
_CHECKPOINT_WAL_BYTES = 4 << 20
"""A write through ``run_in_connection`` that leaves the WAL larger than this (about
SQLite's own auto-checkpoint of 1,000 pages) starts a checkpoint at once."""

_SELECT_VERSION = "SELECT id, revision FROM sessions WHERE key = ?"
_SELECT_SESSION = (
    "SELECT id, revision, segments, created_at, updated_at, metadata FROM sessions WHERE key = ?"
)
_SELECT_BODIES = "SELECT body FROM messages WHERE session_id = ? ORDER BY seq"
_INSERT_MESSAGE = "INSERT INTO messages (session_id, seq, body) VALUES (?, ?, ?)"
_BUMP_SESSION = """
    UPDATE sessions
    SET revision = revision + 1, updated_at = ?1, message_count = message_count + ?2,
        next_seq = next_seq + ?2, metadata = coalesce(?3, metadata)
    WHERE key = ?4
    RETURNING id, revision, next_seq
"""
# A holder's append to the row it knows, unchanged since it last wrote it (?4 id, ?5 revision):
# no RETURNING (SQLite buffers returned rows; about 10 us more per append), the holder
# computes what it would return. No row updated: lapsed, or the row changed, or it is
# gone; the append then takes the statements below, which tell which.
_BUMP_KNOWN = """
    UPDATE sessions
    SET revision = revision + 1, updated_at = ?1, message_count = message_count + ?2,
        next_seq = next_seq + ?2, metadata = coalesce(?3, metadata)
    WHERE id = ?4 AND revision = ?5
"""
_BUMP_KNOWN_HELD = _BUMP_KNOWN + (
    "    AND EXISTS (SELECT 1 FROM leases WHERE key = ?6 AND owner = ?7)\n"
)
# The same, for a holder: only while its lease is its own (no row: lapsed, or no session).
_BUMP_HELD_SESSION = """
    UPDATE sessions
    SET revision = revision + 1, updated_at = ?1, message_count = message_count + ?2,
        next_seq = next_seq + ?2, metadata = coalesce(?3, metadata)
    WHERE key = ?4 AND EXISTS (SELECT 1 FROM leases WHERE key = ?4 AND owner = ?5)
    RETURNING id, revision, next_seq
"""
_CREATE_SESSION = """
    INSERT INTO sessions
        (key, segments, created_at, updated_at, metadata, revision, message_count, next_seq)
    VALUES (?1, ?2, ?3, ?3, ?4, 1, ?5, ?5)
    RETURNING id, revision, next_seq
"""
_REPLACE_SESSION = """
    INSERT INTO sessions
        (key, segments, created_at, updated_at, metadata, revision, message_count, next_seq)
    VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
    ON CONFLICT (key) DO UPDATE SET
        created_at = excluded.created_at, updated_at = excluded.updated_at,
        metadata = excluded.metadata, message_count = excluded.message_count,
        next_seq = excluded.next_seq, revision = revision + 1
    RETURNING id, revision
"""
# Keep the messages from seq ?2 on, the cut moved past tool results (store.trim_start).
_TRIM_MESSAGES = """
    DELETE FROM messages WHERE session_id = ?1 AND seq < coalesce(
        (SELECT seq FROM messages
         WHERE session_id = ?1 AND seq >= ?2
           AND coalesce(json_array_length(body, '$.tool_results'), 0) = 0
         ORDER BY seq LIMIT 1),
        ?3)
"""
_TRIMMED_SESSION = """
    UPDATE sessions
    SET message_count = message_count - ?1, revision = revision + 1, updated_at = ?2
    WHERE id = ?3
"""
_PRUNE = """
    DELETE FROM sessions
    WHERE updated_at < ? AND key NOT IN (SELECT key FROM leases WHERE expires_at > ?)
"""
# Takes the lease if it is free (or expired) and no other live waiter queued first.
# Returns the id and revision of the session the lease is on (NULL: none yet), or no row
# if not claimed.
_CLAIM_LEASE = """
    INSERT INTO leases (key, owner, expires_at)
    SELECT ?1, ?2, ?3 WHERE coalesce(
        (SELECT owner FROM lease_waiters WHERE key = ?1 AND expires_at > ?4
         ORDER BY ticket LIMIT 1),
        ?2) = ?2
    ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
    WHERE expires_at <= ?4
    RETURNING (SELECT id FROM sessions WHERE key = ?1),
        (SELECT revision FROM sessions WHERE key = ?1),
        (SELECT next_seq FROM sessions WHERE key = ?1)
"""
_QUEUE = "INSERT INTO lease_waiters (key, owner, expires_at) VALUES (?, ?, ?)"
_STILL_QUEUED = "UPDATE lease_waiters SET expires_at = ? WHERE key = ? AND owner = ?"
_DEQUEUE = "DELETE FROM lease_waiters WHERE key = ?1 AND (owner = ?2 OR expires_at <= ?3)"
# Every lease a store holds, in one statement: ?2 is a JSON array of [key, owner] pairs.
_RENEW_LEASES = """
    UPDATE leases SET expires_at = ?1
    WHERE (key, owner) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?2))
    RETURNING key, owner
"""
_OWN_LEASE = "SELECT 1 FROM leases WHERE key = ? AND owner = ?"
_DROP_LEASE = "DELETE FROM leases WHERE key = ? AND owner = ?"


class _Miss(Enum):
    MISS = "miss"


@dataclass(slots=True, eq=False)
class _Lease(Held):
    """A lease this store holds on ``key`` (``Held``), and what the claim learned."""

    key: str = ""
    claimed: tuple[int | None, int | None] | None = None
    """The session's (row id, revision) as the claim saw it, for the first load only."""
    released: bool = False
    """Released already, in the same transaction as the holder's last write."""
    unsynced: bool = False
    """At ``synchronous="RUN"``: the holder wrote steps that wait for the run's fsync."""
    position: tuple[int, int, int] | None = None
    """The session's (row id, revision, next seq) as the claim read it or this holder's
    last write left it; None when not known (no session yet, or after a rewrite)."""

    def __hash__(self) -> int:  # one lease per claim: identity is equality
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __str__(self) -> str:
        return f"session {self.key!r}"


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> str:
    """Switch to WAL; the journal mode the database has afterwards.

    The switch needs an exclusive lock. While another connection creates the same
    new file (several processes starting at once), SQLite answers ``SQLITE_BUSY``
    at once instead of calling the busy handler (its deadlock avoidance: this
    connection holds a read lock), so ``busy_timeout`` alone does not cover it:
    retry for as long as the busy timeout allows.
    """
    deadline = time.monotonic() + busy_timeout
    pause = 0.001
    while True:
        try:
            mode: str = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            return mode
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema to ``len(MIGRATIONS)``; refuse a database from a newer release."""
    target = len(MIGRATIONS)
    if conn.execute("PRAGMA user_version").fetchone()[0] == target:
        return
    conn.execute("BEGIN IMMEDIATE")  # re-read under the write lock: another process may migrate
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > target:
            raise StoreError(
                f"the database {path} has schema version {version}, newer than this orra-di "
                f"understands ({target}); upgrade orra-di or point it at another file"
            )
        for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in steps:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SQLiteStore:
    """Sessions in one SQLite file; see the module docstring for the design.

    ``lease_seconds`` bounds how long a crashed process can keep a session
    locked; ``busy_timeout`` how long an operation waits for another
    process's write; ``cache_sessions`` how many parsed sessions are kept;
    ``synchronous`` is the durability of a commit: ``"NORMAL"`` survives a
    process crash, ``"FULL"`` (an fsync per commit of session data) a power
    cut too; ``"RUN"`` commits a locked run's steps as ``NORMAL`` and its last
    write (or its unlock) as ``FULL``, whose fsync makes every earlier step
    durable too: each step survives a process crash as it is written, and a
    finished run a power cut (one fsync per run instead of one per step).
    """

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        lease_seconds: float = 30.0,
        busy_timeout: float = 5.0,
        cache_sessions: int = 1000,
        synchronous: Literal["NORMAL", "FULL", "RUN", "normal", "full", "run"] = "NORMAL",
    ) -> None:
        if lease_seconds <= 0:
            raise ConfigurationError(f"lease_seconds must be positive, got {lease_seconds}")
        if busy_timeout < 0:
            raise ConfigurationError(f"busy_timeout must not be negative, got {busy_timeout}")
        if str(synchronous).upper() not in ("NORMAL", "FULL", "RUN"):
            raise ConfigurationError(
                f"synchronous must be 'NORMAL', 'FULL' or 'RUN', got {synchronous!r}"
            )
        self._synchronous = str(synchronous).upper()
        self._path = fspath(path)
        if os.path.isdir(self._path):
            raise ConfigurationError(
                f"the SQLite database {self._path} is a directory; give the path of a file in "
                f"it, e.g. {os.path.join(self._path, 'sessions.sqlite3')}"
            )
        self._lease_seconds = lease_seconds
        self._busy_ms = round(busy_timeout * 1000)
        self._mutex = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._cache = SessionCache(cache_sessions)
        self._locks = KeyedLocks()
        self._held: dict[str, _Lease] = {}  # key -> a lease this store holds
        self._renewer = LeaseRenewer(
            self._renew_all, lease_seconds / 3, name="orra-sqlite-lease-renewal"
        )
        self._writes = 0  # since the last checkpoint
        self._checkpointer: threading.Thread | None = None
        self._backfilled = threading.Event()  # set when the background copy is done

    # -- the SessionStore operations --------------------------------------------------

    async def load(self, namespace: NamespaceLike) -> Session | None:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        what = f"load session {key!r}"

        held = self._held.get(key)
        if held is not None and held.claimed is not None:
            # The claim read the session's version in its transaction, just now: the
            # run's first load needs no statement of its own.
            version, held.claimed = held.claimed, None
            if version[0] is None:
                self._cache.discard(key)
                return None
            cached = self._cache.get(key, version)
            if cached is not None:
                return cached

        def check(conn: sqlite3.Connection) -> Session | _Miss | None:
            row = conn.execute(_SELECT_VERSION, (key,)).fetchone()
            if row is None:
                self._cache.discard(key)
                return None
            cached = self._cache.get(key, (row[0], row[1]))
            return _Miss.MISS if cached is None else cached

        found = await self._run(what, check)
        if found is not _Miss.MISS:
            return found
        return await anyio.to_thread.run_sync(self._read, key, what)

    async def save(self, session: Session) -> None:
        namespace = session.namespace
        key = namespace.key
        what = f"save session {key!r}"
        bodies, metadata, created, updated, cached = encode_session(session, what)
        held = self._held.get(key)

        def write(conn: sqlite3.Connection) -> None:
            with self._writing(conn):
                self._fence(conn, key, held, what)
                row = conn.execute(
                    _REPLACE_SESSION,
                    (key, _segments(namespace), created, updated, metadata, len(bodies)),
                ).fetchone()
                _same_session(held, row[0], what)  # not one created anew by this statement
                conn.execute("DELETE FROM messages WHERE session_id = ?", (row[0],))
                conn.executemany(_INSERT_MESSAGE, ((row[0], s, b) for s, b in enumerate(bodies)))
            _wrote(held, row[0])
            if held is not None:  # this commit's fsync covered the run's earlier steps
                held.unsynced = False
                held.position = (row[0], row[1], len(bodies))
            self._cache.put(key, (row[0], row[1]), cached)

        await self._run(what, write, inline=False)

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        await self._append(Namespace.coerce(namespace), messages, metadata, last=False)

    async def append_last(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """``append`` as the lock holder's last write: its lease goes in the same transaction.

        Saves the release's own transaction (and, at ``synchronous=FULL``, nothing
        else: lease-only commits skip the fsync). The in-process lock stays held
        until the ``lock`` block ends, and a later write of the holder is refused.
        Without this store's lock on the session it is a plain ``append``.
        """
        await self._append(Namespace.coerce(namespace), messages, metadata, last=True)

    async def _append(
        self,
        namespace: Namespace,
        messages: Sequence[Message],
        metadata: Mapping[str, Any] | None,
        *,
        last: bool,
    ) -> None:
        key = namespace.key
        what = f"append to session {key!r}"
        added = tuple(messages)
        bodies = dump_messages(added)
        new_metadata = None if metadata is None else dump_metadata(metadata, what)
        now = utc_now()
        stamp = time_text(now)
        held = self._held.get(key)

        release = last and held is not None
        # At RUN a step before the holder's last write skips the fsync (module docstring).
        deferred = self._synchronous == "RUN" and held is not None and not release
        writing = self._unsynced_writing if deferred else self._writing

        def write(conn: sqlite3.Connection) -> None:
            with writing(conn):
                row: Any = None  # (id, revision, next seq)
                if held is not None and held.position is not None and not held.released:
                    values = (stamp, len(bodies), new_metadata)
                    row = self._bump_known(conn, held, held.position, values, what, release)
                created = False
                if row is None and (held is None or release):
                    self._fence(conn, key, held, what, release=release)
                    row = conn.execute(
                        _BUMP_SESSION, (stamp, len(bodies), new_metadata, key)
                    ).fetchone()
                    created = row is None
                elif row is None and held is not None:  # the fence is in the update: one statement
                    row = conn.execute(
                        _BUMP_HELD_SESSION, (stamp, len(bodies), new_metadata, key, held.lease)
                    ).fetchone()
                    if row is None:  # lapsed (refused here), or no session yet
                        self._fence(conn, key, held, what)
                    created = row is None
                if created:
                    _same_session(held, None, what)
                    row = conn.execute(
                        _CREATE_SESSION,
                        (key, _segments(namespace), stamp, new_metadata or "{}", len(bodies)),
                    ).fetchone()
                session_id, revision, next_seq = row
                _same_session(held, session_id, what)
                first = next_seq - len(bodies)
                conn.executemany(
                    _INSERT_MESSAGE,
                    ((session_id, first + i, body) for i, body in enumerate(bodies)),
                )
            _wrote(held, session_id)
            if held is not None:
                held.position = (session_id, revision, next_seq)
            if deferred:
                assert held is not None
                held.unsynced = True
            if release:
                assert held is not None
                held.released = True
                self._renewer.discard(held)
            if created:  # the whole session is known: the next load needs no read
                self._cache.put(
                    key,
                    (session_id, revision),
                    Session(
                        namespace=namespace,
                        messages=list(added),
                        created_at=now,
                        updated_at=now,
                        metadata=json.loads(new_metadata or "{}"),
                    ),
                )
                return
            self._cache.advance(
                key,
                (session_id, revision - 1),
                (session_id, revision),
                added,
                updated_at=now,
                metadata=None if new_metadata is None else json.loads(new_metadata),
            )

        small = sum(map(len, bodies)) <= _INLINE_APPEND_BYTES
        await self._run(what, write, inline=small)

    async def delete(self, namespace: NamespaceLike) -> bool:
        namespace = Namespace.coerce(namespace)
        key = namespace.key

        def delete(conn: sqlite3.Connection) -> bool:
            with self._writing(conn):
                count: int = conn.execute("DELETE FROM sessions WHERE key = ?", (key,)).rowcount
            self._cache.discard(key)
            return count == 1

        return await self._run(f"delete session {key!r}", delete, inline=False)

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        namespace = Namespace.coerce(namespace)
        key = namespace.key
        low, high = subtree_bounds(key)

        def delete_tree(conn: sqlite3.Connection) -> int:
            with self._writing(conn):
                count: int = conn.execute(
                    "DELETE FROM sessions WHERE key = ? OR (key >= ? AND key < ?)",
                    (key, low, high),
                ).rowcount
            self._cache.discard_tree(key)
            return count

        return await self._run(f"delete the sessions under {key!r}", delete_tree, inline=False)

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        prefix = None if prefix is None else Namespace.coerce(prefix)

        def select(conn: sqlite3.Connection) -> list[Namespace]:
            if prefix is None:
                rows = conn.execute("SELECT segments FROM sessions ORDER BY key").fetchall()
            else:
                # Two indexed lookups; the prefix's own key sorts before its descendants.
                rows = conn.execute(
                    "SELECT segments FROM sessions WHERE key = ?", (prefix.key,)
                ).fetchall()
                rows += conn.execute(
                    "SELECT segments FROM sessions WHERE key >= ? AND key < ? ORDER BY key",
                    subtree_bounds(prefix.key),
                ).fetchall()
            try:
                return [Namespace(*json.loads(segments)) for (segments,) in rows]
            except (ValueError, TypeError) as exc:
                raise StoreError(f"a session key in {self._path} is corrupt: {exc}") from exc

        what = "list sessions" if prefix is None else f"list sessions under {prefix.key!r}"
        return await self._run(what, select, inline=False)

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        namespace = Namespace.coerce(namespace)
        return self._hold(namespace.key, timeout)

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        namespace = Namespace.coerce(namespace)
        keep_last = check_keep_last(keep_last)
        key = namespace.key
        what = f"trim session {key!r}"
        stamp = time_text(utc_now())
        held = self._held.get(key)

        def trim(conn: sqlite3.Connection) -> int:
            with self._writing(conn):
                self._fence(conn, key, held, what)
                row = conn.execute("SELECT id, next_seq FROM sessions WHERE key = ?", (key,))
                found = row.fetchone()
                _same_session(held, None if found is None else found[0], what)
                if found is None:
                    return 0
                session_id, next_seq = found
                removed: int = conn.execute(
                    _TRIM_MESSAGES, (session_id, next_seq - keep_last, next_seq)
                ).rowcount
                if removed:
                    conn.execute(_TRIMMED_SESSION, (removed, stamp, session_id))
                    self._cache.discard(key)
            return removed

        return await self._run(what, trim, inline=False)

    async def prune(self, idle_for: float) -> int:
        moment = prune_cutoff(idle_for)
        if moment is None:
            return 0
        cutoff = time_text(moment)

        def prune(conn: sqlite3.Connection) -> int:
            with self._writing(conn):
                pruned: int = conn.execute(_PRUNE, (cutoff, time.time())).rowcount
            return pruned  # stale cache entries fail their version check and go on sight

        return await self._run("prune idle sessions", prune, inline=False)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._renewer.close)
        if self._checkpointer is not None:
            await anyio.to_thread.run_sync(self._checkpointer.join)
        await anyio.to_thread.run_sync(self._close)

    # -- other kinds of data in the same database -----------------------------------

    async def run_in_connection(
        self,
        what: str,
        op: Callable[[sqlite3.Connection], _T],
        *,
        write: bool = False,
        deferrable: bool = False,
    ) -> _T:
        """Run ``op`` on this store's connection, for data kept beside the sessions.

        Approvals, usage counters and projects live in the same database file, so
        they share its connection, its worker thread and its busy handling rather
        than opening their own. ``write=True`` runs ``op`` inside one write
        transaction. A ``sqlite3.Error`` becomes a :class:`StoreError` naming ``what``.

        ``deferrable=True`` (bookkeeping a run writes, such as the usage ledger's
        record of a model call): at ``synchronous="RUN"``, while this store holds a
        run's lock, the write commits without an fsync and the runs in progress owe
        one, which their last write (or unlock) pays; with no run in progress it
        commits durably as any other write.
        """
        if not write:
            return await self._run(what, op)
        runs = (
            [held for held in self._held.values() if not held.released]
            if deferrable and self._synchronous == "RUN"
            else []
        )
        deferred = bool(runs)
        writing = self._unsynced_writing if deferred else self._writing

        def in_transaction(conn: sqlite3.Connection) -> _T:
            with writing(conn):
                result = op(conn)
            if deferred:
                for held in runs:
                    held.unsynced = True
            # A bulk write (memories, documents) is one transaction but many pages: count
            # it by the WAL's size, or the WAL grows unchecked and every read slows down.
            with suppress(OSError):
                if os.stat(self._path + "-wal").st_size > _CHECKPOINT_WAL_BYTES:
                    self._writes = _CHECKPOINT_EVERY
            return result

        return await self._run(what, in_transaction)

    # -- the single-writer lease ---------------------------------------------------------

    @asynccontextmanager
    async def _hold(self, key: str, wait: float | None) -> AsyncIterator[None]:
        """The in-process lock, then the lease (claimed as ``hold_lease`` describes).

        Unlike ``hold_lease`` there is no task per run: this store's
        :class:`LeaseRenewer` renews every lease it holds in one statement, and
        a lease already released with the holder's last write (``append_last``)
        costs nothing on the way out.
        """
        # Only a finite wait needs its start (reading the clock costs a backend lookup).
        started = None if wait is None else anyio.current_time()
        async with self._locks.hold(key, wait):
            lease = _Lease(secrets.token_hex(16), key=key)
            queued = False  # whether this claimant has a row in lease_waiters

            def claim(conn: sqlite3.Connection) -> bool:
                """Take the lease if it is free and no one queued before us; else queue."""
                nonlocal queued
                now = time.time()
                expires = now + self._lease_seconds
                with self._unsynced_writing(conn):
                    row = conn.execute(_CLAIM_LEASE, (key, lease.lease, expires, now)).fetchone()
                    if row is not None:
                        if queued:
                            conn.execute(_DEQUEUE, (key, lease.lease, now))
                            queued = False
                        lease.session, lease.claimed = row[0], (row[0], row[1])
                        lease.position = None if row[0] is None else (row[0], row[1], row[2])
                        return True
                    # A waiter that was too slow to renew its place (dropped as expired)
                    # queues again at the back.
                    if (
                        not queued
                        or not conn.execute(_STILL_QUEUED, (expires, key, lease.lease)).rowcount
                    ):
                        conn.execute(_QUEUE, (key, lease.lease, expires))
                queued = True
                return False

            def drop(conn: sqlite3.Connection) -> None:
                # A run that ended without its last write still owes its steps an fsync.
                writing = self._writing if lease.unsynced else self._unsynced_writing
                with writing(conn):
                    if not lease.released:
                        conn.execute(_DROP_LEASE, (key, lease.lease))
                    if queued:
                        conn.execute(_DEQUEUE, (key, lease.lease, time.time()))

            async def drop_lease() -> None:
                await self._run(f"unlock session {key!r}", drop)

            try:
                await poll_until(
                    lambda: self._run(f"lock session {key!r}", claim), key, wait, started=started
                )
            except BaseException:  # the claim may have committed: drop what there is
                await drop_quietly(key, drop_lease, self._lease_seconds)
                raise
            self._held[key] = lease
            self._renewer.add(lease)
            try:
                yield
            finally:
                del self._held[key]
                if not lease.released:  # else gone already, with the holder's last write
                    self._renewer.discard(lease)
                    await drop_quietly(key, drop_lease, self._lease_seconds)

    def _renew_all(self, leases: Sequence[_Lease]) -> Sequence[_Lease]:
        """Renew ``leases`` in one statement (renewal thread); returns those taken over."""
        pairs = json.dumps([[lease.key, lease.lease] for lease in leases])

        def renew(conn: sqlite3.Connection) -> set[tuple[str, str]]:
            with self._unsynced_writing(conn):
                expires = time.time() + self._lease_seconds
                return set(conn.execute(_RENEW_LEASES, (expires, pairs)).fetchall())

        renewed = self._run_waiting("renew the locks on sessions", renew)
        return [
            lease
            for lease in leases
            if (lease.key, lease.lease) not in renewed and not lease.released
        ]

    def _bump_known(
        self,
        conn: sqlite3.Connection,
        held: _Lease,
        position: tuple[int, int, int],
        values: tuple[str, int, str | None],
        what: str,
        release: bool,
    ) -> tuple[int, int, int] | None:
        """A holder's append to the row as it last knew it: (id, revision, next seq)
        after it, or None if the row changed (nothing written; the caller's statements
        find out why). With ``release`` pending the lease goes in the same transaction."""
        session_id, revision, next_seq = position
        stamp, count, metadata = values
        if release:
            if not conn.execute(_BUMP_KNOWN, (*values, session_id, revision)).rowcount:
                return None
            if not conn.execute(_DROP_LEASE, (held.key, held.lease)).rowcount:
                raise lease_lapsed(what, self._lease_seconds)  # rolls the append back
        elif not conn.execute(
            _BUMP_KNOWN_HELD, (stamp, count, metadata, session_id, revision, held.key, held.lease)
        ).rowcount:
            return None
        return session_id, revision + 1, next_seq + count

    def _fence(
        self,
        conn: sqlite3.Connection,
        key: str,
        held: _Lease | None,
        what: str,
        *,
        release: bool = False,
    ) -> None:
        """Refuse a write under a lease that another run has taken over.

        ``held`` is this store's lease on ``key``, if it holds one (else any
        write goes). A lease of ours that expired but was not taken over still
        protects the session: taking it over is a write, which this
        transaction excludes. (That the session is still the one the lease is
        on is checked by the write itself, from the row it touches.) With
        ``release`` the check deletes the lease: the same one statement.
        """
        if held is None:
            return
        if held.released:
            raise StoreError(
                f"{what} refused: this run released its lock on the session with its last write"
            )
        if release:
            if not conn.execute(_DROP_LEASE, (key, held.lease)).rowcount:
                raise lease_lapsed(what, self._lease_seconds)
        elif conn.execute(_OWN_LEASE, (key, held.lease)).fetchone() is None:
            raise lease_lapsed(what, self._lease_seconds)

    # -- running operations --------------------------------------------------------------

    async def _run(
        self, what: str, op: Callable[[sqlite3.Connection], _T], *, inline: bool = True
    ) -> _T:
        """Run ``op`` inline if that cannot wait, else in a worker thread (module docstring)."""
        done = False
        if inline and self._mutex.acquire(blocking=False):
            try:
                if self._conn is not None:
                    try:
                        result, done = op(self._conn), True
                    except sqlite3.Error as exc:
                        if not _is_busy(exc):
                            raise self._failure(what, exc) from exc
            finally:
                self._mutex.release()
        if not done:
            result = await anyio.to_thread.run_sync(self._run_waiting, what, op)
        if self._backfilled.is_set():
            self._backfilled.clear()
            try:
                await anyio.to_thread.run_sync(self._run_waiting, "WAL checkpoint", _catch_up)
            except StoreError as exc:  # the operation itself succeeded
                _log.warning("%s; retrying after more writes", exc)
        if self._writes >= _CHECKPOINT_EVERY:
            self._writes = 0
            self._start_checkpoint()
        return result

    def _start_checkpoint(self) -> None:
        """Copy the WAL into the database in two steps, so that no one waits for long.

        A background thread copies the bulk on its own connection, beside this
        store's writes. The WAL can only restart from its beginning once every
        frame is copied, which never happens while writes go on; so the next
        operation after it copies the frames written meanwhile (a few) while
        holding the connection.
        """
        if self._checkpointer is None or not self._checkpointer.is_alive():
            self._checkpointer = threading.Thread(
                target=_checkpoint,
                args=(self._path, self._backfilled),
                name="orra-sqlite-checkpoint",
            )
            self._checkpointer.start()

    def _run_waiting(self, what: str, op: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._mutex:
            conn = self._connection()
            try:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                try:
                    return op(conn)
                finally:
                    conn.execute("PRAGMA busy_timeout = 0")
            except sqlite3.Error as exc:
                raise self._failure(what, exc) from exc

    @contextmanager
    def _unsynced_writing(self, conn: sqlite3.Connection) -> Iterator[None]:
        """A write transaction committed without an fsync even at FULL (or RUN).

        For lease rows: a lease matters only while its process lives; a power
        cut ends every process on the machine, so a claim, renewal or release
        lost to it is lost harmlessly (a lost release expires). For a run's
        steps at RUN: its last write's fsync covers them. WAL frames are replayed
        in order, so the next durable commit makes these durable too. This keeps
        the fsyncs of a run at one per persisted step (FULL) or one (RUN).
        """
        if self._synchronous == "NORMAL":
            with self._writing(conn):
                yield
            return
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            with self._writing(conn):
                yield
        finally:
            conn.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def _writing(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction, taking the write lock up front (no upgrade deadlocks)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._writes += 1

    def _read(self, key: str, what: str) -> Session | None:
        """Load from the tables (in a worker thread); parse outside the connection lock."""

        def select(conn: sqlite3.Connection) -> tuple[Any, list[Any]] | None:
            conn.execute("BEGIN")  # one snapshot for the session row and its messages
            try:
                row = conn.execute(_SELECT_SESSION, (key,)).fetchone()
                bodies = [] if row is None else conn.execute(_SELECT_BODIES, (row[0],)).fetchall()
            finally:
                conn.execute("COMMIT")
            return None if row is None else (row, bodies)

        found = self._run_waiting(what, select)
        if found is None:
            return None
        (session_id, revision, segments, created, updated, metadata), bodies = found
        try:
            session = Session(
                namespace=Namespace(*json.loads(segments)),
                messages=load_messages(body for (body,) in bodies),
                created_at=datetime.fromisoformat(created),
                updated_at=datetime.fromisoformat(updated),
                metadata=json.loads(metadata),
            )
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{what} failed: the stored session is corrupt: {exc}") from exc
        result = session.snapshot()
        with self._mutex:
            self._cache.put(key, (session_id, revision), session)
        return result

    def _connection(self) -> sqlite3.Connection:
        """The open connection; opened and migrated on first use (in a worker thread)."""
        if self._conn is not None:
            return self._conn
        if self._closed:
            raise StoreError(f"the SQLite store {self._path} is closed")
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the SQLite database {self._path}: {exc}") from exc
        try:
            mode = _use_wal(conn, self._busy_ms / 1000)
            if mode != "wal":
                raise StoreError(f"the SQLite database {self._path} cannot use WAL (got {mode!r})")
            durable = "NORMAL" if self._synchronous == "NORMAL" else "FULL"
            conn.execute(f"PRAGMA synchronous = {durable}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            # A WAL that grew past this is cut back to it when it restarts (see above).
            conn.execute(f"PRAGMA journal_size_limit = {_CHECKPOINT_WAL_BYTES}")
            _migrate(conn, self._path)
            conn.execute("PRAGMA busy_timeout = 0")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot set up the SQLite database {self._path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _close(self) -> None:
        with self._mutex:
            self._closed = True
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise StoreError(f"closing {self._path} failed: {exc}") from exc

    def _failure(self, what: str, exc: sqlite3.Error) -> StoreError:
        if _is_busy(exc):
            reason = (
                f"the database stayed locked by another connection for {self._busy_ms / 1000:g}s"
            )
        else:
            reason = str(exc)
        return StoreError(f"{what} failed: {reason} (database {self._path})")


def _segments(namespace: Namespace) -> str:
    return json.dumps(namespace.segments, ensure_ascii=False)


def _same_session(held: Held | None, session_id: int | None, what: str) -> None:
    """Refuse a holder's write to a session other than the one its lease is on.

    Row ids are never reused (AUTOINCREMENT), so a session deleted under the
    lease (and perhaps created anew by someone else) has another id, or none.
    """
    if held is not None and held.session is not None and session_id != held.session:
        raise session_gone(what)


def _wrote(held: Held | None, session_id: int) -> None:
    """After a holder's write: its lease is on that session from now on."""
    if held is not None:
        held.session = session_id


def _checkpoint(path: str, done: threading.Event) -> None:
    """The background half of a checkpoint (in its own thread and connection)."""
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if not _is_busy(exc):  # busy: another connection is checkpointing, as good
            _log.warning("WAL checkpoint of %s failed (retried later): %s", path, exc)
    done.set()


def _catch_up(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
