"""Start-up time of the ``orra-di`` command: what a user waits for before anything happens.

    python benchmarks/bench_startup.py          # 10 runs of each command
    python benchmarks/bench_startup.py 20       # 20 runs of each

Prints the modules that cost most to import (``python -X importtime``) for
``orra-di --help`` and for an offline ``orra-di ask``, then the median and the
range of the wall time of each command, run as a real process. Every run gets a
fresh temporary directory as its working directory, data directory and SQLite
store, with no ``ORRA_*`` or vendor key variable, so no state leaks from one run
to the next nor from the developer's shell. The code measured is this checkout's
(its root goes first on ``PYTHONPATH``). The load average is printed at the start
and the end: other work on the machine shows in the figures.

Targets (issue 8, item 14): ``--help`` ≤ 0.3 s, offline ``ask`` ≤ 0.6 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS: dict[str, list[str]] = {
    "--help": ["--help"],
    "ask (offline)": ["ask", "hello", "-n", "bench:startup"],
}
TOP = 15


def cli() -> list[str]:
    """The console script beside this interpreter, else the same entry point through -c."""
    script = Path(sys.executable).with_name("orra-di")
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from orra_di.cli import main; main()"]


def clean_env(workdir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["ORRA_STORE__URL"] = f"sqlite:///{workdir}/s.sqlite3"
    env["XDG_DATA_HOME"] = str(workdir / "xdg")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with compiled bytecode, as users run
    return env


def run(args: list[str], *, importtime: bool = False) -> tuple[float, str]:
    """One run in a fresh directory: (wall seconds, stderr)."""
    with tempfile.TemporaryDirectory(prefix="orra-startup-") as tmp:
        workdir = Path(tmp)
        command = cli()
        if importtime:
            command = [command[0], "-X", "importtime", *command[1:]]
        start = time.perf_counter()
        done = subprocess.run(
            [*command, *args],
            cwd=workdir,
            env=clean_env(workdir),
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"orra-di {' '.join(args)} failed:\n{done.stderr}")
    return elapsed, done.stderr


def offenders(stderr: str) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, indented module) of each import, most expensive first."""
    rows: list[tuple[int, int, str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|", 2)
        rows.append((int(cumulative), int(own), name.rstrip()))
    return sorted(rows, reverse=True)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    print(f"orra-di start-up, {runs} runs each, {os.cpu_count()} CPUs, load {load()}")
    print(f"code measured: {ROOT}")
    for label, args in COMMANDS.items():
        run(args)  # warm the bytecode cache and the page cache
        _, stderr = run(args, importtime=True)
        rows = offenders(stderr)
        print(f"\n{label}: {len(rows)} modules imported; top {TOP} by cumulative import time")
        print(f"  {'cumul ms':>8} {'self ms':>8}  module")
        for cumulative, own, name in rows[:TOP]:
            print(f"  {cumulative / 1000:8.1f} {own / 1000:8.1f}  {name}")
    print()
    for label, args in COMMANDS.items():
        times = sorted(run(args)[0] for _ in range(runs))
        print(
            f"{label:>14}: median {statistics.median(times):.3f} s "
            f"(min {times[0]:.3f}, max {times[-1]:.3f})"
        )
    print(f"\nload at the end {load()}")


if __name__ == "__main__":
    main()
