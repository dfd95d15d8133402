"""Pending approvals outlive the process that would answer them, on every shared backend.

The parent runs an agent whose call waits for approval through the store. A first
approver process picks the request and is killed before answering (a CLI closed,
a replica restarted); a second, fresh process finds the request in the store,
approves it, and the parent's waiting call is released: the tool runs once.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di import Namespace, Runtime, tool
from orra_di.approvals import ApprovalHook, ApprovalStatus, approval_store_for
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

from . import workers

pytestmark = pytest.mark.anyio

BOUND = 120  # seconds: processes start slowly on a loaded machine; never asserted on


@pytest.fixture(
    params=[
        "sqlite",
        "file",
        pytest.param("postgres", marks=pytest.mark.service),
        pytest.param("redis", marks=pytest.mark.service),
    ]
)
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A store URL and the options every process opens it with."""
    kind = request.param
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}", {}
    elif kind == "file":
        yield f"file://{tmp_path / 'sessions'}", {}
    elif kind == "postgres":
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield POSTGRES_URL, {"schema": schema}
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        require_redis()
        from redis.asyncio import Redis

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield REDIS_URL, {"key_prefix": prefix}
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()


async def test_an_answer_from_another_process_releases_the_call(
    backend: tuple[str, dict[str, Any]],
) -> None:
    url, options = backend
    namespace = Namespace("acme", secrets.token_hex(4))
    ran: list[str] = []

    @tool(name="exec")
    def exec_(cmd: str) -> str:
        """Run a command."""
        ran.append(cmd)
        return f"ran {cmd}"

    def script(request: Any) -> Any:
        if request.messages[-1].tool_results:
            return reply("done")
        return tool_calls(call("exec", {"cmd": "deploy"}, id="c1"))

    sessions = open_store(url, **options)
    context = multiprocessing.get_context("spawn")
    try:
        approvals = approval_store_for(sessions, poll_interval=0.05)
        hook = ApprovalHook(store=approvals, timeout=BOUND)
        runtime = Runtime(ScriptedProvider(script), sessions, tools=[exec_], hooks=[hook])
        picked = context.Event()
        dying = context.Process(
            target=workers.answer_pending,
            args=(url, options, namespace.key, "dies", picked, True),
        )
        with anyio.fail_after(BOUND):
            async with anyio.create_task_group() as tg:

                async def approvers() -> None:
                    dying.start()
                    assert await anyio.to_thread.run_sync(picked.wait, BOUND)
                    assert dying.pid is not None
                    os.kill(dying.pid, signal.SIGKILL)
                    await anyio.to_thread.run_sync(dying.join, BOUND)
                    # The request is still pending, in the store, for anyone to answer.
                    restarted = open_store(url, **options)
                    try:
                        (pending,) = await approval_store_for(restarted).pending()
                    finally:
                        await restarted.aclose()
                    assert pending.namespace == namespace.key and pending.tool == "exec"
                    answered = context.Event()
                    answering = context.Process(
                        target=workers.answer_pending,
                        args=(url, options, namespace.key, "ops", answered, False),
                    )
                    answering.start()
                    await anyio.to_thread.run_sync(answering.join, BOUND)
                    assert answering.exitcode == 0

                tg.start_soon(approvers)
                result = await runtime.run(namespace, "deploy it")
        assert result.turns[0].tool_results[0].content == "ran deploy"
        assert ran == ["deploy"]
        (record,) = await approvals.history(namespace)
        assert (record.status, record.decided_by, record.reason, record.call_id) == (
            ApprovalStatus.APPROVED,
            "ops",
            "from another process",
            "c1",
        )
    finally:
        await sessions.aclose()
