"""RedisStore: the conformance suite against a real server, plus the key layout, native
expiry, fencing, hostile input, password masking and dropped connections.

Every test works under a fresh random key prefix in DB 15 and deletes its keys after.
"""

from __future__ import annotations

import importlib
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from services import REDIS_URL, require_redis

from orra_di.errors import ConfigurationError, SessionBusyError, StoreError
from orra_di.message import Message, Role, ToolCall
from orra_di.namespace import Namespace
from orra_di.runtime import Runtime
from orra_di.session import Session
from orra_di.store import SessionStore
from orra_di.stores import redis as redis_module
from orra_di.stores.redis import RedisStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import tool

from .conformance import (
    ALICE,
    BreakConnection,
    DurableStoreConformance,
    StoreFactory,
    contents,
)

pytestmark = [pytest.mark.anyio, pytest.mark.service]


@pytest.fixture
async def admin() -> AsyncIterator[Redis]:
    """A plain client, as an operator (or another program) would have."""
    require_redis()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(admin: Redis) -> AsyncIterator[str]:
    """A fresh key prefix; its keys are deleted after the test."""
    prefix = f"orra-test:{secrets.token_hex(6)}:"
    yield prefix
    async for key in admin.scan_iter(match=f"{prefix}*", count=1000):
        await admin.delete(key)


@pytest.fixture
def client_name(prefix: str) -> str:
    """The name the test's stores give their connections, so that they can be killed."""
    return prefix.replace(":", "-").rstrip("-")


@pytest.fixture
def url(client_name: str) -> str:
    return f"{REDIS_URL}?client_name={client_name}"


async def kill_connections(admin: Redis, client_name: str) -> int:
    """Drop every connection of the named client, as a server restart would."""
    killed = 0
    for client in await admin.client_list():
        if client["name"] == client_name:
            killed += await admin.client_kill_filter(_id=client["id"])
    return killed


class TestRedisStore(DurableStoreConformance):
    @pytest.fixture
    def new_store(self, url: str, prefix: str) -> StoreFactory:
        return lambda: RedisStore(url, key_prefix=prefix, lease_seconds=1.0)

    @pytest.fixture
    def store_url(self, url: str) -> str:
        return url

    @pytest.fixture
    def store_options(self, prefix: str) -> dict[str, Any]:
        return {"key_prefix": prefix, "lease_seconds": 1.0}

    @pytest.fixture
    def break_connection(self, admin: Redis, client_name: str) -> BreakConnection:
        async def kill(store: SessionStore) -> None:
            assert await kill_connections(admin, client_name) >= 1

        return kill


@pytest.fixture
async def store(url: str, prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(url, key_prefix=prefix, lease_seconds=1.0)
    yield store
    await store.aclose()


@pytest.fixture
async def open_store(url: str, prefix: str) -> AsyncIterator[Callable[..., RedisStore]]:
    """More stores on the same prefix (other processes, in effect), closed after the test."""
    opened: list[RedisStore] = []

    def open_store(*, lease_seconds: float = 1.0, session_ttl: float | None = None) -> RedisStore:
        store = RedisStore(
            url, key_prefix=prefix, lease_seconds=lease_seconds, session_ttl=session_ttl
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.aclose()


# -- configuration ---------------------------------------------------------------------------


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds"):
        RedisStore(REDIS_URL, lease_seconds=0)
    with pytest.raises(ConfigurationError, match="session_ttl"):
        RedisStore(REDIS_URL, session_ttl=0)
    with pytest.raises(ConfigurationError, match=r"invalid Redis URL http://u:\*\*\*@h/") as bad:
        RedisStore("http://u:hunter2@h/")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ConfigurationError, match="unknown option 'bogus' in its query string"):
        RedisStore("redis://127.0.0.1:6379/0?bogus=1")  # not a Python keyword argument


def test_a_missing_driver_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # what an absent package looks like
    monkeypatch.delitem(sys.modules, "orra_di.stores.redis")
    with pytest.raises(ConfigurationError, match=r'pip install "orra-di\[redis\]"'):
        importlib.import_module("orra_di.stores.redis")


async def test_the_password_never_shows() -> None:
    store = RedisStore(
        "redis://orra:s3cr%40t-pw@127.0.0.1:1/15?password=s3cr@t-pw", key_prefix="p:"
    )
    assert repr(store) == (
        "RedisStore('redis://orra:***@127.0.0.1:1/15?password=***', key_prefix='p:')"
    )
    with pytest.raises(StoreError) as failed:  # nothing listens on port 1
        await store.load(ALICE)
    message = str(failed.value)
    assert "load session 'acme:alice' failed" in message
    assert "redis://orra:***@127.0.0.1:1/15" in message
    assert "s3cr" not in message and "s3cr" not in repr(failed.value)
    await store.aclose()


async def test_closed_store_refuses_work(store: RedisStore) -> None:
    await store.append(ALICE, [Message.user("x")])
    await store.aclose()
    with pytest.raises(StoreError, match="is closed"):
        await store.load(ALICE)
    with pytest.raises(StoreError, match="is closed"):
        await store.append(ALICE, [Message.user("y")])


async def test_metadata_must_be_json(store: RedisStore) -> None:
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.append(ALICE, [], metadata={"when": object()})
    with pytest.raises(StoreError, match="not JSON-serialisable"):
        await store.save(Session(namespace=ALICE, metadata={"nan": float("nan")}))
    assert await store.list() == []


# -- the documented layout -------------------------------------------------------------------


async def test_keys_are_laid_out_as_documented(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    await store.append(ALICE, [Message.user("q")], metadata={"k": 1})
    await store.append(ALICE, [Message.assistant("a")])
    await store.append(Namespace("acme"), [])
    session, messages = f"{prefix}session:acme:alice", f"{prefix}messages:acme:alice"
    assert await admin.type(session) == "hash"
    header = await admin.hgetall(session)
    assert set(header) == {
        *("segments", "created_at", "updated_at", "metadata", "revision", "origin")
    }
    assert json.loads(header["segments"]) == ["acme", "alice"]
    assert json.loads(header["metadata"]) == {"k": 1}
    assert str(header["created_at"]) < str(header["updated_at"])
    assert await admin.type(messages) == "list"
    assert [json.loads(b)["content"] for b in await admin.lrange(messages, 0, -1)] == ["q", "a"]
    assert await admin.zrange(f"{prefix}index:keys", 0, -1, withscores=True) == [
        ("acme", 0.0),
        ("acme:alice", 0.0),
    ]
    score = await admin.zscore(f"{prefix}index:updated", "acme:alice")
    assert score is not None and abs(score - time.time()) < 5
    assert not await admin.exists(f"{prefix}messages:acme")  # empty: no list
    assert await admin.ttl(session) == -1  # no session_ttl: kept
    assert await store.delete_tree(Namespace("acme")) == 2
    assert await admin.keys(f"{prefix}*") == []


async def test_every_write_changes_the_revision(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    session = f"{prefix}session:acme:alice"
    seen = set()
    await store.append(ALICE, [Message.user("1")])
    seen.add(await admin.hget(session, "revision"))
    await store.save(Session(namespace=ALICE, messages=[Message.user("2")]))
    seen.add(await admin.hget(session, "revision"))
    await store.trim(ALICE, 0)
    seen.add(await admin.hget(session, "revision"))
    await store.delete(ALICE)
    await store.append(ALICE, [Message.user("1")])  # re-created: still a new revision
    seen.add(await admin.hget(session, "revision"))
    assert len(seen) == 4 and None not in seen


async def test_loads_see_a_raw_write_that_changes_the_revision(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    await store.append(ALICE, [Message.user("1")])
    assert contents(await store.load(ALICE)) == ["1"]  # cached
    await admin.hset(
        f"{prefix}session:acme:alice", mapping={"metadata": '{"edited": true}', "revision": "x"}
    )
    loaded = await store.load(ALICE)
    assert loaded is not None and loaded.metadata == {"edited": True}


async def test_corrupt_data_is_a_store_error(store: RedisStore, admin: Redis, prefix: str) -> None:
    await store.append(ALICE, [Message.user("1")])
    await admin.rpush(f"{prefix}messages:acme:alice", '{"role": "wizard"}')
    await admin.hset(f"{prefix}session:acme:alice", "revision", "changed")
    with pytest.raises(StoreError, match=r"load session 'acme:alice' failed: .*corrupt"):
        await store.load(ALICE)


# -- retention -------------------------------------------------------------------------------


async def test_trim_reads_tool_results_only_at_the_top_level(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    tricky = [  # "tool_results", but not a tool-result message
        Message.assistant("", [ToolCall(id="a", name="t", arguments={"tool_results": [1]})]),
        Message.user('{"tool_results": [1]}'),
    ]
    await store.append(ALICE, [Message.user("0"), *tricky])
    # Written by another program, nested deeper than cjson decodes: not a result either.
    deep = '{"role":"assistant","content":"","tool_calls":[{"id":"d","name":"t","arguments":'
    deep += '{"x":' * 1100 + "1" + "}" * 1100 + "}]}"
    await admin.rpush(f"{prefix}messages:acme:alice", deep)
    assert await store.trim(ALICE, 3) == 1
    assert await store.trim(ALICE, 2) == 1
    assert await store.trim(ALICE, 1) == 1
    assert await admin.lrange(f"{prefix}messages:acme:alice", 0, -1) == [deep]


async def test_prune_clears_both_indexes_in_batches(
    store: RedisStore, admin: Redis, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "_PRUNE_BATCH", 2)
    for i in range(5):
        await store.save(
            Session(namespace=Namespace("old", str(i)), updated_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    await store.append(Namespace("fresh"), [Message.user("new")])
    assert await store.prune(3600) == 5
    assert await store.list() == [Namespace("fresh")]
    assert await admin.zrange(f"{prefix}index:keys", 0, -1) == ["fresh"]
    assert await admin.zrange(f"{prefix}index:updated", 0, -1) == ["fresh"]
    assert await store.prune(0) == 1
    assert await admin.keys(f"{prefix}*") == []


async def test_session_ttl_expires_sessions_natively(
    open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    store = open_store(session_ttl=1.0)
    bob = Namespace("acme", "bob")
    await store.append(ALICE, [Message.user("short-lived")])
    await store.append(bob, [Message.user("short-lived too")])
    assert 0 < await admin.pttl(f"{prefix}session:acme:bob") <= 1000
    assert 0 < await admin.pttl(f"{prefix}messages:acme:bob") <= 1000
    assert contents(await store.load(bob)) == ["short-lived too"]  # and cached
    await anyio.sleep(0.5)
    await store.append(ALICE, [Message.user("refreshed")])  # a write restarts the clock
    await anyio.sleep(0.7)
    assert await store.load(bob) is None
    assert await store.list() == [ALICE]
    assert await admin.zrange(f"{prefix}index:keys", 0, -1) == ["acme:alice"]  # list dropped bob
    assert await admin.zrange(f"{prefix}index:updated", 0, -1) == ["acme:alice"]
    assert contents(await store.load(ALICE)) == ["short-lived", "refreshed"]


async def test_writes_sweep_index_entries_of_expired_sessions(
    open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    store = open_store(session_ttl=0.3)
    for i in range(5):
        await store.append(Namespace("gone", str(i)), [Message.user("x")])
    await anyio.sleep(0.5)
    await store.append(ALICE, [Message.user("a write")])
    assert await admin.zrange(f"{prefix}index:keys", 0, -1) == ["acme:alice"]
    assert await admin.zrange(f"{prefix}index:updated", 0, -1) == ["acme:alice"]


async def test_a_session_recreated_after_expiry_starts_afresh(
    open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    store = open_store(session_ttl=5.0)
    await store.append(ALICE, [Message.user("old")], metadata={"old": True})
    assert contents(await store.load(ALICE)) == ["old"]
    await admin.delete(f"{prefix}session:acme:alice")  # the hash expired before the list
    await store.append(ALICE, [Message.user("new")])
    loaded = await store.load(ALICE)
    assert contents(loaded) == ["new"]
    assert loaded is not None and loaded.metadata == {}


async def test_session_ttl_never_cuts_a_run_that_holds_the_lock(
    open_store: Callable[..., RedisStore],
) -> None:
    """A tool slower than session_ttl: the session outlives the run, then expires."""
    store = open_store(session_ttl=0.4, lease_seconds=30.0)  # no renewal during the tool

    @tool
    async def slow(city: str) -> str:
        """Take longer than the session's TTL."""
        await anyio.sleep(0.8)
        return f"{city}: 21C"

    agent = Runtime(
        ScriptedProvider([tool_calls(call("slow", {"city": "Paris"}, id="c1")), reply("Sunny.")]),
        store,
        tools=[slow],
    )
    result = await agent.run(ALICE, "Weather?")
    assert result.final_message.content == "Sunny."
    loaded = await store.load(ALICE)
    assert loaded is not None  # the whole turn: the call before its result
    assert [m.role for m in loaded.messages] == [Role.USER, Role.ASSISTANT] * 2
    assert contents(loaded)[::3] == ["Weather?", "Sunny."]
    assert [c.id for c in loaded.messages[1].tool_calls] == ["c1"]
    assert [r.content for r in loaded.messages[2].tool_results] == ["Paris: 21C"]
    await anyio.sleep(0.6)  # idle for session_ttl once the run is over: gone
    assert await store.load(ALICE) is None


async def test_lease_renewal_keeps_a_held_session_alive(
    open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    store = open_store(session_ttl=0.2, lease_seconds=0.6)  # renewed every 0.2 s
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("question")])
        await anyio.sleep(1.5)  # several leases, many TTLs, no write
        assert 0 < await admin.pttl(f"{prefix}session:acme:alice") <= 600
        await store.append(ALICE, [Message.assistant("answer")])
    assert contents(await store.load(ALICE)) == ["question", "answer"]
    assert 0 < await admin.pttl(f"{prefix}session:acme:alice") <= 200  # idle from the release


# -- leases and fencing ----------------------------------------------------------------------


async def test_the_lease_holds_a_fence_and_goes_on_release(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    lease, fence = f"{prefix}lease:acme:alice", f"{prefix}fence:acme:alice"
    async with store.lock(ALICE):
        number, token = str(await admin.get(lease)).split(":")
        assert number == await admin.get(fence) and len(token) == 32
        assert int(number) > 1_600_000_000_000_000  # seeded from the server clock, in µs
        assert 0 < await admin.pttl(lease) <= 1000
    assert await admin.get(lease) is None
    async with store.lock(ALICE):
        second = str(await admin.get(lease))
        assert int(second.split(":")[0]) == int(number) + 1
    await admin.delete(fence)  # the counter expired: fences still grow
    async with store.lock(ALICE):
        third = str(await admin.get(lease))
        assert int(third.split(":")[0]) > int(number) + 1


async def test_the_lease_is_renewed_while_held(
    open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    store, other = open_store(lease_seconds=0.3), open_store()
    async with store.lock(ALICE):
        await anyio.sleep(0.5)  # longer than lease_seconds
        assert await admin.pttl(f"{prefix}lease:acme:alice") > 0
        with pytest.raises(SessionBusyError):
            async with other.lock(ALICE, timeout=0):
                pytest.fail("took a renewed lease")


async def test_a_foreign_lease_blocks_until_it_expires(
    store: RedisStore, admin: Redis, prefix: str
) -> None:
    await admin.set(f"{prefix}lease:acme:alice", "1:another-process", px=300)
    with pytest.raises(SessionBusyError):
        async with store.lock(ALICE, timeout=0.05):
            pytest.fail("took a live lease")
    started = anyio.current_time()
    async with store.lock(ALICE, timeout=5):
        assert anyio.current_time() - started >= 0.15


async def test_a_stalled_holder_whose_lease_was_taken_writes_nothing(
    store: RedisStore, open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    other = open_store()
    async with store.lock(ALICE):
        await store.append(ALICE, [Message.user("mine")])
        await admin.delete(f"{prefix}lease:acme:alice")  # this process stalled past its lease...
        async with other.lock(ALICE, timeout=0):  # ...and another run took over
            revision = await admin.hget(f"{prefix}session:acme:alice", "revision")
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.append(ALICE, [Message.user("stale")], metadata={"stale": 1})
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.save(Session(namespace=ALICE))
            with pytest.raises(StoreError, match="lock on the session lapsed"):
                await store.trim(ALICE, 0)
            assert await admin.hget(f"{prefix}session:acme:alice", "revision") == revision
            await other.append(ALICE, [Message.user("theirs")])
        # Released by the other run: the lease is free, but the fence has moved on.
        with pytest.raises(StoreError, match="lock on the session lapsed"):
            await store.append(ALICE, [Message.user("still stale")])
    loaded = await store.load(ALICE)
    assert contents(loaded) == ["mine", "theirs"]
    assert loaded is not None and loaded.metadata == {}


async def test_a_lapsed_lease_nobody_took_is_reclaimed(
    store: RedisStore, open_store: Callable[..., RedisStore], admin: Redis, prefix: str
) -> None:
    other = open_store()
    async with store.lock(ALICE):
        value = await admin.get(f"{prefix}lease:acme:alice")
        await admin.delete(f"{prefix}lease:acme:alice")  # expired, but nobody locked since
        await store.append(ALICE, [Message.user("still mine")])
        assert await admin.get(f"{prefix}lease:acme:alice") == value
        with pytest.raises(SessionBusyError):
            async with other.lock(ALICE, timeout=0):
                pytest.fail("took a re-claimed lease")
    assert contents(await store.load(ALICE)) == ["still mine"]


# -- hostile input ----------------------------------------------------------------------------


async def test_hostile_namespaces_are_plain_keys(store: RedisStore) -> None:
    keys = ["a*", "a?", "a[b]", "a", "ab", "a\\*", "'; DROP TABLE sessions; --", "\"quoted\"",
            "redis.call('FLUSHDB')", "]]--[[", "a:*", "a:b", "%s%d", "(a", "[a"]  # fmt: skip
    for key in keys:
        await store.append(Namespace.parse(key), [Message.user(key)])
    assert [ns.key for ns in await store.list()] == sorted(keys)
    for key in keys:
        assert contents(await store.load(Namespace.parse(key))) == [key]
    assert [ns.key for ns in await store.list(Namespace("a*"))] == ["a*"]
    assert [ns.key for ns in await store.list(Namespace("a"))] == ["a", "a:*", "a:b"]
    assert await store.delete_tree(Namespace("a*")) == 1
    assert await store.delete_tree(Namespace("[a")) == 1
    assert await store.delete_tree(Namespace("a")) == 3
    assert await store.delete(Namespace("a?")) is True
    assert len(await store.list()) == len(keys) - 6
    assert contents(await store.load(Namespace("ab"))) == ["ab"]


async def test_hostile_content_round_trips(
    store: RedisStore, open_store: Callable[..., RedisStore]
) -> None:
    texts = ["nul\x00byte", "\x00", "'; DELETE FROM x; --", "return redis.call('FLUSHALL')",
             "\"]]..[[", "*?[]", "\ufffd\uffff", "\\u0000"]  # fmt: skip
    await store.append(ALICE, [Message.user(t) for t in texts], metadata={"\x00k": "v\x00"})
    for reader in (store, store, open_store()):  # read, then cached; and a fresh store
        loaded = await reader.load(ALICE)
        assert contents(loaded) == texts
        assert loaded is not None and loaded.metadata == {"\x00k": "v\x00"}


# -- dropped connections ----------------------------------------------------------------------


async def test_killed_connections_reconnect_for_the_next_operation(
    store: RedisStore, admin: Redis, client_name: str
) -> None:
    await store.append(ALICE, [Message.user("before")])
    async with store.lock(ALICE):
        assert await kill_connections(admin, client_name) >= 1
        await store.append(ALICE, [Message.user("after")])
        assert contents(await store.load(ALICE)) == ["before", "after"]
    async with store.lock(ALICE, timeout=0):  # the lease was released on a new connection
        pass


async def test_an_operation_cut_off_in_flight_is_a_store_error_and_writes_nothing(
    store: RedisStore, admin: Redis, client_name: str
) -> None:
    await store.append(ALICE, [Message.user("before")])
    # Writes wait at the server (for every client, briefly)...
    await admin.client_pause(2000, all=False)
    try:
        failed: list[BaseException] = []

        async def append() -> None:
            try:
                await store.append(ALICE, [Message.user("cut off")] * 3)
            except StoreError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(append)
            await anyio.sleep(0.1)
            assert await kill_connections(admin, client_name) >= 1  # ...and the link drops
    finally:
        await admin.client_unpause()
    assert len(failed) == 1
    assert "append to session 'acme:alice' failed: " in str(failed[0])
    assert contents(await store.load(ALICE)) == ["before"]


async def test_a_server_that_cannot_be_reached_is_a_store_error() -> None:
    store = RedisStore("redis://127.0.0.1:1/15")
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: store.load(ALICE),
        lambda: store.append(ALICE, []),
        lambda: store.list(),
        lambda: store.delete_tree(ALICE),
        lambda: store.prune(1),
    ]
    for operation in operations:
        with pytest.raises(StoreError, match=r"failed: .*127\.0\.0\.1:1"):
            await operation()
    with pytest.raises(StoreError, match="lock session 'acme:alice' failed"):
        async with store.lock(ALICE):
            pytest.fail("locked without a server")
    await store.aclose()
