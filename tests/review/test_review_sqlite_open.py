"""Opening a new SQLite database from several processes at once (the flaky usage test).

``tests/usage/test_ledger_backends.py::TestSQLiteLedger::test_worker_processes_reserving_
never_overcommit`` failed now and then under load: three worker processes open the same
new file at the same moment, and one of them died with ``cannot set up the SQLite
database ...: database is locked`` (exit code 1, and its admitted reservations missing
from the count). Switching a database to WAL needs an exclusive lock; a connection that
holds a read lock while another holds the write lock gets ``SQLITE_BUSY`` *at once*,
without its busy handler (SQLite's deadlock avoidance), so ``busy_timeout`` did not
apply. These tests create that situation deterministically.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orra_di.stores.sqlite import SQLiteStore
from orra_di.usage import Budget, Budgets, usage_ledger_for

pytestmark = pytest.mark.anyio


@contextmanager
def _another_process_setting_up(path: Path) -> Iterator[None]:
    """A connection in the middle of creating the file's first table (rollback journal,
    write lock held), like another process opening the same new database; it commits
    a moment later."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE IF NOT EXISTS elsewhere (x)")

    def finish_soon() -> None:
        threading.Event().wait(0.3)
        other.execute("COMMIT")

    finisher = threading.Thread(target=finish_soon)
    finisher.start()
    try:
        yield
    finally:
        finisher.join()
        other.close()


async def test_a_store_opening_a_new_file_another_process_is_setting_up_waits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    store = SQLiteStore(path)
    with _another_process_setting_up(path):
        try:
            await store.append("acme:alice", [])  # the first operation opens the file
            assert await store.load("acme:alice") is not None
        finally:
            await store.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_ledger_on_a_new_file_another_process_is_setting_up_reserves(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new.db"
    store = SQLiteStore(path)
    with _another_process_setting_up(path):
        try:
            ledger = usage_ledger_for(store)
            budgets = Budgets({"acme": Budget(tokens_per_day=100)})
            await ledger.reserve("acme", budgets, tokens=10)
            assert (await ledger.totals("acme")).total_tokens == 0  # reserved, not spent
        finally:
            await store.aclose()
