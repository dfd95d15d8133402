"""Sessions as JSON Lines files under one directory (POSIX).

Layout: ``acme:alice`` lives in ``<base>/acme/alice.jsonl``. Every segment is
encoded into a safe file name: ``[A-Za-z0-9_-]`` stay, every other character
(``.`` and ``/`` included) becomes ``%XX`` per UTF-8 byte. So ``..`` or ``/``
cannot leave the base directory, ``v1.1`` and ``v1.2`` cannot collide (orra's
file store, spec §5.4/19, had both bugs), and ``.jsonl``, ``.lock`` and
``.tmp`` suffixes can never be part of a segment.

Long keys: every key :class:`~orra_di.namespace.Namespace` accepts is storable,
though a file name holds 255 bytes and a path 4,096. A segment whose encoding is
too long for a name (over 255 bytes for a directory, 242 for a session file, whose
temporary adds ``.<8 hex>.tmp``) is named ``~`` and 32 hex digits of its SHA-256
instead; and when a session file's path below the base directory would pass 3,584
bytes, the file goes up to the deepest of its directories that leaves room and is
named by the digest of its remaining segments. The header holds the real key:
listing, ``delete_tree`` and ``prune`` read it for files named by a digest (and
keep only a file that sits where its key puts it). Every name that fitted before
is unchanged, so existing files stay where they are. Any ``OSError`` becomes a
:class:`~orra_di.errors.StoreError` naming the operation, the path and what to do.

File format, one JSON value per line:

- line 1, the header: ``{"orra_session": 1, "file_id": "<16 hex digits>",
  "namespace": {"segments": [...]}, "created_at": ..., "updated_at": ...,
  "metadata": {...}}``; ``file_id`` is random, new for every file written
  whole (see the load cache below), and optional on load;
- a message: the message's JSON (it has a ``"role"``);
- an update: ``{"updated_at": ...}`` plus ``"metadata"`` when it changed.

``append`` adds lines to a file opened in append mode, so its cost does not
grow with the session; the last update line wins on load. It writes while
holding an exclusive ``flock`` on the session file itself (not the session
lock: appends need no ``lock()``), so appends from several processes never
interleave, and a line without its newline seen under that ``flock`` is one
whose writer died. A new session's file appears whole: a complete, fsynced
temporary file is linked into place, so no reader or crash ever sees a file
without its header. ``save`` rewrites the file atomically (temporary file in
the same directory, fsync, rename); an append running at the same time lands
whole in the new file or in the replaced one (as if the save came after it),
and an append that waited for the ``flock`` of a file replaced or deleted
meanwhile goes to the file now in place. A crash in the middle
of an append leaves a final line without its newline: load ignores it and the
next append cuts it off, so everything written before survives; any other bad
line is a ``StoreError`` naming the file and the line. Appends are not fsynced
(like SQLite's ``synchronous=NORMAL``): they survive a process crash, not a
power cut.

Load cache: each store object keeps the sessions it loaded or wrote (up to
``cache_sessions``), each with the version of the file it is: device, inode,
size, ``st_mtime_ns`` and the file's first bytes (which hold ``file_id``). A
load opens the file, calls ``fstat`` and reads those first bytes; if they match,
it returns a copy of the cached session without parsing, whatever the
session's length. This store's appends update the cached session in place
when the file was at the cached version as they took its ``flock``. Since a
file is only ever appended to, its size tells its states apart, and a rewrite
is a new file; a new file may get a freed inode number back (and have the
same size, and the same ``st_mtime_ns``, which only moves every few
milliseconds), but not the same ``file_id``. What can go unseen: a file
changed in place by another program, to the same size, within one tick of the
file system's clock; and, for a file without ``file_id`` (written by an
earlier version), a rewrite that gets all of inode, size and that tick.
Sessions are cached only when the file ends with a complete line.

The single-writer lock is the in-process lock plus ``flock`` on a sidecar
``<name>.lock`` file, which other processes on the host respect. A ``flock``
can only be tried, and a holder that releases and at once asks again would
win over a waiter polling with backoff every time; so waiters queue in
``<name>.queue`` (one ``<deadline> <token>`` line each, edited under that
file's own ``flock``): only the first live waiter may take the lock, and each
attempt renews the waiter's place for ``_PLACE_SECONDS`` (a waiter that died
or stopped asking loses it). ``delete_tree`` removes those lock and queue
files too (an erased namespace leaves no file named after it): erase a
subtree while none of its sessions is held.

A holder notes which file its session is (device and inode, or none) when it
takes the lock and after each of its own writes; a write of the holder that
finds the file gone or another file in its place (deleted, and perhaps created
anew by another writer, or replaced by another writer's ``save``) is refused
with :class:`~orra_di.errors.StoreError` and writes nothing.

Retention: ``trim`` rewrites the file atomically like ``save``, and holds the
session's lock and the file's ``flock`` while it does, so that appends (a
run's, or unlocked ones, in this process or another) cannot land in the file
being replaced; do not call it while holding the session lock yourself.
``prune`` reads when each session was last written (its last update line, else
its header) and deletes the idle ones under their lock, skipping a session
some run holds; it leaves the directories in place.

The file system should be case-sensitive: on a case-insensitive one ``Alice``
and ``alice`` share a file, which load reports as an error.
"""

from __future__ import annotations

import builtins
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from datetime import datetime
from os import PathLike
from typing import Any, Final, NamedTuple, TypeVar
from urllib.parse import unquote_to_bytes

import anyio
from pydantic import ValidationError

from orra_di.errors import ConfigurationError, NamespaceError, StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.session import Session, utc_now
from orra_di.store import check_keep_last, prune_cutoff, trim_start
from orra_di.stores._cache import SessionCache
from orra_di.stores._codec import (
    Held,
    dump_messages,
    dump_metadata,
    encode_session,
    poll_until,
    session_gone,
    time_text,
)
from orra_di.stores._locks import KeyedLocks

__all__ = ["FileStore", "decode_segment", "encode_segment"]

_FORMAT_VERSION: Final = 1
_SUFFIX: Final = ".jsonl"
_LOCK_SUFFIX: Final = ".lock"
_QUEUE_SUFFIX: Final = ".queue"
_PLACE_SECONDS: Final = 2.0
"""How long a waiter keeps its place in the queue without asking again (it asks at
least every ``MAX_POLL``)."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_ENCODED = re.compile(r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+")
_CHUNK = 65536
_T = TypeVar("_T")
# Names and paths (module docstring, "Long keys"). A file name holds 255 bytes; the
# longest name made from a session file's stem is its temporary, ``<stem>.<8 hex>.tmp``.
_NAME_MAX: Final = 255
_STEM_MAX: Final = _NAME_MAX - len(".01234567.tmp")
_PATH_BUDGET: Final = 3584
"""Bytes of a session file's stem path below the base directory; longer ones overflow.
With the 13 bytes of a temporary's suffix, leaves a base directory 497 bytes of the
4,096 a path may have."""
_DIGEST_PREFIX: Final = "~"  # never in an encoded segment: digests and names cannot meet
_DIGEST_LEN: Final = 1 + 32
_HEAD = 64
"""How many first bytes of a file its cached version keeps: the header up to past its
``file_id`` (``{"orra_session": 1, "file_id": "<16 hex digits>", `` is 51 bytes)."""


def encode_segment(segment: str) -> str:
    """A file name for ``segment``: safe characters kept, the rest ``%XX`` per UTF-8 byte."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), segment)


def decode_segment(name: str) -> str | None:
    """The segment ``name`` encodes, or ``None`` if no segment is encoded that way."""
    if not _ENCODED.fullmatch(name):
        return None
    try:
        segment = unquote_to_bytes(name).decode()
    except UnicodeDecodeError:
        return None
    return segment if encode_segment(segment) == name else None


def _digest_name(text: str) -> str:
    """A name standing for ``text`` (a segment, or the segments past an overflow)."""
    return _DIGEST_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


def _dir_name(segment: str) -> str:
    name = encode_segment(segment)
    return name if len(name) <= _NAME_MAX else _digest_name(segment)


def _file_stem(segment: str) -> str:
    name = encode_segment(segment)
    return name if len(name) <= _STEM_MAX else _digest_name(segment)


def _overflow_depth(dirs: Sequence[str], most: int) -> int:
    """How many of ``dirs`` an overflow file of up to ``most`` of them sits below: as
    many as leave room for its digest name in the path budget."""
    depth, used = 0, _DIGEST_LEN
    while depth < most and used + len(dirs[depth]) + 1 <= _PATH_BUDGET:
        used += len(dirs[depth]) + 1
        depth += 1
    return depth


def _relative_stem(segments: Sequence[str]) -> builtins.list[str]:
    """The names from the base directory to a session's file, without its suffix."""
    dirs = [_dir_name(s) for s in segments[:-1]]
    names = [*dirs, _file_stem(segments[-1])]
    if sum(len(n) + 1 for n in names) - 1 <= _PATH_BUDGET:
        return names
    depth = _overflow_depth(dirs, len(dirs))
    return [*dirs[:depth], _digest_name(":".join(segments[depth:]))]


def _header(
    namespace: Namespace,
    created_at: datetime,
    updated_at: datetime,
    metadata: Mapping[str, Any],
    what: str,
) -> str:
    header = {
        "orra_session": _FORMAT_VERSION,
        "file_id": secrets.token_hex(8),
        "namespace": {"segments": list(namespace.segments)},
        "created_at": time_text(created_at),
        "updated_at": time_text(updated_at),
        "metadata": dict(metadata),
    }
    return dump_metadata(header, what)  # only the metadata in it can fail to serialise


class _Version(NamedTuple):
    """The state of a session file a cached session was read at (module docstring)."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    head: bytes


def _version(stat: os.stat_result, head: bytes) -> _Version:
    return _Version(stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, head[:_HEAD])


_HINTS: Final = {
    errno.EACCES: "check that this process may read and write the store's directory",
    errno.EPERM: "check that this process may read and write the store's directory",
    errno.EROFS: "the file system is read-only; give the store a writable directory",
    errno.ENOTDIR: "a file stands where the store needs a directory; move it away",
    errno.EEXIST: "a file stands where the store needs a directory; move it away",
    errno.ENAMETOOLONG: "the store's base directory path is too long; use a shorter one",
    errno.ENOSPC: "the disk is full; free space (e.g. orra-di sessions prune)",
}


def _oserror(what: str, path: str | PathLike[str] | bytes, exc: OSError) -> StoreError:
    shown = os.fsdecode(path)
    hint = _HINTS.get(exc.errno or 0)
    return StoreError(
        f"{what} failed on {shown}: {exc.strerror or exc}" + (f" ({hint})" if hint else "")
    )


async def _in_thread(what: str, path: str, call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` in a worker thread; no OSError gets past it (a ``StoreError``)."""
    try:
        return await anyio.to_thread.run_sync(call, *args)
    except OSError as exc:
        raise _oserror(what, exc.filename or path, exc) from exc


class FileStore:
    """One JSON Lines file per session under ``base_dir`` (see the module docstring).

    ``cache_sessions`` bounds the load cache (``0`` turns it off).
    """

    def __init__(self, base_dir: str | PathLike[str], *, cache_sessions: int = 1000) -> None:
        self._base = os.path.abspath(base_dir)
        if os.path.exists(self._base) and not os.path.isdir(self._base):
            raise ConfigurationError(
                f"the sessions directory {self._base} is a file; give a directory (it is "
                "created on first write if missing)"
            )
        self._locks = KeyedLocks()
        self._cache = SessionCache(cache_sessions)
        self._mutex = threading.Lock()  # guards the cache, used from worker threads
        self._held: dict[str, Held] = {}  # key -> a lock this store holds (on which file)

    @property
    def base_dir(self) -> str:
        """The absolute directory the sessions live in; other kinds of data use it too
        (under names starting with ``.``, which no session's file name can have)."""
        return self._base

    def path_for(self, namespace: NamespaceLike) -> str:
        """The session file of ``namespace`` (always inside the base directory)."""
        namespace = Namespace.coerce(namespace)
        return self._stem(namespace) + _SUFFIX

    # -- the SessionStore operations --------------------------------------------------

    async def load(self, namespace: NamespaceLike) -> Session | None:
        namespace = Namespace.coerce(namespace)
        what = f"load session {namespace.key!r}"
        return await _in_thread(what, self._base, self._load, namespace)

    async def save(self, session: Session) -> None:
        namespace = session.namespace
        what = f"save session {namespace.key!r}"
        encoded = encode_session(session, what)
        header = _header(namespace, session.created_at, session.updated_at, session.metadata, what)

        held = self._held.get(namespace.key)

        def save() -> None:
            if held is not None and held.session is not None:
                _check_same(self.path_for(namespace), held, what)
            version = self._replace(namespace, [header, *encoded.bodies], what)
            if held is not None:
                held.session = (version.device, version.inode)
            with self._mutex:
                self._cache.put(namespace.key, version, encoded.reloaded)

        await _in_thread(what, self._base, save)

    async def append(
        self,
        namespace: NamespaceLike,
        messages: Sequence[Message],
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        namespace = Namespace.coerce(namespace)
        what = f"append to session {namespace.key!r}"
        added = tuple(messages)
        now = utc_now()
        update: dict[str, Any] = {"updated_at": time_text(now)}
        if metadata is not None:
            update["metadata"] = dict(metadata)
        update_line = dump_metadata(update, what)
        lines = [*dump_messages(added), update_line]
        header = _header(namespace, now, now, metadata or {}, what)
        # What a load will make of the update line: the time in UTC, metadata through JSON.
        written = json.loads(update_line)
        change = _Change(
            added,
            datetime.fromisoformat(written["updated_at"]),
            written.get("metadata"),
        )
        held = self._held.get(namespace.key)
        await _in_thread(
            what, self._base, self._append, namespace, header, lines, change, what, held
        )

    async def delete(self, namespace: NamespaceLike) -> bool:
        namespace = Namespace.coerce(namespace)
        path = self.path_for(namespace)

        def delete() -> bool:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise _oserror(f"delete session {namespace.key!r}", path, exc) from exc
            finally:
                with self._mutex:
                    self._cache.discard(namespace.key)
            return True

        return await _in_thread(f"delete session {namespace.key!r}", path, delete)

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        namespace = Namespace.coerce(namespace)
        what = f"delete the sessions under {namespace.key!r}"

        def delete_tree() -> int:
            tree = self._tree(namespace)
            count = 0
            try:
                if tree is not None:
                    count += len(self._sessions_in(tree, what))
                    with suppress(FileNotFoundError):
                        shutil.rmtree(tree)
                for found in self._overflowing(namespace, what):
                    os.unlink(self.path_for(found))
                    _unlink_quietly(self._stem(found) + _LOCK_SUFFIX)
                    _unlink_quietly(self._stem(found) + _QUEUE_SUFFIX)
                    count += 1
                with suppress(FileNotFoundError):
                    os.unlink(self.path_for(namespace))
                    count += 1
                _unlink_quietly(self._stem(namespace) + _LOCK_SUFFIX)
                _unlink_quietly(self._stem(namespace) + _QUEUE_SUFFIX)
            finally:
                with self._mutex:
                    self._cache.discard_tree(namespace.key)
            return count

        return await _in_thread(what, self._base, delete_tree)

    async def list(self, prefix: NamespaceLike | None = None) -> list[Namespace]:
        prefix = None if prefix is None else Namespace.coerce(prefix)
        what = "list sessions" if prefix is None else f"list sessions under {prefix.key!r}"

        def find() -> list[Namespace]:
            if prefix is None:
                return sorted(self._sessions_in(self._base, what), key=lambda ns: ns.key)
            tree = self._tree(prefix)
            found = set() if tree is None else set(self._sessions_in(tree, what))
            found.update(self._overflowing(prefix, what))
            if os.path.isfile(self.path_for(prefix)):
                found.add(prefix)
            return sorted(found, key=lambda ns: ns.key)

        return await _in_thread(what, self._base, find)

    def lock(
        self, namespace: NamespaceLike, *, timeout: float | None = None
    ) -> AbstractAsyncContextManager[None]:
        namespace = Namespace.coerce(namespace)
        return self._lock(namespace, timeout)

    async def trim(self, namespace: NamespaceLike, keep_last: int) -> int:
        namespace = Namespace.coerce(namespace)
        keep_last = check_keep_last(keep_last)
        what = f"trim session {namespace.key!r}"
        async with self._hold(namespace, None):
            return await _in_thread(what, self._base, self._trim, namespace, keep_last, what)

    async def prune(self, idle_for: float) -> int:
        cutoff = prune_cutoff(idle_for)
        if cutoff is None:
            return 0
        return await _in_thread("prune sessions", self._base, self._prune, cutoff)

    async def aclose(self) -> None:
        return None

    # -- locking -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _lock(self, namespace: Namespace, wait: float | None) -> AsyncIterator[None]:
        """The public lock: ``_hold``, and which file the holder's session is."""
        key = namespace.key
        async with self._hold(namespace, wait):
            path = self.path_for(namespace)
            held = Held("", await anyio.to_thread.run_sync(_identity, path, key))
            self._held[key] = held
            try:
                yield
            finally:
                del self._held[key]

    @asynccontextmanager
    async def _hold(self, namespace: Namespace, wait: float | None) -> AsyncIterator[None]:
        key = namespace.key
        started = anyio.current_time()
        async with self._locks.hold(key, wait):
            stem = self._stem(namespace)
            path, queue = stem + _LOCK_SUFFIX, stem + _QUEUE_SUFFIX
            token = secrets.token_hex(8)
            fd: int | None = None
            queued = False

            def attempt_in_thread() -> bool:
                nonlocal fd, queued
                fd, queued = _try_in_turn(path, queue, key, token, queued)
                return fd is not None

            async def attempt() -> bool:
                return await anyio.to_thread.run_sync(attempt_in_thread)

            try:
                await poll_until(attempt, key, wait, started=started)
                yield
            finally:
                if fd is not None:
                    os.close(fd)  # releases the flock; never blocks, so safe in cleanup
                elif queued:  # gave up waiting: leave the queue (else the place expires)
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(_leave_queue, queue, key, token)

    # -- blocking helpers (run in worker threads) ----------------------------------------

    def _stem(self, namespace: Namespace) -> str:
        """The session file's path without its suffix (the lock file's is beside it)."""
        return os.path.join(self._base, *_relative_stem(namespace.segments))

    def _tree(self, namespace: Namespace) -> str | None:
        """The directory that holds the sessions below ``namespace``, but for those that
        overflow above it; ``None`` when it is too long for any session to be in it."""
        names = [_dir_name(s) for s in namespace.segments]
        if sum(len(n) + 1 for n in names) > _PATH_BUDGET:
            return None
        return os.path.join(self._base, *names)

    def _overflowing(self, namespace: Namespace, what: str) -> builtins.list[Namespace]:
        """The sessions below ``namespace`` whose files overflowed to a directory above
        its own (their keys too long for a path): found by the keys in their headers."""
        dirs = [_dir_name(s) for s in namespace.segments]
        depth = _overflow_depth(dirs, len(dirs))
        if depth == len(dirs):
            return []  # every session below it lives in its directory
        directory = os.path.join(self._base, *dirs[:depth])
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise _oserror(what, directory, exc) from exc
        found = []
        for name in names:
            if name.startswith(_DIGEST_PREFIX) and name.endswith(_SUFFIX):
                stored = self._stored_at(os.path.join(directory, name))
                if stored is not None and namespace.is_ancestor_of(stored):
                    found.append(stored)
        return found

    def _stored_at(self, path: str) -> Namespace | None:
        """The session in ``path`` by the key in its header, if it is the file this store
        would keep that session in (``None`` for a foreign, gone or unreadable file)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            header = json.loads(_first_line(fd))
            stored = Namespace(*header["namespace"]["segments"])
        except (ValueError, TypeError, KeyError, NamespaceError):
            return None
        finally:
            os.close(fd)
        return stored if self.path_for(stored) == path else None

    def _load(self, namespace: Namespace) -> Session | None:
        key = namespace.key
        path = self.path_for(namespace)
        what = f"load session {key!r}"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            with self._mutex:
                self._cache.discard(key)
            return None
        except OSError as exc:
            raise _oserror(what, path, exc) from exc
        try:
            stat = os.fstat(fd)
            with self._mutex:
                cached = self._cache.version(key)
            if cached is not None:
                version = _version(stat, os.pread(fd, _HEAD, 0))
                with self._mutex:
                    hit = self._cache.get(key, version)
                if hit is not None:
                    return hit
            # Up to the size just read: later bytes would not be part of that version.
            data = _read(fd, stat.st_size)
        except OSError as exc:
            raise _oserror(what, path, exc) from exc
        finally:
            os.close(fd)
        session = _parse(data, namespace, path)
        if len(data) != stat.st_size or not data.endswith(b"\n"):
            # Cut short meanwhile (not by this store), or ending with a line that an
            # append is still writing or that a crash left torn: not a state to cache.
            return session
        result = session.snapshot()
        with self._mutex:
            self._cache.put(key, _version(stat, data), session)
        return result

    def _replace(self, namespace: Namespace, lines: builtins.list[str], what: str) -> _Version:
        """Write the file anew and rename it into place; the version it is at."""
        path = self.path_for(namespace)
        tmp, version = _write_new(path, lines, what)
        try:
            os.replace(tmp, path)  # the inode, size and mtime stay those of the new file
        except OSError as exc:
            _unlink_quietly(tmp)
            raise _oserror(what, path, exc) from exc
        return version

    def _append(
        self,
        namespace: Namespace,
        header: str,
        lines: builtins.list[str],
        change: _Change,
        what: str,
        held: Held | None,
    ) -> None:
        key = namespace.key
        path = self.path_for(namespace)
        data = "".join(line + "\n" for line in lines).encode()
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                if held is not None and held.session is not None:
                    raise session_gone(what) from None
                created = _create(path, [header, *lines], what)
                if created is None:
                    continue  # another writer created it first: append to theirs
                if held is not None:
                    held.session = (created.device, created.inode)
                session = Session(
                    namespace=namespace,
                    messages=list(change.messages),
                    created_at=change.updated_at,
                    updated_at=change.updated_at,
                    metadata=change.metadata or {},
                )
                with self._mutex:
                    self._cache.put(key, created, session)
                return
            except OSError as exc:
                raise _oserror(what, path, exc) from exc
            try:
                # Every append takes this flock: a line found incomplete under it is
                # torn (its writer died), never one that another append is writing.
                fcntl.flock(fd, fcntl.LOCK_EX)
                before = os.fstat(fd)
                if not _is_at(path, before):
                    continue  # replaced or deleted while we waited: write to what is there
                if held is not None:
                    if held.session not in (None, (before.st_dev, before.st_ino)):
                        raise session_gone(what)
                    held.session = (before.st_dev, before.st_ino)
                head = os.pread(fd, _HEAD, 0)
                size = _cut_torn_tail(fd, before.st_size)
                _write_all(fd, data)
                after = os.fstat(fd)
            except OSError as exc:
                raise _oserror(what, path, exc) from exc
            finally:
                os.close(fd)  # and with it the flock
            with self._mutex:
                if size == before.st_size and after.st_size == size + len(data):
                    self._cache.advance(
                        key,
                        _version(before, head),
                        _version(after, head),
                        change.messages,
                        updated_at=change.updated_at,
                        metadata=change.metadata,
                    )
                else:  # a torn line cut, or a writer that does not take the flock
                    self._cache.discard(key)
            return

    def _trim(self, namespace: Namespace, keep_last: int, what: str) -> int:
        path = self.path_for(namespace)
        while True:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return 0
            except OSError as exc:
                raise _oserror(what, path, exc) from exc
            try:
                # Appends wait for the new file (they hold this flock while they write).
                fcntl.flock(fd, fcntl.LOCK_EX)
                stat = os.fstat(fd)
                if not _is_at(path, stat):
                    continue
                session = _parse(_read(fd, stat.st_size), namespace, path)
                start = trim_start(session.messages, keep_last)
                if not start:
                    return 0
                now = datetime.fromisoformat(time_text(utc_now()))
                session.messages = session.messages[start:]
                session.updated_at = now
                header = _header(namespace, session.created_at, now, session.metadata, what)
                version = self._replace(namespace, [header, *dump_messages(session.messages)], what)
            except OSError as exc:
                raise _oserror(what, path, exc) from exc
            finally:
                os.close(fd)
            with self._mutex:
                self._cache.put(namespace.key, version, session)
            return start

    def _prune(self, cutoff: datetime) -> int:
        """Delete the sessions last written before ``cutoff`` that no run holds."""
        pruned = 0
        for namespace in self._sessions_in(self._base, "prune sessions"):
            path = self.path_for(namespace)
            if not _written_before(path, cutoff):
                continue
            lock_path = self._stem(namespace) + _LOCK_SUFFIX
            fd = _try_flock(lock_path, namespace.key)
            if fd is None:
                continue  # a run holds it: not idle
            try:
                if _written_before(path, cutoff):  # again: it may have changed meanwhile
                    os.unlink(path)
                    _unlink_quietly(lock_path)
                    _unlink_quietly(self._stem(namespace) + _QUEUE_SUFFIX)
                    pruned += 1
                    with self._mutex:
                        self._cache.discard(namespace.key)
            except OSError as exc:
                raise _oserror(f"prune session {namespace.key!r}", path, exc) from exc
            finally:
                os.close(fd)
        return pruned

    def _sessions_in(self, directory: str, what: str) -> builtins.list[Namespace]:
        """Every session stored below ``directory`` (not the one beside it)."""
        found: builtins.list[Namespace] = []

        def fail(exc: OSError) -> None:
            if not isinstance(exc, FileNotFoundError):
                raise _oserror(what, exc.filename or directory, exc) from exc

        for root, dirs, files in os.walk(directory, onerror=fail):
            relative = os.path.relpath(root, self._base)
            names = [] if relative == os.curdir else relative.split(os.sep)
            parents = _decode_all(names)  # None below a digest-named directory
            if parents is None and not all(
                n.startswith(_DIGEST_PREFIX) or decode_segment(n) is not None for n in names
            ):
                dirs.clear()  # a directory this store did not write
                continue
            for name in files:
                if not name.endswith(_SUFFIX):
                    continue  # a lock, a temporary
                stem = name.removesuffix(_SUFFIX)
                segment = decode_segment(stem)
                if parents is not None and segment is not None:
                    with suppress(NamespaceError):
                        found.append(Namespace(*parents, segment))
                elif stem.startswith(_DIGEST_PREFIX) or parents is None:
                    # A long key: the file names it in its header.
                    stored = self._stored_at(os.path.join(root, name))
                    if stored is not None:
                        found.append(stored)
        return found


class _Change(NamedTuple):
    """An append as a load will see it (UTC time, metadata through JSON)."""

    messages: tuple[Message, ...]
    updated_at: datetime
    metadata: dict[str, Any] | None


def _decode_all(names: Sequence[str]) -> builtins.list[str] | None:
    segments = []
    for name in names:
        segment = decode_segment(name)
        if segment is None:
            return None
        segments.append(segment)
    return segments


def _parse(data: bytes, namespace: Namespace, path: str) -> Session:
    """A session from a file's bytes; a final line without newline is a torn write."""
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or the torn end of an interrupted append

    def corrupt(number: int, why: str) -> StoreError:
        return StoreError(f"session file {path} is corrupt at line {number}: {why}")

    if not lines:
        raise corrupt(1, "the header line is missing or incomplete")
    try:
        header = json.loads(lines[0])
        if not isinstance(header, dict) or "orra_session" not in header:
            raise corrupt(1, "not a session header")
        if header["orra_session"] != _FORMAT_VERSION:
            raise corrupt(
                1,
                f"format {header['orra_session']!r} is not {_FORMAT_VERSION} "
                "(written by another orra-di version?)",
            )
        stored = Namespace(*header["namespace"]["segments"])
        session = Session(
            namespace=stored,
            created_at=datetime.fromisoformat(header["created_at"]),
            updated_at=datetime.fromisoformat(header["updated_at"]),
            metadata=header["metadata"],
        )
    except StoreError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise corrupt(1, f"bad header: {exc}") from exc
    if stored != namespace:
        raise StoreError(
            f"session file {path} holds {stored.key!r}, not {namespace.key!r} "
            "(is the file system case-insensitive?)"
        )
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise corrupt(number, "not a JSON object")
            if "role" in record:
                session.messages.append(Message.model_validate(record))
            elif "updated_at" in record:
                session.updated_at = datetime.fromisoformat(record["updated_at"])
                if "metadata" in record:
                    if not isinstance(record["metadata"], dict):
                        raise corrupt(number, "metadata is not an object")
                    session.metadata = record["metadata"]
            else:
                raise corrupt(number, "neither a message nor an update")
        except StoreError:
            raise
        except (ValueError, TypeError, ValidationError) as exc:
            raise corrupt(number, str(exc)) from exc
    return session


def _written_before(path: str, cutoff: datetime) -> bool:
    """Whether the session in ``path`` was last written before ``cutoff`` (as load would
    report it: the last update line, else the header); ``False`` if the file is gone.

    Reads the file's first and last lines only, so pruning does not parse histories.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _oserror("prune sessions", path, exc) from exc
    try:
        end = _rfind_newline(fd, os.fstat(fd).st_size)  # a torn last line does not count
        if end < 0:
            raise ValueError("the header line is missing or incomplete")
        begin = _rfind_newline(fd, end) + 1
        record = json.loads(os.pread(fd, end - begin, begin))
        if isinstance(record, dict) and "role" in record:  # a message: the header has it
            record = json.loads(_first_line(fd))
        if not isinstance(record, dict) or not isinstance(record.get("updated_at"), str):
            raise ValueError("no time of last update where one should be")
        written = datetime.fromisoformat(record["updated_at"])
    except ValueError as exc:
        raise StoreError(f"session file {path} is corrupt: {exc}") from exc
    except OSError as exc:
        raise _oserror("prune sessions", path, exc) from exc
    finally:
        os.close(fd)
    return written < cutoff


def _try_flock(path: str, key: str) -> int | None:
    """An fd holding ``flock`` on ``path``, or ``None`` if another holder has it.

    The lock file may be removed by ``delete_tree`` while we wait on it; a lock
    on a file that is no longer at ``path`` protects nothing, so check and retry.
    """
    what = f"lock session {key!r}"
    while True:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _oserror(what, path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            raise _oserror(what, path, exc) from exc
        try:
            current = os.stat(path)
        except FileNotFoundError:
            os.close(fd)
            continue
        held = os.fstat(fd)
        if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
            return fd
        os.close(fd)


def _try_in_turn(
    path: str, queue: str, key: str, token: str, queued: bool
) -> tuple[int | None, bool]:
    """Take ``flock`` on the lock file ``path`` if no live waiter queued before ``token``.

    Returns the fd holding the lock (or ``None``) and whether ``token`` now has
    a place in the queue file. A queue being edited by another process counts
    as a failed attempt: it is tried again a moment later.
    """
    qfd = _try_flock(queue, key)
    if qfd is None:
        return None, queued
    try:
        now = time.time()
        places = [
            (deadline, owner)
            for deadline, owner in _read_queue(qfd)
            if deadline > now or owner == token
        ]
        first = places[0][1] if places else None
        if first in (None, token):
            fd = _try_flock(path, key)
            if fd is not None:
                if queued or places:
                    _write_queue(qfd, [p for p in places if p[1] != token])
                return fd, False
        deadline = now + _PLACE_SECONDS
        if any(owner == token for _, owner in places):
            places = [(deadline if o == token else d, o) for d, o in places]
        else:
            places.append((deadline, token))
        _write_queue(qfd, places)
        return None, True
    except OSError as exc:
        raise _oserror(f"lock session {key!r}", queue, exc) from exc
    finally:
        os.close(qfd)


def _leave_queue(queue: str, key: str, token: str) -> None:
    """Give up a place in the queue (best effort: a place left behind expires)."""
    with suppress(OSError, StoreError):
        qfd = _try_flock(queue, key)
        if qfd is not None:
            try:
                _write_queue(qfd, [p for p in _read_queue(qfd) if p[1] != token])
            finally:
                os.close(qfd)


def _read_queue(fd: int) -> builtins.list[tuple[float, str]]:
    """The places in a queue file, oldest first; a garbled line (a crash) is skipped."""
    places = []
    for line in _read(fd, os.fstat(fd).st_size).decode(errors="replace").splitlines():
        deadline, _, owner = line.partition(" ")
        with suppress(ValueError):
            places.append((float(deadline), owner))
    return places


def _write_queue(fd: int, places: builtins.list[tuple[float, str]]) -> None:
    os.ftruncate(fd, 0)
    _write_all(fd, "".join(f"{deadline!r} {owner}\n" for deadline, owner in places).encode())


def _identity(path: str, key: str) -> tuple[int, int] | None:
    """Which file the session at ``path`` is (device, inode), or ``None`` if there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _oserror(f"lock session {key!r}", path, exc) from exc
    return stat.st_dev, stat.st_ino


def _check_same(path: str, held: Held, what: str) -> None:
    """Refuse a holder's write when its session's file was deleted or replaced."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise session_gone(what) from None
    except OSError as exc:
        raise _oserror(what, path, exc) from exc
    if (stat.st_dev, stat.st_ino) != held.session:
        raise session_gone(what)


def _tmp_name(path: str) -> str:
    return f"{path.removesuffix(_SUFFIX)}.{secrets.token_hex(4)}.tmp"


def _write_new(path: str, lines: list[str], what: str) -> tuple[str, _Version]:
    """Write ``lines`` to a fresh, fsynced temporary file beside ``path``: its name and
    version (which a rename or link into place keeps)."""
    data = "".join(line + "\n" for line in lines).encode()
    tmp = _tmp_name(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
            stat = os.fstat(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise _oserror(what, path, exc) from exc
    return tmp, _version(stat, data)


def _create(path: str, lines: list[str], what: str) -> _Version | None:
    """Create ``path`` whole (header included) unless it exists; its version if created."""
    tmp, version = _write_new(path, lines, what)
    try:
        os.link(tmp, path)  # unlike rename, fails when another writer got there first
    except FileExistsError:
        return None
    except OSError as exc:
        raise _oserror(what, path, exc) from exc
    finally:
        _unlink_quietly(tmp)
    return version


def _is_at(path: str, stat: os.stat_result) -> bool:
    """Whether the file ``stat`` describes is still the one at ``path``."""
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (stat.st_dev, stat.st_ino)


def _read(fd: int, size: int) -> bytes:
    """The file's first ``size`` bytes (fewer if it is shorter now)."""
    chunks: list[bytes] = []
    done = 0
    while done < size and (chunk := os.pread(fd, size - done, done)):
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)


def _cut_torn_tail(fd: int, size: int) -> int:
    """Drop an incomplete last line so new lines start clean; the size after.

    Only while holding the file's ``flock``: every append writes under it, so an
    incomplete line then was left by a writer that died. Without it, the line
    could be one that another process is writing, lost once cut.
    """
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    newline = _rfind_newline(fd, size)
    if newline < 0:
        raise OSError(errno.EINVAL, "no complete header line; the file was cut short")
    os.ftruncate(fd, newline + 1)
    return newline + 1


def _rfind_newline(fd: int, before: int) -> int:
    """The offset of the last newline before offset ``before``, or -1."""
    end = before
    while end > 0:
        start = max(0, end - _CHUNK)
        newline = os.pread(fd, end - start, start).rfind(b"\n")
        if newline >= 0:
            return start + newline
        end = start
    return -1


def _first_line(fd: int) -> bytes:
    """The file's first line (the header), without its newline."""
    chunks: list[bytes] = []
    while chunk := os.pread(fd, _CHUNK, _CHUNK * len(chunks)):
        newline = chunk.find(b"\n")
        if newline >= 0:
            chunks.append(chunk[:newline])
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _unlink_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
