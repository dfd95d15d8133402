"""Pending approvals and their audit trail, kept beside the sessions in every backend.

A run that needs an approval writes a pending :class:`ApprovalRecord`; anyone
who can reach the same backend (another terminal, another replica, a process
started after the run asked) lists it and answers with :meth:`ApprovalStore.approve`
or :meth:`ApprovalStore.deny`; the waiting run sees the answer and goes on.
Decided records stay as the audit trail (:meth:`ApprovalStore.history`).

The first decision wins: ``decide`` changes a record only while it is pending,
atomically in each backend, and returns the record as stored afterwards, so a
late answer (or the run's own timeout) learns what was decided instead.

Backends, picked by :func:`approval_store_for` from the session store object,
sharing its storage and connection rather than opening their own:

- in memory: a dict beside the :class:`~orra_di.stores.memory.InMemoryStore`;
- files: ``<base>/.approvals/<id>.json`` (a name no session file can have),
  written atomically, decided under an ``flock``;
- SQLite: the ``approvals_v1`` table in the sessions' database file;
- PostgreSQL and Redis: :mod:`orra_di.approvals.postgres`, :mod:`orra_di.approvals.redis`.

A waiting run learns of the answer by the backend's notification (memory: an
event; PostgreSQL: ``LISTEN/NOTIFY``; Redis: pub/sub) or, for files and SQLite,
by reading the record again every ``poll_interval`` seconds.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from os import PathLike
from typing import Any

import anyio

from orra_di.approvals.model import SYSTEM, ApprovalRecord, check_request_id
from orra_di.errors import ApprovalError, ConfigurationError, StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.session import utc_now
from orra_di.store import SessionStore, in_subtree, subtree_bounds
from orra_di.stores._codec import time_text
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "ApprovalStore",
    "FileApprovalStore",
    "MemoryApprovalStore",
    "SQLiteApprovalStore",
    "approval_store_for",
]

DEFAULT_POLL_INTERVAL = 0.5
"""Seconds between two reads of a pending record where the backend cannot notify."""


class ApprovalStore(ABC):
    """Pending approval requests and the decisions on them (the audit trail).

    Subclasses provide storage primitives; the rules (ids checked, first decision
    wins, an expired request cannot be approved) are here, the same for all.
    """

    def __init__(self, *, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        if not poll_interval > 0 or poll_interval == float("inf"):
            raise ConfigurationError(
                f"poll_interval must be a positive number, got {poll_interval}"
            )
        self.poll_interval = poll_interval
        self._stir: anyio.Event | None = None
        """Set by this object's own writes: a waiter in this process wakes at once
        instead of at its next poll (one ``orra-di serve`` on SQLite is the default)."""

    # -- what backends implement ---------------------------------------------------------

    @abstractmethod
    async def _insert(self, record: ApprovalRecord) -> None:
        """Store a new record (its id is new)."""

    @abstractmethod
    async def _load(self, request_id: str) -> ApprovalRecord | None:
        """The record with this id, or None."""

    @abstractmethod
    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        """Store ``record`` over the one with its id if that is still pending, atomically.

        Returns the stored record afterwards (``record`` itself, or the decision
        that came first), or None if there is no such record. Wakes the waiters.
        """

    @abstractmethod
    async def _pending(self) -> list[ApprovalRecord]:
        """Every pending record, expired ones included, in any order."""

    @abstractmethod
    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        """Up to ``limit`` decided records (of ``namespace``'s subtree), newest decision first."""

    async def _changed(self, request_id: str) -> None:
        """Return when the record may have changed; by default after ``poll_interval``, or
        at once when this very object wrote meanwhile."""
        await self._poll()

    async def _added(self) -> None:
        """Return when a request may have been added; by default after ``poll_interval``,
        or at once when this very object wrote meanwhile."""
        await self._poll()

    # -- waking this process's waiters -----------------------------------------------------

    def _arm(self) -> None:
        """Before reading: a write from now on wakes the wait that may follow the read."""
        if self._stir is None:
            self._stir = anyio.Event()

    def _stirred(self) -> None:
        """After a write through this object: wake the waiters armed before it."""
        stir, self._stir = self._stir, None
        if stir is not None:
            stir.set()

    async def _poll(self) -> None:
        self._arm()
        assert self._stir is not None
        with anyio.move_on_after(self.poll_interval):
            await self._stir.wait()

    # -- the API -----------------------------------------------------------------------

    async def add(self, record: ApprovalRecord) -> None:
        """Keep a new request (pending) or an already decided one (auto-approvals)."""
        check_request_id(record.id)
        await self._insert(record)
        self._stirred()

    async def get(self, request_id: str) -> ApprovalRecord | None:
        return await self._load(check_request_id(request_id))

    async def wait(self, request_id: str) -> ApprovalRecord:
        """The record once it is decided; waits as long as it stays pending.

        The caller bounds the wait (the hook's timeout). Raises ApprovalError if
        the record does not exist (or vanished).
        """
        check_request_id(request_id)
        while True:
            self._arm()
            record = await self._load(request_id)
            if record is None:
                raise ApprovalError(f"no approval request {request_id}")
            if not record.pending:
                return record
            await self._changed(request_id)

    async def decide(
        self, request_id: str, *, approved: bool, by: str, reason: str | None = None
    ) -> ApprovalRecord:
        """Decide a pending request; returns the record as stored afterwards.

        If the request was decided already, nothing changes and that earlier
        decision is returned. A request past its ``expires_at`` is recorded as
        denied (the run stopped waiting) whatever was asked.
        """
        check_request_id(request_id)
        if not isinstance(by, str) or not by.strip():
            raise ApprovalError("say who decides: by='alice' (it goes into the audit trail)")
        current = await self._load(request_id)
        if current is None:
            raise ApprovalError(
                f"no approval request {request_id}; `orra-di approvals list` shows the pending ones"
            )
        if not current.pending:
            return current
        if approved and current.expired():
            decided = current.decide(
                approved=False,
                by=SYSTEM,
                reason="expired: no answer before the run stopped waiting",
            )
        else:
            decided = current.decide(approved=approved, by=by.strip(), reason=reason)
        stored = await self._replace_if_pending(decided)
        self._stirred()
        if stored is None:
            raise ApprovalError(f"approval request {request_id} vanished while being decided")
        return stored

    async def approve(
        self, request_id: str, *, by: str, reason: str | None = None
    ) -> ApprovalRecord:
        """Release the call of this request (if still pending and not expired)."""
        return await self.decide(request_id, approved=True, by=by, reason=reason)

    async def deny(self, request_id: str, *, by: str, reason: str | None = None) -> ApprovalRecord:
        """Refuse the call of this request; the model reads the reason."""
        return await self.decide(request_id, approved=False, by=by, reason=reason)

    async def pending(self, namespace: NamespaceLike | None = None) -> list[ApprovalRecord]:
        """Requests still waiting for an answer (not expired), oldest first.

        ``namespace`` keeps those of that namespace and below.
        """
        prefix = None if namespace is None else Namespace.coerce(namespace).key
        now = utc_now()
        found = [
            r
            for r in await self._pending()
            if not r.expired(now) and (prefix is None or in_subtree(r.namespace, prefix))
        ]
        return sorted(found, key=lambda r: (r.requested_at, r.id))

    async def next_pending(
        self, namespace: NamespaceLike | None = None, *, seen: Collection[str] = ()
    ) -> ApprovalRecord:
        """The oldest pending request (of ``namespace``'s subtree) whose id is not in ``seen``,
        waiting for one to be added if there is none (bound the wait yourself)."""
        while True:
            self._arm()
            for record in await self.pending(namespace):
                if record.id not in seen:
                    return record
            await self._added()

    async def _delete(self, request_ids: list[str]) -> int:
        """Delete these records; how many existed (backends that can erase override it)."""
        raise ApprovalError(f"{type(self).__name__} cannot erase approval records")

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Erase every request of ``namespace``'s subtree, pending or decided (the audit
        trail too); how many. A run still waiting on one learns it is gone (ApprovalError)."""
        prefix = Namespace.coerce(namespace).key
        ids = [r.id for r in await self._pending() if in_subtree(r.namespace, prefix)]
        ids += [r.id for r in await self._decided(prefix, 2**31 - 1)]
        if not ids:
            return 0
        count = await self._delete(list(dict.fromkeys(ids)))
        self._stirred()
        return count

    async def history(
        self, namespace: NamespaceLike | None = None, *, limit: int = 100
    ) -> list[ApprovalRecord]:
        """The audit trail: decided requests, newest decision first."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        prefix = None if namespace is None else Namespace.coerce(namespace).key
        return await self._decided(prefix, limit)


def _decided_order(record: ApprovalRecord) -> tuple[str, str]:
    assert record.decided_at is not None
    return time_text(record.decided_at), record.id


# -- memory ----------------------------------------------------------------------------


class MemoryApprovalStore(ApprovalStore):
    """Records in a dict; waiters wake on an event, no polling."""

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, ApprovalRecord] = {}
        self._events: dict[str, anyio.Event] = {}
        self._added_event = anyio.Event()

    async def _insert(self, record: ApprovalRecord) -> None:
        self._records[record.id] = record
        added, self._added_event = self._added_event, anyio.Event()
        added.set()

    async def _added(self) -> None:
        await self._added_event.wait()

    async def _load(self, request_id: str) -> ApprovalRecord | None:
        return self._records.get(request_id)

    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        current = self._records.get(record.id)
        if current is None or not current.pending:
            return current
        self._records[record.id] = record
        event = self._events.pop(record.id, None)
        if event is not None:
            event.set()
        return record

    async def _pending(self) -> list[ApprovalRecord]:
        return [r for r in self._records.values() if r.pending]

    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        found = [
            r
            for r in self._records.values()
            if not r.pending and (namespace is None or in_subtree(r.namespace, namespace))
        ]
        return sorted(found, key=_decided_order, reverse=True)[:limit]

    async def _delete(self, request_ids: list[str]) -> int:
        count = 0
        for request_id in request_ids:
            count += self._records.pop(request_id, None) is not None
            event = self._events.pop(request_id, None)
            if event is not None:
                event.set()  # a waiter reads again and finds it gone
        return count

    async def _changed(self, request_id: str) -> None:
        event = self._events.setdefault(request_id, anyio.Event())
        record = self._records.get(request_id)
        if record is not None and record.pending:
            await event.wait()


# -- files -----------------------------------------------------------------------------

_DIR = ".approvals"  # "." is encoded in session file names, so no namespace lands here
_LOCK = ".lock"


class FileApprovalStore(ApprovalStore):
    """One JSON file per request in ``<base>/.approvals``; decisions under an ``flock``."""

    def __init__(
        self, base_dir: str | PathLike[str], *, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        super().__init__(poll_interval=poll_interval)
        self._dir = os.path.join(os.path.abspath(base_dir), _DIR)

    def _path(self, request_id: str) -> str:
        return os.path.join(self._dir, f"{request_id}.json")

    @contextmanager
    def _locked(self, what: str) -> Iterator[None]:
        try:
            os.makedirs(self._dir, exist_ok=True)
            fd = os.open(
                os.path.join(self._dir, _LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            raise StoreError(f"{what} failed: {exc.strerror or exc} ({self._dir})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, record: ApprovalRecord) -> None:
        path = self._path(record.id)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(record.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _read(self, request_id: str) -> ApprovalRecord | None:
        try:
            with open(self._path(request_id), encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        try:
            return ApprovalRecord.from_json(text)
        except ValueError as exc:
            raise StoreError(f"approval record {self._path(request_id)} is corrupt: {exc}") from exc

    async def _in_thread(self, what: str, op: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(op, *args)
        except OSError as exc:
            raise StoreError(f"{what} failed: {exc.strerror or exc} ({self._dir})") from exc

    async def _insert(self, record: ApprovalRecord) -> None:
        what = f"record approval request {record.id}"

        def insert() -> None:
            with self._locked(what):
                self._write(record)

        await self._in_thread(what, insert)

    async def _load(self, request_id: str) -> ApprovalRecord | None:
        found: ApprovalRecord | None = await self._in_thread(
            f"read approval request {request_id}", self._read, request_id
        )
        return found

    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        what = f"decide approval request {record.id}"

        def replace() -> ApprovalRecord | None:
            with self._locked(what):
                current = self._read(record.id)
                if current is None or not current.pending:
                    return current
                self._write(record)
                return record

        stored: ApprovalRecord | None = await self._in_thread(what, replace)
        return stored

    def _all(self) -> list[ApprovalRecord]:
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.endswith(".json") and len(name) == 37:
                record = self._read(name.removesuffix(".json"))
                if record is not None:
                    found.append(record)
        return found

    async def _pending(self) -> list[ApprovalRecord]:
        records: list[ApprovalRecord] = await self._in_thread("list approval requests", self._all)
        return [r for r in records if r.pending]

    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        records: list[ApprovalRecord] = await self._in_thread("read the approval trail", self._all)
        found = [
            r
            for r in records
            if not r.pending and (namespace is None or in_subtree(r.namespace, namespace))
        ]
        return sorted(found, key=_decided_order, reverse=True)[:limit]

    async def _delete(self, request_ids: list[str]) -> int:
        what = "erase approval requests"

        def delete() -> int:
            count = 0
            with self._locked(what):
                for request_id in request_ids:
                    with suppress(FileNotFoundError):
                        os.remove(self._path(request_id))
                        count += 1
            return count

        count: int = await self._in_thread(what, delete)
        return count


# -- SQLite ----------------------------------------------------------------------------

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS approvals_v1 (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        status TEXT NOT NULL,
        decided_at TEXT,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS approvals_v1_by_status ON approvals_v1 (status)",
    "CREATE INDEX IF NOT EXISTS approvals_v1_by_decision ON approvals_v1 (decided_at)",
)


class SQLiteApprovalStore(ApprovalStore):
    """The ``approvals_v1`` table in the sessions' database, on the session store's connection.

    The table's version is in its name: a later layout gets a new table, and
    this one is left for older processes.
    """

    def __init__(
        self, sessions: SQLiteStore, *, poll_interval: float = DEFAULT_POLL_INTERVAL
    ) -> None:
        super().__init__(poll_interval=poll_interval)
        self._sessions = sessions
        self._ready = False

    async def _run(self, what: str, op: Any, *, write: bool = False) -> Any:
        if not self._ready:

            def create(conn: sqlite3.Connection) -> None:
                for statement in _SQLITE_SCHEMA:
                    conn.execute(statement)

            await self._sessions.run_in_connection("create the approvals table", create, write=True)
            self._ready = True
        return await self._sessions.run_in_connection(what, op, write=write)

    async def _insert(self, record: ApprovalRecord) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO approvals_v1 (id, namespace, status, decided_at, body) "
                "VALUES (?, ?, ?, ?, ?)",
                _row(record),
            )

        await self._run(f"record approval request {record.id}", insert, write=True)

    async def _load(self, request_id: str) -> ApprovalRecord | None:
        def select(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT body FROM approvals_v1 WHERE id = ?", (request_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        body = await self._run(f"read approval request {request_id}", select)
        return None if body is None else ApprovalRecord.from_json(body)

    async def _replace_if_pending(self, record: ApprovalRecord) -> ApprovalRecord | None:
        def replace(conn: sqlite3.Connection) -> str | None:
            changed = conn.execute(
                "UPDATE approvals_v1 SET status = ?, decided_at = ?, body = ? "
                "WHERE id = ? AND status = 'pending'",
                (*_row(record)[2:], record.id),
            ).rowcount
            if changed:
                return record.to_json()
            row = conn.execute(
                "SELECT body FROM approvals_v1 WHERE id = ?", (record.id,)
            ).fetchone()
            return None if row is None else str(row[0])

        body = await self._run(f"decide approval request {record.id}", replace, write=True)
        return None if body is None else ApprovalRecord.from_json(body)

    async def _pending(self) -> list[ApprovalRecord]:
        def select(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT body FROM approvals_v1 WHERE status = 'pending'")
            return [str(body) for (body,) in rows.fetchall()]

        return [
            ApprovalRecord.from_json(b) for b in await self._run("list approval requests", select)
        ]

    async def _decided(self, namespace: str | None, limit: int) -> list[ApprovalRecord]:
        def select(conn: sqlite3.Connection) -> list[str]:
            if namespace is None:
                rows = conn.execute(
                    "SELECT body FROM approvals_v1 WHERE decided_at IS NOT NULL "
                    "ORDER BY decided_at DESC, id DESC LIMIT ?",
                    (limit,),
                )
            else:
                low, high = subtree_bounds(namespace)
                rows = conn.execute(
                    "SELECT body FROM approvals_v1 WHERE decided_at IS NOT NULL "
                    "AND (namespace = ? OR (namespace >= ? AND namespace < ?)) "
                    "ORDER BY decided_at DESC, id DESC LIMIT ?",
                    (namespace, low, high, limit),
                )
            return [str(body) for (body,) in rows.fetchall()]

        bodies = await self._run("read the approval trail", select)
        return [ApprovalRecord.from_json(b) for b in bodies]

    async def _delete(self, request_ids: list[str]) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute("DELETE FROM approvals_v1 WHERE id = ?", (i,)).rowcount
                for i in request_ids
            )

        count: int = await self._run("erase approval requests", delete, write=True)
        return count


def _row(record: ApprovalRecord) -> tuple[str, str, str, str | None, str]:
    decided = None if record.decided_at is None else time_text(record.decided_at)
    return record.id, record.namespace, record.status.value, decided, record.to_json()


# -- picking the backend ----------------------------------------------------------------

_for_store: weakref.WeakKeyDictionary[Any, ApprovalStore] = weakref.WeakKeyDictionary()


def approval_store_for(
    sessions: SessionStore, *, poll_interval: float = DEFAULT_POLL_INTERVAL
) -> ApprovalStore:
    """The approval store that lives beside ``sessions``, in the same backend.

    One per session store object (asking again returns the same one), so an
    in-memory store's approvals are shared like its sessions. Raises
    ConfigurationError for a session store kind that has no approvals backend.
    """
    with suppress(KeyError):
        return _for_store[sessions]
    store: ApprovalStore
    if isinstance(sessions, InMemoryStore):
        store = MemoryApprovalStore()
    elif isinstance(sessions, FileStore):
        store = FileApprovalStore(sessions.base_dir, poll_interval=poll_interval)
    elif isinstance(sessions, SQLiteStore):
        store = SQLiteApprovalStore(sessions, poll_interval=poll_interval)
    else:
        module = type(sessions).__module__
        if module == "orra_di.stores.postgres":
            from orra_di.approvals.postgres import PostgresApprovalStore

            store = PostgresApprovalStore(sessions, poll_interval=poll_interval)  # type: ignore[arg-type]
        elif module == "orra_di.stores.redis":
            from orra_di.approvals.redis import RedisApprovalStore

            store = RedisApprovalStore(sessions, poll_interval=poll_interval)  # type: ignore[arg-type]
        else:
            raise ConfigurationError(
                f"approvals have no backend beside a {type(sessions).__name__}; use one of the "
                "built-in session stores, or give ApprovalHook an ApprovalStore of your own"
            )
    _for_store[sessions] = store
    return store
