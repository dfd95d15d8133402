"""Core runtime benchmark: the cost orra-di adds around each user message.

One user message = the model asks for ``lookup(key)``, the tool returns a fixed
200-character string, the model answers with 300 characters. The provider is
scripted and does not sleep (except in W2), so the figures are orra-di's own
overhead: locking, loading, building requests, running the tool, persisting.

    python benchmarks/bench_core.py            # every workload, each in its own process
    python benchmarks/bench_core.py w1-sqlite  # one workload

W1  200 sessions x 5 messages, sequential: µs per user message (memory, SQLite file)
W2  500 sessions x 3 messages concurrently, provider awaits 5 ms: messages/s, peak RSS
W3  one SQLite session of 1,000 messages: time(901-1000) / time(1-100)
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from orra_di import InMemoryStore, Namespace, Runtime, SessionStore, tool
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

TOOL_OUTPUT = "x" * 200
ANSWER = "y" * 300


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return TOOL_OUTPUT


def provider(delay: float = 0.0) -> ScriptedProvider:
    def answer(request: CompletionRequest) -> CompletionResponse:
        if request.messages[-1].tool_results:
            return reply(ANSWER)
        return tool_calls(call("lookup", {"key": "k"}))

    return ScriptedProvider(answer, delay=delay)


def runtime(store: SessionStore, delay: float = 0.0) -> Runtime:
    return Runtime(provider(delay), store, tools=[lookup])


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def w1(store: SessionStore, label: str) -> None:
    rt = runtime(store)
    sessions, per_session = 200, 5

    async def work() -> None:
        for s in range(sessions):
            ns = Namespace("bench", f"user{s}")
            for m in range(per_session):
                await rt.run(ns, f"message {m}")

    await rt.run(Namespace("warmup"), "warm up")
    elapsed = await timed(work)
    await store.aclose()
    per_message = elapsed / (sessions * per_session) * 1e6
    print(f"W1 {label:<7} {sessions}x{per_session} sequential: {per_message:8.1f} µs/message")


async def w2() -> None:
    store = InMemoryStore()
    rt = runtime(store, delay=0.005)
    sessions, per_session = 500, 3

    async def session(s: int) -> None:
        ns = Namespace("bench", f"user{s}")
        for m in range(per_session):
            await rt.run(ns, f"message {m}")

    async def work() -> None:
        async with anyio.create_task_group() as tg:
            for s in range(sessions):
                tg.start_soon(session, s)

    elapsed = await timed(work)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rate = sessions * per_session / elapsed
    print(
        f"W2 memory  {sessions}x{per_session} concurrent, 5 ms provider: "
        f"{rate:8.0f} messages/s, peak RSS {rss_mib:.0f} MiB"
    )


async def w3(path: Path) -> None:
    store = SQLiteStore(path)
    rt = runtime(store)
    ns = Namespace("bench", "long")
    times = []
    for m in range(1000):
        start = time.perf_counter()
        await rt.run(ns, f"message {m}")
        times.append(time.perf_counter() - start)
    await store.aclose()
    first, last = sum(times[:100]), sum(times[900:])
    print(
        f"W3 sqlite  one session, 1,000 messages: first 100 {first * 1e3:.1f} ms, "
        f"last 100 {last * 1e3:.1f} ms, ratio {last / first:.2f}"
    )


def run_one(name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite3"
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "w1-memory": lambda: w1(InMemoryStore(), "memory"),
            "w1-sqlite": lambda: w1(SQLiteStore(db), "sqlite"),
            "w2": w2,
            "w3": lambda: w3(db),
        }
        anyio.run(jobs[name])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        run_one(sys.argv[1])
    else:
        for workload in ("w1-memory", "w1-sqlite", "w2", "w3"):
            subprocess.run([sys.executable, __file__, workload], check=True)
