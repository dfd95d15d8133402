"""Documents benchmark: search latency over 1,000 documents of 5 pages (issue 14).

    python benchmarks/bench_documents.py                      # memory, SQLite, PostgreSQL
    python benchmarks/bench_documents.py --backends sqlite --docs 200 --queries 100
    python benchmarks/bench_documents.py --backends redis --docs 100   # not in the default run

A synthetic corpus: words drawn from a Zipf-like distribution over a vocabulary of
20,000 made-up words, ~450 words a page, 5 pages a document (about 3,000 characters a
page), cut into chunks of ``--chunk-size`` characters. Every document is loaded through
:meth:`DocumentStore.upsert`, as ``orra-di docs add`` does (load time is printed), then
``--queries`` searches run one after another, in two mixes: 1 to 3 rare words, and the
same with one of the 200 most frequent words in front (the top ones are in nearly every
chunk, like "the", so every chunk matches and is ranked); p50/p99/max milliseconds are
printed per mix.

The floor, measured in the same run: one ``search`` for a word that occurs nowhere
(``floor``), which costs the round trip and the query set-up but ranks nothing; the
ratio ``p50 / floor`` says how much of a search is the ranking itself. PostgreSQL comes
from ``ORRA_BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) in a
schema of its own, dropped at the end; SQLite goes to a temporary directory; Redis (on
request: loading is slow, every posting being a hash field written in the document's
transaction) from
``ORRA_BENCH_REDIS_URL`` (default database 14), under a key prefix deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from orra_di.documents import Document, DocumentStore, document_store_for
from orra_di.stores import InMemoryStore, SQLiteStore

PG_URL = os.environ.get("ORRA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORRA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "shi", "pe", "da", "qu", "ri", "zo"]
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def corpus(n_docs: int, pages: int, seed: int = 7) -> tuple[list[Document], list[str]]:
    rng = random.Random(seed)
    words = vocabulary(rng, 20_000)
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf, s = 1
    docs = []
    for d in range(n_docs):
        page_texts = []
        for _ in range(pages):
            drawn = rng.choices(words, weights, k=450)
            paragraphs = [" ".join(drawn[i : i + 75]) + "." for i in range(0, 450, 75)]
            page_texts.append("\n\n".join(paragraphs))
        docs.append(
            Document(
                id=f"doc-{d:05d}",
                namespace="acme",
                title=" ".join(rng.choices(words, k=4)),
                content="\n\n".join(page_texts),
            )
        )
    return docs, words


def queries(words: list[str], n: int, *, common: bool, seed: int = 11) -> list[str]:
    """``n`` queries of rare words (rank 200 and beyond), with one of the 200 most
    frequent words in front when ``common`` (the top ones are in nearly every chunk,
    like "the": every chunk then matches and is ranked)."""
    rng = random.Random(seed)
    top, rare = words[:200], words[200:]
    return [
        " ".join((rng.sample(top, 1) if common else []) + rng.sample(rare, rng.randint(1, 3)))
        for _ in range(n)
    ]


@asynccontextmanager
async def backend(name: str, chunk_size: int) -> AsyncIterator[DocumentStore]:
    if name == "memory":
        yield document_store_for(InMemoryStore(), chunk_size=chunk_size)
    elif name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            sessions = SQLiteStore(Path(tmp) / "bench.db")
            try:
                yield document_store_for(sessions, chunk_size=chunk_size)
            finally:
                await sessions.aclose()
    elif name == "postgres":
        import psycopg

        from orra_di.stores.postgres import PostgresStore

        schema = f"orra_bench_{secrets.token_hex(4)}"
        sessions = PostgresStore(PG_URL, schema=schema, max_size=2)
        try:
            yield document_store_for(sessions, chunk_size=chunk_size)
        finally:
            await sessions.aclose()
            async with await psycopg.AsyncConnection.connect(PG_URL, autocommit=True) as conn:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    elif name == "redis":
        from orra_di.stores.redis import RedisStore

        prefix = f"orra-bench:{secrets.token_hex(4)}:"
        sessions = RedisStore(REDIS_URL, key_prefix=prefix)
        try:
            yield document_store_for(sessions, chunk_size=chunk_size)
        finally:
            async for key in sessions.client.scan_iter(match=f"{prefix}*", count=1000):
                await sessions.client.delete(key)
            await sessions.aclose()
    else:
        raise SystemExit(f"unknown backend {name!r}: memory, sqlite, postgres or redis")


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def bench(
    name: str, docs: list[Document], mixes: dict[str, list[str]], chunk_size: int
) -> None:
    async with backend(name, chunk_size) as store:
        started = time.perf_counter()
        chunks = 0
        for d in docs:
            chunks += await store.upsert(d)
        load = time.perf_counter() - started
        for q in next(iter(mixes.values()))[:5]:  # warm caches and plans
            await store.search(q, ["acme"], 5)
        floors = []
        for _ in range(20):
            t = time.perf_counter()
            await store.search("zzzznowhere", ["acme"], 5)
            floors.append(time.perf_counter() - t)
        floor = statistics.median(floors) * 1000
        print(f"{name:9} docs={len(docs)} chunks={chunks} load={load:5.1f}s floor={floor:.2f} ms")
        for mix, asked in mixes.items():
            times = []
            found = 0
            for q in asked:
                t = time.perf_counter()
                results = await store.search(q, ["acme"], 5)
                times.append(time.perf_counter() - t)
                found += bool(results)
            p50 = ms(times, 0.50)
            print(
                f"  {mix:12} p50={p50:7.2f} ms  p99={ms(times, 0.99):7.2f} ms  "
                f"max={max(times) * 1000:7.2f} ms  p50/floor={p50 / max(floor, 1e-6):7.1f}  "
                f"answered={found}/{len(asked)}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="memory,sqlite,postgres")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--chunk-size", type=int, default=1000)
    args = parser.parse_args()
    docs, words = corpus(args.docs, args.pages)
    chars = sum(len(d.content) for d in docs)
    print(f"corpus: {len(docs)} documents x {args.pages} pages, {chars / 1e6:.1f} M characters")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    mixes = {
        "common+rare": queries(words, args.queries, common=True),
        "rare only": queries(words, args.queries, common=False),
    }
    for name in args.backends.split(","):
        anyio.run(bench, name.strip(), docs, mixes, args.chunk_size)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
