"""Session store benchmark: orra-di's stores side by side with what a user would otherwise pick.

    python benchmarks/bench_stores.py                 # every target, each in its own process
    python benchmarks/bench_stores.py sqlite redis    # some targets

Targets: orra-di's ``memory``, ``file``, ``sqlite``, ``postgresql`` and ``redis``
stores; and the peers ``agents-sqlite`` (OpenAI Agents SDK ``SQLiteSession`` on a
file), ``agents-redis`` (its ``RedisSession``) and ``langgraph-postgres``
(LangGraph's ``AsyncPostgresSaver``). The peers are installed only in the
benchmark's own venv (``benchmarks/README.md``); elsewhere they are reported as
skipped, as is a store whose module, driver or server is missing.

For each target:

- append throughput, steps/s (a step = one append of one ~500-byte message, as
  the runtime persists a step): from 1 process; from 8 processes (spawned), each
  on its own sessions; 8 processes appending to ONE session without a lock; and
  8 processes on one session each taking ``store.lock()`` per step (the
  single-writer path). Each runs for a fixed time; the shared sessions are then
  loaded back and counted, so a lost append shows;
- load latency (median and p95, µs) of a session of 10, 1,000 and 10,000 such
  messages: "cached" = the store object that wrote it, unchanged since (after one
  untimed load); "cold" = a fresh store object, connected but not yet used for it;
- W1 (µs per user message, 200 sessions x 5 messages) and W3 (one session of
  1,000 messages: time of messages 901-1000 / time of 1-100) from the core issue,
  through a real ``orra_di.Runtime`` with ``bench_core``'s workload; for a peer,
  the same persistence through its API: load the history, then append the user
  message and the three steps of the turn (no LLM, no runtime around it).

PostgreSQL and Redis come from ``ORRA_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``; each target gets a database of its
own, created and dropped) and ``ORRA_BENCH_REDIS_URL`` (default
``redis://127.0.0.1:6379/14``; keys under ``orra-bench:<run>:``, deleted after).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import math
import multiprocessing
import os
import queue
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import anyio
import bench_core

from orra_di import InMemoryStore, Message, Namespace, SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.sqlite import SQLiteStore

# -- what is measured, and how much ------------------------------------------------------------

PROCESSES = 8
ONE_PROCESS_SECONDS = 1.5
PHASE_SECONDS = 1.0  # each 8-process phase
STEPS_PER_SESSION = 100  # own-session phases move to a new session every 100 steps
TEXT_CHARS = 470  # a step's content; ~500 bytes as a stored message
POOL = 100  # distinct step messages, cycled
LOAD_PLAN = ((10, 100, 30), (1_000, 40, 15), (10_000, 15, 8))  # size, cached, cold samples
W1_SESSIONS, W1_MESSAGES = 200, 5
W3_MESSAGES = 1_000
# W3 stops early past this many seconds (0: never), so one slow target cannot take the run.
W3_BUDGET_SECONDS = float(os.environ.get("ORRA_BENCH_W3_BUDGET", "60"))

TARGETS = (
    "memory",
    "file",
    "sqlite",
    "postgresql",
    "redis",
    "agents-sqlite",
    "agents-redis",
    "langgraph-postgres",
)
NEEDS_POSTGRES = {"postgresql", "langgraph-postgres"}
NEEDS_REDIS = {"redis", "agents-redis"}
PEERS_HINT = (
    "the peers are installed only in the benchmark's venv: "
    "python3 -m venv benchmarks/.venv-peers && "
    "benchmarks/.venv-peers/bin/pip install -e . "
    "-r benchmarks/peers/requirements.txt, then run this script with "
    "benchmarks/.venv-peers/bin/python"
)

PG_ADMIN_URL = os.environ.get("ORRA_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORRA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

SHARED, LOCKED = "shared", "locked"
KINDS = ("cached", "cold")


class Skip(Exception):
    """The target cannot run here; the message says why."""


# -- the interface every target implements (orra-di's here, the peers' in peers/) ---------------


class Backend(Protocol):
    """One store object of a target."""

    def message(self, index: int, text: str) -> object:
        """The target's own message object for a step (built before timing)."""
        ...

    async def warm(self, session: str) -> None:
        """Open what a first request for ``session`` opens, without reading its messages."""
        ...

    async def append(self, session: str, message: object) -> None: ...

    async def append_locked(self, session: str, message: object) -> None:
        """Append under the session's single-writer lock (NotImplementedError without one)."""
        ...

    async def seed(self, session: str, messages: list[object]) -> None:
        """Write a session of ``messages`` (untimed set-up)."""
        ...

    async def load(self, session: str) -> int:
        """Load the whole session; how many messages it holds."""
        ...

    async def turn(self, session: str, m: int) -> None:
        """One W1/W3 user message (number ``m``)."""
        ...

    async def aclose(self) -> None: ...


class Target(Protocol):
    label: str
    shared_note: str | None  # why 8 processes on one session without a lock does not apply
    lock_note: str | None  # why the single-writer figure does not apply
    cold_note: str | None  # why cold loads do not apply

    async def prepare(self) -> None:
        """Create schemas before processes race to."""
        ...

    async def open(self) -> Backend: ...


@dataclass(frozen=True)
class Env:
    """The resources of one target's run: its own directory, database and key prefix."""

    tmp: str
    pg_url: str
    redis_url: str
    redis_prefix: str


# -- orra-di's stores ----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _ns(session: str) -> Namespace:
    return Namespace("bench", session)


class OrraBackend:
    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self.runtime = bench_core.runtime(store)

    def message(self, index: int, text: str) -> Message:
        return Message.user(text) if index % 2 == 0 else Message.assistant(text)

    async def warm(self, session: str) -> None:
        await self.store.load(_ns("warm-up"))  # connects; a session nobody writes

    async def append(self, session: str, message: object) -> None:
        assert isinstance(message, Message)
        await self.store.append(_ns(session), [message])

    async def append_locked(self, session: str, message: object) -> None:
        assert isinstance(message, Message)
        namespace = _ns(session)
        async with self.store.lock(namespace):
            await self.store.append(namespace, [message])

    async def seed(self, session: str, messages: list[object]) -> None:
        await self.store.append(_ns(session), [m for m in messages if isinstance(m, Message)])

    async def load(self, session: str) -> int:
        found = await self.store.load(_ns(session))
        return 0 if found is None else len(found.messages)

    async def turn(self, session: str, m: int) -> None:
        await self.runtime.run(_ns(session), f"message {m}")

    async def aclose(self) -> None:
        await self.store.aclose()


class OrraTarget:
    def __init__(
        self,
        label: str,
        factory: Callable[[], SessionStore],
        *,
        shared_note: str | None = None,
        lock_note: str | None = None,
        cold_note: str | None = None,
    ) -> None:
        self.label = label
        self._factory = factory
        self.shared_note = shared_note
        self.lock_note = lock_note
        self.cold_note = cold_note

    async def prepare(self) -> None:
        store = self._factory()
        try:
            await store.load(_ns("warm-up"))  # creates or migrates the schema
        finally:
            await store.aclose()

    async def open(self) -> OrraBackend:
        return OrraBackend(self._factory())


def _import_error(what: str, exc: ImportError, hint: str = "") -> Skip:
    return Skip(f"{what} is not importable ({type(exc).__name__}: {exc}){hint}")


def _require(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise _import_error(module, exc) from exc


def _server_store(url: str, module: str, **options: Any) -> SessionStore:
    """The store for ``url`` through ``open_store``, as a worker process would open it."""
    try:
        from orra_di.stores import open_store
    except ImportError:  # an older orra-di: the class itself
        cls = {"postgres": "PostgresStore", "redis": "RedisStore"}[module]
        store_class = getattr(importlib.import_module(f"orra_di.stores.{module}"), cls)
        store: SessionStore = store_class(url, **options)
        return store
    return open_store(url, **options)


def make_target(name: str, env: Env) -> Target:
    """The target ``name`` in ``env``; :class:`Skip` when its code is not installed."""
    local = "a process-local dict: processes share nothing"
    if name == "memory":
        return OrraTarget(
            "orra-di InMemoryStore",
            InMemoryStore,
            shared_note=local,
            lock_note=local,
            cold_note="a fresh InMemoryStore is empty",
        )
    if name == "file":
        base = os.path.join(env.tmp, "sessions")
        return OrraTarget("orra-di FileStore", lambda: FileStore(base))
    if name == "sqlite":
        path = os.path.join(env.tmp, "orra.sqlite3")
        return OrraTarget("orra-di SQLiteStore (file)", lambda: SQLiteStore(path))
    if name == "postgresql":
        _require("orra_di.stores.postgres")
        url = env.pg_url
        return OrraTarget(
            "orra-di PostgresStore", lambda: _server_store(url, "postgres", lease_seconds=30.0)
        )
    if name == "redis":
        _require("orra_di.stores.redis")
        url, prefix = env.redis_url, env.redis_prefix + "orra:"
        return OrraTarget(
            "orra-di RedisStore",
            lambda: _server_store(url, "redis", key_prefix=prefix, lease_seconds=30.0),
        )
    if name in ("agents-sqlite", "agents-redis"):
        try:
            from peers.agents_sdk import RedisSessionTarget, SQLiteSessionTarget
        except ImportError as exc:
            raise _import_error("openai-agents", exc, f"; {PEERS_HINT}") from exc
        if name == "agents-sqlite":
            return SQLiteSessionTarget(env.tmp)
        return RedisSessionTarget(env.redis_url, env.redis_prefix + "agents")
    if name == "langgraph-postgres":
        try:
            from peers.langgraph_pg import LangGraphTarget
        except ImportError as exc:
            raise _import_error("langgraph-checkpoint-postgres", exc, f"; {PEERS_HINT}") from exc
        return LangGraphTarget(env.pg_url)
    raise Skip(f"unknown target {name!r}; the targets are {', '.join(TARGETS)}")


# -- the servers: each target's own database and key prefix ------------------------------------


def _pg_admin() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise _import_error("psycopg (the postgres extra)", exc) from exc
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        raise Skip(f"PostgreSQL is not reachable at {_redact(PG_ADMIN_URL)}: {exc}") from exc


def _redis_client() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise _import_error("redis-py (the redis extra)", exc) from exc
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise Skip(f"Redis is not reachable at {_redact(REDIS_URL)}: {exc}") from exc
    return client


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _database_name(token: str, name: str) -> str:
    return f"orra_bench_{token}_{name.replace('-', '_')}"


def _delete_keys(client: Any, prefix: str) -> int:
    doomed = list(client.scan_iter(match=prefix + "*", count=1000))
    for start in range(0, len(doomed), 1000):
        client.delete(*doomed[start : start + 1000])
    return len(doomed)


@contextlib.contextmanager
def environment(name: str, token: str) -> Iterator[Env]:
    """Create the target's directory, database and key prefix; remove them all afterwards."""
    tmp = tempfile.mkdtemp(prefix=f"orra-bench-{name}-")
    database = _database_name(token, name)
    prefix = f"orra-bench:{token}:{name}:"
    pg_url = ""
    try:
        if name in NEEDS_POSTGRES:
            with _pg_admin() as admin:
                admin.execute(f'CREATE DATABASE "{database}"')
            parts = urlsplit(PG_ADMIN_URL)
            pg_url = urlunsplit(parts._replace(path="/" + database))
        redis_client = _redis_client() if name in NEEDS_REDIS else None
        try:
            yield Env(tmp=tmp, pg_url=pg_url, redis_url=REDIS_URL, redis_prefix=prefix)
        finally:
            if redis_client is not None:
                _delete_keys(redis_client, prefix)
                redis_client.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if pg_url:
            with _pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def sweep(token: str) -> None:
    """Remove whatever a crashed target left behind (its databases and keys)."""
    with contextlib.suppress(Skip), _pg_admin() as admin:
        for name in NEEDS_POSTGRES:
            admin.execute(f'DROP DATABASE IF EXISTS "{_database_name(token, name)}" WITH (FORCE)')
    with contextlib.suppress(Skip):
        client = _redis_client()
        _delete_keys(client, f"orra-bench:{token}:")
        client.close()


# -- the measurements ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def texts() -> list[str]:
    """``POOL`` texts of ``TEXT_CHARS`` characters, word-like (they compress like text)."""
    rng = random.Random(20260101)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(400)
    ]
    out = []
    for _ in range(POOL):
        text = ""
        while len(text) < TEXT_CHARS:
            text += rng.choice(words) + " "
        out.append(text[:TEXT_CHARS])
    return out


def step_messages(backend: Backend) -> list[object]:
    return [backend.message(i, text) for i, text in enumerate(texts())]


Span = tuple[float, float, int]  # start, end (time.monotonic, system-wide), steps


async def append_for(
    backend: Backend, messages: Sequence[object], mode: str, tag: str, seconds: float
) -> Span:
    start = time.monotonic()
    deadline = start + seconds
    steps = 0
    while time.monotonic() < deadline:
        message = messages[steps % POOL]
        if mode == "own":
            await backend.append(f"{tag}-s{steps // STEPS_PER_SESSION}", message)
        elif mode == SHARED:
            await backend.append(SHARED, message)
        else:
            await backend.append_locked(LOCKED, message)
        steps += 1
    return start, time.monotonic(), steps


async def one_process(target: Target) -> dict[str, Any]:
    backend = await target.open()
    try:
        messages = step_messages(backend)
        await backend.warm("p0")
        start, end, steps = await append_for(backend, messages, "own", "one", ONE_PROCESS_SECONDS)
    finally:
        await backend.aclose()
    return {"rate": steps / (end - start), "steps": steps, "seconds": end - start}


def _worker(
    name: str, env: Env, proc: int, phases: list[tuple[str, float]], barrier: Any, results: Any
) -> None:
    try:
        spans = anyio.run(_worker_phases, name, env, proc, phases, barrier)
        results.put((proc, spans, None))
    except BaseException:
        barrier.abort()
        results.put((proc, None, traceback.format_exc()))


async def _worker_phases(
    name: str, env: Env, proc: int, phases: list[tuple[str, float]], barrier: Any
) -> dict[str, Span]:
    backend = await make_target(name, env).open()
    try:
        messages = step_messages(backend)
        await backend.warm(f"p{proc}")
        spans = {}
        for mode, seconds in phases:
            barrier.wait(timeout=300)  # all start together; blocking is fine here
            spans[mode] = await append_for(backend, messages, mode, f"{mode}-p{proc}", seconds)
        return spans
    finally:
        await backend.aclose()


def many_processes(name: str, env: Env, target: Target) -> dict[str, Any]:
    phases = [("own", PHASE_SECONDS)]
    if target.shared_note is None:
        phases.append((SHARED, PHASE_SECONDS))
    if target.lock_note is None:
        phases.append((LOCKED, PHASE_SECONDS))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(name, env, i, phases, barrier, results), daemon=True)
        for i in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    collected: dict[int, dict[str, Span]] = {}
    failures: list[str] = []
    deadline = time.monotonic() + 600
    while len(collected) + len(failures) < PROCESSES and time.monotonic() < deadline:
        try:
            index, spans, error = results.get(timeout=2)
        except queue.Empty:
            if all(not p.is_alive() for p in procs):
                failures.append("a worker died without reporting")
                break
            continue
        if error is not None:
            failures.append(f"worker {index}: {error}")
        else:
            collected[index] = spans
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    if failures:
        raise RuntimeError("; ".join(failures)[-4000:])
    out: dict[str, Any] = {}
    for mode, _ in phases:
        spans = [collected[i][mode] for i in range(PROCESSES)]
        total = sum(s[2] for s in spans)
        seconds = max(s[1] for s in spans) - min(s[0] for s in spans)
        out[mode] = {"rate": total / seconds, "steps": total, "seconds": seconds}
    return out


async def count_shared(target: Target, modes: Sequence[str]) -> dict[str, int]:
    backend = await target.open()
    try:
        await backend.warm(SHARED)
        return {mode: await backend.load(mode) for mode in modes}
    finally:
        await backend.aclose()


def summarise(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p95 = ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]
    return {"median": statistics.median(ordered) * 1e6, "p95": p95 * 1e6, "n": len(ordered)}


async def timed_load(backend: Backend, session: str, size: int) -> float:
    start = time.perf_counter()
    count = await backend.load(session)
    elapsed = time.perf_counter() - start
    if count != size:
        raise RuntimeError(f"loaded {count} messages from {session!r}, expected {size}")
    return elapsed


async def load_latency(target: Target) -> dict[str, Any]:
    backend = await target.open()
    out: dict[str, Any] = {}
    try:
        messages = step_messages(backend)
        await backend.warm("load")
        for size, cached_samples, cold_samples in LOAD_PLAN:
            session = f"load-{size}"
            await backend.seed(session, [messages[i % POOL] for i in range(size)])
            await timed_load(backend, session, size)  # untimed: the first read after writing
            cached = [await timed_load(backend, session, size) for _ in range(cached_samples)]
            cold: list[float] = []
            if target.cold_note is None:
                for _ in range(cold_samples):
                    fresh = await target.open()
                    try:
                        await fresh.warm(session)
                        cold.append(await timed_load(fresh, session, size))
                    finally:
                        await fresh.aclose()
            out[str(size)] = {
                "cached": summarise(cached),
                "cold": summarise(cold) if cold else None,
            }
    finally:
        await backend.aclose()
    return out


async def runtime_workloads(target: Target) -> dict[str, Any]:
    backend = await target.open()
    try:
        await backend.warm("w-warm-up")
        await backend.turn("w-warm-up", 0)
        for s in range(W1_SESSIONS):
            await backend.warm(f"w1-s{s}")  # per-conversation objects are made before timing
        start = time.perf_counter()
        for s in range(W1_SESSIONS):
            for m in range(W1_MESSAGES):
                await backend.turn(f"w1-s{s}", m)
        w1 = (time.perf_counter() - start) / (W1_SESSIONS * W1_MESSAGES) * 1e6
        await backend.warm("w3")
        times: list[float] = []
        deadline = time.monotonic() + W3_BUDGET_SECONDS if W3_BUDGET_SECONDS > 0 else math.inf
        for m in range(W3_MESSAGES):
            start = time.perf_counter()
            await backend.turn("w3", m)
            times.append(time.perf_counter() - start)
            if time.monotonic() > deadline:
                break
        done = len(times)
        if await backend.load("w3") != 4 * done:
            raise RuntimeError("the W3 session does not hold 4 messages per user message")
    finally:
        await backend.aclose()
    tenth = max(done // 10, 1)
    first, last = times[:tenth], times[-tenth:]
    return {
        "w1_us": w1,
        "w3_done": done,
        "w3_first_ms": sum(first) * 1e3,
        "w3_last_ms": sum(last) * 1e3,
        "w3_ratio": sum(last) / sum(first),
        "w3_median_ratio": statistics.median(last) / statistics.median(first),
        "w3_mean_us": sum(times) / done * 1e6,
    }


# -- one target, in its own process --------------------------------------------------------------


def _section(result: dict[str, Any], key: str, run: Callable[[], Any]) -> None:
    try:
        result[key] = run()
    except Exception as exc:
        traceback.print_exc()
        result[key] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(f"  {key}: FAILED {result[key]['error']}", flush=True)


def _fmt_rate(entry: dict[str, Any]) -> str:
    return f"{entry['rate']:>9,.0f} steps/s ({entry['steps']:,} steps in {entry['seconds']:.1f} s)"


def _fmt_stats(stats: dict[str, Any] | None) -> str:
    if stats is None:
        return "n/a"
    return f"median {stats['median']:,.0f} µs, p95 {stats['p95']:,.0f} µs ({stats['n']} loads)"


def run_target(name: str, token: str) -> dict[str, Any]:
    result: dict[str, Any] = {"name": name}
    started = time.monotonic()
    try:
        make_target(name, Env(tmp="", pg_url="", redis_url="", redis_prefix=""))  # importable?
        with environment(name, token) as env:
            target = make_target(name, env)
            result["label"] = target.label
            result["notes"] = {
                "shared": target.shared_note,
                "locked": target.lock_note,
                "cold": target.cold_note,
            }
            print(f"== {name}: {target.label}", flush=True)
            anyio.run(target.prepare)

            _section(result, "one", lambda: anyio.run(one_process, target))
            if "error" not in result["one"]:
                print(f"  append, 1 process:                     {_fmt_rate(result['one'])}")

            def multi() -> dict[str, Any]:
                spans = many_processes(name, env, target)
                shared = [m for m in (SHARED, LOCKED) if m in spans]
                if shared:
                    stored = anyio.run(count_shared, target, shared)
                    for mode in shared:
                        spans[mode]["stored"] = stored[mode]
                return spans

            _section(result, "many", multi)
            many = result["many"]
            titles = {
                "own": "8 processes, own sessions:     ",
                SHARED: "8 processes, one session:      ",
                LOCKED: "8 processes, one session, lock:",
            }
            for mode, title in titles.items():
                if "error" in many:
                    break
                if mode not in many:
                    note = result["notes"][mode]
                    print(f"  append, {title}    n/a: {note}")
                    continue
                line = f"  append, {title} {_fmt_rate(many[mode])}"
                if "stored" in many[mode]:
                    line += f"; stored {many[mode]['stored']:,} of {many[mode]['steps']:,}"
                print(line, flush=True)

            _section(result, "load", lambda: anyio.run(load_latency, target))
            if "error" not in result["load"]:
                for size, entry in result["load"].items():
                    print(f"  load {int(size):>6,} messages, cached: {_fmt_stats(entry['cached'])}")
                    cold = _fmt_stats(entry["cold"])
                    if entry["cold"] is None:
                        cold += f": {target.cold_note}"
                    print(f"  load {int(size):>6,} messages, cold:   {cold}", flush=True)

            _section(result, "runtime", lambda: anyio.run(runtime_workloads, target))
            rt = result["runtime"]
            if "error" not in rt:
                print(f"  W1 {W1_SESSIONS}x{W1_MESSAGES} sequential: {rt['w1_us']:,.0f} µs/message")
                done, tenth = rt["w3_done"], max(rt["w3_done"] // 10, 1)
                stopped = (
                    ""
                    if done == W3_MESSAGES
                    else f" (STOPPED by the {W3_BUDGET_SECONDS:g} s budget after {done:,})"
                )
                print(
                    f"  W3 one session, {W3_MESSAGES:,} messages{stopped}: first {tenth} "
                    f"{rt['w3_first_ms']:,.1f} ms, last {tenth} {rt['w3_last_ms']:,.1f} ms, "
                    f"ratio {rt['w3_ratio']:.2f} (of medians {rt['w3_median_ratio']:.2f}); "
                    f"mean {rt['w3_mean_us']:,.0f} µs/message",
                    flush=True,
                )
        print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
    except Skip as exc:
        result["skip"] = " ".join(str(exc).split())
        print(f"== {name}: skipped: {exc}", flush=True)
    return result


# -- the whole run: every target in its own process, then the tables -----------------------------


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def header() -> None:
    print("orra-di session store benchmark")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; orra-di {_version('orra-di')}, "
        f"openai-agents {_version('openai-agents')}, langgraph-checkpoint-postgres "
        f"{_version('langgraph-checkpoint-postgres')}, psycopg {_version('psycopg')}, "
        f"redis-py {_version('redis')}"
    )
    print(
        f"counts: append {ONE_PROCESS_SECONDS:g} s from 1 process, {PHASE_SECONDS:g} s per phase "
        f"from {PROCESSES} spawned processes, {STEPS_PER_SESSION} steps per own session, "
        f"steps of {TEXT_CHARS} characters; loads of "
        + ", ".join(f"{s:,} messages ({c} cached, {k} cold)" for s, c, k in LOAD_PLAN)
        + f"; W1 {W1_SESSIONS} sessions x {W1_MESSAGES} messages; W3 {W3_MESSAGES:,} messages "
        + (f"(at most {W3_BUDGET_SECONDS:g} s)" if W3_BUDGET_SECONDS > 0 else "(no time limit)")
    )
    print(f"servers: {_redact(PG_ADMIN_URL)}, {_redact(REDIS_URL)}")
    print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(flush=True)


def run_child(name: str, token: str) -> dict[str, Any]:
    """Run one target in a fresh interpreter, echo its lines, return its result."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, token]
    result: dict[str, Any] | None = None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
            else:
                print(line, end="", flush=True)
    if result is None:
        result = {"name": name, "error": f"the target's process exited with {child.returncode}"}
        print(f"== {name}: FAILED: {result['error']}", flush=True)
    return result


def _cell(value: str, width: int) -> str:
    return value.rjust(width)


def _label(result: dict[str, Any]) -> str:
    return str(result.get("label") or result["name"])


def tables(results: list[dict[str, Any]], seconds: float) -> None:
    ran = [r for r in results if "skip" not in r and "error" not in r]
    name_width = max([len(_label(r)) for r in results] + [10]) + 1
    if ran:
        figures(ran, name_width)
    closing(results, ran, seconds)


def figures(ran: list[dict[str, Any]], name_width: int) -> None:
    print()
    print("Append throughput, steps/s (a step = one append of one ~500-byte message)")
    widths: tuple[int, ...] = (11, 15, 15, 15)
    heads: tuple[str, ...] = ("1 process", "8 processes,", "8 processes,", "8 processes,")
    subs = ("", "own sessions", "one session", "one, lock()")
    print(" " * name_width + "".join(_cell(h, w) for h, w in zip(heads, widths, strict=True)))
    print(" " * name_width + "".join(_cell(h, w) for h, w in zip(subs, widths, strict=True)))
    any_lost = False
    for r in ran:
        cells = []
        one = r.get("one", {})
        cells.append(f"{one['rate']:,.0f}" if "rate" in one else "failed")
        many = r.get("many", {})
        for mode in ("own", SHARED, LOCKED):
            if "error" in many:
                cells.append("failed")
            elif mode not in many:
                cells.append("n/a")
            else:
                entry = many[mode]
                lost = "stored" in entry and entry["stored"] != entry["steps"]
                cells.append(f"{entry['rate']:,.0f}" + ("!" if lost else ""))
                any_lost = any_lost or lost
        print(
            _label(r).ljust(name_width)
            + "".join(_cell(c, w) for c, w in zip(cells, widths, strict=True))
        )
    if any_lost:
        print("! = the shared session held fewer messages than the processes appended")

    print()
    for stat in ("median", "p95"):
        print(
            f"Load latency, {stat}, µs (cached: the store object that wrote it; cold: a fresh one)"
        )
        width = 10
        print(" " * name_width + "".join(_cell(f"{s:,} msgs", 2 * width) for s, _, _ in LOAD_PLAN))
        print(" " * name_width + "".join(_cell(h, width) for _ in LOAD_PLAN for h in KINDS))
        for r in ran:
            load = r.get("load", {})
            cells = []
            for size, _, _ in LOAD_PLAN:
                entry = load.get(str(size))
                for kind in KINDS:
                    stats = entry.get(kind) if entry else None
                    if "error" in load:
                        cells.append("failed")
                    elif stats is None:
                        cells.append("n/a")
                    else:
                        cells.append(f"{stats[stat]:,.0f}")
            print(_label(r).ljust(name_width) + "".join(_cell(c, width) for c in cells))
        print()

    print(
        "Runtime workloads (bench_core's: lookup tool, 200-char result, 300-char answer; "
        "peers: their persistence calls only)"
    )
    heads = ("W1 µs/msg", "W3 µs/msg", "W3 first 10%", "W3 last 10%", "W3 ratio", "of medians")
    widths = (11, 11, 14, 13, 13, 12)
    print(" " * name_width + "".join(_cell(h, w) for h, w in zip(heads, widths, strict=True)))
    stopped = False
    for r in ran:
        rt = r.get("runtime", {})
        if "error" in rt or not rt:
            cells = ["failed"] * len(heads)
        else:
            mark = "" if rt["w3_done"] == W3_MESSAGES else f" @{rt['w3_done']}"
            stopped = stopped or bool(mark)
            cells = [
                f"{rt['w1_us']:,.0f}",
                f"{rt['w3_mean_us']:,.0f}",
                f"{rt['w3_first_ms']:,.0f} ms",
                f"{rt['w3_last_ms']:,.0f} ms",
                f"{rt['w3_ratio']:.2f}{mark}",
                f"{rt['w3_median_ratio']:.2f}",
            ]
        print(
            _label(r).ljust(name_width)
            + "".join(_cell(c, w) for c, w in zip(cells, widths, strict=True))
        )
    if stopped:
        print(
            f"@N: W3 stopped by its {W3_BUDGET_SECONDS:g} s budget after N messages; first/last "
            "are tenths of N, so with a cost that grows with the session the ratio is a lower "
            "bound of the 1,000-message one (ORRA_BENCH_W3_BUDGET=0 runs it whole)"
        )
    print(
        "of medians: median time of a message in the last tenth / in the first tenth "
        "(robust to pauses from other work on the machine)"
    )


def closing(results: list[dict[str, Any]], ran: list[dict[str, Any]], seconds: float) -> None:
    notes = []
    for r in ran:
        for key, note in (r.get("notes") or {}).items():
            if note:
                notes.append(f"  {_label(r)}: {key} n/a: {note}")
    failed = [
        r
        for r in results
        if "error" in r or any(isinstance(v, dict) and "error" in v for v in r.values())
    ]
    skipped = [r for r in results if "skip" in r]
    print()
    if notes:
        print("n/a:")
        print("\n".join(notes))
    for r in skipped:
        print(f"skipped {r['name']}: {r['skip']}")
    for r in failed:
        print(f"failed {r['name']}: see its lines above")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {seconds:.0f} s; load average at the end: {load}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        result = run_target(argv[1], argv[2])
        print("RESULT " + json.dumps(result), flush=True)
        return
    names = argv or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        sys.exit(f"unknown target(s) {', '.join(unknown)}; the targets are {', '.join(TARGETS)}")
    token = secrets.token_hex(3)
    started = time.monotonic()
    header()
    results = []
    try:
        for name in names:
            results.append(run_child(name, token))
    finally:
        sweep(token)
    tables(results, time.monotonic() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
