"""Where projects are kept: beside the sessions, in the same backend.

A project store is never configured on its own: :func:`project_store_for` picks
the backend from the session store object and reuses what it has opened, so one
store URL decides where everything lives and one connection pool serves both.

- memory: a dict attached to the :class:`~orra_di.stores.memory.InMemoryStore`
  object (every project store made for it sees the same projects);
- file: ``<base dir>/.orra-projects/<id>.json``, written atomically; the dot
  keeps it apart from session directories (which are encoded segments, never
  starting with a dot), so listing or pruning sessions never meets it;
- SQLite: the table ``orra_projects`` in the sessions' database file, through
  :meth:`SQLiteStore.run_in_connection`;
- PostgreSQL: the table ``orra_projects`` in the store's schema, through its pool;
  keyed by the SHA-256 of the id, since an id may be longer than a btree entry;
- Redis: one hash ``<key prefix>projects`` (field: id, value: the project as JSON).

Each stored record is the project's JSON; fields added later get their defaults
when an older record is read, and unknown ones are ignored, so records written
by another version still load. Creation is atomic on every backend (an insert
that does nothing when the id exists): two processes creating one id cannot
both succeed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import anyio

from orra_di.errors import ConfigurationError, StoreError
from orra_di.projects.model import Project
from orra_di.store import SessionStore

if TYPE_CHECKING:
    import sqlite3

    from orra_di.stores.postgres import PostgresStore
    from orra_di.stores.redis import RedisStore
    from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "FileProjectStore",
    "InMemoryProjectStore",
    "PostgresProjectStore",
    "ProjectStore",
    "RedisProjectStore",
    "SQLiteProjectStore",
    "project_store_for",
]

_T = TypeVar("_T")
TABLE = "orra_projects"


@runtime_checkable
class ProjectStore(Protocol):
    """orra's four operations, plus an atomic ``create``. ``list`` is sorted by id."""

    async def load(self, project_id: str) -> Project | None: ...

    async def save(self, project: Project) -> None:
        """Write ``project``, replacing any stored under its id."""
        ...

    async def create(self, project: Project) -> bool:
        """Store ``project`` unless its id exists; ``True`` if this call stored it."""
        ...

    async def delete(self, project_id: str) -> bool: ...

    async def list(self) -> list[Project]: ...


def project_store_for(sessions: SessionStore) -> ProjectStore:
    """The project store living beside ``sessions``, on its connection.

    Raises :class:`ConfigurationError` for a session store of another kind: give
    :class:`~orra_di.projects.manager.ProjectManager` a project store yourself.
    """
    kind = type(sessions).__name__
    module = type(sessions).__module__
    if module == "orra_di.stores.memory":
        return InMemoryProjectStore(sessions)
    if module == "orra_di.stores.file":
        return FileProjectStore(sessions.base_dir)  # type: ignore[attr-defined]
    if module == "orra_di.stores.sqlite":
        return SQLiteProjectStore(sessions)  # type: ignore[arg-type]
    if module == "orra_di.stores.postgres":
        return PostgresProjectStore(sessions)  # type: ignore[arg-type]
    if module == "orra_di.stores.redis":
        return RedisProjectStore(sessions)  # type: ignore[arg-type]
    raise ConfigurationError(
        f"projects cannot be kept beside a {kind}: pass a ProjectStore to ProjectManager "
        "(or override the container's project_store)"
    )


# -- memory --------------------------------------------------------------------------

_MEMORY: weakref.WeakKeyDictionary[object, dict[str, str]] = weakref.WeakKeyDictionary()


class InMemoryProjectStore:
    """Projects in a dict, shared by every project store of one session store object.

    Records are kept as JSON text, so a caller never holds the stored object itself.
    """

    def __init__(self, sessions: object | None = None) -> None:
        owner = sessions if sessions is not None else self
        self._records = _MEMORY.setdefault(owner, {})

    async def load(self, project_id: str) -> Project | None:
        text = self._records.get(project_id)
        return None if text is None else Project.from_json(text, f"memory:{project_id}")

    async def save(self, project: Project) -> None:
        self._records[project.id] = project.to_json()

    async def create(self, project: Project) -> bool:
        if project.id in self._records:
            return False
        self._records[project.id] = project.to_json()
        return True

    async def delete(self, project_id: str) -> bool:
        return self._records.pop(project_id, None) is not None

    async def list(self) -> list[Project]:
        return [Project.from_json(self._records[k], k) for k in sorted(self._records)]


# -- file ----------------------------------------------------------------------------

_FILE_DIR = ".orra-projects"
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _file_name(project_id: str) -> str:
    """A file name for the id: the id itself when plain and short, else a digest.

    Either way the file holds the id, and case-insensitive file systems cannot
    merge two ids (a digest is lower-case hex, a plain name is used as is only
    when it has no upper-case letter).
    """
    if set(project_id) <= _SAFE and project_id == project_id.lower() and len(project_id) <= 128:
        return project_id + ".json"
    return "~" + hashlib.sha256(project_id.encode()).hexdigest()[:40] + ".json"


class FileProjectStore:
    """One JSON file per project in ``<base>/.orra-projects``."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self._dir = os.path.join(os.path.abspath(base_dir), _FILE_DIR)

    async def load(self, project_id: str) -> Project | None:
        path = os.path.join(self._dir, _file_name(project_id))
        return await self._thread(f"load project {project_id!r}", self._read, path)

    async def save(self, project: Project) -> None:
        await self._thread(f"save project {project.id!r}", self._write, project, True)

    async def create(self, project: Project) -> bool:
        return await self._thread(f"create project {project.id!r}", self._write, project, False)

    async def delete(self, project_id: str) -> bool:
        path = os.path.join(self._dir, _file_name(project_id))

        def delete() -> bool:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            return True

        return await self._thread(f"delete project {project_id!r}", delete)

    async def list(self) -> list[Project]:
        def find() -> list[Project]:
            try:
                names = sorted(n for n in os.listdir(self._dir) if n.endswith(".json"))
            except FileNotFoundError:
                return []
            found = (self._read(os.path.join(self._dir, n)) for n in names)
            return sorted((p for p in found if p is not None), key=lambda p: p.id)

        return await self._thread("list projects", find)

    @staticmethod
    def _read(path: str) -> Project | None:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        return Project.from_json(data, path)

    def _write(self, project: Project, replace: bool) -> bool:
        os.makedirs(self._dir, exist_ok=True)
        path = os.path.join(self._dir, _file_name(project.id))
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        with open(tmp, "x", encoding="utf-8") as file:
            file.write(project.to_json())
            file.flush()
            os.fsync(file.fileno())
        try:
            if replace:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)  # fails if the id exists: an atomic create
            except FileExistsError:
                return False
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):  # gone when os.replace moved it
                os.unlink(tmp)

    async def _thread(self, what: str, call: Callable[..., _T], *args: Any) -> _T:
        try:
            return await anyio.to_thread.run_sync(call, *args)
        except OSError as exc:
            raise StoreError(f"{what} in {self._dir} failed: {exc.strerror or exc}") from exc


# -- SQLite --------------------------------------------------------------------------

_SQLITE_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} ("
    "id TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at TEXT NOT NULL)"
)


class SQLiteProjectStore:
    """Projects in the sessions' SQLite file, on the session store's connection."""

    def __init__(self, sessions: SQLiteStore) -> None:
        self._sessions = sessions
        self._ready = False

    async def _op(self, what: str, op: Callable[[sqlite3.Connection], _T], write: bool) -> _T:
        if not self._ready:
            await self._sessions.run_in_connection(
                "create the projects table", lambda c: c.execute(_SQLITE_SCHEMA), write=True
            )
            self._ready = True
        return await self._sessions.run_in_connection(what, op, write=write)

    async def load(self, project_id: str) -> Project | None:
        row = await self._op(
            f"load project {project_id!r}",
            lambda c: c.execute(f"SELECT body FROM {TABLE} WHERE id = ?", (project_id,)).fetchone(),
            False,
        )
        return None if row is None else Project.from_json(row[0], f"{TABLE}[{project_id!r}]")

    async def save(self, project: Project) -> None:
        sql = (
            f"INSERT INTO {TABLE} (id, body, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at"
        )
        params = (project.id, project.to_json(), project.updated_at.isoformat())
        await self._op(f"save project {project.id!r}", lambda c: c.execute(sql, params), True)

    async def create(self, project: Project) -> bool:
        sql = f"INSERT OR IGNORE INTO {TABLE} (id, body, updated_at) VALUES (?, ?, ?)"
        params = (project.id, project.to_json(), project.updated_at.isoformat())
        cursor = await self._op(
            f"create project {project.id!r}", lambda c: c.execute(sql, params), True
        )
        return bool(cursor.rowcount == 1)

    async def delete(self, project_id: str) -> bool:
        cursor = await self._op(
            f"delete project {project_id!r}",
            lambda c: c.execute(f"DELETE FROM {TABLE} WHERE id = ?", (project_id,)),
            True,
        )
        return bool(cursor.rowcount == 1)

    async def list(self) -> list[Project]:
        rows = await self._op(
            "list projects",
            lambda c: c.execute(f"SELECT id, body FROM {TABLE} ORDER BY id").fetchall(),
            False,
        )
        return [Project.from_json(body, f"{TABLE}[{id_!r}]") for id_, body in rows]


# -- PostgreSQL ----------------------------------------------------------------------


def _digest(project_id: str) -> str:
    return hashlib.sha256(project_id.encode()).hexdigest()


class PostgresProjectStore:
    """Projects in the store's schema, through the session store's connection pool."""

    def __init__(self, sessions: PostgresStore) -> None:
        self._sessions = sessions
        self._table = f'"{sessions.schema}".{TABLE}'
        digest = hashlib.sha256(f"{sessions.schema}.{TABLE}".encode()).digest()
        self._lock_id = int.from_bytes(digest[:8], "big", signed=True)
        self._ready = False

    async def _run(self, what: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
        """``(rowcount, rows)`` of one statement; driver errors become StoreError."""
        from psycopg import Error

        try:
            async with self._sessions.connection() as conn:
                if not self._ready:
                    # Two processes' CREATE TABLE IF NOT EXISTS race on the catalog (a unique
                    # violation): take turns under a transaction-scoped advisory lock.
                    async with conn.transaction():
                        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_id,))
                        await conn.execute(
                            f"CREATE TABLE IF NOT EXISTS {self._table} (key_digest text "
                            "PRIMARY KEY, id text NOT NULL, body text NOT NULL, "
                            "updated_at timestamptz NOT NULL)"
                        )
                    self._ready = True
                cursor = await conn.execute(sql, params)
                rows = await cursor.fetchall() if cursor.description else []
                return cursor.rowcount, rows
        except Error as exc:
            raise StoreError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    async def load(self, project_id: str) -> Project | None:
        _, rows = await self._run(
            f"load project {project_id!r}",
            f"SELECT body FROM {self._table} WHERE key_digest = %s",
            (_digest(project_id),),
        )
        return Project.from_json(rows[0][0], f"{self._table}[{project_id!r}]") if rows else None

    async def save(self, project: Project) -> None:
        await self._run(
            f"save project {project.id!r}",
            f"INSERT INTO {self._table} (key_digest, id, body, updated_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (key_digest) DO UPDATE "
            "SET body = excluded.body, updated_at = excluded.updated_at",
            (_digest(project.id), project.id, project.to_json(), project.updated_at),
        )

    async def create(self, project: Project) -> bool:
        count, _ = await self._run(
            f"create project {project.id!r}",
            f"INSERT INTO {self._table} (key_digest, id, body, updated_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (key_digest) DO NOTHING",
            (_digest(project.id), project.id, project.to_json(), project.updated_at),
        )
        return bool(count == 1)

    async def delete(self, project_id: str) -> bool:
        count, _ = await self._run(
            f"delete project {project_id!r}",
            f"DELETE FROM {self._table} WHERE key_digest = %s",
            (_digest(project_id),),
        )
        return bool(count == 1)

    async def list(self) -> list[Project]:
        _, rows = await self._run(
            "list projects", f'SELECT id, body FROM {self._table} ORDER BY id COLLATE "C"'
        )
        return [Project.from_json(body, f"{self._table}[{id_!r}]") for id_, body in rows]


# -- Redis ---------------------------------------------------------------------------


class RedisProjectStore:
    """Projects in one hash under the session store's key prefix, on its client."""

    def __init__(self, sessions: RedisStore) -> None:
        self._client = sessions.client
        self._key = f"{sessions.key_prefix}projects"

    async def _call(self, what: str, op: Callable[[], Awaitable[_T]]) -> _T:
        from redis.exceptions import RedisError

        try:
            return await op()
        except RedisError as exc:
            raise StoreError(f"{what} failed: {type(exc).__name__}: {exc}") from exc

    async def load(self, project_id: str) -> Project | None:
        text = await self._call(
            f"load project {project_id!r}", lambda: self._client.hget(self._key, project_id)
        )
        return None if text is None else Project.from_json(text, f"{self._key}[{project_id!r}]")

    async def save(self, project: Project) -> None:
        await self._call(
            f"save project {project.id!r}",
            lambda: self._client.hset(self._key, project.id, project.to_json()),
        )

    async def create(self, project: Project) -> bool:
        created = await self._call(
            f"create project {project.id!r}",
            lambda: self._client.hsetnx(self._key, project.id, project.to_json()),
        )
        return bool(created)

    async def delete(self, project_id: str) -> bool:
        removed = await self._call(
            f"delete project {project_id!r}", lambda: self._client.hdel(self._key, project_id)
        )
        return bool(removed)

    async def list(self) -> list[Project]:
        records: dict[Any, Any] = await self._call(
            "list projects", lambda: self._client.hgetall(self._key)
        )
        found = [Project.from_json(v, f"{self._key}[{k!r}]") for k, v in records.items()]
        return sorted(found, key=lambda p: p.id)
