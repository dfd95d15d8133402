"""Lease fairness: N processes running back-to-back turns on ONE session.

    python benchmarks/bench_lease_fairness.py                   # every store, N = 2, 4, 8
    python benchmarks/bench_lease_fairness.py sqlite redis      # some stores
    ORRA_BENCH_SECONDS=5 python benchmarks/bench_lease_fairness.py

Each process (spawned: a fresh interpreter, as a replica would be) loops for a
fixed time: take ``store.lock()`` on the shared session, load it, append the
four messages of a turn (user, tool call, tool result, answer) one by one as the
runtime persists them, release. It records how long each ``lock()`` waited.
A store that serves waiters in about their order of arrival gives every process
about the same number of turns and a worst wait of a few turns; one that does not
lets a process that releases and asks again at once win turn after turn, while
another waits through all of them (and, with a finite ``busy_timeout``, fails).

Printed per store and N: turns per process, the median and worst wait (ms) over
all lock acquisitions, and the turns per second of the whole group (total turns
/ run time). Stores:
``file``, ``sqlite`` (temporary directory), ``postgresql`` (``ORRA_BENCH_PG_URL``,
default ``postgresql://postgres@127.0.0.1:5432/test``, a schema of its own,
dropped after) and ``redis`` (``ORRA_BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/14``, keys under a random prefix, deleted after); a
store whose driver or server is missing is reported as skipped.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.stores import open_store

PG_URL = os.environ.get("ORRA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORRA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SECONDS = float(os.environ.get("ORRA_BENCH_SECONDS", "3"))
COUNTS = (2, 4, 8)
STORES = ("file", "sqlite", "postgresql", "redis")
SESSION = Namespace("bench", "fairness")


def turn(worker: int, n: int) -> list[Message]:
    tag = f"w{worker}-t{n}"
    call = ToolCall(id=f"{tag}-call", name="lookup", arguments={"tag": tag})
    return [
        Message.user(tag),
        Message.assistant("", [call]),
        Message.tool_result([ToolResult(call_id=call.id, content="x" * 200)]),
        Message.assistant("y" * 300),
    ]


def worker(
    url: str,
    options: dict[str, Any],
    index: int,
    start: multiprocessing.synchronize.Barrier,
    results: Any,
) -> None:
    async def main() -> None:
        store = open_store(url, **options)
        waits: list[float] = []
        try:
            await store.load(SESSION)  # connected before the race starts
            await anyio.to_thread.run_sync(start.wait)
            deadline = time.perf_counter() + SECONDS
            n = 0
            while time.perf_counter() < deadline:
                asked = time.perf_counter()
                async with store.lock(SESSION, timeout=120):
                    waits.append(time.perf_counter() - asked)
                    await store.load(SESSION)
                    for message in turn(index, n):
                        await store.append(SESSION, [message])
                n += 1
        finally:
            await store.aclose()
        results.send(waits)

    anyio.run(main)


def run(url: str, options: dict[str, Any], count: int) -> list[list[float]]:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(count)
    pipes = [spawn.Pipe(duplex=False) for _ in range(count)]
    processes = [
        spawn.Process(target=worker, args=(url, options, i, start, pipes[i][1]))
        for i in range(count)
    ]
    for process in processes:
        process.start()
    waits = []
    for receiver, sender in pipes:
        sender.close()
        if not receiver.poll(SECONDS + 180):
            raise RuntimeError("a worker did not report")
        waits.append(receiver.recv())
    for process in processes:
        process.join(30)
    return waits


@contextmanager
def storage(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """A fresh storage for store ``name``: its URL and ``open_store`` options; cleaned up."""
    if name in ("file", "sqlite"):
        directory = tempfile.mkdtemp(prefix="orra-fairness-")
        try:
            if name == "file":
                yield Path(directory, "sessions").as_uri(), {}
            else:
                yield f"sqlite:///{directory}/sessions.db", {"busy_timeout": 30.0}
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    elif name == "postgresql":
        import psycopg

        schema = f"orra_fairness_{secrets.token_hex(4)}"
        try:
            yield PG_URL, {"schema": schema}
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        import redis

        prefix = f"orra-fairness:{secrets.token_hex(4)}:"
        try:
            yield REDIS_URL, {"key_prefix": prefix}
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(match=f"{prefix}*", count=1000):
                client.delete(key)
            client.close()


def available(name: str) -> str | None:
    """Why store ``name`` cannot run here, or ``None``."""
    try:
        if name == "postgresql":
            import psycopg

            psycopg.connect(PG_URL, connect_timeout=3).close()
        elif name == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as exc:  # a missing driver or server: skip, say why
        return f"{type(exc).__name__}: {exc}"
    return None


def report(name: str, count: int, waits: list[list[float]]) -> None:
    every = sorted(w for per in waits for w in per)
    turns = [len(per) for per in waits]
    print(
        f"{name:<11} N={count}  turns per process {turns!s:<40} "
        f"wait median {statistics.median(every) * 1000:7.1f} ms  "
        f"worst {every[-1] * 1000:7.1f} ms  "
        f"group {sum(turns) / SECONDS:6.1f} turns/s",
        flush=True,
    )


def main(argv: list[str]) -> None:
    chosen = argv or list(STORES)
    unknown = set(chosen) - set(STORES)
    if unknown:
        raise SystemExit(f"unknown store(s) {sorted(unknown)}; choose from {STORES}")
    print(
        f"{SECONDS:g} s per run, processes {COUNTS}, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    for name in chosen:
        why = available(name)
        if why is not None:
            print(f"{name:<11} skipped ({why})")
            continue
        for count in COUNTS:
            with storage(name) as (url, options):
                waits = run(url, options, count)
            report(name, count, waits)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
