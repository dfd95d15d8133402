"""What the cron process tests run in worker processes (``spawn``: fresh interpreters, as
other replicas would be), so their targets live at module level."""

from __future__ import annotations

import multiprocessing.synchronize
from typing import Any

import anyio

from orra_di import AgentProfile, Runtime
from orra_di.cron import CronService, cron_store_for
from orra_di.runtime_set import RuntimeMap
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider, reply


def run_replica(
    url: str,
    options: dict[str, Any],
    ready: multiprocessing.synchronize.Event,
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """A replica: once ``go`` is set, run due jobs until ``stop`` is set."""

    async def main() -> None:
        sessions = open_store(url, **options)
        try:
            service = CronService(cron_store_for(sessions), sessions, batch=7)
            ready.set()
            await anyio.to_thread.run_sync(go.wait, 120)
            while not stop.is_set():
                await service.run_due()
                await anyio.sleep(0.01)
        finally:
            await sessions.aclose()

    anyio.run(main)


def run_hanging_agent(url: str, options: dict[str, Any], job_id: str) -> None:
    """A replica whose agent never answers: the parent kills it mid-run."""

    async def main() -> None:
        sessions = open_store(url, **options)

        async def hang(request: Any) -> Any:
            await anyio.sleep(3600)
            return reply("never")

        runtimes = RuntimeMap(
            [AgentProfile(name="assistant")],
            lambda profile: Runtime(ScriptedProvider(hang), sessions),
        )
        service = CronService(cron_store_for(sessions), sessions, runtimes, lease=1.0)
        await service.run_now(job_id)

    anyio.run(main)
