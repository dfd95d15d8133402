"""Memory stores: the contract, and the backends beside the sessions.

A store answers for **exact namespaces**: ``list``, ``search_text`` and ``search`` take
the keys whose memories are visible (``scope``), and the
:class:`~orra_di.memory.manager.MemoryManager` works that set out from the caller's
namespace and the visibility rule. Ranking:

- keywords: whole words only (:func:`~orra_di.memory.model.words`). SQLite ranks with
  FTS5's ``bm25()`` over words indexed per namespace (``<scope token>_<word>``; the query
  is each visible namespace's form of each word, quoted, joined with ``OR``); PostgreSQL with
  ``ts_rank_cd`` over a ``tsvector`` of the ``simple`` configuration (no stemming,
  language-neutral); both report scores relative to the search's best hit (1.0). The
  in-memory, file and Redis stores count the query's words an entry has, divided by the
  query's word count (orra's score, on words instead of substrings), reading the scope's
  entries in Python;
- vectors: cosine similarity. The vectors are float32 blobs ranked by brute force in the
  process (numpy when installed, else pure Python): ``sqlite-vec`` needs
  ``enable_load_extension``, which the Python builds here lack, and pgvector is rarely
  installed on the servers users run, so neither is required. Brute force over one
  person's memories (thousands) is milliseconds; ``benchmarks/bench_memory.py`` measures.

Backends, picked by :func:`memory_store_for` from the session store object: a dict beside
the :class:`~orra_di.stores.memory.InMemoryStore`; one JSON file per memory under
``<base>/.memory/<namespace>/`` beside a :class:`~orra_di.stores.file.FileStore`; the
``memories_v1`` tables in the sessions' SQLite database or PostgreSQL schema
(:mod:`orra_di.memory.postgres`); keys under the Redis store's prefix
(:mod:`orra_di.memory.redis`).
"""

from __future__ import annotations

import builtins
import os
import shutil
import sqlite3
import weakref
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import suppress
from os import PathLike
from typing import Any
from urllib.parse import quote, unquote

import anyio

from orra_di.errors import ConfigurationError, StoreError
from orra_di.memory.model import (
    _ID,
    MemoryEntry,
    MemorySearchResult,
    MemoryStoreError,
    all_words,
    pack_vector,
    rank_by_cosine,
    unpack_vector,
    word_list,
    words,
)
from orra_di.namespace import Namespace, NamespaceLike, index_token
from orra_di.store import SessionStore, in_subtree, subtree_bounds
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "FileMemoryStore",
    "InMemoryMemoryStore",
    "MemoryStore",
    "SQLiteMemoryStore",
    "check_memory_id",
    "memory_store_for",
]


def check_memory_id(memory_id: str) -> bool:
    """Whether ``memory_id`` can be a memory id (letters, digits, ``-``, ``_``)."""
    return isinstance(memory_id, str) and bool(_ID.fullmatch(memory_id))


def scope_keys(scope: Sequence[NamespaceLike]) -> list[str]:
    return list(dict.fromkeys(Namespace.coerce(n).key for n in scope))


class MemoryStore(ABC):
    """Long-term memories of many namespaces (orra's ``MemoryStore`` trait, plus erasure)."""

    @abstractmethod
    async def store(self, entry: MemoryEntry) -> str:
        """Keep ``entry`` (replacing one with its id); its id."""

    async def store_many(self, entries: Sequence[MemoryEntry]) -> None:
        """Keep several entries (imports, benchmarks); SQL backends do it in one transaction."""
        for entry in entries:
            await self.store(entry)

    @abstractmethod
    async def get(self, memory_id: str) -> MemoryEntry | None:
        """The entry with this id, whatever its namespace (callers check visibility)."""

    @abstractmethod
    async def delete(self, memory_id: str) -> bool:
        """Delete one entry; True if it existed."""

    @abstractmethod
    async def list(self, scope: Sequence[NamespaceLike], limit: int) -> builtins.list[MemoryEntry]:
        """Entries of exactly these namespaces, newest first."""

    @abstractmethod
    async def search_text(
        self, scope: Sequence[NamespaceLike], query: str, limit: int
    ) -> builtins.list[MemorySearchResult]:
        """Entries sharing whole words with ``query``, best first (none for no words)."""

    @abstractmethod
    async def search(
        self, scope: Sequence[NamespaceLike], embedding: Sequence[float], limit: int
    ) -> builtins.list[MemorySearchResult]:
        """Entries with an embedding, most similar to ``embedding`` first."""

    @abstractmethod
    async def delete_tree(self, namespace: NamespaceLike) -> int:
        """Delete every entry of ``namespace`` and below (whole segments); how many."""

    async def aclose(self) -> None:  # noqa: B027 - optional for subclasses
        """Nothing to release: the session store owns the connection."""


def relative(found: Sequence[tuple[MemoryEntry, float]]) -> builtins.list[MemorySearchResult]:
    """Results scored relative to the best (1.0): ``bm25()`` and ``ts_rank_cd`` values have
    no fixed scale (bm25 is near 0 in a small table), so the SQL stores report shares."""
    best = max((score for _, score in found), default=0.0)
    return [MemorySearchResult(e, score / best if best > 0 else 0.0) for e, score in found]


def word_score(query_words: Sequence[str], entry: MemoryEntry) -> float:
    """orra's keyword score on whole words: the share of the query's words the entry has."""
    if not query_words:
        return 0.0
    have = all_words(entry.searchable_text())
    return sum(1 for w in query_words if w in have) / len(query_words)


class _ScanStore(MemoryStore):
    """Search by reading the scope's entries and scoring them in Python."""

    @abstractmethod
    async def _entries(self, keys: builtins.list[str]) -> builtins.list[MemoryEntry]: ...

    async def list(self, scope: Sequence[NamespaceLike], limit: int) -> builtins.list[MemoryEntry]:
        found = await self._entries(scope_keys(scope))
        found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return found[: max(limit, 0)]

    async def search_text(
        self, scope: Sequence[NamespaceLike], query: str, limit: int
    ) -> builtins.list[MemorySearchResult]:
        terms = words(query)
        if not terms or limit <= 0:
            return []
        scored = [
            MemorySearchResult(e, s)
            for e in await self._entries(scope_keys(scope))
            if (s := word_score(terms, e)) > 0
        ]
        scored.sort(key=lambda r: (r.score, r.entry.created_at), reverse=True)
        return scored[:limit]

    async def search(
        self, scope: Sequence[NamespaceLike], embedding: Sequence[float], limit: int
    ) -> builtins.list[MemorySearchResult]:
        entries = {
            e.id: e for e in await self._entries(scope_keys(scope)) if e.embedding is not None
        }
        blobs = [(i, pack_vector(e.embedding) or b"") for i, e in entries.items()]
        return [
            MemorySearchResult(entries[i], s) for i, s in rank_by_cosine(embedding, blobs, limit)
        ]


class InMemoryMemoryStore(_ScanStore):
    """Memories in a dict (orra's ``InMemoryMemoryStore``); lost when the process ends."""

    def __init__(self) -> None:
        self._by_id: dict[str, MemoryEntry] = {}
        self._by_namespace: dict[str, dict[str, None]] = {}

    async def store(self, entry: MemoryEntry) -> str:
        old = self._by_id.get(entry.id)
        if old is not None:
            self._by_namespace.get(old.namespace, {}).pop(old.id, None)
        self._by_id[entry.id] = entry.model_copy(deep=True)
        self._by_namespace.setdefault(entry.namespace, {})[entry.id] = None
        return entry.id

    async def get(self, memory_id: str) -> MemoryEntry | None:
        entry = self._by_id.get(memory_id)
        return None if entry is None else entry.model_copy(deep=True)

    async def delete(self, memory_id: str) -> bool:
        entry = self._by_id.pop(memory_id, None)
        if entry is None:
            return False
        self._by_namespace.get(entry.namespace, {}).pop(memory_id, None)
        return True

    async def _entries(self, keys: builtins.list[str]) -> builtins.list[MemoryEntry]:
        return [
            self._by_id[i].model_copy(deep=True)
            for key in keys
            for i in self._by_namespace.get(key, {})
        ]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key
        count = 0
        for key in [k for k in self._by_namespace if in_subtree(k, prefix)]:
            for memory_id in self._by_namespace.pop(key):
                count += self._by_id.pop(memory_id, None) is not None
        return count


_DIR = ".memory"  # "." is encoded in session file names, so no session lands here


class FileMemoryStore(_ScanStore):
    """One JSON file per memory, ``<base>/.memory/<namespace>/<id>.json`` (small deployments)."""

    def __init__(self, base_dir: str | PathLike[str]) -> None:
        self._dir = os.path.join(os.path.abspath(base_dir), _DIR)

    def _folder(self, key: str) -> str:
        name = quote(key, safe="")
        if name in (".", ".."):  # not a folder of its own: . is .memory, .. the sessions' base
            name = name.replace(".", "%2E")
        return os.path.join(self._dir, name)

    async def _thread(self, what: str, op: Any, *args: Any) -> Any:
        try:
            return await anyio.to_thread.run_sync(op, *args)
        except OSError as exc:
            raise StoreError(f"{what} failed: {exc.strerror or exc} ({exc.filename})") from exc

    def _find(self, memory_id: str) -> str | None:
        if not check_memory_id(memory_id):
            return None
        try:
            folders = os.listdir(self._dir)
        except FileNotFoundError:
            return None
        for folder in folders:
            path = os.path.join(self._dir, folder, memory_id + ".json")
            if os.path.exists(path):
                return path
        return None

    async def store(self, entry: MemoryEntry) -> str:
        if not check_memory_id(entry.id):
            raise MemoryStoreError(f"{entry.id!r} is not a memory id (letters, digits, - and _)")

        def write() -> None:
            old = self._find(entry.id)
            folder = self._folder(entry.namespace)
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, entry.id + ".json")
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(entry.to_json())
            os.replace(tmp, path)
            if old is not None and old != path:
                with suppress(FileNotFoundError):
                    os.remove(old)

        await self._thread(f"store memory {entry.id}", write)
        return entry.id

    async def get(self, memory_id: str) -> MemoryEntry | None:
        def read() -> MemoryEntry | None:
            path = self._find(memory_id)
            if path is None:
                return None
            try:
                with open(path, encoding="utf-8") as handle:
                    return MemoryEntry.from_json(handle.read())
            except FileNotFoundError:
                return None

        found: MemoryEntry | None = await self._thread(f"read memory {memory_id}", read)
        return found

    async def delete(self, memory_id: str) -> bool:
        def remove() -> bool:
            path = self._find(memory_id)
            if path is None:
                return False
            try:
                os.remove(path)
            except FileNotFoundError:
                return False
            return True

        done: bool = await self._thread(f"delete memory {memory_id}", remove)
        return done

    async def _entries(self, keys: builtins.list[str]) -> builtins.list[MemoryEntry]:
        def read() -> builtins.list[MemoryEntry]:
            found = []
            for key in keys:
                folder = self._folder(key)
                try:
                    names = os.listdir(folder)
                except FileNotFoundError:
                    continue
                for name in names:
                    if name.endswith(".json"):
                        with (
                            suppress(FileNotFoundError),
                            open(os.path.join(folder, name), encoding="utf-8") as handle,
                        ):
                            found.append(MemoryEntry.from_json(handle.read()))
            return found

        entries: builtins.list[MemoryEntry] = await self._thread("read memories", read)
        return entries

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key

        def remove() -> int:
            try:
                folders = os.listdir(self._dir)
            except FileNotFoundError:
                return 0
            count = 0
            for folder in folders:
                if in_subtree(unquote(folder), prefix):
                    path = os.path.join(self._dir, folder)
                    count += sum(1 for n in os.listdir(path) if n.endswith(".json"))
                    shutil.rmtree(path, ignore_errors=True)
            return count

        count: int = await self._thread(f"erase the memories under {prefix!r}", remove)
        return count


# -- SQLite -------------------------------------------------------------------------------

_SQLITE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS memories_v1 (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        namespace TEXT NOT NULL,
        created_at REAL NOT NULL,
        embedding BLOB,
        body TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS memories_v1_namespace ON memories_v1 (namespace, created_at)",
    # Each indexed word is written as ``<scope token>_<word>``: FTS5 then keeps one posting
    # list per namespace and word, and a search reads only the matches in the caller's
    # scope. (A ``scope`` column ANDed with the words read the whole tenant's list per
    # query: 6-9 ms at 100,000 memories, against about 1 ms this way.)
    "CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts_v2 USING fts5("
    "text, tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\")",
)


def index_text(namespace: str, text: str) -> str:
    """What the FTS index holds for a memory: every word of ``text``, repeats kept (BM25
    counts them), each bound to the memory's namespace."""
    scope = index_token(namespace)
    return " ".join(f"{scope}_{word}" for word in word_list(text))


def fts_query(terms: Sequence[str], keys: Sequence[str]) -> str:
    """An FTS5 query: any of ``terms`` in one of the ``keys`` namespaces. Every term is a
    quoted string, so no FTS operator in the user's text survives."""
    scopes = [index_token(k) for k in keys]
    return " OR ".join('"' + f"{s}_{t}".replace('"', '""') + '"' for s in scopes for t in terms)


def _migrate_fts_v1(conn: sqlite3.Connection) -> None:
    """Databases written before the v2 index had a ``scope`` column: index their memories
    again the v2 way (the bodies hold everything needed), then drop the old index."""
    old = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'memories_fts_v1'").fetchone()
    if old is None:
        return
    conn.execute("DELETE FROM memories_fts_v2")
    rows = conn.execute("SELECT rowid, namespace, body FROM memories_v1").fetchall()
    for rowid, namespace, body in rows:
        text = MemoryEntry.from_json(body).searchable_text()
        conn.execute(
            "INSERT INTO memories_fts_v2 (rowid, text) VALUES (?, ?)",
            (rowid, index_text(namespace, text)),
        )
    conn.execute("DROP TABLE memories_fts_v1")


def _bodies(
    conn: sqlite3.Connection, rowids: Sequence[int], visible: set[str] | None = None
) -> dict[int, tuple[str, bytes | None]]:
    """The stored body and vector of each of ``rowids`` (only rows of ``visible``
    namespaces when given)."""
    rows = conn.execute(
        "SELECT rowid, namespace, body, embedding FROM memories_v1 "
        f"WHERE rowid IN ({_marks(len(rowids))})",
        list(rowids),
    )
    return {r[0]: (r[2], r[3]) for r in rows if visible is None or r[1] in visible}


def _marks(n: int) -> str:
    return ", ".join("?" * n)


def _entry(body: str, blob: bytes | None) -> MemoryEntry:
    entry = MemoryEntry.from_json(body)
    vector = unpack_vector(blob)
    return entry if vector is None else entry.model_copy(update={"embedding": vector})


def body_of(entry: MemoryEntry) -> str:
    """The stored JSON: the entry without its vector (kept as a float32 blob beside it)."""
    return entry.model_copy(update={"embedding": None}).to_json()


class SQLiteMemoryStore(MemoryStore):
    """The ``memories_v1`` table and its FTS5 index in the sessions' database."""

    def __init__(self, sessions: SQLiteStore) -> None:
        self._sessions = sessions
        self._ready = False

    async def _run(self, what: str, op: Any, *, write: bool = False) -> Any:
        if not self._ready:

            def create(conn: sqlite3.Connection) -> None:
                for statement in _SQLITE_SCHEMA:
                    conn.execute(statement)
                _migrate_fts_v1(conn)

            await self._sessions.run_in_connection("create the memory tables", create, write=True)
            self._ready = True
        return await self._sessions.run_in_connection(what, op, write=write)

    @staticmethod
    def _upsert(conn: sqlite3.Connection, entry: MemoryEntry) -> None:
        old = conn.execute("SELECT rowid FROM memories_v1 WHERE id = ?", (entry.id,)).fetchone()
        if old is not None:
            conn.execute("DELETE FROM memories_fts_v2 WHERE rowid = ?", old)
            conn.execute("DELETE FROM memories_v1 WHERE rowid = ?", old)
        cursor = conn.execute(
            "INSERT INTO memories_v1 (id, namespace, created_at, embedding, body) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                entry.id,
                entry.namespace,
                entry.created_at.timestamp(),
                pack_vector(entry.embedding),
                body_of(entry),
            ),
        )
        conn.execute(
            "INSERT INTO memories_fts_v2 (rowid, text) VALUES (?, ?)",
            (cursor.lastrowid, index_text(entry.namespace, entry.searchable_text())),
        )

    async def store(self, entry: MemoryEntry) -> str:
        await self._run(
            f"store memory {entry.id}", lambda conn: self._upsert(conn, entry), write=True
        )
        return entry.id

    async def store_many(self, entries: Sequence[MemoryEntry]) -> None:
        def upsert_all(conn: sqlite3.Connection) -> None:
            for entry in entries:
                self._upsert(conn, entry)

        await self._run(f"store {len(entries)} memories", upsert_all, write=True)

    async def get(self, memory_id: str) -> MemoryEntry | None:
        def select(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT body, embedding FROM memories_v1 WHERE id = ?", (memory_id,)
            ).fetchone()

        row = await self._run(f"read memory {memory_id}", select)
        return None if row is None else _entry(*row)

    async def delete(self, memory_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            old = conn.execute(
                "SELECT rowid FROM memories_v1 WHERE id = ?", (memory_id,)
            ).fetchone()
            if old is None:
                return False
            conn.execute("DELETE FROM memories_fts_v2 WHERE rowid = ?", old)
            conn.execute("DELETE FROM memories_v1 WHERE rowid = ?", old)
            return True

        done: bool = await self._run(f"delete memory {memory_id}", delete, write=True)
        return done

    async def list(self, scope: Sequence[NamespaceLike], limit: int) -> builtins.list[MemoryEntry]:
        keys = scope_keys(scope)

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            return conn.execute(
                "SELECT body, embedding FROM memories_v1 WHERE namespace IN "
                f"({_marks(len(keys))}) ORDER BY created_at DESC, id DESC LIMIT ?",
                (*keys, max(limit, 0)),
            ).fetchall()

        if not keys or limit <= 0:
            return []
        return [_entry(*row) for row in await self._run("list memories", select)]

    async def search_text(
        self, scope: Sequence[NamespaceLike], query: str, limit: int
    ) -> builtins.list[MemorySearchResult]:
        keys, terms = scope_keys(scope), words(query)
        if not keys or not terms or limit <= 0:
            return []

        query, visible = fts_query(terms, keys), set(keys)

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            # The ranking reads only the scope's posting lists and rowids; the bodies of the
            # best alone, their namespace checked again (a digest is not a proof).
            best = conn.execute(
                "SELECT rowid, bm25(memories_fts_v2) AS rank FROM memories_fts_v2 "
                "WHERE memories_fts_v2 MATCH ? ORDER BY rank LIMIT ?",
                (query, limit),
            ).fetchall()
            if not best:
                return []
            bodies = _bodies(conn, [rowid for rowid, _ in best], visible)
            if len(bodies) < len(best):
                # A row of another namespace matched: SQLite's tokenizer split one of its
                # words where ours did not (its Unicode tables are older), and a piece
                # reads as a visible namespace's token. Rank again with the namespace
                # checked before the LIMIT, so such rows cannot push the scope's out.
                best = conn.execute(
                    "SELECT f.rowid, bm25(memories_fts_v2) AS rank FROM memories_fts_v2 f "
                    "JOIN memories_v1 m ON m.rowid = f.rowid WHERE memories_fts_v2 MATCH ? "
                    f"AND m.namespace IN ({_marks(len(keys))}) ORDER BY rank LIMIT ?",
                    (query, *keys, limit),
                ).fetchall()
                bodies = _bodies(conn, [rowid for rowid, _ in best])
            return [(*bodies[rowid], rank) for rowid, rank in best if rowid in bodies]

        rows = await self._run("search memories", select)
        return relative([(_entry(body, blob), -rank) for body, blob, rank in rows])

    async def search(
        self, scope: Sequence[NamespaceLike], embedding: Sequence[float], limit: int
    ) -> builtins.list[MemorySearchResult]:
        keys = scope_keys(scope)
        if not keys or limit <= 0:
            return []

        def select(conn: sqlite3.Connection) -> builtins.list[Any]:
            return conn.execute(
                "SELECT rowid, embedding FROM memories_v1 WHERE embedding IS NOT NULL "
                f"AND namespace IN ({_marks(len(keys))})",
                keys,
            ).fetchall()

        best = rank_by_cosine(embedding, await self._run("search memories", select), limit)
        if not best:
            return []
        rowids = [rowid for rowid, _ in best]
        found = await self._run("read memories", lambda conn: _bodies(conn, rowids))
        return [MemorySearchResult(_entry(*found[r]), s) for r, s in best if r in found]

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        prefix = Namespace.coerce(namespace).key
        low, high = subtree_bounds(prefix)
        where = "namespace = ? OR (namespace >= ? AND namespace < ?)"

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM memories_fts_v2 WHERE rowid IN "
                f"(SELECT rowid FROM memories_v1 WHERE {where})",
                (prefix, low, high),
            )
            return conn.execute(
                f"DELETE FROM memories_v1 WHERE {where}", (prefix, low, high)
            ).rowcount

        count: int = await self._run(f"erase the memories under {prefix!r}", delete, write=True)
        return count


# -- picking the backend ---------------------------------------------------------------------

_for_store: weakref.WeakKeyDictionary[Any, MemoryStore] = weakref.WeakKeyDictionary()


def memory_store_for(sessions: SessionStore) -> MemoryStore:
    """The memory store that lives beside ``sessions``, in the same backend.

    One per session store object (asking again returns the same one). Raises
    ConfigurationError for a session store kind that has no memory backend.
    """
    with suppress(KeyError):
        return _for_store[sessions]
    store: MemoryStore
    if isinstance(sessions, InMemoryStore):
        store = InMemoryMemoryStore()
    elif isinstance(sessions, FileStore):
        store = FileMemoryStore(sessions.base_dir)
    elif isinstance(sessions, SQLiteStore):
        store = SQLiteMemoryStore(sessions)
    else:
        module = type(sessions).__module__
        if module == "orra_di.stores.postgres":
            from orra_di.memory.postgres import PostgresMemoryStore

            store = PostgresMemoryStore(sessions)  # type: ignore[arg-type]
        elif module == "orra_di.stores.redis":
            from orra_di.memory.redis import RedisMemoryStore

            store = RedisMemoryStore(sessions)  # type: ignore[arg-type]
        else:
            raise ConfigurationError(
                f"memories have no backend beside a {type(sessions).__name__}; use one of the "
                "built-in session stores, or give MemoryManager a MemoryStore of your own"
            )
    _for_store[sessions] = store
    return store
