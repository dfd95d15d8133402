"""MCP benchmark: what a tool call through :class:`McpTool` costs over the wire.

    python benchmarks/bench_mcp.py                 # 300 calls each way
    python benchmarks/bench_mcp.py --calls 1000

The demo server of the tests (``tests/mcp/servers/demo.py``, written with the
official SDK) is started once over stdio and once over Streamable HTTP on
127.0.0.1; its ``add`` tool is then called through ``McpTool.execute`` (the path an
agent's call takes: argument check, the SDK session, the transport, the server, the
result rendered to text). The floor is the same function called directly in this
process, through a ``FunctionTool`` run inline (``blocking=False``: the same argument
validation, no worker thread), what the tool costs as an app tool.
The SDK's ``ClientSession.call_tool`` on the same connection is timed too: the gap
between it and ``McpTool`` is what orra-di adds (timeout, relay, rendering). For each:
p50 and p99 in microseconds, and the ratio of each p50 to the floor's.

The calls run one after another (a model's tool calls of one turn are few); the
load average is printed, since a busy machine shows in the figures at once.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio

from orra_di.mcp.client import McpClients
from orra_di.mcp.settings import McpSettings
from orra_di.tool import FunctionTool, ToolContext

DEMO = str(Path(__file__).resolve().parents[1] / "tests" / "mcp" / "servers" / "demo.py")
CTX = ToolContext("bench:mcp")


def add(a: int, b: int) -> int:
    """Add two integers (the demo server's ``add``)."""
    return a + b


async def measure(call: Callable[[], Awaitable[str]], calls: int) -> list[float]:
    for _ in range(min(50, calls)):  # warm-up: connections, caches, the JIT-less paths
        await call()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        await call()
        times.append((time.perf_counter_ns() - start) / 1000)
    return times


def figures(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def over(server: dict[str, object], calls: int) -> tuple[list[float], list[float]]:
    """Times through ``McpTool``, and through the SDK's session alone (same connection)."""
    settings = McpSettings.model_validate({"servers": {"demo": server}})
    async with McpClients(settings) as clients:
        tool = next(t for t in clients.tools() if t.definition.name == "add")
        session = clients.servers["demo"]._session  # the SDK's ClientSession
        assert session is not None

        async def raw() -> str:
            result = await session.call_tool("add", {"a": 2, "b": 40})
            return str(result.content)

        through_tool = await measure(lambda: tool.execute({"a": 2, "b": 40}, CTX), calls)
        return through_tool, await measure(raw, calls)


def http_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, DEMO, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the HTTP demo server did not start")


async def main(calls: int) -> None:
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {calls} calls each")
    direct = FunctionTool(add, blocking=False)  # inline: no worker-thread hop
    rows = [
        (
            "direct FunctionTool (floor)",
            await measure(lambda: direct.execute({"a": 2, "b": 40}, CTX), calls),
        )
    ]
    tool, raw = await over({"command": sys.executable, "args": [DEMO]}, calls)
    rows += [("McpTool over stdio", tool), ("  SDK session alone, stdio", raw)]
    process, url = http_server()
    try:
        tool, raw = await over({"url": url}, calls)
        rows += [("McpTool over Streamable HTTP", tool), ("  SDK session alone, HTTP", raw)]
    finally:
        process.kill()
        process.wait()
    floor = figures(rows[0][1])[0]
    print(f"{'path':<32}{'p50 µs':>10}{'p99 µs':>10}{'p50 / floor':>14}")
    for name, times in rows:
        p50, p99 = figures(times)
        print(f"{name:<32}{p50:>10.0f}{p99:>10.0f}{p50 / floor:>13.0f}x")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    anyio.run(main, parser.parse_args().calls)
