"""Several replicas on one backend: each due job fires exactly once; a replica killed mid-run
leaves a run that the others record as abandoned, never lost and never run twice."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.cron import (
    AgentTurnPayload,
    CronJob,
    CronService,
    EverySchedule,
    SystemEventPayload,
    cron_store_for,
)
from orra_di.stores import open_store

from . import workers

pytestmark = pytest.mark.anyio

BOUND = 180  # seconds: processes start slowly on a loaded machine; never asserted on


@pytest.fixture(
    params=[
        "sqlite",
        "file",
        pytest.param("postgres", marks=pytest.mark.service),
        pytest.param("redis", marks=pytest.mark.service),
    ]
)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}", {}
    elif kind == "file":
        yield f"file://{tmp_path / 'sessions'}", {}
    elif kind == "postgres":
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield POSTGRES_URL, {"schema": schema}
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        require_redis()
        from redis.asyncio import Redis

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield REDIS_URL, {"key_prefix": prefix}
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()


async def test_four_replicas_fire_each_of_200_due_jobs_once(
    backend: tuple[str, dict[str, Any]],
) -> None:
    url, options = backend
    count = 200 if url.startswith(("postgresql", "redis")) else 60
    context = multiprocessing.get_context("spawn")
    ready = [context.Event() for _ in range(4)]
    go, stop = context.Event(), context.Event()
    replicas = [
        context.Process(target=workers.run_replica, args=(url, options, r, go, stop)) for r in ready
    ]
    sessions = open_store(url, **options)
    try:
        for p in replicas:
            p.start()
        for r in ready:
            assert await anyio.to_thread.run_sync(r.wait, BOUND)
        store = cron_store_for(sessions)
        due = datetime.now(UTC).replace(microsecond=0)
        jobs = []
        for i in range(count):
            job = CronJob(
                name=f"job {i}",
                schedule=EverySchedule(interval_ms=3_600_000),
                payload=SystemEventPayload(message=f"fired {i}"),
                namespace=f"tenant:t{i}",
                next_run=due,  # all in the same second
            )
            jobs.append(await store.add(job))
        go.set()
        with anyio.fail_after(BOUND):
            while True:
                stored = await store.list()
                if all(j.run_count for j in stored):
                    break
                await anyio.sleep(0.2)
        stop.set()
        for p in replicas:
            await anyio.to_thread.run_sync(p.join, BOUND)
            assert p.exitcode == 0
        for job in jobs:
            session = await sessions.load(job.namespace)
            assert session is not None
            assert [m.content for m in session.messages] == [f"fired {job.name[4:]}"]
            (run,) = await store.runs(job.id)
            assert run.outcome == "ok"
        runners = {(await store.runs(j.id))[0].runner for j in jobs}
        assert all(j.run_count == 1 for j in await store.list())
        assert len(runners) >= 1  # which replica ran which job is up to the race
    finally:
        stop.set()
        go.set()
        for p in replicas:
            if p.is_alive():
                p.kill()
        await sessions.aclose()


async def test_a_replica_killed_mid_run_leaves_an_abandoned_run_not_a_second_one(
    backend: tuple[str, dict[str, Any]],
) -> None:
    url, options = backend
    sessions = open_store(url, **options)
    context = multiprocessing.get_context("spawn")
    try:
        store = cron_store_for(sessions)
        job = await store.add(
            CronJob(
                name="report",
                schedule=EverySchedule(interval_ms=3_600_000),
                payload=AgentTurnPayload(prompt="summary"),
                namespace="acme",
                next_run=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        dying = context.Process(target=workers.run_hanging_agent, args=(url, options, job.id))
        dying.start()
        with anyio.fail_after(BOUND):
            while not (runs := await store.runs(job.id)) or runs[0].outcome != "running":  # noqa: ASYNC110
                await anyio.sleep(0.1)
        assert dying.pid is not None
        os.kill(dying.pid, signal.SIGKILL)
        await anyio.to_thread.run_sync(dying.join, BOUND)
        (running,) = await store.runs(job.id)
        # A surviving replica, its clock past the dead one's lease.
        later = datetime.now(UTC) + timedelta(seconds=30)
        survivor = CronService(store, sessions, clock=lambda: later)
        (run,) = await survivor.run_due()
        assert run.id == running.id and run.outcome == "abandoned"
        assert "stopped before finishing" in (run.error or "")
        (recorded,) = await store.runs(job.id)
        assert recorded.outcome == "abandoned"
        stored = await store.get(job.id)
        assert stored is not None and stored.next_run is not None and stored.next_run > later
        assert await survivor.run_due() == []  # not run again
    finally:
        await sessions.aclose()
