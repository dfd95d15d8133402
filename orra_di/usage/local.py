"""Usage ledgers for the in-process stores: memory, and files beside a FileStore.

Both keep, per namespace key, one record ``{"key", "hours": {hour: [counters]},
"reserved": {id: [tokens, cost, expires]}}`` and run every operation as one
read-modify-write of the records it touches, under a lock: a
:class:`threading.Lock` in memory (the operation never awaits in between), and
an exclusive ``flock`` on ``<base>/.orra-usage/lock`` for files, which every
process sharing the directory takes, so their increments and budget checks
are serialised. A record file is replaced atomically (temporary file, fsync,
rename), so a crash leaves the previous counts, never a torn file.

The ``.orra-usage`` directory cannot clash with a session: the FileStore
encodes a leading ``.`` of a segment, and skips directories it did not write.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import anyio

from orra_di.errors import StoreError
from orra_di.store import in_subtree
from orra_di.usage.ledger import (
    COUNTERS,
    BudgetCheck,
    BudgetRefusal,
    Reservation,
    UsageTotals,
    fits,
    key_digest,
    sum_totals,
)

__all__ = ["FileUsageBackend", "MemoryUsageBackend"]

_T = TypeVar("_T")
Record = dict[str, Any]
USAGE_DIR = ".orra-usage"


def _new_record(key: str) -> Record:
    return {"key": key, "hours": {}, "reserved": {}}


def _live_reserved(record: Record, now: float) -> tuple[int, int]:
    """Tokens and cost held by unexpired reservations; expired ones are dropped."""
    reserved: dict[str, list[float]] = record["reserved"]
    for rid in [r for r, v in reserved.items() if v[2] <= now]:
        del reserved[rid]
    return int(sum(v[0] for v in reserved.values())), int(sum(v[1] for v in reserved.values()))


def _sum(record: Record, since: int | None, until: int | None) -> UsageTotals:
    return sum_totals(
        row
        for hour, row in record["hours"].items()
        if (since is None or int(hour) >= since) and (until is None or int(hour) < until)
    )


class _RecordBackend:
    """The ledger algorithm over per-key records; subclasses say how records are kept."""

    def _transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _load(self, key: str) -> Record:
        raise NotImplementedError

    def _store(self, key: str, record: Record) -> None:
        raise NotImplementedError

    async def _do(self, what: str, op: Callable[[], _T]) -> _T:
        raise NotImplementedError

    async def add(
        self, keys: Sequence[str], hour: int, delta: UsageTotals, release: Reservation | None
    ) -> None:
        def op() -> None:
            with self._transaction():
                touched = list(keys) + [
                    k for k in (release.keys if release else ()) if k not in keys
                ]
                for key in touched:
                    record = self._load(key)
                    if key in keys:
                        row = record["hours"].setdefault(str(hour), [0] * len(COUNTERS))
                        for i, value in enumerate(delta.values()):
                            row[i] += value
                    if release is not None:
                        record["reserved"].pop(release.id, None)
                    self._store(key, record)

        await self._do("record usage", op)

    async def totals(self, key: str, since_hour: int | None, until_hour: int | None) -> UsageTotals:
        def op() -> UsageTotals:
            with self._transaction():
                return _sum(self._load(key), since_hour, until_hour)

        return await self._do(f"read the usage of {key!r}", op)

    async def reserve(
        self, reservation: Reservation, checks: Sequence[BudgetCheck], now: float, expires: float
    ) -> BudgetRefusal | None:
        def op() -> BudgetRefusal | None:
            with self._transaction():
                records = {key: self._load(key) for key in reservation.keys}
                for check in checks:
                    record = records[check.key]
                    used = _sum(record, check.since_hour, None)
                    held_tokens, held_cost = _live_reserved(record, now)
                    tokens = held_tokens + reservation.tokens
                    if not fits(check, used, tokens, held_cost + reservation.cost_nanousd):
                        return BudgetRefusal(check, used, held_tokens, held_cost)
                entry = [reservation.tokens, reservation.cost_nanousd, expires]
                for key, record in records.items():
                    record["reserved"][reservation.id] = entry
                    self._store(key, record)
                return None

        return await self._do("reserve usage", op)

    async def release(self, reservation: Reservation) -> None:
        def op() -> None:
            with self._transaction():
                for key in reservation.keys:
                    record = self._load(key)
                    if record["reserved"].pop(reservation.id, None) is not None:
                        self._store(key, record)

        await self._do("release a usage reservation", op)


class MemoryUsageBackend(_RecordBackend):
    """Counters in a dict; one per :class:`~orra_di.stores.memory.InMemoryStore` object."""

    def __init__(self) -> None:
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "MemoryUsageBackend()"

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            yield

    def _load(self, key: str) -> Record:
        return self._records.setdefault(key, _new_record(key))

    def _store(self, key: str, record: Record) -> None:
        self._records[key] = record

    async def _do(self, what: str, op: Callable[[], _T]) -> _T:
        return op()

    async def delete_tree(self, prefix: str) -> int:
        """Erase the counters of ``prefix`` and every key below it; how many keys."""
        with self._lock:
            keys = [k for k in self._records if in_subtree(k, prefix)]
            records = [self._records.pop(k) for k in keys]
        return sum(1 for r in records if r["hours"] or r["reserved"])  # reads add empty ones


_memory_backends: weakref.WeakKeyDictionary[object, MemoryUsageBackend] = (
    weakref.WeakKeyDictionary()
)


def memory_backend_for(store: object) -> MemoryUsageBackend:
    """The one memory backend of ``store``, so every ledger on it sees the same counters."""
    backend = _memory_backends.get(store)
    if backend is None:
        backend = _memory_backends[store] = MemoryUsageBackend()
    return backend


class FileUsageBackend(_RecordBackend):
    """One JSON file per namespace key in ``<base>/.orra-usage/``, under one ``flock``."""

    def __init__(self, base_dir: str | os.PathLike[str]) -> None:
        self.directory = os.path.join(os.path.abspath(base_dir), USAGE_DIR)

    def __repr__(self) -> str:
        return f"FileUsageBackend({self.directory!r})"

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        os.makedirs(self.directory, exist_ok=True)
        fd = os.open(os.path.join(self.directory, "lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key_digest(key)[:40] + ".json")

    def _load(self, key: str) -> Record:
        path = self._path(key)
        try:
            with open(path, encoding="utf-8") as f:
                record: Record = json.load(f)
        except FileNotFoundError:
            return _new_record(key)
        except ValueError as exc:
            raise StoreError(f"usage file {path} is corrupt: {exc}") from exc
        if record.get("key") != key:
            raise StoreError(f"usage file {path} holds {record.get('key')!r}, not {key!r}")
        return record

    def _store(self, key: str, record: Record) -> None:
        path = self._path(key)
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(record, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)

    async def delete_tree(self, prefix: str) -> int:
        """Erase the counters of ``prefix`` and every key below it; how many keys."""

        def op() -> int:
            count = 0
            with self._transaction():
                for name in os.listdir(self.directory):
                    if not name.endswith(".json"):
                        continue
                    path = os.path.join(self.directory, name)
                    try:
                        with open(path, encoding="utf-8") as f:
                            key = json.load(f).get("key")
                    except (FileNotFoundError, ValueError):
                        continue
                    if isinstance(key, str) and in_subtree(key, prefix):
                        os.remove(path)
                        count += 1
            return count

        return await self._do(f"erase the usage under {prefix!r}", op)

    async def _do(self, what: str, op: Callable[[], _T]) -> _T:
        try:
            return await anyio.to_thread.run_sync(op)
        except OSError as exc:
            raise StoreError(
                f"{what} failed on {exc.filename or self.directory}: {exc.strerror or exc}"
            ) from exc
