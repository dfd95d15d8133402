"""Round 11 review: the session stores' documented guarantees (docs/concepts/sessions.md,
docs/deploy.md) as a user relies on them: one writer per session across processes
(spawned replicas on one SQLite file or PostgreSQL database), ``busy_timeout`` /
``on_busy``, a crashed replica's lease and open call, erasure by whole segments, TTL
pruning and hostile namespace keys on the file, SQLite, PostgreSQL and Redis stores.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di import Message, Namespace, SessionBusyError
from orra_di.runtime import INTERRUPTED, RuntimeConfig
from orra_di.settings import RuntimeSettings
from orra_di.store import SessionStore
from orra_di.stores import open_store
from tests.services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis
from tests.stores import workers

pytestmark = pytest.mark.anyio

STORES = ["memory", "file", "sqlite", "postgres", "redis"]


def _url(kind: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if kind == "memory":
        return "memory://", {}
    if kind == "file":
        return f"file://{tmp_path / 'sessions'}", {}
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}", {}
    if kind == "postgres":
        require_postgres()
        return POSTGRES_URL, {"schema": f"r11_{uuid.uuid4().hex[:8]}"}
    require_redis()
    return REDIS_URL, {"key_prefix": f"r11-{uuid.uuid4().hex[:8]}:"}


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Callable[[str], SessionStore]]:
    made: list[tuple[str, SessionStore]] = []

    def open_(kind: str) -> SessionStore:
        url, options = _url(kind, tmp_path)
        store = open_store(url, **options)
        made.append((kind, store))
        return store

    yield open_
    for kind, store in made:
        if kind == "postgres":
            await _drop_schema(store)
        elif kind == "redis":
            for ns in await store.list():
                await store.delete(ns)
        await store.aclose()


HOSTILE = [
    ("t", ".."),
    ("t", "."),
    ("t", "..", "etc"),
    ("t", "a/b"),
    ("t", "a\\b"),
    ("t", "é"),
    ("t", "e\u0301"),  # the same letter decomposed: another key
    ("t", "A"),
    ("t", "a"),  # differs from "A" only in case
    ("t", "*?[]"),
    ("t", "%2F"),
    ("t", "a b"),
    ("t", "\u2028"),
    ("t", "\u200b"),
    ("t", "\ufeff"),
    ("t", "😀"),
    ("t", "CON"),
    ("t", "x.jsonl"),
    ("t", "x" * 1000),
    ("t", "ü" * 400),
    ("t", "😀" * 1022),  # 1,024 characters, 4,088 bytes of UTF-8
]


@pytest.mark.parametrize("kind", STORES)
async def test_hostile_namespace_keys_are_distinct_sessions(
    kind: str, opened: Callable[[str], SessionStore]
) -> None:
    store = opened(kind)
    spaces = [Namespace(*segments) for segments in HOSTILE]
    for ns in spaces:
        await store.append(ns, [Message.user("v:" + ns.key)])
    for ns in spaces:
        session = await store.load(ns)
        assert session is not None, ns.key[:40]
        assert [m.content for m in session.messages] == ["v:" + ns.key]
        async with store.lock(ns, timeout=1):
            await store.append(ns, [Message.assistant("ok")])
    assert [n.key for n in await store.list(Namespace("t"))] == sorted(n.key for n in spaces)
    for refused in ["t:a\x00b", "t:a\nb", "t:\x7f", "t:a\x85b", "t::x", "t:" + "x" * 1023]:
        with pytest.raises(ValueError):
            await store.load(refused)
    assert await store.delete_tree(Namespace("t")) == len(spaces)
    assert await store.list() == []


@pytest.mark.parametrize("kind", STORES)
async def test_delete_tree_and_list_by_whole_segments_and_prune_by_idle_time(
    kind: str, opened: Callable[[str], SessionStore]
) -> None:
    store = opened(kind)
    keys = ["t", "t:a", "t:a:b", "t;", "t!", "tt", "t\u00a0", "t :x", "t0:a", "u:t"]
    for key in keys:
        await store.append(key, [Message.user(key)])
    assert [n.key for n in await store.list("t")] == ["t", "t:a", "t:a:b"]
    assert [n.key for n in await store.list("t:a")] == ["t:a", "t:a:b"]
    assert await store.delete_tree("t:a") == 2
    assert await store.delete_tree("t") == 1
    left = sorted(set(keys) - {"t", "t:a", "t:a:b"})
    assert [n.key for n in await store.list()] == left

    await anyio.sleep(1.2)
    await store.append("u:t", [Message.assistant("still here")])  # written again: not idle
    assert await store.prune(1.0) == len(left) - 1
    assert [n.key for n in await store.list()] == ["u:t"]


# -- across processes -------------------------------------------------------------------


def _spawned(kind: str, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    url, options = _url(kind, tmp_path)
    return url, {**options, "lease_seconds": 1.0}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_two_processes_on_one_session_never_interleave_or_lose_a_turn(
    kind: str, tmp_path: Path, opened: Callable[[str], SessionStore]
) -> None:
    url, options = _spawned(kind, tmp_path)
    parent = open_store(url, **options)
    key = "acme:shared"
    await parent.append(key, [Message.user("created")])  # schema ready before the race
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    turns = 6
    processes = [
        spawn.Process(target=workers.run_turns, args=(url, options, [key], w, turns, start))
        for w in range(2)
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            await anyio.to_thread.run_sync(process.join, 120)
            assert process.exitcode == 0
        session = await parent.load(key)
        assert session is not None
        tags = workers.turn_tags(session.messages[1:])
        assert sorted(tags) == sorted(f"w{w}-t{t}" for w in range(2) for t in range(turns))
        assert workers.unanswered(session.messages) == []
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
        if kind == "postgres":
            await _drop_schema(parent)
        await parent.aclose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_busy_session_refused_or_waited_for_then_a_crashed_holder_frees_it(
    kind: str, tmp_path: Path
) -> None:
    url, options = _spawned(kind, tmp_path)
    parent = open_store(url, **options)
    key = "acme:busy"
    await parent.append("acme:other", [Message.user("schema ready")])
    spawn = multiprocessing.get_context("spawn")
    blocked = spawn.Event()
    holder = spawn.Process(target=workers.run_until_blocked, args=(url, options, key, blocked))
    holder.start()
    try:
        assert await anyio.to_thread.run_sync(blocked.wait, 60)

        refuse = RuntimeSettings(on_busy="refuse").runtime_config(None, None, _budget())
        assert refuse.busy_timeout == 0
        started = time.monotonic()
        with pytest.raises(SessionBusyError):
            await _runtime(parent, refuse).run(key, "refused")
        assert time.monotonic() - started < 5

        started = time.monotonic()
        with pytest.raises(SessionBusyError):
            await _runtime(parent, RuntimeConfig(busy_timeout=0.5)).run(key, "waited")
        assert 0.4 <= time.monotonic() - started < 3

        holder.kill()  # a crash mid-run: its tool call is open, its lease runs out
        await anyio.to_thread.run_sync(holder.join, 30)
        result = await _runtime(parent, RuntimeConfig(busy_timeout=10)).run(key, "after")
        assert result.final_message.content == "after answered"
        session = await parent.load(key)
        assert session is not None
        open_call = [
            m for m in session.messages if any(r.content == INTERRUPTED for r in m.tool_results)
        ]
        assert len(open_call) == 1 and workers.unanswered(session.messages) == []
    finally:
        if holder.is_alive():
            holder.kill()
        if kind == "postgres":
            await _drop_schema(parent)
        await parent.aclose()


async def _drop_schema(store: SessionStore) -> None:
    async with store.connection() as conn:  # type: ignore[attr-defined]
        await conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')  # type: ignore[attr-defined]


def _budget() -> Any:
    from orra_di import ContextBudget

    return ContextBudget()


def _runtime(store: SessionStore, config: RuntimeConfig) -> Any:
    agent = workers.runtime(store)
    agent.config = config
    return agent
