"""SQLiteStore: the conformance suite, plus schema versions, the cross-process lease
(real processes), the load cache and how database failures are reported."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di.errors import ConfigurationError, SessionBusyError, StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores import SQLiteStore
from orra_di.stores import sqlite as sqlite_module
from orra_di.stores.sqlite import MIGRATIONS

from .conformance import ALICE, DurableStoreConformance, StoreFactory, contents, join

pytestmark = pytest.mark.anyio

SHARED = Namespace("shared")


class TestSQLiteStore(DurableStoreConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: SQLiteStore(tmp_path / "sessions.db", lease_seconds=1.0)

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'sessions.db'}"  # an absolute path: four slashes

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        return {"lease_seconds": 1.0}


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    """A store whose database already exists, so raw connections find the tables."""
    store = SQLiteStore(db, lease_seconds=1.0)
    await store.list()
    yield store
    await store.aclose()


@contextmanager
def raw(db: Path) -> Iterator[sqlite3.Connection]:
    """A plain connection, as another program (or a dead process) would have."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# -- schema ---------------------------------------------------------------------------------


async def test_schema_version_is_recorded(store: SQLiteStore, db: Path) -> None:
    await store.list()
    with raw(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sessions", "messages", "leases"} <= tables


async def test_reopening_keeps_the_schema_and_data(db: Path) -> None:
    first = SQLiteStore(db)
    await first.append(ALICE, [Message.user("kept")])
    await first.aclose()
    second = SQLiteStore(db)
    assert contents(await second.load(ALICE)) == ["kept"]
    await second.aclose()


async def test_a_newer_schema_is_refused(db: Path) -> None:
    first = SQLiteStore(db)
    await first.list()
    await first.aclose()
    with raw(db) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    newer = SQLiteStore(db)
    newer_version = f"schema version {len(MIGRATIONS) + 1}, newer than this orra-di understands"
    with pytest.raises(StoreError, match=newer_version):
        await newer.load(ALICE)
    await newer.aclose()


async def test_unopenable_path_is_a_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(StoreError, match="cannot open the SQLite database"):
        await store.list()
    await store.aclose()


def test_bad_settings_are_configuration_errors(db: Path) -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        SQLiteStore(db, lease_seconds=0)
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteStore(db, busy_timeout=-1)


def _synchronous(store: SQLiteStore) -> int:
    """The durability the store's own connection commits with (a per-connection pragma)."""
    assert store._conn is not None
    level: int = store._conn.execute("PRAGMA synchronous").fetchone()[0]
    return level


@pytest.mark.parametrize(("setting", "level"), [(None, 1), ("NORMAL", 1), ("full", 2), ("run", 2)])
async def test_durability_is_a_store_setting(db: Path, setting: Any, level: int) -> None:
    store = SQLiteStore(db) if setting is None else SQLiteStore(db, synchronous=setting)
    await store.append(ALICE, [Message.user("hi")])
    assert _synchronous(store) == level  # 1 = NORMAL, 2 = FULL (an fsync per commit)
    await store.aclose()


def test_an_unknown_durability_is_refused(db: Path) -> None:
    with pytest.raises(ConfigurationError, match="synchronous must be 'NORMAL', 'FULL' or 'RUN'"):
        SQLiteStore(db, synchronous="OFF")  # type: ignore[arg-type]


async def test_closed_store_refuses_work(store: SQLiteStore) -> None:
    await store.append(ALICE, [Message.user("x")])
    await store.aclose()
    with pytest.raises(StoreError, match="is closed"):
        await store.load(ALICE)
    with pytest.raises(StoreError, match="is closed"):
        await store.append(ALICE, [Message.user("y")])


async def test_metadata_must_be_json(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.append(ALICE, [], metadata={"when": object()})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.save(Session(namespace=ALICE, metadata={"nan": float("nan")}))
    assert await store.list() == []


# -- waiting for other writers --------------------------------------------------------------


async def test_an_append_waits_for_another_writer(store: SQLiteStore, db: Path) -> None:
    await store.append(ALICE, [Message.user("1")])
    with raw(db) as other:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock

        async def commit_soon() -> None:
            await anyio.sleep(0.1)
            other.execute("COMMIT")

        async with anyio.create_task_group() as tg:
            tg.start_soon(commit_soon)
            started = anyio.current_time()
            await store.append(ALICE, [Message.user("2")])
            assert anyio.current_time() - started >= 0.09
    assert contents(await store.load(ALICE)) == ["1", "2"]


async def test_a_write_lock_held_too_long_is_a_store_error(db: Path) -> None:
    store = SQLiteStore(db, busy_timeout=0.05)
    await store.append(ALICE, [Message.user("1")])
    with raw(db) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match=r"append to session 'acme:alice' failed: .*locked"):
            await store.append(ALICE, [Message.user("2")])
    assert contents(await store.load(ALICE)) == ["1"]
    await store.aclose()


async def test_wal_is_checkpointed_into_the_database(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append(ALICE, [Message.user("x" * 20_000)])
    size = (await anyio.Path(db).stat()).st_size  # automatic checkpoints are off
    monkeypatch.setattr(sqlite_module, "_CHECKPOINT_EVERY", 3)
    for _ in range(3):
        await store.append(ALICE, [Message.user("y" * 20_000)])
    for _ in range(500):  # the checkpoint runs in the background
        if (await anyio.Path(db).stat()).st_size > size + 60_000:
            break
        await anyio.sleep(0.01)
    else:
        pytest.fail("the WAL never reached the database file")


async def test_wal_stays_bounded_under_nonstop_writes(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without ever pausing, the background copy never catches up on its own; the
    # WAL restarts only because a store operation finishes the copy.
    monkeypatch.setattr(sqlite_module, "_CHECKPOINT_EVERY", 50)
    for i in range(1500):  # some 3,000 WAL frames, 12 MB if the WAL never restarted
        await store.append(ALICE, [Message.user(str(i))])
    wal = await anyio.Path(f"{db}-wal").stat()
    assert wal.st_size < 6_000_000


# -- the load cache --------------------------------------------------------------------------


async def test_cached_load_returns_a_fresh_copy(store: SQLiteStore) -> None:
    await store.append(ALICE, [Message.user("1")], metadata={"k": [1]})
    first = await store.load(ALICE)
    assert first is not None
    first.messages.append(Message.user("not stored"))
    first.metadata["k"].append(2)
    second = await store.load(ALICE)
    assert second is not None and second is not first
    assert contents(second) == ["1"]
    assert second.metadata == {"k": [1]}


async def test_cache_is_bounded(db: Path) -> None:
    store = SQLiteStore(db, cache_sessions=2)
    for name in ("a", "b", "c"):
        await store.append(Namespace(name), [Message.user(name)])
        await store.load(Namespace(name))
    for name in ("a", "b", "c"):  # evicted or not, every load is right
        assert contents(await store.load(Namespace(name))) == [name]
    await store.aclose()


async def test_cache_sees_a_raw_write(store: SQLiteStore, db: Path) -> None:
    await store.append(ALICE, [Message.user("1")])
    await store.load(ALICE)
    with raw(db) as conn:
        conn.execute("UPDATE sessions SET metadata = '{\"edited\": true}', revision = revision + 1")
    loaded = await store.load(ALICE)
    assert loaded is not None and loaded.metadata == {"edited": True}


async def test_corrupt_rows_are_store_errors(store: SQLiteStore, db: Path) -> None:
    await store.append(ALICE, [Message.user("1")])
    with raw(db) as conn:
        conn.execute('UPDATE messages SET body = \'{"role": "wizard"}\'')
        conn.execute("UPDATE sessions SET revision = revision + 1")
    with pytest.raises(StoreError, match=r"load session 'acme:alice' failed: .* corrupt"):
        await store.load(ALICE)


# -- leases ----------------------------------------------------------------------------------


async def test_lease_rows_follow_the_lock(store: SQLiteStore, db: Path) -> None:
    with raw(db) as conn:
        async with store.lock(ALICE):
            owner, expires = conn.execute("SELECT owner, expires_at FROM leases").fetchone()
            assert len(owner) == 32
            assert time.time() < expires <= time.time() + 1.0
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


async def test_a_live_foreign_lease_blocks_until_it_expires(store: SQLiteStore, db: Path) -> None:
    with raw(db) as conn:
        conn.execute(
            "INSERT INTO leases VALUES (?, 'other-process', ?)", (ALICE.key, time.time() + 0.3)
        )
    with pytest.raises(SessionBusyError):
        async with store.lock(ALICE, timeout=0.05):
            pytest.fail("took a live lease")
    started = anyio.current_time()
    async with store.lock(ALICE, timeout=5):
        assert anyio.current_time() - started >= 0.15


async def test_an_expired_lease_is_taken_over(store: SQLiteStore, db: Path) -> None:
    with raw(db) as conn:
        conn.execute("INSERT INTO leases VALUES (?, 'dead', ?)", (ALICE.key, time.time() - 1))
    async with store.lock(ALICE, timeout=0):
        await store.append(ALICE, [Message.user("after takeover")])
    assert contents(await store.load(ALICE)) == ["after takeover"]


async def test_the_lease_is_renewed_while_held(db: Path) -> None:
    store, other = SQLiteStore(db, lease_seconds=0.3), SQLiteStore(db)
    async with store.lock(ALICE):
        with raw(db) as conn:
            first = conn.execute("SELECT expires_at FROM leases").fetchone()[0]
            await anyio.sleep(0.45)  # longer than lease_seconds
            later = conn.execute("SELECT expires_at FROM leases").fetchone()[0]
        assert later > first + 0.1
        with pytest.raises(SessionBusyError):
            async with other.lock(ALICE, timeout=0):
                pytest.fail("took a renewed lease")
    await store.aclose()
    await other.aclose()


def _trace(store: SQLiteStore) -> list[str]:
    """Every statement the store's own connection runs from now on, parameters bound."""
    assert store._conn is not None
    statements: list[str] = []
    store._conn.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
    return statements


def _commits(statements: list[str]) -> tuple[int, int]:
    """(write transactions, those committed at synchronous=FULL, i.e. with an fsync)."""
    full, writing, transactions, durable = True, False, 0, 0
    for statement in statements:
        if statement.startswith("PRAGMA synchronous"):
            full = statement.endswith("FULL")
        elif statement == "BEGIN IMMEDIATE":
            writing, transactions = True, transactions + 1
        elif statement == "COMMIT":
            durable += writing and full
            writing = False
    return transactions, durable


async def test_a_run_writes_once_per_step_and_fsyncs_only_its_steps(db: Path) -> None:
    """User message, tool call, tool results, answer: four steps, four fsyncs at FULL.

    The lock's claim is a transaction of its own that needs no fsync (a lease
    dies with its process; a power cut ends them all), the load reuses what the
    claim read and what the store wrote (no read at all), each append checks
    the lease inside its update, and the lease goes with the answer's write.
    """
    from orra_di.runtime import Runtime
    from orra_di.testing import ScriptedProvider, call, reply, tool_calls
    from orra_di.tool import tool

    @tool(blocking=False)
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    store = SQLiteStore(db, synchronous="FULL")
    script = [tool_calls(call("lookup", {"key": "k"}, id="c1")), reply("done")]
    runtime = Runtime(ScriptedProvider(script * 2), store, tools=[lookup])
    await runtime.run(ALICE, "first")  # creates the session
    statements = _trace(store)
    await runtime.run(ALICE, "second")
    assert _commits(statements) == (5, 4)  # the claim, then one per step
    assert not [s for s in statements if s.startswith("SELECT")]
    # The claim is 1 statement, a step 2 (fenced update, insert), the last step 3 (+ release).
    assert len([s for s in statements if not s.startswith(("BEGIN", "COMMIT", "PRAGMA"))]) == 10
    last = statements[len(statements) - statements[::-1].index("BEGIN IMMEDIATE") :]
    assert any(s.startswith("DELETE FROM leases") for s in last)  # released with the answer
    assert any(s.startswith("INSERT INTO messages") for s in last)
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0
    assert contents(await store.load(ALICE)) == ["first", "", "", "done", "second", "", "", "done"]
    await store.aclose()


async def test_at_run_durability_a_run_fsyncs_once_with_its_last_write(db: Path) -> None:
    """At ``RUN`` the steps commit without an fsync (each is in the WAL before the next
    model call, so a process crash loses none) and the answer's write with one, which
    makes the earlier frames durable too."""
    from orra_di.runtime import Runtime
    from orra_di.testing import ScriptedProvider, call, reply, tool_calls
    from orra_di.tool import tool

    @tool(blocking=False)
    def lookup(key: str) -> str:
        """Look a key up."""
        return key.upper()

    store = SQLiteStore(db, synchronous="RUN")
    script = [tool_calls(call("lookup", {"key": "k"}, id="c1")), reply("done")]
    runtime = Runtime(ScriptedProvider(script * 2), store, tools=[lookup])
    await runtime.run(ALICE, "first")
    statements = _trace(store)
    await runtime.run(ALICE, "second")
    assert _commits(statements) == (5, 1)  # the claim, three steps, the answer: one fsync
    last = statements[len(statements) - statements[::-1].index("BEGIN IMMEDIATE") :]
    assert any(s.startswith("DELETE FROM leases") for s in last)
    assert _synchronous(store) == 2  # writes outside a run stay durable at once
    assert contents(await store.load(ALICE)) == ["first", "", "", "done", "second", "", "", "done"]
    await store.aclose()


async def test_at_run_durability_a_run_that_fails_fsyncs_with_its_unlock(db: Path) -> None:
    """A run that stops before its last write (the model failed) still gets its fsync:
    the unlock commits durably when the holder wrote steps without one."""
    from orra_di.errors import ProviderError
    from orra_di.runtime import Runtime
    from orra_di.testing import ScriptedProvider

    def broken(_request: object) -> object:
        raise ProviderError("the model is down")

    store = SQLiteStore(db, synchronous="RUN")
    await store.append(ALICE, [Message.user("before")])
    statements = _trace(store)
    with pytest.raises(ProviderError):
        await Runtime(ScriptedProvider(broken), store).run(ALICE, "hello")
    transactions, durable = _commits(statements)
    assert durable == 1 and transactions >= 3  # claim, the question, the unlock (durable)
    assert contents(await store.load(ALICE)) == ["before", "hello"]
    async with store.lock(ALICE, timeout=0):  # unlocked
        pass
    await store.aclose()


async def test_at_run_durability_an_unlock_without_writes_needs_no_fsync(db: Path) -> None:
    store = SQLiteStore(db, synchronous="RUN")
    await store.append(ALICE, [Message.user("before")])
    statements = _trace(store)
    async with store.lock(ALICE):
        await store.load(ALICE)
    assert _commits(statements) == (2, 0)  # claim and release, lease rows only
    await store.aclose()


async def test_one_statement_renews_every_lease_a_store_holds(db: Path) -> None:
    store = SQLiteStore(db, lease_seconds=0.3)
    await store.list()
    statements = _trace(store)
    keys = [Namespace("acme", name) for name in ("alice", "bob", "carol")]
    async with store.lock(keys[0]), store.lock(keys[1]), store.lock(keys[2]):
        await anyio.sleep(0.45)  # past a lease: at least one renewal
    renewals = [s for s in statements if s.lstrip().startswith("UPDATE leases")]
    assert renewals
    for renewal in renewals:
        assert all(ns.key in renewal for ns in keys), renewal
    await store.aclose()


async def test_a_lease_lapses_while_its_event_loop_is_stuck(db: Path) -> None:
    """Renewal needs the holder's event loop: a loop blocked (here by a sleeping
    coroutine) past its lease lets the session go, as a dead process would."""
    store = SQLiteStore(db, lease_seconds=0.3)
    async with store.lock(ALICE):
        await anyio.sleep(0.25)  # the renewal thread runs meanwhile
        time.sleep(0.6)  # noqa: ASYNC251 - the point: the loop runs nothing
        with raw(db) as conn:
            expires = conn.execute("SELECT expires_at FROM leases").fetchone()[0]
        assert expires < time.time()
    await store.aclose()


async def test_a_lock_cancelled_after_its_claim_committed_leaves_no_lease(
    store: SQLiteStore, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = store._run

    async def slow_after_claiming(what: str, op: Any, *, inline: bool = True) -> Any:
        result = await run(what, op, inline=inline)
        if what.startswith("lock session"):
            await anyio.sleep(10)  # where a WAL catch-up may follow the committed claim
        return result

    monkeypatch.setattr(store, "_run", slow_after_claiming)
    with anyio.move_on_after(0.1) as scope:
        async with store.lock(ALICE):
            pytest.fail("the lock was taken")
    assert scope.cancelled_caught
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


async def test_a_writer_whose_lease_was_taken_over_is_refused(store: SQLiteStore, db: Path) -> None:
    other = SQLiteStore(db)
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("mine")])
        with raw(db) as conn:  # this process stalled past its lease...
            conn.execute("UPDATE leases SET expires_at = 0")
        async with other.lock(ALICE, timeout=0):  # ...and another run took over
            lapsed = "refused: this run's lock on the session lapsed"
            with pytest.raises(StoreError, match=f"append to session 'acme:alice' {lapsed}"):
                await store.append(ALICE, [Message.user("stale")])
            with pytest.raises(StoreError, match=f"save session 'acme:alice' {lapsed}"):
                await store.save(Session(namespace=ALICE))
            await other.append(ALICE, [Message.user("theirs")])
    assert contents(await store.load(ALICE)) == ["mine", "theirs"]
    await other.aclose()


async def test_a_holders_last_write_under_a_lapsed_lease_is_refused_and_not_stored(
    store: SQLiteStore, db: Path
) -> None:
    """The holder's append knows the row it last wrote and skips reading it back; its
    last write must still fail whole when the lease went meanwhile."""
    other = SQLiteStore(db)
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("mine")])
        with raw(db) as conn:
            conn.execute("UPDATE leases SET expires_at = 0")
        async with other.lock(ALICE, timeout=0):
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.append_last(ALICE, [Message.user("stale")])
    assert contents(await other.load(ALICE)) == ["mine"]
    with raw(db) as conn:
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    await other.aclose()


@pytest.mark.parametrize("last", [False, True], ids=["append", "append_last"])
async def test_a_holder_writes_after_rows_it_did_not_write(
    store: SQLiteStore, db: Path, last: bool
) -> None:
    """A write without the lock (another store object) or a trim changes the row the
    holder knew: its next append finds that out and numbers its messages after them."""
    other = SQLiteStore(db)
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("a"), Message.user("b")])
        await other.append(ALICE, [Message.user("not locked")])
        await store.append(ALICE, [Message.user("c")])
        await other.trim(ALICE, keep_last=2)
        write = store.append_last if last else store.append
        await write(ALICE, [Message.user("d")])
    assert contents(await other.load(ALICE)) == ["not locked", "c", "d"]
    with raw(db) as conn:
        seqs = [row[0] for row in conn.execute("SELECT seq FROM messages ORDER BY seq")]
        assert seqs == sorted(set(seqs)) and len(seqs) == 3
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0
    await other.aclose()


# -- real processes ---------------------------------------------------------------------------
# (The conformance suite runs whole turns in four processes; here, renewal across processes.)


def _hold_until_killed(path: str, held: multiprocessing.synchronize.Event) -> None:
    async def main() -> None:
        store = SQLiteStore(path, lease_seconds=0.3)
        async with store.lock(SHARED):
            await store.append(SHARED, [Message.user("before the crash")])
            held.set()
            await anyio.sleep(60)

    anyio.run(main)


async def test_a_killed_holder_frees_the_session_when_its_lease_expires(
    store: SQLiteStore, db: Path
) -> None:
    spawn = multiprocessing.get_context("spawn")
    held = spawn.Event()
    child = spawn.Process(target=_hold_until_killed, args=(str(db), held))
    child.start()
    try:
        assert await anyio.to_thread.run_sync(held.wait, 60)
        with pytest.raises(SessionBusyError):
            async with store.lock(SHARED, timeout=0.4):  # the live child keeps renewing
                pytest.fail("took the lease of a live process")
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        assert await join(child) == -signal.SIGKILL
        async with store.lock(SHARED, timeout=5):
            await store.append(SHARED, [Message.user("after the crash")])
    finally:
        child.kill()
    assert contents(await store.load(SHARED)) == ["before the crash", "after the crash"]


# -- retention --------------------------------------------------------------------------------


async def test_a_version_1_database_is_migrated_with_its_sessions(db: Path) -> None:
    with raw(db) as conn:
        for statement in MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO sessions (key, segments, created_at, updated_at, metadata, revision,"
            " message_count) VALUES ('acme:alice', '[\"acme\", \"alice\"]', ?, ?, '{}', 1, 2)",
            ("2024-01-01T00:00:00.000000+00:00", "2024-01-01T00:00:00.000000+00:00"),
        )
        for seq, text in enumerate(["1", "2"]):
            body = Message.user(text).model_dump_json()
            conn.execute("INSERT INTO messages VALUES (1, ?, ?)", (seq, body))
    store = SQLiteStore(db)
    assert contents(await store.load(ALICE)) == ["1", "2"]
    await store.append(ALICE, [Message.user("3")])
    assert await store.trim(ALICE, 2) == 1
    await store.append(ALICE, [Message.user("4")])
    assert contents(await store.load(ALICE)) == ["2", "3", "4"]
    await store.aclose()
    with raw(db) as conn:
        assert conn.execute("SELECT message_count, next_seq FROM sessions").fetchone() == (3, 4)
        assert [s for (s,) in conn.execute("SELECT seq FROM messages ORDER BY seq")] == [1, 2, 3]


async def test_prune_is_one_indexed_delete(store: SQLiteStore, db: Path) -> None:
    with raw(db) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN " + sqlite_module._PRUNE, ("x", 0)).fetchall()
    assert any("USING INDEX sessions_by_updated_at" in row[-1] for row in plan), plan


async def test_prune_spares_a_session_under_a_live_lease(store: SQLiteStore, db: Path) -> None:
    old = datetime(2020, 1, 1, tzinfo=UTC)
    for ns in (ALICE, SHARED):
        await store.save(Session(namespace=ns, messages=[Message.user("x")], updated_at=old))
    with raw(db) as conn:  # another process is running a turn on alice
        conn.execute("INSERT INTO leases VALUES (?, 'other', ?)", (ALICE.key, time.time() + 60))
    assert await store.prune(3600) == 1
    assert await store.list() == [ALICE]
    with raw(db) as conn:
        conn.execute("UPDATE leases SET expires_at = 0")  # ...and died
    assert await store.prune(3600) == 1
    assert await store.list() == []


async def test_trim_under_a_lapsed_lease_is_refused(store: SQLiteStore, db: Path) -> None:
    other = SQLiteStore(db)
    await store.append(ALICE, [Message.user("1"), Message.user("2")])
    async with store.lock(ALICE):
        with raw(db) as conn:
            conn.execute("UPDATE leases SET expires_at = 0")
        async with other.lock(ALICE, timeout=0):
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.trim(ALICE, 1)
    assert contents(await store.load(ALICE)) == ["1", "2"]
    await other.aclose()


# -- storage failures ---------------------------------------------------------------------------
# An embedded database has no connection to drop or server to restart (the conformance
# suite's break_connection): what remains is storage refusing a write halfway.


async def test_a_full_disk_is_a_store_error_and_nothing_half_written(
    store: SQLiteStore, db: Path
) -> None:
    await store.append(ALICE, [Message.user("before")])
    conn = store._conn  # max_page_count is a limit of the store's own connection
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match=r"append to session 'acme:alice' failed: .*full"):
        await store.append(ALICE, [Message.user("x" * 500_000), Message.assistant("y")])
    with pytest.raises(StoreError, match=r"save session 'acme:alice' failed: .*full"):
        await store.save(Session(namespace=ALICE, messages=[Message.user("z" * 500_000)]))
    assert contents(await store.load(ALICE)) == ["before"]
    conn.execute("PRAGMA max_page_count = 4294967294")  # space again
    await store.append(ALICE, [Message.user("after")])
    assert contents(await store.load(ALICE)) == ["before", "after"]
    with raw(db) as other:
        assert other.execute("SELECT message_count, next_seq FROM sessions").fetchone() == (2, 2)


async def test_a_sqlite_error_without_a_result_code_is_a_store_error(store: SQLiteStore) -> None:
    # sqlite3 raises some errors of its own (a closed cursor, a misuse) with no SQLite
    # result code: they are failures like any other, not a busy database to wait for.
    def misuse(conn: sqlite3.Connection) -> None:
        raise sqlite3.ProgrammingError("Cannot operate on a closed cursor.")

    with pytest.raises(StoreError, match=r"count approvals failed: Cannot operate on a closed"):
        await store.run_in_connection("count approvals", misuse)


def test_a_directory_for_the_database_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="is a directory; give the path of a file"):
        SQLiteStore(tmp_path)
