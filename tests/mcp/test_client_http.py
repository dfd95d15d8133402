"""MCP servers over Streamable HTTP: the demo server (``servers/demo.py``) serving on
127.0.0.1, reached with the SDK's client as in production."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from mcp_helpers import free_port, settings, start_http_demo, wait_until

from orra_di.errors import ToolExecutionError
from orra_di.mcp.client import McpClients, ServerStatus
from orra_di.tool import ToolContext, ToolRegistry

pytestmark = pytest.mark.anyio

CTX = ToolContext("acme:alice", "c1")


@pytest.fixture
def http_demo() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = start_http_demo(port)
    try:
        yield f"http://127.0.0.1:{port}/mcp", process
    finally:
        process.kill()
        process.wait()


async def test_http_server_list_call_error_timeout_change_and_loss(
    http_demo: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = http_demo
    server = {"url": url, "headers": {"Authorization": "Bearer s3cret"}, "prefix": "web_"}
    async with McpClients(settings({"web": server}, call_timeout=1.5)) as clients:
        registry = ToolRegistry(clients.tools())
        clients.attach(registry)
        assert {"web_echo", "web_add", "web_whoami", "web_grow"} <= set(registry.names())
        echo, add, fail = (
            registry.get("web_echo"),
            registry.get("web_add"),
            registry.get("web_fail"),
        )
        assert echo is not None and add is not None and fail is not None

        assert await echo.execute({"text": "over http"}, CTX) == "over http"
        assert await add.execute({"a": 1, "b": 2}, CTX) == "3"
        whoami = registry.get("web_whoami")
        assert whoami is not None
        assert await whoami.execute({}, CTX) == "Bearer s3cret"  # the header, as a secret
        assert "s3cret" not in repr(clients.settings)
        with pytest.raises(ToolExecutionError, match="nope"):
            await fail.execute({"message": "nope"}, CTX)

        slow = registry.get("web_slow")
        assert slow is not None
        started = time.monotonic()
        with pytest.raises(ToolExecutionError, match=r"within 1\.5 s"):
            await slow.execute({"seconds": 30}, CTX)
        assert time.monotonic() - started < 5

        grow = registry.get("web_grow")
        assert grow is not None
        assert await grow.execute({}, CTX) == "grown"
        await wait_until(lambda: "web_extra" in registry)
        extra = registry.get("web_extra")
        assert extra is not None
        assert await extra.execute({}, CTX) == "extra!"

        # the server dies: the call fails within the timeout, and a new connection is tried
        process.kill()
        process.wait()
        started = time.monotonic()
        with pytest.raises(ToolExecutionError, match="went away during the call to 'echo'"):
            await echo.execute({"text": "anyone?"}, CTX)
        assert time.monotonic() - started < 5
        # the next call connects afresh, and says why it cannot
        with pytest.raises(ToolExecutionError, match=r"MCP server 'web' \(http://127\.0\.0\.1"):
            await echo.execute({"text": "still nobody"}, CTX)
        assert clients.servers["web"].status is ServerStatus.FAILED
