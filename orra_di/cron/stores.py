"""Cron jobs and their run history, kept beside the sessions in every backend.

A job is two things stored together: its **definition** (name, schedule, payload,
status, policies: what a person or the ``cron`` tool changes, :meth:`CronStore.update`)
and its **run state** (``next_run``, ``last_run``, ``run_count`` and the claim: what
the service changes, :meth:`CronStore.finish`). Each side writes only its own part,
so pausing a job while it runs is not undone when the run finishes.

Exactly once across replicas rests on one operation, :meth:`CronStore.claim`: it
picks the jobs whose ``wake_at`` has come and marks each claimed by one runner until
a lease time, atomically, so two services on one backend never both get a job for
the same due time. ``wake_at`` is the job's next due time while nobody holds it and
the claim's lease end while somebody does; a claim that lapses (its runner was
killed) therefore makes the job due again, and the next claimer learns who had it
(:attr:`Claim.abandoned_by`) and records that run as abandoned. A runner renews its
claim while a long run goes on (:meth:`CronStore.renew`) and gives it back with the
job's next due time (:meth:`CronStore.finish`), which only works while it still holds
the claim (a fence: a runner that lost its claim changes nothing).

Backends, picked by :func:`cron_store_for` from the session store object:

- in memory: a dict beside the :class:`~orra_di.stores.memory.InMemoryStore`;
- files: ``<base>/.cron/jobs/<id>.json`` and ``<base>/.cron/runs/<job>/<run>.json``,
  every change under one ``flock`` (a claim scans the jobs: for small deployments);
- SQLite: the ``cron_jobs_v1`` and ``cron_runs_v1`` tables in the sessions' database,
  a claim being one ``BEGIN IMMEDIATE`` transaction on the indexed ``wake_at``;
- PostgreSQL and Redis: :mod:`orra_di.cron.postgres` (``UPDATE ... FOR UPDATE SKIP
  LOCKED ... RETURNING``), :mod:`orra_di.cron.redis` (a Lua script over a sorted set).
"""

from __future__ import annotations

import builtins
import fcntl
import json
import os
import shutil
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from os import PathLike
from typing import Any
from urllib.parse import quote

import anyio

from orra_di.cron.model import CronJob, CronJobStatus, CronRun
from orra_di.errors import ConfigurationError, CronError, StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.store import SessionStore, in_subtree, subtree_bounds
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "Claim",
    "CronStore",
    "FileCronStore",
    "MemoryCronStore",
    "SQLiteCronStore",
    "cron_store_for",
]


@dataclass(frozen=True)
class Claim:
    """A job handed to one runner: ``job.next_run`` is the due time it is to run.

    ``abandoned_by`` names the runner whose claim on this job lapsed before it
    finished (it was killed or lost the backend): that due time's run is over.
    """

    job: CronJob
    abandoned_by: str | None = None


def stamp(moment: datetime | None) -> float | None:
    """Epoch seconds, the form times are indexed and compared in."""
    return None if moment is None else moment.timestamp()


def unstamp(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def wake_for(status: CronJobStatus | str, next_run: datetime | None) -> float | None:
    """When an unclaimed job is next due: its next run while active, else never."""
    return stamp(next_run) if CronJobStatus(status) is CronJobStatus.ACTIVE else None


def check_job_id(job_id: str) -> str:
    """``job_id`` if it can name a job in every store. The file store's names are the
    id percent-encoded, which keeps ``.``: ``..`` would be the ``.cron`` directory itself
    (deleting that job removed every tenant's jobs), ``.`` every job's run history; a
    control character (NUL) would fail in the file store with an OS error instead."""
    if (
        not isinstance(job_id, str)
        or not job_id
        or len(job_id) > 100
        or "/" in job_id
        or job_id in (".", "..")
        or not job_id.isprintable()  # NUL and control characters: no file or key name
    ):
        raise CronError(f"{job_id!r} is not a cron job id; `orra-di cron list` shows them")
    return job_id


class CronStore(ABC):
    """Jobs, their claims and their run history; see the module docstring for the rules."""

    def __init__(self) -> None:
        self._changed = anyio.Event()

    # -- change notification (in this process) --------------------------------------

    def notify(self) -> None:
        """Set the event :meth:`changed_event` handed out (a job was added or changed)."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def changed_event(self) -> anyio.Event:
        """An event set at the next change through this store object (take it, then read)."""
        return self._changed

    # -- jobs: the definition side ----------------------------------------------------

    @abstractmethod
    async def _insert(self, job: CronJob) -> bool:
        """Store a new job; False if its id exists."""

    @abstractmethod
    async def get(self, job_id: str) -> CronJob | None:
        """The job as stored (definition and run state), or None."""

    @abstractmethod
    async def _update(self, job: CronJob) -> bool:
        """Write ``job``'s definition, status and next_run; keep run count, last run, claim."""

    @abstractmethod
    async def _delete(self, job_ids: builtins.list[str]) -> int:
        """Delete these jobs and their runs; how many jobs existed."""

    @abstractmethod
    async def list(self, namespace: NamespaceLike | None = None) -> builtins.list[CronJob]:
        """Jobs of ``namespace``'s subtree (all without it), oldest first."""

    async def add(self, job: CronJob) -> CronJob:
        check_job_id(job.id)
        if not await self._insert(job):
            raise CronError(f"a cron job with id {job.id} exists already")
        self.notify()
        return job

    async def update(self, job: CronJob) -> bool:
        """Save a changed definition (pause, resume, edit); False if the job is gone."""
        check_job_id(job.id)
        done = await self._update(job)
        self.notify()
        return done

    async def delete(self, job_id: str) -> bool:
        """Delete a job and its history; True if it existed."""
        gone = await self._delete([check_job_id(job_id)]) > 0
        self.notify()
        return gone

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Delete every job of ``namespace``'s subtree and their history; how many jobs."""
        ids = [job.id for job in await self.list(namespace)]
        return await self._delete(ids) if ids else 0

    # -- jobs: the run side --------------------------------------------------------------

    @abstractmethod
    async def claim(
        self,
        now: datetime,
        owner: str,
        until: datetime,
        limit: int = 100,
        *,
        only: str | None = None,
    ) -> builtins.list[Claim]:
        """Atomically claim up to ``limit`` jobs due at ``now`` for ``owner`` until ``until``
        (with ``only``, that one job if it is due: ``run_now`` claims nobody else's)."""

    @abstractmethod
    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        """Extend ``owner``'s claim; False if it no longer holds it."""

    @abstractmethod
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
        """Release ``owner``'s claim with the job's next due time (and ``ran`` more runs,
        ``last_run``, ``completed`` for a finished one-shot). False if the claim was lost."""

    @abstractmethod
    async def next_wake(self) -> datetime | None:
        """The earliest ``wake_at`` of any job: when the service next has work."""

    # -- history ---------------------------------------------------------------------------

    @abstractmethod
    async def record_run(self, run: CronRun) -> None:
        """Store (or replace, by id) one run of a job."""

    async def record_runs(self, runs: builtins.list[CronRun]) -> None:
        """Store several runs at once: the service records every run it starts at one
        wake-up with one call (backends override it with one statement or transaction),
        so a wake-up's writes grow with its due jobs by one row each, not one round trip."""
        for run in runs:
            await self.record_run(run)

    @abstractmethod
    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[CronRun]:
        """The job's runs, newest due time first."""

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Nothing to release: the session store owns the connection."""


def _runs_order(run: CronRun) -> tuple[datetime, str]:
    return run.due_at, run.id


# -- memory and files: the rules in Python, under one lock ------------------------------


@dataclass
class _Row:
    job: CronJob
    claimed_by: str | None = None
    wake_at: float | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "job": json.loads(self.job.to_json()),
                "claimed_by": self.claimed_by,
                "wake_at": self.wake_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> _Row:
        data = json.loads(text)
        return cls(CronJob.model_validate(data["job"]), data["claimed_by"], data["wake_at"])


class _RowStore(CronStore):
    """Claim, renew and finish over rows read and written under an exclusive lock."""

    @abstractmethod
    def _locked(self) -> Any:
        """A context manager holding the store's exclusive lock (sync, in a thread)."""

    @abstractmethod
    def _rows(self) -> builtins.list[_Row]: ...

    @abstractmethod
    def _row(self, job_id: str) -> _Row | None: ...

    @abstractmethod
    def _put(self, row: _Row) -> None: ...

    @abstractmethod
    def _drop(self, job_id: str) -> bool: ...

    @abstractmethod
    def _put_run(self, run: CronRun) -> None: ...

    @abstractmethod
    def _job_runs(self, job_id: str) -> builtins.list[CronRun]: ...

    async def _call(self, what: str, op: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._locked():
                return op(*args)

        try:
            return await self._thread(locked)
        except OSError as exc:
            raise StoreError(f"{what} failed: {exc.strerror or exc}") from exc

    async def _thread(self, op: Any) -> Any:
        return await anyio.to_thread.run_sync(op)

    async def _insert(self, job: CronJob) -> bool:
        def insert() -> bool:
            if self._row(job.id) is not None:
                return False
            self._put(_Row(job.model_copy(), None, wake_for(job.status, job.next_run)))
            return True

        done: bool = await self._call(f"add cron job {job.id}", insert)
        return done

    async def get(self, job_id: str) -> CronJob | None:
        row: _Row | None = await self._call(
            f"read cron job {job_id}", self._row, check_job_id(job_id)
        )
        return None if row is None else row.job.model_copy()

    async def _update(self, job: CronJob) -> bool:
        def update() -> bool:
            row = self._row(job.id)
            if row is None:
                return False
            stored = job.model_copy(
                update={"last_run": row.job.last_run, "run_count": row.job.run_count}
            )
            wake = row.wake_at if row.claimed_by else wake_for(job.status, job.next_run)
            self._put(_Row(stored, row.claimed_by, wake))
            return True

        done: bool = await self._call(f"update cron job {job.id}", update)
        return done

    async def _delete(self, job_ids: builtins.list[str]) -> int:
        def delete() -> int:
            return sum(self._drop(i) for i in job_ids)

        count: int = await self._call("delete cron jobs", delete)
        return count

    async def list(self, namespace: NamespaceLike | None = None) -> builtins.list[CronJob]:
        prefix = None if namespace is None else Namespace.coerce(namespace).key
        rows: builtins.list[_Row] = await self._call("list cron jobs", self._rows)
        jobs = [r.job for r in rows if prefix is None or in_subtree(r.job.namespace, prefix)]
        return sorted(jobs, key=lambda j: (j.created_at, j.id))

    async def claim(
        self,
        now: datetime,
        owner: str,
        until: datetime,
        limit: int = 100,
        *,
        only: str | None = None,
    ) -> builtins.list[Claim]:
        moment, lease = now.timestamp(), until.timestamp()

        def claim() -> builtins.list[Claim]:
            rows = self._rows() if only is None else [r for r in [self._row(only)] if r]
            due = sorted(
                (r for r in rows if r.wake_at is not None and r.wake_at <= moment),
                key=lambda r: (r.wake_at or 0.0, r.job.id),
            )[:limit]
            claims = []
            for row in due:
                claims.append(Claim(row.job.model_copy(), row.claimed_by))
                row.claimed_by, row.wake_at = owner, lease
                self._put(row)
            return claims

        claims: builtins.list[Claim] = await self._call("claim due cron jobs", claim)
        return claims

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        def renew() -> bool:
            row = self._row(job_id)
            if row is None or row.claimed_by != owner:
                return False
            row.wake_at = until.timestamp()
            self._put(row)
            return True

        done: bool = await self._call(f"renew the claim on cron job {job_id}", renew)
        return done

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
        def finish() -> bool:
            row = self._row(job_id)
            if row is None or row.claimed_by != owner:
                return False
            job = row.job
            status = job.status
            if completed and status is CronJobStatus.ACTIVE:
                status = CronJobStatus.COMPLETED
            row.job = job.model_copy(
                update={
                    "next_run": next_run,
                    "last_run": last_run or job.last_run,
                    "run_count": job.run_count + ran,
                    "status": status,
                }
            )
            row.claimed_by, row.wake_at = None, wake_for(status, next_run)
            self._put(row)
            return True

        done: bool = await self._call(f"finish a run of cron job {job_id}", finish)
        return done

    async def next_wake(self) -> datetime | None:
        rows: builtins.list[_Row] = await self._call("find the next cron wake-up", self._rows)
        wakes = [r.wake_at for r in rows if r.wake_at is not None]
        return unstamp(min(wakes)) if wakes else None

    async def record_run(self, run: CronRun) -> None:
        await self._call(f"record run {run.id}", self._put_run, run)

    async def record_runs(self, runs: builtins.list[CronRun]) -> None:
        def put_all() -> None:
            for run in runs:
                self._put_run(run)

        await self._call(f"record {len(runs)} runs", put_all)

    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[CronRun]:
        found: builtins.list[CronRun] = await self._call(
            f"read the runs of cron job {job_id}", self._job_runs, check_job_id(job_id)
        )
        return sorted(found, key=_runs_order, reverse=True)[:limit]


class MemoryCronStore(_RowStore):
    """Jobs in a dict; shared by whoever shares the in-memory session store object."""

    def __init__(self) -> None:
        super().__init__()
        self._jobs: dict[str, _Row] = {}
        self._history: dict[str, dict[str, CronRun]] = {}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        yield  # every operation runs whole on the event loop: nothing interleaves

    async def _thread(self, op: Any) -> Any:
        return op()

    def _rows(self) -> builtins.list[_Row]:
        return [_Row(r.job.model_copy(), r.claimed_by, r.wake_at) for r in self._jobs.values()]

    def _row(self, job_id: str) -> _Row | None:
        row = self._jobs.get(job_id)
        return None if row is None else _Row(row.job.model_copy(), row.claimed_by, row.wake_at)

    def _put(self, row: _Row) -> None:
        self._jobs[row.job.id] = row

    def _drop(self, job_id: str) -> bool:
        self._history.pop(job_id, None)
        return self._jobs.pop(job_id, None) is not None

    def _put_run(self, run: CronRun) -> None:
        self._history.setdefault(run.job_id, {})[run.id] = run.model_copy()

    def _job_runs(self, job_id: str) -> builtins.list[CronRun]:
        return [r.model_copy() for r in self._history.get(job_id, {}).values()]


_DIR = ".cron"  # "." is encoded in session file names, so no namespace lands here


class FileCronStore(_RowStore):
    """One JSON file per job and per run under ``<base>/.cron``, changed under an ``flock``."""

    def __init__(self, base_dir: str | PathLike[str]) -> None:
        super().__init__()
        self._dir = os.path.join(os.path.abspath(base_dir), _DIR)
        self._jobs_dir = os.path.join(self._dir, "jobs")
        self._runs_dir = os.path.join(self._dir, "runs")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        os.makedirs(self._jobs_dir, exist_ok=True)
        fd = os.open(os.path.join(self._dir, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _job_path(self, job_id: str) -> str:
        return os.path.join(self._jobs_dir, quote(job_id, safe="") + ".json")

    @staticmethod
    def _write(path: str, text: str) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _read_row(self, path: str) -> _Row | None:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        try:
            return _Row.from_json(text)
        except (ValueError, KeyError) as exc:
            raise StoreError(f"cron job file {path} is corrupt: {exc}") from exc

    def _rows(self) -> builtins.list[_Row]:
        try:
            names = sorted(os.listdir(self._jobs_dir))
        except FileNotFoundError:
            return []
        rows = [
            self._read_row(os.path.join(self._jobs_dir, n)) for n in names if n.endswith(".json")
        ]
        return [r for r in rows if r is not None]

    def _row(self, job_id: str) -> _Row | None:
        return self._read_row(self._job_path(job_id))

    def _put(self, row: _Row) -> None:
        self._write(self._job_path(row.job.id), row.to_json())

    def _drop(self, job_id: str) -> bool:
        shutil.rmtree(os.path.join(self._runs_dir, quote(job_id, safe="")), ignore_errors=True)
        try:
            os.remove(self._job_path(job_id))
        except FileNotFoundError:
            return False
        return True

    def _put_run(self, run: CronRun) -> None:
        folder = os.path.join(self._runs_dir, quote(run.job_id, safe=""))
        self._write(os.path.join(folder, quote(run.id, safe="") + ".json"), run.to_json())

    def _job_runs(self, job_id: str) -> builtins.list[CronRun]:
        folder = os.path.join(self._runs_dir, quote(job_id, safe=""))
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        found = []
        for name in names:
            if name.endswith(".json"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    found.append(CronRun.from_json(handle.read()))
        return found


# -- SQLite -------------------------------------------------------------------------------

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cron_jobs_v1 (
        id TEXT PRIMARY KEY,
        namespace TEXT NOT NULL,
        status TEXT NOT NULL,
        next_run REAL,
        last_run REAL,
        run_count INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        wake_at REAL,
        created_at REAL NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS cron_jobs_v1_wake ON cron_jobs_v1 (wake_at) "
    "WHERE wake_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS cron_jobs_v1_namespace ON cron_jobs_v1 (namespace)",
    """CREATE TABLE IF NOT EXISTS cron_runs_v1 (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        due_at REAL NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS cron_runs_v1_job ON cron_runs_v1 (job_id, due_at)",
)

_SQL_COLUMNS = "body, status, next_run, last_run, run_count"


def job_from_columns(body: str, status: str, next_run: Any, last_run: Any, count: int) -> CronJob:
    """A job from its stored definition and its run-state columns."""
    job = CronJob.from_json(body)
    return job.model_copy(
        update={
            "status": CronJobStatus(status),
            "next_run": unstamp(next_run),
            "last_run": unstamp(last_run),
            "run_count": int(count),
        }
    )


class SQLiteCronStore(CronStore):
    """The ``cron_jobs_v1`` and ``cron_runs_v1`` tables in the sessions' database."""

    def __init__(self, sessions: SQLiteStore) -> None:
        super().__init__()
        self._sessions = sessions
        self._ready = False

    async def _run(self, what: str, op: Any, *, write: bool = False) -> Any:
        if not self._ready:

            def create(conn: sqlite3.Connection) -> None:
                for statement in _SQLITE_SCHEMA:
                    conn.execute(statement)

            await self._sessions.run_in_connection("create the cron tables", create, write=True)
            self._ready = True
        return await self._sessions.run_in_connection(what, op, write=write)

    async def _insert(self, job: CronJob) -> bool:
        def insert(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "INSERT INTO cron_jobs_v1 (id, namespace, status, next_run, last_run, "
                    "run_count, wake_at, created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
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
                ).rowcount
            )

        done: bool = await self._run(f"add cron job {job.id}", insert, write=True)
        return done

    async def get(self, job_id: str) -> CronJob | None:
        def select(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                f"SELECT {_SQL_COLUMNS} FROM cron_jobs_v1 WHERE id = ?", (job_id,)
            ).fetchone()

        row = await self._run(f"read cron job {job_id}", select)
        return None if row is None else job_from_columns(*row)

    async def _update(self, job: CronJob) -> bool:
        def update(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "UPDATE cron_jobs_v1 SET status = ?, next_run = ?, body = ?, "
                    "wake_at = CASE WHEN claimed_by IS NULL THEN ? ELSE wake_at END "
                    "WHERE id = ?",
                    (
                        job.status.value,
                        stamp(job.next_run),
                        job.to_json(),
                        wake_for(job.status, job.next_run),
                        job.id,
                    ),
                ).rowcount
            )

        done: bool = await self._run(f"update cron job {job.id}", update, write=True)
        return done

    async def _delete(self, job_ids: builtins.list[str]) -> int:
        def delete(conn: sqlite3.Connection) -> int:
            count = 0
            for job_id in job_ids:
                conn.execute("DELETE FROM cron_runs_v1 WHERE job_id = ?", (job_id,))
                count += conn.execute("DELETE FROM cron_jobs_v1 WHERE id = ?", (job_id,)).rowcount
            return count

        count: int = await self._run("delete cron jobs", delete, write=True)
        return count

    async def list(self, namespace: NamespaceLike | None = None) -> builtins.list[CronJob]:
        prefix = None if namespace is None else Namespace.coerce(namespace).key

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            if prefix is None:
                return conn.execute(
                    f"SELECT {_SQL_COLUMNS} FROM cron_jobs_v1 ORDER BY created_at, id"
                ).fetchall()
            low, high = subtree_bounds(prefix)
            return conn.execute(
                f"SELECT {_SQL_COLUMNS} FROM cron_jobs_v1 WHERE namespace = ? OR "
                "(namespace >= ? AND namespace < ?) ORDER BY created_at, id",
                (prefix, low, high),
            ).fetchall()

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
        def claim(conn: sqlite3.Connection) -> builtins.list[tuple[Any, ...]]:
            # One BEGIN IMMEDIATE transaction: no other process writes between the two,
            # so the UPDATE's subquery picks the rows the SELECT read (which says who
            # held each before: RETURNING would give the new holder). Two statements
            # whatever the number of due jobs, both on the wake_at index.
            due = (
                "FROM cron_jobs_v1 WHERE wake_at IS NOT NULL AND wake_at <= :now "
                "AND (:only IS NULL OR id = :only) ORDER BY wake_at, id LIMIT :limit"
            )
            args = {"now": now.timestamp(), "limit": limit, "only": only,
                    "owner": owner, "until": until.timestamp()}  # fmt: skip
            rows = conn.execute(f"SELECT id, claimed_by, {_SQL_COLUMNS} {due}", args).fetchall()
            if rows:
                conn.execute(
                    f"UPDATE cron_jobs_v1 SET claimed_by = :owner, wake_at = :until "
                    f"WHERE id IN (SELECT id {due})",
                    args,
                )
            return rows

        rows = await self._run("claim due cron jobs", claim, write=True)
        return [Claim(job_from_columns(*row[2:]), row[1]) for row in rows]

    async def renew(self, job_id: str, owner: str, until: datetime) -> bool:
        def renew(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    "UPDATE cron_jobs_v1 SET wake_at = ? WHERE id = ? AND claimed_by = ?",
                    (until.timestamp(), job_id, owner),
                ).rowcount
            )

        done: bool = await self._run(f"renew the claim on cron job {job_id}", renew, write=True)
        return done

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
        def finish(conn: sqlite3.Connection) -> bool:
            return bool(
                conn.execute(
                    _SQL_FINISH.replace("%s", "?"),
                    _finish_args(job_id, owner, next_run, last_run, ran, completed),
                ).rowcount
            )

        done: bool = await self._run(f"finish a run of cron job {job_id}", finish, write=True)
        return done

    async def next_wake(self) -> datetime | None:
        def select(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT min(wake_at) FROM cron_jobs_v1 WHERE wake_at IS NOT NULL"
            ).fetchone()[0]

        return unstamp(await self._run("find the next cron wake-up", select))

    async def record_run(self, run: CronRun) -> None:
        await self._record([run], f"record run {run.id}")

    async def record_runs(self, runs: builtins.list[CronRun]) -> None:
        await self._record(runs, f"record {len(runs)} runs")

    async def _record(self, runs: builtins.list[CronRun], what: str) -> None:
        rows = [(r.id, r.job_id, r.due_at.timestamp(), r.to_json()) for r in runs]

        def upsert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO cron_runs_v1 (id, job_id, due_at, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                rows,
            )

        if rows:
            await self._run(what, upsert, write=True)

    async def runs(self, job_id: str, limit: int = 20) -> builtins.list[CronRun]:
        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            return conn.execute(
                "SELECT body FROM cron_runs_v1 WHERE job_id = ? ORDER BY due_at DESC, id DESC "
                "LIMIT ?",
                (job_id, limit),
            ).fetchall()

        rows = await self._run(f"read the runs of cron job {check_job_id(job_id)}", select)
        return [CronRun.from_json(body) for (body,) in rows]


_SQL_FINISH = (
    "UPDATE cron_jobs_v1 SET next_run = CAST(%s AS DOUBLE PRECISION), "
    "last_run = coalesce(CAST(%s AS DOUBLE PRECISION), last_run), "
    "run_count = run_count + %s, "
    "status = CASE WHEN %s AND status = 'active' THEN 'completed' ELSE status END, "
    "claimed_by = NULL, "
    "wake_at = CASE WHEN status = 'active' AND NOT %s "
    "THEN CAST(%s AS DOUBLE PRECISION) ELSE NULL END "
    "WHERE id = %s AND claimed_by = %s"
)
"""Give a claim back (PostgreSQL placeholders; SQLite replaces them). In SQL, the right-hand
sides all read the row as it was, so ``status`` in ``wake_at`` is the status before."""


def _finish_args(
    job_id: str,
    owner: str,
    next_run: datetime | None,
    last_run: datetime | None,
    ran: int,
    completed: bool,
) -> tuple[Any, ...]:
    return (
        stamp(next_run),
        stamp(last_run),
        ran,
        completed,
        completed,
        stamp(next_run),
        job_id,
        owner,
    )


# -- picking the backend ---------------------------------------------------------------------

_for_store: weakref.WeakKeyDictionary[Any, CronStore] = weakref.WeakKeyDictionary()


def cron_store_for(sessions: SessionStore) -> CronStore:
    """The cron store that lives beside ``sessions``, in the same backend.

    One per session store object (asking again returns the same one). Raises
    ConfigurationError for a session store kind that has no cron backend.
    """
    with suppress(KeyError):
        return _for_store[sessions]
    store: CronStore
    if isinstance(sessions, InMemoryStore):
        store = MemoryCronStore()
    elif isinstance(sessions, FileStore):
        store = FileCronStore(sessions.base_dir)
    elif isinstance(sessions, SQLiteStore):
        store = SQLiteCronStore(sessions)
    else:
        module = type(sessions).__module__
        if module == "orra_di.stores.postgres":
            from orra_di.cron.postgres import PostgresCronStore

            store = PostgresCronStore(sessions)  # type: ignore[arg-type]
        elif module == "orra_di.stores.redis":
            from orra_di.cron.redis import RedisCronStore

            store = RedisCronStore(sessions)  # type: ignore[arg-type]
        else:
            raise ConfigurationError(
                f"cron jobs have no backend beside a {type(sessions).__name__}; use one of the "
                "built-in session stores, or give CronService a CronStore of your own"
            )
    _for_store[sessions] = store
    return store
