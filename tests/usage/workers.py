"""Usage-ledger work run in spawned worker processes (targets live at module level)."""

from __future__ import annotations

import multiprocessing.synchronize
from typing import Any

import anyio

from orra_di.errors import BudgetExceededError
from orra_di.stores import open_store
from orra_di.usage import Budget, Budgets, usage_ledger_for


def record_calls(
    url: str,
    options: dict[str, Any],
    key: str,
    calls: int,
    start: multiprocessing.synchronize.Barrier,
) -> None:
    """Record ``calls`` model calls of 3 + 2 tokens each on ``key``, all workers at once."""

    async def main() -> None:
        store = open_store(url, **options)
        ledger = usage_ledger_for(store)
        start.wait()
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(calls):
                    tg.start_soon(_one, ledger, key)
        finally:
            await store.aclose()

    anyio.run(main)


async def _one(ledger: Any, key: str) -> None:
    from orra_di.provider import Usage

    await ledger.record(key, Usage(input_tokens=3, output_tokens=2), model_calls=1)


def reserve_many(
    url: str,
    options: dict[str, Any],
    key: str,
    limit: int,
    attempts: int,
    start: multiprocessing.synchronize.Barrier,
    admitted: Any,
) -> None:
    """Try ``attempts`` reservations of 10 tokens against ``limit`` tokens per day."""

    async def main() -> None:
        store = open_store(url, **options)
        ledger = usage_ledger_for(store)
        budgets = Budgets({key: Budget(tokens_per_day=limit)})
        start.wait()
        count = 0
        try:
            for _ in range(attempts):
                try:
                    await ledger.reserve(key, budgets, tokens=10)
                    count += 1
                except BudgetExceededError:
                    pass
        finally:
            await store.aclose()
        with admitted.get_lock():
            admitted.value += count

    anyio.run(main)
