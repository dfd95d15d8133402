"""Cron benchmark: the service's cost per wake-up, and how late jobs start.

    python benchmarks/bench_cron.py                        # both parts, SQLite and PostgreSQL
    python benchmarks/bench_cron.py wakeup --backends sqlite
    python benchmarks/bench_cron.py lateness --rounds 3

Part 1, **cost per wake-up** (issue 11: "10,000 jobs stored, 100 due at once: the
service's cost per wake-up grows with the number of due jobs, not the number
stored"). For 1,000, 10,000 and 100,000 jobs stored, 100 of them due (and, at 10,000
stored, 10 and 1,000 due), on each backend:

- ``claim``: one :meth:`CronStore.claim` of the due jobs (batch 1,000), median
  milliseconds and the SQL statements it sent;
- ``idle``: what :meth:`CronService.serve` does when it wakes and nothing is due
  (a claim that finds nothing, then :meth:`CronStore.next_wake`);
- ``run_due``: a whole wake-up that claims and runs the due jobs (``system_event``
  payloads: one session append each), milliseconds and statements per due job;
- the query plan of the claim and of ``next_wake`` (``EXPLAIN``), which must read the
  ``wake_at`` index, not the table.

Part 2, **lateness**: 10,000 jobs stored, 100 ``agent_turn`` jobs due at the same
second every few seconds, served by 1 and by 4 replica processes
(``CronService.serve`` with the real clock, a scripted model). For each run: from its
due time to the claim (``CronRun.started_at``) and to the model call (the agent
turn's first step), p50/p99/max over every run of every round; the target is
p99 <= 1 s. The count of runs per due time is checked too (each exactly once).

Jobs are bulk-loaded with SQL (``COPY`` on PostgreSQL) in the stores' own layout,
so a 100,000-job run takes seconds, not minutes. PostgreSQL comes from
``ORRA_BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``), in a
schema of its own, dropped at the end; SQLite files go to a temporary directory.
The load average is printed at the start and end: a busy machine shows in the
lateness figures first.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.synchronize
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from orra_di import AgentProfile, Runtime
from orra_di.cron import (
    AgentTurnPayload,
    CronJob,
    CronService,
    CronStore,
    EverySchedule,
    SystemEventPayload,
    cron_store_for,
)
from orra_di.cron.stores import stamp
from orra_di.runtime_set import RuntimeMap
from orra_di.store import SessionStore
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider, reply

PG_URL = os.environ.get("ORRA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
STORED = (1_000, 10_000, 100_000)
DUE = 100
DUE_VARIANTS = (10, 1_000)  # at 10,000 stored
REPEATS = 7  # wake-ups measured per row; the median is printed
FAR = datetime(2030, 1, 1, tzinfo=UTC)

# -- backends ----------------------------------------------------------------------------------


class Backend:
    """A fresh store of one kind, its statement counter, and a bulk loader."""

    name = ""

    def __init__(self) -> None:
        self.statements = 0
        self.sessions: SessionStore
        self.url = ""
        self.options: dict[str, Any] = {}

    @property
    def cron(self) -> CronStore:
        return cron_store_for(self.sessions)

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        await self.sessions.aclose()

    async def load(self, rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def sql(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        raise NotImplementedError

    async def explain(self, statement: str, args: tuple[Any, ...]) -> list[str]:
        raise NotImplementedError


_COLUMNS = "id, namespace, status, next_run, last_run, run_count, wake_at, created_at, body"


class SQLiteBackend(Backend):
    name = "sqlite"

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.url = f"sqlite:///{folder}/cron-{secrets.token_hex(4)}.db"

    async def open(self) -> None:
        from orra_di.stores.sqlite import SQLiteStore

        self.sessions = open_store(self.url)
        assert isinstance(self.sessions, SQLiteStore)
        await self.cron.next_wake()  # creates the tables

        def trace(conn: sqlite3.Connection) -> None:
            def count(statement: str) -> None:
                self.statements += 1

            conn.set_trace_callback(count)

        await self.sessions.run_in_connection("trace", trace)

    def _conn_op(self, op: Callable[[sqlite3.Connection], Any], write: bool = False) -> Any:
        from orra_di.stores.sqlite import SQLiteStore

        assert isinstance(self.sessions, SQLiteStore)
        return self.sessions.run_in_connection("bench", op, write=write)

    async def load(self, rows: list[tuple[Any, ...]]) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(
                f"INSERT INTO cron_jobs_v1 ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

        await self._conn_op(insert, write=True)
        await self._conn_op(lambda conn: conn.execute("ANALYZE"), write=True)

    async def sql(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        result: list[Any] = await self._conn_op(
            lambda conn: conn.execute(statement.replace("%s", "?"), args).fetchall(), write=True
        )
        return result

    async def explain(self, statement: str, args: tuple[Any, ...]) -> list[str]:
        rows = await self.sql("EXPLAIN QUERY PLAN " + statement, args)
        return [str(row[-1]) for row in rows]


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self) -> None:
        super().__init__()
        self.url = PG_URL
        self.schema = f"orra_bench_cron_{secrets.token_hex(4)}"
        self.options = {"schema": self.schema}
        self._unpatch: Callable[[], None] = lambda: None

    async def open(self) -> None:
        import psycopg

        self.sessions = open_store(self.url, **self.options)
        await self.cron.next_wake()  # creates the tables
        cursor = psycopg.AsyncCursor
        originals = {name: getattr(cursor, name) for name in ("execute", "executemany")}

        def counting(original: Any) -> Any:
            async def counted(cur: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                self.statements += 1
                return await original(cur, query, *args, **kwargs)

            return counted

        for name, original in originals.items():
            setattr(cursor, name, counting(original))

        def unpatch() -> None:
            for name, original in originals.items():
                setattr(cursor, name, original)

        self._unpatch = unpatch

    async def close(self) -> None:
        import psycopg

        self._unpatch()
        await self.sessions.aclose()
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    async def load(self, rows: list[tuple[Any, ...]]) -> None:
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = conn.cursor()
            async with cursor.copy(
                f'COPY "{self.schema}".cron_jobs_v1 ({_COLUMNS}) FROM STDIN'
            ) as copy:
                for row in rows:
                    await copy.write_row(row)
            await conn.execute(f'ANALYZE "{self.schema}".cron_jobs_v1')

    async def sql(self, statement: str, args: tuple[Any, ...] = ()) -> list[Any]:
        from orra_di.stores.postgres import PostgresStore

        assert isinstance(self.sessions, PostgresStore)
        statement = statement.replace("cron_jobs_v1", f'"{self.schema}".cron_jobs_v1')
        async with self.sessions.connection() as conn:
            cursor = await conn.execute(statement, args)
            return await cursor.fetchall() if cursor.description else []

    async def explain(self, statement: str, args: tuple[Any, ...]) -> list[str]:
        rows = await self.sql("EXPLAIN " + statement, args)
        return [str(row[0]) for row in rows]


def backends(names: list[str], folder: str) -> list[Callable[[], Backend]]:
    made: list[Callable[[], Backend]] = []
    for name in names:
        if name == "sqlite":
            made.append(lambda: SQLiteBackend(folder))
        elif name == "postgresql":
            made.append(PostgresBackend)
        else:
            raise SystemExit(f"unknown backend {name!r}: sqlite, postgresql")
    return made


# -- jobs in bulk ---------------------------------------------------------------------------------


def job_rows(
    count: int, due: int, due_at: datetime, payload: Any, interval_ms: int = 3_600_000
) -> list[tuple[Any, ...]]:
    """``count`` active jobs in the stores' row layout: ``due`` of them due at ``due_at``,
    the others spread over the year after ``FAR`` (never due during the benchmark)."""
    template = json.loads(
        CronJob(
            name="job",
            schedule=EverySchedule(interval_ms=interval_ms),
            payload=payload,
            namespace="bench",
        ).to_json()
    )
    created = datetime.now(UTC)
    rows = []
    for i in range(count):
        job_id = f"job-{i:06d}"
        next_run = due_at if i < due else FAR + timedelta(seconds=(i * 3137) % 31_536_000)
        body = dict(template, id=job_id, name=f"job {i}", namespace=f"tenant:t{i}")
        body["next_run"] = next_run.isoformat()
        body["created_at"] = created.isoformat()
        nxt = stamp(next_run)
        rows.append(
            (
                job_id,
                f"tenant:t{i}",
                "active",
                nxt,
                None,
                0,
                nxt,
                created.timestamp(),
                json.dumps(body),
            )
        )
    return rows


CLAIM_SQL = (
    "SELECT id, claimed_by FROM cron_jobs_v1 WHERE wake_at IS NOT NULL AND wake_at <= %s "
    "ORDER BY wake_at, id LIMIT %s"
)
NEXT_WAKE_SQL = "SELECT min(wake_at) FROM cron_jobs_v1 WHERE wake_at IS NOT NULL"


# -- part 1: cost per wake-up -------------------------------------------------------------------


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def measure(backend: Backend, stored: int, due: int) -> dict[str, Any]:
    due_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    payload = SystemEventPayload(message="tick")
    await backend.load(job_rows(stored, due, due_at, payload))
    cron = backend.cron
    now = datetime.now(UTC)
    until = now + timedelta(seconds=60)
    reset = (
        "UPDATE cron_jobs_v1 SET claimed_by = NULL, next_run = %s, wake_at = %s, run_count = 0 "
        "WHERE wake_at IS NOT NULL AND wake_at < %s"
    )
    far = stamp(FAR)

    async def reset_due() -> None:
        await backend.sql(reset, (stamp(due_at), stamp(due_at), far))

    claim_s, claim_n, idle_s, idle_n = [], [], [], []
    for _ in range(REPEATS):
        before, start = backend.statements, time.perf_counter()
        claims = await cron.claim(now, "bench", until, limit=1_000)
        claim_s.append(time.perf_counter() - start)
        claim_n.append(backend.statements - before)
        assert len(claims) == due, (len(claims), due)
        # a wake-up when nothing is due: serve()'s claim, then next_wake
        before, start = backend.statements, time.perf_counter()
        assert await cron.claim(now, "bench", until, limit=100) == []
        await cron.next_wake()
        idle_s.append(time.perf_counter() - start)
        idle_n.append(backend.statements - before)
        await backend.sql(
            "UPDATE cron_jobs_v1 SET claimed_by = NULL, wake_at = next_run WHERE claimed_by = %s",
            ("bench",),
        )

    service = CronService(cron, backend.sessions, batch=100)
    run_s, run_n = [], []
    for _ in range(3):
        await reset_due()
        before, start = backend.statements, time.perf_counter()
        runs = await service.run_due(now)
        run_s.append(time.perf_counter() - start)
        run_n.append(backend.statements - before)
        assert len(runs) == due and all(r.outcome == "ok" for r in runs), runs[:1]
    plan_claim = await backend.explain(CLAIM_SQL, (stamp(now), 100))
    plan_wake = await backend.explain(NEXT_WAKE_SQL, ())
    await backend.sql("DELETE FROM cron_jobs_v1")
    return {
        "stored": stored,
        "due": due,
        "claim_ms": median_ms(claim_s),
        "claim_statements": statistics.median(claim_n),
        "idle_ms": median_ms(idle_s),
        "idle_statements": statistics.median(idle_n),
        "run_ms": median_ms(run_s),
        "run_statements_per_job": statistics.median(run_n) / due,
        "plan_claim": plan_claim,
        "plan_wake": plan_wake,
    }


async def wakeup_part(make: Callable[[], Backend]) -> list[dict[str, Any]]:
    plan = [(stored, DUE) for stored in STORED] + [(10_000, due) for due in DUE_VARIANTS]
    results = []
    for stored, due in plan:
        backend = make()
        await backend.open()
        try:
            results.append(await measure(backend, stored, due))
        finally:
            await backend.close()
    return results


def print_wakeup(name: str, results: list[dict[str, Any]]) -> None:
    print(f"\n## cost per wake-up: {name}")
    print(
        "| stored | due | claim ms | claim stmts | idle wake-up ms | idle stmts "
        "| run_due ms | run_due ms/job | stmts/job |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['stored']:,} | {r['due']:,} | {r['claim_ms']:.2f} | {r['claim_statements']:.0f} "
            f"| {r['idle_ms']:.2f} | {r['idle_statements']:.0f} | {r['run_ms']:.0f} "
            f"| {r['run_ms'] / r['due']:.2f} | {r['run_statements_per_job']:.1f} |"
        )
    biggest = max(results, key=lambda r: r["stored"])
    print(f"\nclaim plan ({biggest['stored']:,} stored):")
    for line in biggest["plan_claim"]:
        print(f"    {line}")
    print("next_wake plan:")
    for line in biggest["plan_wake"]:
        print(f"    {line}")


# -- part 2: lateness ----------------------------------------------------------------------------


def replica(
    url: str,
    options: dict[str, Any],
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    service_options: dict[str, Any],
) -> None:
    """One replica: ``CronService.serve`` with the real clock until ``stop`` is set.

    The model answers with the time it was called, so the run history says when each
    agent turn started."""

    async def main() -> None:
        sessions = open_store(url, **options)

        def answer(request: Any) -> Any:
            return reply(repr(time.time()))

        model = ScriptedProvider(answer)
        runtimes = RuntimeMap(
            [AgentProfile(name="assistant")], lambda profile: Runtime(model, sessions)
        )
        service = CronService(cron_store_for(sessions), sessions, runtimes, **service_options)
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(service.serve)
                ready.set()
                await anyio.to_thread.run_sync(stop.wait)
                service.stop()
        finally:
            await sessions.aclose()

    anyio.run(main)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def lateness(
    make: Callable[[], Backend],
    replicas: int,
    rounds: int,
    interval: float,
    service_options: dict[str, Any],
) -> dict[str, Any]:
    backend = make()
    await backend.open()
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    ready = [context.Event() for _ in range(replicas)]
    processes = [
        context.Process(
            target=replica, args=(backend.url, backend.options, r, stop, service_options)
        )
        for r in ready
    ]
    try:
        for p in processes:
            p.start()
        for r in ready:
            if not await anyio.to_thread.run_sync(r.wait, 120):
                raise SystemExit("a replica did not start within 120 s")
        first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        payload = AgentTurnPayload(prompt="what time is it?")
        await backend.load(job_rows(10_000, DUE, first, payload, interval_ms=int(interval * 1000)))
        last = first + timedelta(seconds=interval * (rounds - 1))
        end = last + timedelta(seconds=max(interval, 5.0))
        await anyio.sleep(max((end - datetime.now(UTC)).total_seconds(), 0))
        # wait for the runs of the last due time to be recorded
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            running = await backend.sql(
                "SELECT count(*) FROM cron_jobs_v1 WHERE claimed_by IS NOT NULL"
            )
            if running[0][0] == 0:
                break
            await anyio.sleep(0.2)
    finally:
        stop.set()
        for p in processes:
            await anyio.to_thread.run_sync(p.join, 60)
            if p.is_alive():
                p.kill()
    try:
        runs = [run for i in range(DUE) for run in await backend.cron.runs(f"job-{i:06d}", 100)]
        per_due: dict[tuple[str, datetime], int] = {}
        claim, model = [], []
        outcomes: dict[str, int] = {}
        for run in runs:
            if run.due_at > last:
                continue  # a round that started while the replicas stopped
            per_due[(run.job_id, run.due_at)] = per_due.get((run.job_id, run.due_at), 0) + 1
            outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
            claim.append((run.started_at - run.due_at).total_seconds())
            if run.outcome == "ok" and run.output:
                model.append(float(run.output) - run.due_at.timestamp())
        expected = DUE * rounds
        return {
            "replicas": replicas,
            "runs": len(claim),
            "expected": expected,
            "twice": sum(1 for n in per_due.values() if n > 1),
            "outcomes": outcomes,
            "runners": len({r.runner for r in runs}),
            "claim": claim,
            "model": model,
        }
    finally:
        await backend.close()


def print_lateness(name: str, results: list[dict[str, Any]], rounds: int, interval: float) -> None:
    print(
        f"\n## lateness: {name}, 10,000 stored, {DUE} agent_turn jobs due at once, "
        f"{rounds} due times {interval:g} s apart"
    )
    print(
        "| replicas | runs / due times | run twice | to claim p50 / p99 / max (s) "
        "| to model call p50 / p99 / max (s) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in results:
        c, m = r["claim"], r["model"]

        def cell(values: list[float]) -> str:
            if not values:
                return "-"
            return (
                f"{percentile(values, 50):.3f} / {percentile(values, 99):.3f} / {max(values):.3f}"
            )

        print(
            f"| {r['replicas']} ({r['runners']} ran) | {r['runs']} / {r['expected']} "
            f"| {r['twice']} | {cell(c)} | {cell(m)} |"
        )
        odd = {k: v for k, v in r["outcomes"].items() if k != "ok"}
        if odd:
            print(f"    outcomes other than ok: {odd}")


# -- main -----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


@contextlib.asynccontextmanager
async def loads() -> AsyncIterator[list[float]]:
    seen = [os.getloadavg()[0]]
    yield seen
    seen.append(os.getloadavg()[0])


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help="wakeup, lateness (default: both)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=4, help="due times per lateness run")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between due times")
    parser.add_argument("--replicas", default="1,4")
    parser.add_argument("--batch", type=int, default=None, help="CronService(batch=...)")
    args = parser.parse_args(argv)
    parts = args.parts or ["wakeup", "lateness"]
    if unknown := set(parts) - {"wakeup", "lateness"}:
        parser.error(f"unknown part(s) {', '.join(sorted(unknown))}: wakeup, lateness")
    options = {} if args.batch is None else {"batch": args.batch}
    names = [n.strip() for n in args.backends.split(",") if n.strip()]
    print(f"# bench_cron: {machine()}")
    with tempfile.TemporaryDirectory() as folder:
        async with loads() as load:
            print(f"load average at start: {load[0]:.2f}")
            for name, make in zip(names, backends(names, folder), strict=True):
                if "wakeup" in parts:
                    print_wakeup(name, await wakeup_part(make))
                if "lateness" in parts:
                    results = [
                        await lateness(make, int(n), args.rounds, args.interval, options)
                        for n in args.replicas.split(",")
                    ]
                    print_lateness(name, results, args.rounds, args.interval)
        print(f"\nload average at start / end: {load[0]:.2f} / {load[1]:.2f}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
