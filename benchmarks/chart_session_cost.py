"""The cost of one user message as the session grows, for orra-di and the peers, as a chart.

    benchmarks/.venv-peers/bin/python benchmarks/chart_session_cost.py
    benchmarks/.venv-peers/bin/python benchmarks/chart_session_cost.py sqlite langgraph-postgres

The workload is ``bench_stores.py``'s W3, message by message: one session, and
for each user message the time of one ``turn`` (for orra-di, a real
``Runtime.run`` with ``bench_core``'s scripted model and tool: lock, load, four
appends; for a peer, the same persistence through its API: load the history,
then append the user message, the tool call, the tool result and the answer).
The time of every message is kept, so the chart shows how the cost moves along
the session instead of only the first and last tenths.

It prints, per target, the median time of one user message in buckets of 50
along the session and the ratio of the last bucket to the first, then draws
``docs/img/session-cost.png`` (matplotlib, in the benchmark's own venv: see
``benchmarks/README.md``; orra-di does not depend on it). Each target runs in a
fresh interpreter, on its own database, key prefix and directory, all removed
afterwards (``bench_stores.environment``). A target that runs for longer than
``ORRA_CHART_BUDGET`` seconds (default 120; 0 = no limit) stops there, and its
line ends where it stopped. ``ORRA_CHART_MESSAGES`` sets the session length
(default 1,000 user messages, i.e. 4,000 stored messages).

Timings depend on the machine and on what else runs on it: the load average is
printed at the start and the end; compare the lines of one run, not runs.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import bench_stores

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "img" / "session-cost.png"
TARGETS = ("sqlite", "postgresql", "redis", "agents-sqlite", "agents-redis", "langgraph-postgres")
MESSAGES = int(os.environ.get("ORRA_CHART_MESSAGES", "1000"))
BUDGET_SECONDS = float(os.environ.get("ORRA_CHART_BUDGET", "120"))
BUCKET = 50  # user messages per point of the chart
STEPS_PER_MESSAGE = 4  # stored messages per user message: user, tool call, tool result, answer
SESSION = "chart"


# -- one target, in its own process ---------------------------------------------------------------


async def measure(target: bench_stores.Target) -> list[float]:
    """Seconds taken by each user message of one growing session."""
    backend = await target.open()
    try:
        await backend.warm(SESSION)
        await backend.turn("chart-warm-up", 0)  # first-use costs (statements, scripts) go here
        times: list[float] = []
        deadline = time.monotonic() + BUDGET_SECONDS if BUDGET_SECONDS > 0 else math.inf
        for m in range(MESSAGES):
            start = time.perf_counter()
            await backend.turn(SESSION, m)
            times.append(time.perf_counter() - start)
            if time.monotonic() > deadline:
                break
        stored = await backend.load(SESSION)
        if stored != STEPS_PER_MESSAGE * len(times):
            raise RuntimeError(f"the session holds {stored} messages, not 4 per user message")
        return times
    finally:
        await backend.aclose()


def child(name: str, token: str) -> dict[str, Any]:
    try:
        bench_stores.make_target(name, bench_stores.Env("", "", "", ""))  # importable?
        with bench_stores.environment(name, token) as env:
            target = bench_stores.make_target(name, env)
            anyio.run(target.prepare)
            times = anyio.run(measure, target)
    except bench_stores.Skip as exc:
        return {"name": name, "skip": str(exc)}
    return {"name": name, "label": target.label, "times": times}


def run_child(name: str, token: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, token]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return result
    sys.stderr.write(done.stderr[-4000:])
    return {"name": name, "error": f"the target's process exited with {done.returncode}"}


# -- figures and chart ----------------------------------------------------------------------------


def buckets(times: list[float]) -> list[tuple[int, float]]:
    """(stored messages at the bucket's middle, median ms per user message) per bucket."""
    points = []
    for start in range(0, len(times), BUCKET):
        chunk = times[start : start + BUCKET]
        if len(chunk) < BUCKET // 2 and points:
            break  # a short last bucket (a stopped run) would be noise
        middle = start + len(chunk) / 2
        points.append((round(middle * STEPS_PER_MESSAGE), statistics.median(chunk) * 1e3))
    return points


def is_peer(name: str) -> bool:
    return name.startswith(("agents-", "langgraph-"))


def print_figures(results: list[dict[str, Any]]) -> None:
    print()
    print(
        f"Median ms per user message, in buckets of {BUCKET} user messages "
        f"({BUCKET * STEPS_PER_MESSAGE} stored messages); the column is the bucket's middle"
    )
    columns = [0, 1, 4, 9, 14, 19]  # bucket indexes: the start, and every quarter or so
    ran = [r for r in results if "times" in r]
    width = max([len(r["label"]) for r in ran] + [10]) + 2
    heads = [f"@{(i * BUCKET + BUCKET // 2) * STEPS_PER_MESSAGE:,}" for i in columns]
    print(" " * width + "".join(h.rjust(10) for h in heads) + "   last/first  messages")
    for r in ran:
        points = buckets(r["times"])
        cells = [f"{points[i][1]:,.2f}" if i < len(points) else "-" for i in columns]
        ratio = points[-1][1] / points[0][1]
        done = len(r["times"])
        mark = "" if done == MESSAGES else f" (stopped at {BUDGET_SECONDS:g} s)"
        print(
            r["label"].ljust(width)
            + "".join(c.rjust(10) for c in cells)
            + f"{ratio:>13.2f}  {done:,}{mark}"
        )
    for r in results:
        if "skip" in r:
            print(f"skipped {r['name']}: {r['skip']}")
        if "error" in r:
            print(f"failed {r['name']}: {r['error']}")


def draw(results: list[dict[str, Any]], load: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.8), dpi=110)
    for r in results:
        if "times" not in r:
            continue
        points = buckets(r["times"])
        peer = is_peer(r["name"])
        ax.plot(
            [x for x, _ in points],
            [y for _, y in points],
            linestyle="--" if peer else "-",
            linewidth=1.6 if peer else 2.4,
            marker="" if peer else "o",
            markersize=3,
            label=r["label"],
        )
    ax.set_yscale("log")
    ax.set_xlabel("messages already in the session")
    ax.set_ylabel("ms per user message (median of 50, log scale)")
    ax.set_title("Cost of one user message as the session grows")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left")
    fig.text(
        0.01,
        0.01,
        "Solid: orra-di's stores through a real Runtime (lock, load, 4 appends). Dashed: the "
        "peers' storage alone (load, 4 appends).\n"
        f"benchmarks/chart_session_cost.py; {os.cpu_count()} CPUs, load average {load}.",
        fontsize=7,
        color="0.35",
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print("RESULT " + json.dumps(child(argv[1], argv[2])), flush=True)
        return
    names = argv or list(TARGETS)
    unknown = [n for n in names if n not in bench_stores.TARGETS]
    if unknown:
        sys.exit(f"unknown target(s) {', '.join(unknown)}; the targets are {', '.join(TARGETS)}")
    token = secrets.token_hex(3)
    started = time.monotonic()
    start_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"session cost chart: {MESSAGES:,} user messages per session "
        f"(at most {BUDGET_SECONDS:g} s per target); load average at start: {start_load}",
        flush=True,
    )
    results = []
    try:
        for name in names:
            print(f"== {name}", flush=True)
            results.append(run_child(name, token))
    finally:
        bench_stores.sweep(token)
    print_figures(results)
    end_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total {time.monotonic() - started:.0f} s; load average at the end: {end_load}")
    if any("times" in r for r in results):
        draw(results, f"{start_load.split(',')[0]} at start, {end_load.split(',')[0]} at end")


if __name__ == "__main__":
    main(sys.argv[1:])
