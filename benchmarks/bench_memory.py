"""Memory benchmark: recall latency over 10,000 and 100,000 memories of one tenant.

    python benchmarks/bench_memory.py                       # SQLite and PostgreSQL
    python benchmarks/bench_memory.py --backends sqlite --sizes 10000

For each backend and size, one tenant (``bench:alice``) holds N memories (8-16 words
each from a 5,000-word vocabulary, Zipf-like; another tenant holds as many, so the
namespace filter has work to do), and each memory has a 384-value vector (random unit
vectors: all-MiniLM-L6-v2's width; embedding 100,000 texts with the model would take
minutes on two cores and the search does not care where the numbers came from).
Printed, per backend and size:

- ``keyword``: :meth:`MemoryStore.search_text` with 2-3 words, limit 5 (FTS5 ``bm25()``
  on SQLite, ``ts_rank_cd`` on PostgreSQL), p50 / p99 milliseconds of wall time, and of
  this process's CPU time (``cpu``: on a shared, busy machine the wall time includes
  waiting for a core; SQLite works in this process, PostgreSQL's work is the server's);
- ``vector``: :meth:`MemoryStore.search` with a query vector, limit 5 (brute-force
  cosine in the process over the tenant's stored vectors), p50 / p99;
- ``floor``: one trivial statement through the same connection path (``SELECT 1``),
  p50, and the keyword p50 as a multiple of it.

Target (issue 14): keyword recall p50 <= 5 ms at 100,000 memories on SQLite.
PostgreSQL comes from ``ORRA_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orra_di.memory import MemoryEntry, memory_store_for
from orra_di.memory.stores import MemoryStore

PG_URL = os.environ.get("ORRA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WIDTH = 384
VOCABULARY = [f"w{i}" for i in range(5_000)]
WEIGHTS = [1.0 / (i + 1) ** 0.8 for i in range(len(VOCABULARY))]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _vectors(rng: random.Random, n: int) -> list[list[float]]:
    """``n`` random unit vectors (numpy when installed: generating is not what is measured)."""
    try:
        import numpy as np
    except ImportError:
        out = []
        for _ in range(n):
            v = [rng.gauss(0.0, 1.0) for _ in range(WIDTH)]
            norm = math.sqrt(sum(x * x for x in v))
            out.append([x / norm for x in v])
        return out
    m = np.random.default_rng(rng.randrange(2**32)).standard_normal((n, WIDTH), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m.tolist()  # type: ignore[no-any-return]


def _vector(rng: random.Random) -> list[float]:
    return _vectors(rng, 1)[0]


def _entries(rng: random.Random, namespace: str, n: int, offset: int) -> list[MemoryEntry]:
    out = []
    for i, vector in enumerate(_vectors(rng, n)):
        words = rng.choices(VOCABULARY, WEIGHTS, k=rng.randint(8, 16))
        out.append(  # model_construct: the loading is not what is measured
            MemoryEntry.model_construct(
                id=f"m{offset + i}-{namespace.replace(':', '-')}",
                namespace=namespace,
                content=" ".join(words),
                tags=[],
                created_at=T0 + timedelta(seconds=offset + i),
                embedding=vector,
                metadata={},
            )
        )
    return out


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, math.ceil(len(ordered) * 0.99) - 1)]
    return statistics.median(ordered) * 1000, p99 * 1000


async def _load(store: MemoryStore, n: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for namespace in ("bench:alice", "bench:bob"):
        for start in range(0, n, 5_000):
            await store.store_many(_entries(rng, namespace, min(5_000, n - start), start))
    return time.perf_counter() - started


async def _floor(sessions: Any, kind: str, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        if kind == "sqlite":
            await sessions.run_in_connection("floor", lambda c: c.execute("SELECT 1").fetchone())
        else:
            async with sessions.connection() as conn:
                await (await conn.execute("SELECT 1")).fetchone()
        samples.append(time.perf_counter() - started)
    return samples


async def _measure(kind: str, n: int, queries: int, vector_queries: int) -> None:
    rng = random.Random(n)
    cleanup: Any = None
    if kind == "sqlite":
        from orra_di.stores import SQLiteStore

        folder = tempfile.mkdtemp(prefix="orra-bench-memory-")
        sessions: Any = SQLiteStore(Path(folder) / "bench.db")

        async def cleanup() -> None:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        from orra_di.stores.postgres import PostgresStore

        schema = f"orra_bench_{secrets.token_hex(4)}"
        sessions = PostgresStore(PG_URL, schema=schema, max_size=2)

        async def cleanup() -> None:
            import psycopg

            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    store = memory_store_for(sessions)
    try:
        loaded = await _load(store, n, rng)
        scope = ["bench:alice"]
        texts = [
            " ".join(rng.choices(VOCABULARY[:2_000], k=rng.randint(2, 3))) for _ in range(queries)
        ]
        for text in texts[:10]:  # warm caches
            await store.search_text(scope, text, 5)
        keyword, keyword_cpu = [], []
        hits = 0
        for text in texts:
            started, cpu = time.perf_counter(), time.process_time()
            found = await store.search_text(scope, text, 5)
            keyword.append(time.perf_counter() - started)
            keyword_cpu.append(time.process_time() - cpu)
            hits += bool(found)
        vector = []
        for _ in range(vector_queries):
            q = _vector(rng)
            started = time.perf_counter()
            await store.search(scope, q, 5)
            vector.append(time.perf_counter() - started)
        floor = await _floor(sessions, kind, 200)
        k50, k99 = _ms(keyword)
        c50, c99 = _ms(keyword_cpu)
        v50, v99 = _ms(vector)
        f50, _ = _ms(floor)
        print(
            f"{kind:8} {n:>7,}  load {loaded:6.1f}s  keyword p50 {k50:7.2f} ms p99 {k99:7.2f} ms"
            f" (cpu {c50:.2f}/{c99:.2f}; {hits}/{len(texts)} found)"
            f"  vector p50 {v50:8.1f} ms p99 {v99:8.1f} ms"
            f"  floor p50 {f50:.3f} ms  keyword/floor {k50 / f50:6.1f}x",
            flush=True,
        )
    finally:
        await sessions.aclose()
        if cleanup is not None:
            await cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--vector-queries", type=int, default=20)
    args = parser.parse_args()
    try:
        import numpy  # noqa: F401

        how = "numpy"
    except ImportError:
        how = "pure Python (install numpy for faster vector search)"
    print(f"load average {os.getloadavg()[0]:.2f}; cosine with {how}", flush=True)
    for kind in args.backends.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            await _measure(kind.strip(), n, args.queries, args.vector_queries)
    print(f"load average {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
