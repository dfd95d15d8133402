"""PostgresStore: the conformance suite, plus schema migrations, the load cache,
trim in SQL, the lease and its fencing, psycopg's placeholders as input, masked
passwords, and connections that drop or run out.

Every test that reaches the server gets a schema of its own (dropped afterwards)
in the ``test`` database, and its connections carry that schema's name as their
``application_name``, so a test only ever terminates its own backends.
"""

from __future__ import annotations

import random
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import psycopg
import pytest
from services import POSTGRES_URL, require_postgres

from orra_di.errors import ConfigurationError, SessionBusyError, StoreError
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.store import SessionStore, trim_start
from orra_di.stores import postgres as postgres_module
from orra_di.stores.postgres import MIGRATIONS, PostgresStore

from .conformance import (
    ALICE,
    CJK,
    BreakConnection,
    DurableStoreConformance,
    StoreFactory,
    contents,
)

pytestmark = [pytest.mark.anyio, pytest.mark.service]

Admin = psycopg.AsyncConnection[tuple[Any, ...]]


def url_for(schema: str) -> str:
    """The test database, with connections named after ``schema``."""
    return f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}application_name={schema}"


@pytest.fixture
def schema() -> str:
    return f"orra_test_{secrets.token_hex(6)}"


@pytest.fixture
async def admin(schema: str) -> AsyncIterator[Admin]:
    """A plain connection, as another program would have; drops the schema at the end."""
    require_postgres()
    conn = await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True)
    try:
        yield conn
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def terminate(admin: Admin, schema: str) -> int:
    """Terminate the backends of the stores of ``schema``; return how many."""
    cursor = await admin.execute(
        "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
        "WHERE application_name = %s",
        (schema,),
    )
    row = await cursor.fetchone()
    assert row is not None
    count: int = row[0]
    return count


class TestPostgresStore(DurableStoreConformance):
    @pytest.fixture
    def new_store(self, schema: str, admin: Admin) -> StoreFactory:
        return lambda: PostgresStore(url_for(schema), schema=schema, lease_seconds=1.0)

    @pytest.fixture
    def store_url(self, schema: str, admin: Admin) -> str:
        return url_for(schema)

    @pytest.fixture
    def store_options(self, schema: str) -> dict[str, Any]:
        return {"schema": schema, "lease_seconds": 1.0}

    @pytest.fixture
    def break_connection(self, schema: str, admin: Admin) -> BreakConnection:
        async def terminate_backends(store: SessionStore) -> None:
            await terminate(admin, schema)

        return terminate_backends


@pytest.fixture
async def store(schema: str, admin: Admin) -> AsyncIterator[PostgresStore]:
    """An open store, so the tables exist for the admin connection."""
    store = PostgresStore(url_for(schema), schema=schema, lease_seconds=1.0)
    await store.open()
    yield store
    await store.aclose()


@pytest.fixture
async def other(schema: str, store: PostgresStore) -> AsyncIterator[PostgresStore]:
    """A second store object on the same schema, as another process would have."""
    other = PostgresStore(url_for(schema), schema=schema, lease_seconds=1.0)
    yield other
    await other.aclose()


# -- configuration --------------------------------------------------------------------------


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        PostgresStore(POSTGRES_URL, lease_seconds=0)
    with pytest.raises(ConfigurationError, match="min_size <= max_size"):
        PostgresStore(POSTGRES_URL, min_size=5, max_size=2)
    for bad in ('x"; DROP SCHEMA public; --', "1abc", "a" * 64, ""):
        with pytest.raises(ConfigurationError, match="plain identifier"):
            PostgresStore(POSTGRES_URL, schema=bad)


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(ConfigurationError, match=r'pip install "orra-di\[postgres\]"'):
        PostgresStore(POSTGRES_URL)


def test_the_password_is_masked_in_repr() -> None:
    store = PostgresStore("postgresql://app:Sup3r-Secret@db.example:6543/orra", schema="s")
    assert repr(store) == "PostgresStore('postgresql://app:***@db.example:6543/orra', schema='s')"
    store = PostgresStore("host=db.example password='Sup3r Secret' dbname=orra")
    assert "Sup3r" not in repr(store)


def test_an_unparsable_url_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError, match="cannot be parsed") as error:
        PostgresStore("postgres//app:Sup3r-Secret@db.example/orra")
    assert "Sup3r" not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


async def test_connection_errors_hide_the_password(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore("postgresql://postgres:Sup3r-Secret@127.0.0.1:5432/no_such_orra_db")
    with pytest.raises(StoreError, match="no_such_orra_db") as error:
        await store.load(ALICE)
    assert "Sup3r" not in str(error.value) and "Sup3r" not in str(error.value.__cause__)
    assert "postgres:***@127.0.0.1:5432" in str(error.value)
    await store.aclose()
    # Should a message ever hold the password, it is blotted out.
    store = PostgresStore("postgresql://postgres:NoSuchDb@127.0.0.1:5432/NoSuchDb")
    with pytest.raises(StoreError, match=r'database "\*\*\*" does not exist') as error:
        await store.open()
    assert '"NoSuchDb"' not in str(error.value)
    await store.aclose()
    assert "Sup3r" not in caplog.text and "NoSuchDb" not in caplog.text


async def test_an_unreachable_server_is_a_store_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(StoreError, match=r"open the PostgreSQL store failed: .*127\.0\.0\.1"):
        await store.append(ALICE, [Message.user("lost")])
    await store.aclose()


async def test_a_pool_with_no_free_connection_is_a_store_error(
    schema: str, admin: Admin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_module, "_ACQUIRE_TIMEOUT", 0.2)
    store = PostgresStore(url_for(schema), schema=schema, min_size=1, max_size=1)
    await store.append(ALICE, [Message.user("1")])
    locker = await psycopg.AsyncConnection.connect(POSTGRES_URL)
    await locker.execute(f'SELECT FROM "{schema}".sessions FOR UPDATE')
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.append, ALICE, [Message.user("2")])  # waits, holding the connection
        await wait_for_lock_wait(admin, schema)
        with pytest.raises(StoreError, match=r"no connection within 0\.2s: .* all 1 connections"):
            await store.load(ALICE)
        await locker.rollback()
    await locker.close()
    assert contents(await store.load(ALICE)) == ["1", "2"]
    await store.aclose()


# -- schema ---------------------------------------------------------------------------------


async def test_schema_version_is_recorded(store: PostgresStore, admin: Admin, schema: str) -> None:
    cursor = await admin.execute(f'SELECT version FROM "{schema}".schema_version ORDER BY 1')
    assert [v for (v,) in await cursor.fetchall()] == list(range(1, len(MIGRATIONS) + 1))
    cursor = await admin.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
    )
    tables = {t for (t,) in await cursor.fetchall()}
    assert tables == {"schema_version", "sessions", "messages", "leases", "lease_waiters"}
    cursor = await admin.execute(
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_schema = %s AND column_name = 'key'",
        (schema,),
    )
    assert [c for (c,) in await cursor.fetchall()] == ["C", "C", "C"]
    for table in ("leases", "lease_waiters"):
        cursor = await admin.execute(
            "SELECT relpersistence FROM pg_class WHERE oid = %s::regclass", (f'"{schema}".{table}',)
        )
        assert await cursor.fetchone() == ("u",)  # unlogged: no disk flush to take a lease


async def test_a_newer_schema_is_refused(store: PostgresStore, admin: Admin, schema: str) -> None:
    await admin.execute(
        f'INSERT INTO "{schema}".schema_version (version) VALUES (%s)', (len(MIGRATIONS) + 1,)
    )
    newer = PostgresStore(url_for(schema), schema=schema)
    newer_version = f"schema version {len(MIGRATIONS) + 1}, newer than this orra-di understands"
    with pytest.raises(StoreError, match=newer_version):
        await newer.load(ALICE)
    await newer.aclose()


async def test_a_version_1_schema_is_upgraded_and_its_sessions_stay_readable(
    admin: Admin, schema: str
) -> None:
    """Version 2 lifts the btree limit on keys; what version 1 stored reads as before."""
    s = f'"{schema}"'
    await admin.execute(f"CREATE SCHEMA {s}")
    await admin.execute(
        f"CREATE TABLE {s}.schema_version "
        "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    for statement in MIGRATIONS[0]:
        await admin.execute(statement.format(s=s))
    await admin.execute(f"INSERT INTO {s}.schema_version (version) VALUES (1)")
    await admin.execute(
        f"INSERT INTO {s}.sessions (key, segments, created_at, updated_at, metadata, "
        "revision, next_seq) VALUES ('acme:alice', ARRAY['acme', 'alice'], now(), now(), "
        "'{\"k\": 1}', 1, 1)"
    )
    await admin.execute(
        f"INSERT INTO {s}.messages SELECT id, 0, false, %s FROM {s}.sessions",
        (Message.user("kept").model_dump_json(),),
    )
    store = PostgresStore(url_for(schema), schema=schema)
    try:
        loaded = await store.load(ALICE)
        assert contents(loaded) == ["kept"] and loaded is not None and loaded.metadata == {"k": 1}
        long = Namespace("acme", CJK[:1000])  # 3 KiB of UTF-8: more than a btree entry holds
        async with store.lock(ALICE, timeout=5), store.lock(long, timeout=5):
            await store.append(ALICE, [Message.user("more")])
            await store.append(long, [Message.user("long")])
        assert await store.list(Namespace("acme")) == [ALICE, long]
        assert contents(await store.load(ALICE)) == ["kept", "more"]
        assert await store.delete_tree(Namespace("acme")) == 2
    finally:
        await store.aclose()
    cursor = await admin.execute(f"SELECT max(version) FROM {s}.schema_version")
    assert await cursor.fetchone() == (len(MIGRATIONS),)


async def test_stores_starting_together_migrate_once(admin: Admin, schema: str) -> None:
    stores = [PostgresStore(url_for(schema), schema=schema) for _ in range(4)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(store.open)
    cursor = await admin.execute(f'SELECT count(*) FROM "{schema}".schema_version')
    assert await cursor.fetchone() == (len(MIGRATIONS),)
    for i, store in enumerate(stores):
        await store.append(ALICE, [Message.user(str(i))])
    assert contents(await stores[0].load(ALICE)) == ["0", "1", "2", "3"]
    for store in stores:
        await store.aclose()


async def test_closed_store_refuses_work(store: PostgresStore) -> None:
    await store.append(ALICE, [Message.user("x")])
    await store.aclose()
    with pytest.raises(StoreError, match="is closed"):
        await store.load(ALICE)


async def test_metadata_must_be_json(store: PostgresStore) -> None:
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.append(ALICE, [], metadata={"when": object()})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.save(Session(namespace=ALICE, metadata={"nan": float("nan")}))
    assert await store.list() == []


# -- the load cache --------------------------------------------------------------------------


async def test_a_cached_load_reads_no_messages(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    await store.append(ALICE, [Message.user("1")])
    await store.load(ALICE)
    # Rows changed behind the store's back without a new revision: only a load
    # that skipped the messages still sees the old ones.
    await admin.execute(f'UPDATE "{schema}".messages SET body = \'{{"role": "wizard"}}\'')
    assert contents(await store.load(ALICE)) == ["1"]
    await admin.execute(f'UPDATE "{schema}".sessions SET revision = revision + 1')
    with pytest.raises(StoreError, match=r"load session 'acme:alice' failed: .* corrupt"):
        await store.load(ALICE)


async def test_a_load_racing_an_append_reads_again(
    store: PostgresStore, other: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.append(ALICE, [Message.user("1")])
    await store.load(ALICE)
    fetch = store._fetch_one
    raced: list[bool] = []

    async def fetch_then_append(what: str, sql: str, params: Any) -> Any:
        row = await fetch(what, sql, params)
        if what.startswith("load") and not raced:  # the cached copy moves on meanwhile
            raced.append(True)
            await store.append(ALICE, [Message.user("2")])
        return row

    monkeypatch.setattr(store, "_fetch_one", fetch_then_append)
    assert contents(await store.load(ALICE)) == ["1", "2"]
    assert raced


# -- retention -------------------------------------------------------------------------------


def random_history(rng: random.Random) -> list[Message]:
    history: list[Message] = []
    for i in range(rng.randrange(0, 9)):
        kind = rng.choice(["user", "call", "result", "result"])
        if kind == "user":
            history.append(Message.user(f"u{i}"))
        elif kind == "call":
            history.append(Message.assistant(f"a{i}", [ToolCall(id=f"c{i}", name="t")]))
        else:
            history.append(Message.tool_result([ToolResult(call_id=f"c{i}", content=f"r{i}")]))
    return history


async def test_trim_in_sql_matches_trim_start(store: PostgresStore) -> None:
    rng = random.Random(5)
    for case in range(40):
        namespace = Namespace("trim", str(case))
        history = random_history(rng)
        await store.append(namespace, history[:2])
        await store.append(namespace, history[2:])
        keep = rng.randrange(0, len(history) + 3)
        start = trim_start(history, keep)
        assert await store.trim(namespace, keep) == start, (history, keep)
        assert (await store.load(namespace) or Session(namespace=namespace)).messages == history[
            start:
        ]
        await store.append(namespace, [Message.user("after")])
        assert contents(await store.load(namespace))[-1] == "after"
    assert await store.trim(Namespace("missing"), 1) == 0
    with pytest.raises(ValueError, match="keep_last"):
        await store.trim(ALICE, -1)


async def test_prune_spares_sessions_under_a_live_lease(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    for name in ("idle", "busy", "fresh"):
        await store.append(Namespace(name), [Message.user(name)])
    await admin.execute(
        f"UPDATE \"{schema}\".sessions SET updated_at = now() - interval '2 hours' "
        "WHERE key IN ('idle', 'busy')"
    )
    async with store.lock(Namespace("busy")):
        assert await store.prune(3600) == 1
    assert [ns.key for ns in await store.list()] == ["busy", "fresh"]


# -- leases ----------------------------------------------------------------------------------


async def test_lease_rows_follow_the_lock(store: PostgresStore, admin: Admin, schema: str) -> None:
    leases = f'SELECT owner, expires_at - now() FROM "{schema}".leases'
    async with store.lock(ALICE):
        rows = await (await admin.execute(leases)).fetchall()
        assert len(rows) == 1
        owner, left = rows[0]
        assert len(owner) == 32
        assert 0 < left.total_seconds() <= 1.0
    assert await (await admin.execute(leases)).fetchall() == []


async def test_a_live_foreign_lease_blocks_until_it_expires(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    await admin.execute(
        f"INSERT INTO \"{schema}\".leases VALUES (%s, 'other', now() + interval '0.3 s')",
        (ALICE.key,),
    )
    with pytest.raises(SessionBusyError):
        async with store.lock(ALICE, timeout=0.05):
            pytest.fail("took a live lease")
    started = anyio.current_time()
    async with store.lock(ALICE, timeout=5):
        assert anyio.current_time() - started >= 0.15


async def test_the_lease_is_renewed_while_held(
    schema: str, store: PostgresStore, other: PostgresStore, admin: Admin
) -> None:
    short = PostgresStore(url_for(schema), schema=schema, lease_seconds=0.3)
    expiry = f'SELECT expires_at FROM "{schema}".leases'
    async with short.lock(ALICE):
        first = await (await admin.execute(expiry)).fetchone()
        await anyio.sleep(0.45)  # longer than lease_seconds
        later = await (await admin.execute(expiry)).fetchone()
        assert first is not None and later is not None
        assert (later[0] - first[0]).total_seconds() > 0.1
        with pytest.raises(SessionBusyError):
            async with other.lock(ALICE, timeout=0):
                pytest.fail("took a renewed lease")
    await short.aclose()


async def test_a_writer_whose_lease_was_taken_over_writes_nothing(
    store: PostgresStore, other: PostgresStore, admin: Admin, schema: str
) -> None:
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("mine")])
        # This process stalls past its lease...
        await admin.execute(f"UPDATE \"{schema}\".leases SET expires_at = now() - interval '1 s'")
        async with other.lock(ALICE, timeout=0):  # ...and another run takes over
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.append(ALICE, [Message.user("stale")], metadata={"stale": True})
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.save(Session(namespace=ALICE))
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.trim(ALICE, 0)
            await other.append(ALICE, [Message.user("theirs")])
    loaded = await other.load(ALICE)
    assert contents(loaded) == ["mine", "theirs"]
    assert loaded is not None and loaded.metadata == {}


async def test_an_expired_lease_nobody_took_over_still_lets_its_holder_write(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    async with store.lock(ALICE):
        await admin.execute(f"UPDATE \"{schema}\".leases SET expires_at = now() - interval '1 s'")
        await store.append(ALICE, [Message.user("still mine")])
    assert contents(await store.load(ALICE)) == ["still mine"]


async def test_a_lock_cancelled_as_its_claim_lands_leaves_no_lease(
    store: PostgresStore,
    other: PostgresStore,
    admin: Admin,
    schema: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetch_one = store._fetch_one

    async def claim_then_stall(what: str, sql: str, params: Any) -> Any:
        row = await fetch_one(what, sql, params)
        if sql == store._sql.claim:
            await anyio.sleep(10)  # cancelled here, with the lease row already written
        return row

    monkeypatch.setattr(store, "_fetch_one", claim_then_stall)
    with anyio.move_on_after(0.2) as scope:
        async with store.lock(ALICE):
            pytest.fail("the block ran without its lock")
    assert scope.cancelled_caught
    assert await (await admin.execute(f'SELECT * FROM "{schema}".leases')).fetchall() == []
    async with other.lock(ALICE, timeout=0):
        pass


# -- hostile input ---------------------------------------------------------------------------

# psycopg's own placeholder syntax, beside the conformance suite's quotes and wildcards.
PLACEHOLDERS = ["%s", "%(key)s", "%b", "%%", "%(owner)s", "$1", "?"]


async def test_placeholders_are_plain_text(store: PostgresStore, other: PostgresStore) -> None:
    for text in PLACEHOLDERS:
        ns = Namespace("p", text)
        await store.append(ns, [Message.user(text)], metadata={text: text})
        await store.save(Session(namespace=ns.child("saved"), messages=[Message.user(text)]))
    for text in PLACEHOLDERS:
        loaded = await other.load(Namespace("p", text))
        assert contents(loaded) == [text]
        assert loaded is not None and loaded.metadata == {text: text}
        assert await other.list(Namespace("p", text)) == [
            Namespace("p", text),
            Namespace("p", text, "saved"),
        ]
    assert await other.delete_tree(Namespace("p", "%")) == 0
    assert await other.delete_tree(Namespace("p", "%s")) == 2


# -- dropped connections ---------------------------------------------------------------------


async def test_connections_dropped_between_operations_are_replaced(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    await store.append(ALICE, [Message.user("1")])
    assert await terminate(admin, schema) >= 1  # or the server restarted
    await store.append(ALICE, [Message.user("2")])
    async with store.lock(ALICE, timeout=0):
        assert contents(await store.load(ALICE)) == ["1", "2"]


async def wait_for_lock_wait(admin: Admin, schema: str) -> int:
    """The pid of this schema's backend that waits for a row lock."""
    while True:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'",
            (schema,),
        )
        row = await cursor.fetchone()
        if row is not None:
            pid: int = row[0]
            return pid
        await anyio.sleep(0.005)


async def interrupt(
    write: Callable[[], Awaitable[object]], locked: str, admin: Admin, schema: str
) -> None:
    """Run ``write`` while ``locked`` holds a row, and terminate it as it waits."""
    locker = await psycopg.AsyncConnection.connect(POSTGRES_URL)
    try:
        await locker.execute(locked)
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                with pytest.raises(StoreError, match="the connection was lost"):
                    await write()

            tg.start_soon(run)
            with anyio.fail_after(5):
                pid = await wait_for_lock_wait(admin, schema)
            await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    finally:
        await locker.rollback()
        await locker.close()


async def test_a_connection_dropped_mid_write_is_a_store_error(
    store: PostgresStore, admin: Admin, schema: str
) -> None:
    await store.append(ALICE, [Message.user("1")])
    row = f"SELECT FROM \"{schema}\".sessions WHERE key = '{ALICE.key}' FOR UPDATE"
    await interrupt(
        lambda: store.append(ALICE, [Message.user("2"), Message.user("3")], metadata={"x": 1}),
        row,
        admin,
        schema,
    )
    await interrupt(
        lambda: store.save(Session(namespace=ALICE, messages=[Message.user("saved")])),
        row,
        admin,
        schema,
    )
    loaded = await store.load(ALICE)  # nothing half-written
    assert contents(loaded) == ["1"]
    assert loaded is not None and loaded.metadata == {}
    await store.append(ALICE, [Message.user("2")])
    assert contents(await store.load(ALICE)) == ["1", "2"]
