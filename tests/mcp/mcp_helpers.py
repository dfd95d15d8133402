"""Settings for the demo MCP server (``servers/demo.py``), spawned for real by the tests."""

from __future__ import annotations

import itertools
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from orra_di.mcp.settings import McpSettings

DEMO = str(Path(__file__).parent / "servers" / "demo.py")


def stdio_server(*args: str, **options: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [DEMO, *args], **options}


def settings(servers: dict[str, dict[str, Any]], **options: Any) -> McpSettings:
    return McpSettings.model_validate({"servers": servers, **options})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_http_demo(port: int) -> subprocess.Popen[bytes]:
    """The demo server on Streamable HTTP at 127.0.0.1:port, once it accepts connections."""
    process = subprocess.Popen(
        [sys.executable, DEMO, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the HTTP demo server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the HTTP demo server did not start")


async def wait_until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    with anyio.fail_after(within):
        for _ in itertools.count():
            if condition():
                return
            await anyio.sleep(0.01)
