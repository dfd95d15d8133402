"""Core runtime benchmark: what orra-di costs per user message, as a ratio to a plain loop.

One user message = the model asks for ``lookup(key)``, the tool returns a fixed
200-character string, the model answers with 300 characters: two scripted model
calls, one tool call, four history items. Every workload runs twice in the same
process: through ``orra_di.Runtime``, and through the FLOOR, a direct async loop
that calls the same scripted model and the same tool function and does the
same store operations by hand, in one transaction per message (no lock, no
hooks, no policy, no budget, no per-step persistence). The ratio of the two,
measured side by side, is what compares across machines and loads; the
absolute figures are printed beside it, with the machine.

    python benchmarks/bench_core.py                  # every workload, 3 fresh processes each
    python benchmarks/bench_core.py w1-memory-sync   # some workloads only
    python benchmarks/bench_core.py --record         # and append a row to history.csv
    python benchmarks/bench_core.py --runs 5         # processes per workload (default 3)

W1  200 sessions x 5 messages (SQLite: 100, at FULL 40) one after another: µs per message,
    in memory with a sync ``def`` tool (in a worker thread), the same declared
    ``blocking=False`` (inline; no target of its own in the issue, held to the
    async tool's) and an ``async def`` tool, and on a
    SQLite file at synchronous=FULL (floor and orra-di alike), the floor at FULL and
    orra-di at RUN (each step without an fsync, the run's last write with one: the floor's
    durability, a finished message survives a power cut), and NORMAL (the default)
W2  500 sessions x 3 messages at once, the model awaiting 5 ms per call, in
    memory: messages/s (orra-di's as a share of the floor's) and peak RSS
W3  one session of 1,000 messages: the median time of messages 901-1000 / that of
    messages 1-100, for the floor and orra-di, on SQLite and in memory (1.0 = no growth)

W1 also prints CPU time (the process's user + system time, every thread, per
message): a busy machine stretches wall time by preemption, which CPU time
mostly does not see; a thread hop's wake-up latency, on the other hand, is only
in wall time.

In each process the floor and orra-di take turns for ``ROUNDS`` rounds (fresh
sessions each round), so both see the same load. W1 keeps each side's fastest
round: the floor's round lasts milliseconds, and on a shared machine one
preemption would otherwise decide its figure; W2 its best of 2, W3 the median
round. The script prints the median over the processes and the spread of the
ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gc
import json
import os
import platform
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from orra_di import InMemoryStore, Namespace, Runtime, SessionStore, tool
from orra_di.message import Message, ToolResult
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.stores._codec import dump_messages
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import call, reply, tool_calls
from orra_di.tool import FunctionTool, ToolDefinition

HERE = Path(__file__).resolve().parent
HISTORY = HERE / "history.csv"
ROUNDS = 5
TOOL_OUTPUT = "x" * 200
ANSWER = "y" * 300


def lookup(key: str) -> str:
    """Look a key up."""
    return TOOL_OUTPUT


async def lookup_async(key: str) -> str:
    """Look a key up."""
    return TOOL_OUTPUT


TOOLS: dict[str, Callable[..., Any]] = {"sync": lookup, "inline": lookup, "async": lookup_async}
"""The tool by kind: a plain ``def`` (run in a worker thread), the same declared
non-blocking (``@tool(blocking=False)``, run inline), and an ``async def``."""


class Model:
    """The scripted model both sides call: a tool call, then, after its result, an answer.

    Its two responses are built once, as a real provider's cost is not orra-di's;
    it keeps no log of requests (``ScriptedProvider`` does, which would grow
    with the run). ``delay`` awaits that long per call, like a network round trip.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.ask = tool_calls(call("lookup", {"key": "k"}, id="call_1"))
        self.answer = reply(ANSWER)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.answer if request.messages[-1].tool_results else self.ask


def model(delay: float = 0.0) -> Model:
    return Model(delay)


def orra_tool(kind: str) -> FunctionTool:
    if kind == "inline":
        return tool(TOOLS[kind], name="lookup", blocking=False)
    return tool(TOOLS[kind], name="lookup")  # as a release without ``blocking`` takes it


# -- the floor: a plain loop over the same model and tool ------------------------------


class FloorStore:
    """The floor's persistence: a dict in memory, or the same rows in SQLite, one
    transaction per user message; the history is kept in memory, as orra-di's
    stores cache it."""

    def __init__(self, path: Path | None = None, synchronous: str = "NORMAL") -> None:
        self.history: dict[str, list[Message]] = {}
        self.conn: sqlite3.Connection | None = None
        if path is not None:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, key TEXT UNIQUE,"
                " updated_at TEXT, message_count INTEGER)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS messages (session_id INTEGER, seq INTEGER,"
                " body TEXT, PRIMARY KEY (session_id, seq)) WITHOUT ROWID"
            )
            self.conn = conn

    def persist(self, key: str, history: list[Message], new: list[Message]) -> None:
        if self.conn is None:
            return  # the history list is the store
        conn, bodies = self.conn, dump_messages(new)
        now = datetime.now(UTC).isoformat()
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute(
            "UPDATE sessions SET updated_at = ?, message_count = message_count + ?"
            " WHERE key = ? RETURNING id, message_count",
            (now, len(bodies), key),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO sessions (key, updated_at, message_count) VALUES (?, ?, ?)"
                " RETURNING id, message_count",
                (key, now, len(bodies)),
            ).fetchone()
        first = row[1] - len(bodies)
        conn.executemany(
            "INSERT INTO messages VALUES (?, ?, ?)",
            ((row[0], first + i, b) for i, b in enumerate(bodies)),
        )
        conn.execute("COMMIT")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


class Floor:
    """A direct async loop: append, call the model, run the tool, until it answers."""

    def __init__(self, llm: Model, kind: str, store: FloorStore) -> None:
        self.llm = llm
        self.func = TOOLS[kind]
        self.is_async = kind == "async"
        self.store = store
        self.tools = [ToolDefinition(name="lookup", description="Look a key up.", input_schema={})]

    async def run(self, key: str, text: str) -> Message:
        history = self.store.history.setdefault(key, [])
        start = len(history)
        history.append(Message.user(text))
        while True:
            request = _request(history, self.tools)
            response = await self.llm.complete(request)
            history.append(response.message)
            if not response.message.tool_calls:
                break
            results = []
            for c in response.message.tool_calls:
                out = self.func(**c.arguments)
                if self.is_async:
                    out = await out
                results.append(ToolResult(call_id=c.id, content=out))
            history.append(Message.tool_result(results))
        self.store.persist(key, history, history[start:])
        return response.message


def _request(history: list[Message], tools: list[ToolDefinition]) -> CompletionRequest:
    """The request without validation (the floor's messages are valid already) and
    without ``model_construct``, whose generic field loop costs more than validating."""
    request = object.__new__(CompletionRequest)
    fields = {"messages": history, "tools": tools, "max_tokens": None}
    fields.update(temperature=None, model=None)
    object.__setattr__(request, "__dict__", fields)
    object.__setattr__(request, "__pydantic_fields_set__", {"messages", "tools"})
    object.__setattr__(request, "__pydantic_extra__", None)
    object.__setattr__(request, "__pydantic_private__", None)
    return request


# -- the workloads ---------------------------------------------------------------------

Run = Callable[[str, str], Awaitable[object]]


@dataclass
class Side:
    """One side of a workload: how to build a runner, and how to close it."""

    make: Callable[[int], tuple[Run, Callable[[], Awaitable[None]]]]
    cpu: list[float] = field(default_factory=list)
    """W1: the process's CPU µs per message (user + system, every thread) of each round."""


def memory_sides(kind: str, delay: float = 0.0) -> tuple[Side, Side]:
    def floor(_round: int) -> tuple[Run, Callable[[], Awaitable[None]]]:
        return Floor(model(delay), kind, FloorStore()).run, _nothing

    def orra(_round: int) -> tuple[Run, Callable[[], Awaitable[None]]]:
        store = InMemoryStore()
        rt = Runtime(model(delay), store, tools=[orra_tool(kind)])
        return _by_key(rt), store.aclose

    return Side(floor), Side(orra)


def sqlite_sides(
    directory: Path, synchronous: Literal["NORMAL", "FULL"], orra_di: Literal["RUN"] | None = None
) -> tuple[Side, Side]:
    """The floor at ``synchronous``; orra-di at the same, or at ``orra_di`` (RUN: its steps
    without an fsync, the run's last write with one, as durable as the floor's message)."""

    def floor(r: int) -> tuple[Run, Callable[[], Awaitable[None]]]:
        store = FloorStore(directory / f"floor{r}.sqlite3", synchronous)

        async def close() -> None:
            store.close()

        return Floor(model(), "sync", store).run, close

    def orra(r: int) -> tuple[Run, Callable[[], Awaitable[None]]]:
        store: SessionStore = SQLiteStore(
            directory / f"orra{r}.sqlite3", synchronous=orra_di or synchronous
        )
        rt = Runtime(model(), store, tools=[orra_tool("sync")])
        return _by_key(rt), store.aclose

    return Side(floor), Side(orra)


def _by_key(rt: Runtime) -> Run:
    """The floor takes a key; orra-di a Namespace, built once per session (an
    application parses it from its request, which is not orra-di's cost)."""
    namespaces: dict[str, Namespace] = {}

    async def run(key: str, text: str) -> object:
        namespace = namespaces.get(key)
        if namespace is None:
            namespace = namespaces[key] = Namespace(*key.split("/"))
        return await rt.run(namespace, text)

    return run


async def _nothing() -> None:
    return None


async def sequential(side: Side, r: int, sessions: int, per_session: int) -> float:
    """µs per message, ``sessions`` x ``per_session`` one after another."""
    run, close = side.make(r)
    await run("warmup/w", "warm up")
    start, cpu = time.perf_counter(), time.process_time()
    for s in range(sessions):
        key = f"bench/user{s}"
        for m in range(per_session):
            await run(key, f"message {m}")
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    await close()
    side.cpu.append(cpu / (sessions * per_session) * 1e6)
    return elapsed / (sessions * per_session) * 1e6


async def concurrent(side: Side, r: int, sessions: int, per_session: int) -> float:
    """Messages/s, ``sessions`` each sending ``per_session`` messages, all at once."""
    run, close = side.make(r)
    await run("warmup/w", "warm up")

    async def session(s: int) -> None:
        for m in range(per_session):
            await run(f"bench/user{s}", f"message {m}")

    start = time.perf_counter()
    await asyncio.gather(*(session(s) for s in range(sessions)))
    elapsed = time.perf_counter() - start
    await close()
    return sessions * per_session / elapsed


async def growth(side: Side, r: int, messages: int) -> float:
    """Median time of a message in the last tenth / in the first tenth of one session."""
    run, close = side.make(r)
    times = []
    for m in range(messages):
        start = time.perf_counter()
        await run("bench/long", f"message {m}")
        times.append(time.perf_counter() - start)
    await close()
    tenth = messages // 10
    # Medians, not sums: one pause (another process, a GC pass) in either tenth
    # would otherwise swing the ratio on a shared machine.
    return statistics.median(times[-tenth:]) / statistics.median(times[:tenth])


async def alternate(
    floor: Side,
    orra: Side,
    measure: Callable[[Side, int], Awaitable[float]],
    pick: Callable[[list[float]], float],
) -> tuple[float, float]:
    """``pick`` of ``ROUNDS`` rounds per side, the two sides taking turns."""
    figures: dict[str, list[float]] = {"floor": [], "orra": []}
    for r in range(ROUNDS):
        for name, side in (("floor", floor), ("orra", orra)):
            gc.collect()
            figures[name].append(await measure(side, r))
    return pick(figures["floor"]), pick(figures["orra"])


def _w1(floor: float, orra: float, floor_side: Side, orra_side: Side) -> dict[str, float]:
    """W1's figures: wall time (the fastest round) and CPU time (the least of a round)."""
    cpu_floor, cpu_orra = min(floor_side.cpu), min(orra_side.cpu)
    return {"floor": floor, "orra": orra, "cpu_floor": cpu_floor, "cpu_orra": cpu_orra}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def child(workload: str) -> dict[str, float]:
    """Measure one workload in this process; returns its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if workload in ("w1-memory-sync", "w1-memory-inline", "w1-memory-async"):
            sides = memory_sides(workload.rsplit("-", 1)[1])
            floor, orra = await alternate(*sides, lambda s, r: sequential(s, r, 200, 5), min)
            return _w1(floor, orra, *sides)
        elif workload in ("w1-sqlite-full", "w1-sqlite-run", "w1-sqlite-normal"):
            sync: Literal["NORMAL", "FULL"] = "NORMAL" if workload.endswith("normal") else "FULL"
            sides = sqlite_sides(directory, sync, "RUN" if workload.endswith("run") else None)
            sessions = 40 if sync == "FULL" else 100  # an fsync per commit is slow
            floor, orra = await alternate(*sides, lambda s, r: sequential(s, r, sessions, 5), min)
            return _w1(floor, orra, *sides)
        elif workload == "w2":
            before = _peak_rss_mb()
            floor_side, orra_side = memory_sides("sync", delay=0.005)
            floor = await concurrent(floor_side, 0, 500, 3)
            floor_rss = _peak_rss_mb()
            orra = await concurrent(orra_side, 0, 500, 3)
            orra_rss = _peak_rss_mb()
            floor2 = await concurrent(floor_side, 1, 500, 3)
            orra2 = await concurrent(orra_side, 1, 500, 3)
            return {
                "floor": max(floor, floor2),
                "orra": max(orra, orra2),
                "rss_start": before,
                "rss_floor": floor_rss,
                "rss_orra": orra_rss,
            }
        elif workload in ("w3-sqlite", "w3-memory"):
            if workload == "w3-sqlite":
                sides = sqlite_sides(directory, "NORMAL")
            else:
                sides = memory_sides("sync")
            floor, orra = await alternate(
                *sides, lambda s, r: growth(s, r, 1000), statistics.median
            )
        else:
            raise SystemExit(f"unknown workload {workload!r}; known: {', '.join(WORKLOADS)}")
    return {"floor": floor, "orra": orra}


# -- the parent: fresh processes, medians, ratios, the history -------------------------


@dataclass(frozen=True)
class Workload:
    label: str
    unit: str
    kind: Literal["cost", "rate", "growth"]
    target: float
    """cost: orra-di/floor at most; rate: orra-di/floor at least; growth: orra-di's at most."""


WORKLOADS: dict[str, Workload] = {
    "w1-memory-sync": Workload("W1 memory, sync def tool", "µs/msg", "cost", 12),
    "w1-memory-inline": Workload("W1 memory, def tool blocking=False", "µs/msg", "cost", 8),
    "w1-memory-async": Workload("W1 memory, async tool", "µs/msg", "cost", 8),
    "w1-sqlite-full": Workload("W1 SQLite synchronous=FULL", "µs/msg", "cost", 2),
    "w1-sqlite-run": Workload("W1 SQLite FULL, orra-di at RUN", "µs/msg", "cost", 2),
    "w1-sqlite-normal": Workload("W1 SQLite synchronous=NORMAL", "µs/msg", "cost", 2),
    "w2": Workload("W2 memory 500x3, 5 ms model", "msg/s", "rate", 0.30),
    "w3-sqlite": Workload("W3 SQLite growth 901-1000/1-100", "ratio", "growth", 1.2),
    "w3-memory": Workload("W3 memory growth 901-1000/1-100", "ratio", "growth", 1.2),
}
RSS_TARGET_MB = 60.0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cpus, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True)
        return done.stdout.strip()

    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    # The history file itself is not the code measured: a run recorded after another
    # (not committed yet) measures the same tree.
    changed = git(
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        ":(top)",
        ":(top,exclude)benchmarks/history.csv",
    )
    return sha + ("-dirty" if changed else "")


@contextmanager
def _load_report() -> Iterator[list[float]]:
    loads = [os.getloadavg()[0]]
    yield loads
    loads.append(os.getloadavg()[0])


def spawn(workload: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", workload], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"{workload} failed:\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def ratio_of(w: Workload, figures: dict[str, float]) -> float:
    if w.kind == "growth":
        return figures["orra"]
    return figures["orra"] / figures["floor"]


def report(names: list[str], runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Print the table; return the medians for the history."""
    row: dict[str, Any] = {}
    print(
        f"{'workload':<34} {'unit':>6} {'floor':>9} {'orra-di':>9} {'ratio':>8} "
        f"{'target':>8}  {'ratio over the runs':<20}      {'CPU µs/msg: floor, orra-di, ratio'}"
    )
    for name in names:
        w, per_run = WORKLOADS[name], runs[name]
        floor = statistics.median(f["floor"] for f in per_run)
        orra = statistics.median(f["orra"] for f in per_run)
        ratios = [ratio_of(w, f) for f in per_run]
        ratio = statistics.median(ratios)
        if w.kind == "cost":
            shown, target, ok = f"{ratio:.1f}x", f"<= {w.target:g}x", ratio <= w.target
        elif w.kind == "rate":
            shown, target, ok = f"{ratio:.0%}", f">= {w.target:.0%}", ratio >= w.target
        else:
            shown, target, ok = f"{ratio:.2f}", f"<= {w.target:g}", ratio <= w.target
        spread = ", ".join(f"{r:.1f}" if w.kind == "cost" else f"{r:.2f}" for r in sorted(ratios))
        digits = 2 if w.kind == "growth" else 1 if w.unit == "µs/msg" else 0
        cpu = ""
        if "cpu_floor" in per_run[0]:
            cpu_floor = statistics.median(f["cpu_floor"] for f in per_run)
            cpu_orra = statistics.median(f["cpu_orra"] for f in per_run)
            cpu_ratio = statistics.median(f["cpu_orra"] / f["cpu_floor"] for f in per_run)
            cpu = f"{cpu_floor:>7.1f} {cpu_orra:>8.1f} {cpu_ratio:>6.1f}x"
            row[f"{name}_cpu_floor"], row[f"{name}_cpu_orra"] = (
                round(cpu_floor, 3),
                round(cpu_orra, 3),
            )
        print(
            f"{w.label:<34} {w.unit:>6} {floor:>9.{digits}f} {orra:>9.{digits}f} {shown:>8} "
            f"{target:>8}  {spread:<20} {'ok' if ok else 'MISSED':<6} {cpu}"
        )
        row[f"{name}_floor"], row[f"{name}_orra"] = round(floor, 3), round(orra, 3)
        if name == "w2":
            rss = statistics.median(f["rss_orra"] for f in per_run)
            rss_floor = statistics.median(f["rss_floor"] for f in per_run)
            start = statistics.median(f["rss_start"] for f in per_run)
            print(
                f"{'W2 peak RSS (whole process)':<34} {'MB':>6} {rss_floor:>9.0f} {rss:>9.0f} "
                f"{'':>8} {f'<= {RSS_TARGET_MB:g}':>8}  after imports {start:.0f} MB"
                f"{'':<5} {'ok' if rss <= RSS_TARGET_MB else 'MISSED'}"
            )
            row["w2_rss_floor_mb"], row["w2_rss_orra_mb"] = round(rss_floor, 1), round(rss, 1)
    return row


def record(row: dict[str, Any]) -> None:
    columns = ["commit", "date", "machine", "load", "runs"]
    for name in WORKLOADS:
        columns += [f"{name}_floor", f"{name}_orra"]
        if name.startswith("w1-"):
            columns += [f"{name}_cpu_floor", f"{name}_cpu_orra"]
        if name == "w2":
            columns += ["w2_rss_floor_mb", "w2_rss_orra_mb"]
    rows: list[dict[str, Any]] = []
    if HISTORY.exists():
        with HISTORY.open(newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != columns:  # a workload was added: rewrite the header
                rows = list(reader)
    if rows or not HISTORY.exists():
        with HISTORY.open("w", newline="") as f:
            writer = csv.DictWriter(f, columns)
            writer.writeheader()
            writer.writerows(rows)
    with HISTORY.open("a", newline="") as f:
        csv.DictWriter(f, columns).writerow(row)
    print(f"appended a row to {HISTORY.relative_to(HERE.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", help=f"some of: {', '.join(WORKLOADS)}")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per workload")
    parser.add_argument("--record", action="store_true", help=f"append a row to {HISTORY.name}")
    parser.add_argument(
        "--commit",
        help="the commit to name in the output and history (default: this checkout's); "
        "for measuring another tree of orra_di put first on PYTHONPATH",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(args.child))))
        return
    names = args.workloads or list(WORKLOADS)
    for name in names:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    sha, host = args.commit or commit(), machine()
    print(f"commit {sha}  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {host}")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    with _load_report() as loads:
        for _ in range(args.runs):  # round-robin, so a burst of load hits every workload
            for name in names:
                runs[name].append(spawn(name))
    print(
        f"{args.runs} fresh processes per workload, {ROUNDS} alternating rounds in each; "
        f"load average {loads[0]:.2f} at start, {loads[1]:.2f} at end\n"
    )
    row = report(names, runs)
    if args.record:
        row.update(
            commit=sha,
            date=datetime.now(UTC).isoformat(timespec="seconds"),
            machine=host,
            load=f"{loads[0]:.2f}-{loads[1]:.2f}",
            runs=args.runs,
        )
        record(row)


if __name__ == "__main__":
    main()
