"""Built-in tools benchmark: what ``exec`` costs per call, and what ``web_fetch`` holds in memory.

E1  ``exec`` of ``true``: p50 and p99 of 200 calls through the tool (split, allowlist by
    path, clean environment, new process group, output capture, group kill), against the
    FLOOR measured in the same run: ``asyncio.create_subprocess_exec("true")`` and ``wait()``.
E2  ``web_fetch`` of a 100 MB body from a loopback server (in another process): the peak of
    Python allocations (tracemalloc) during the fetch, with the default 5 MB ``max_bytes``,
    against the FLOOR: ``httpx.AsyncClient().get()`` of the same URL, which holds the whole
    body. The figure to watch is that the tool's peak follows ``max_bytes``, not the body.

    python benchmarks/bench_tools.py
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import platform
import statistics
import sys
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from orra_di.tool import ToolContext
from orra_di.tools.exec import exec_tool
from orra_di.tools.settings import ExecSettings, WebSettings
from orra_di.tools.web import web_fetch_tool

CALLS = 200
BODY = 100 * 1024 * 1024
CHUNK = b"x" * 65536


def _quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]


async def bench_exec() -> None:
    tool = exec_tool(ExecSettings(enabled=True, allow=["true"]))
    ctx = ToolContext("bench")
    tool_times: list[float] = []
    floor_times: list[float] = []
    for _ in range(CALLS):  # alternate, so both see the same load
        start = time.perf_counter()
        process = await asyncio.create_subprocess_exec("true")
        await process.wait()
        floor_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        await tool.execute({"command": "true"}, ctx)
        tool_times.append(time.perf_counter() - start)
    (t50, t99), (f50, f99) = _quantiles(tool_times), _quantiles(floor_times)
    print(f"E1 exec of true, {CALLS} calls")
    print(
        f"   floor (create_subprocess_exec + wait): p50 {f50 * 1e3:.2f} ms, p99 {f99 * 1e3:.2f} ms"
    )
    print(
        f"   exec tool:                             p50 {t50 * 1e3:.2f} ms, p99 {t99 * 1e3:.2f} ms"
    )
    print(f"   ratio p50 {t50 / f50:.2f}x, p99 {t99 / f99:.2f}x")


def _serve(port_queue: multiprocessing.Queue[int]) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(BODY))
            self.end_headers()
            try:
                for _ in range(BODY // len(CHUNK)):
                    self.wfile.write(CHUNK)
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


async def _peak(coro_factory: object) -> tuple[float, float]:
    tracemalloc.start()
    start = time.perf_counter()
    await coro_factory()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6, elapsed


async def bench_web(url: str) -> None:
    import httpx

    settings = WebSettings(enabled=True, allow_networks=["127.0.0.0/8"])
    tool = web_fetch_tool(settings)
    ctx = ToolContext("bench")

    async def floor() -> None:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.get(url)
            assert len(response.content) == BODY

    async def fetch() -> None:
        await tool.execute({"url": url}, ctx)

    floor_peak, floor_time = await _peak(floor)
    tool_peak, tool_time = await _peak(fetch)
    print(f"E2 web_fetch of a {BODY // 2**20} MB body (max_bytes {settings.max_bytes:,})")
    print(f"   floor (httpx get, whole body): peak {floor_peak:.1f} MB, {floor_time:.2f} s")
    print(f"   web_fetch tool:                peak {tool_peak:.1f} MB, {tool_time:.2f} s")
    print(f"   ratio of peaks {tool_peak / floor_peak:.3f}")


def main() -> None:
    print(f"{platform.machine()} {platform.python_version()} cpus={os.cpu_count()}")
    asyncio.run(bench_exec())
    ports: multiprocessing.Queue[int] = multiprocessing.Queue()
    server = multiprocessing.Process(target=_serve, args=(ports,), daemon=True)
    server.start()
    try:
        asyncio.run(bench_web(f"http://127.0.0.1:{ports.get(timeout=10)}/big"))
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
