"""The behaviour every usage-ledger backend must have, as a reusable test class.

A backend's test class subclasses :class:`LedgerConformance` and overrides
``new_store`` with a factory of session-store objects sharing one fresh storage
(the ledger lives beside the sessions, on the store's connection). Optional
``store_url``/``store_options`` let worker *processes* open the same storage.
"""

from __future__ import annotations

import multiprocessing
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from orra_di.errors import BudgetExceededError
from orra_di.provider import Usage
from orra_di.store import SessionStore
from orra_di.usage import Budget, Budgets, UsageLedger, UsageTotals, usage_backend_for

from . import workers

NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC).timestamp()
StoreFactory = Callable[[], SessionStore]
LedgerFactory = Callable[..., UsageLedger]


class Clock:
    """A settable clock, so windows and expiry are tested without waiting."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fresh() -> str:
    return f"t{secrets.token_hex(4)}"


async def join(process: multiprocessing.process.BaseProcess) -> int | None:
    await anyio.to_thread.run_sync(process.join, 120)
    return process.exitcode


class LedgerConformance:
    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def new_store(self) -> StoreFactory:
        raise NotImplementedError("a backend's test class must override new_store")

    @pytest.fixture
    def store_url(self) -> str | None:
        return None

    @pytest.fixture
    def store_options(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    async def new_ledger(self, new_store: StoreFactory) -> AsyncIterator[LedgerFactory]:
        """``new_ledger(clock=...)``: a ledger on a new store object over the same storage."""
        opened: list[SessionStore] = []
        first: list[SessionStore] = []

        def make(
            clock: Callable[[], float] | None = None, *, same_store: bool = False
        ) -> UsageLedger:
            if same_store and first:
                store = first[0]
            else:
                store = new_store()
                opened.append(store)
                first[:] = first or [store]
            return UsageLedger(usage_backend_for(store), clock=clock or Clock())

        yield make
        for store in opened:
            await store.aclose()

    # -- counting --------------------------------------------------------------------------

    async def test_a_call_counts_for_the_namespace_and_every_ancestor(
        self, new_ledger: LedgerFactory
    ) -> None:
        ledger, root = new_ledger(), fresh()
        await ledger.record(
            f"{root}:alice:support",
            Usage(input_tokens=100, output_tokens=20),
            model_calls=1,
            tool_calls=2,
            cost_nanousd=450_000,
        )
        await ledger.record(f"{root}:bob", Usage(input_tokens=7, output_tokens=3), model_calls=1)
        one = UsageTotals(100, 20, 1, 2, 450_000)
        assert await ledger.totals(f"{root}:alice:support") == one
        assert await ledger.totals(f"{root}:alice") == one
        assert await ledger.totals(root) == one + UsageTotals(7, 3, 1, 0, 0)
        assert await ledger.totals(f"{root}:bob") == UsageTotals(7, 3, 1, 0, 0)
        assert await ledger.totals(f"{root}:carol") == UsageTotals()
        assert await ledger.totals(f"{root}x") == UsageTotals()  # a lookalike key is apart

    async def test_another_store_object_sees_the_counts(self, new_ledger: LedgerFactory) -> None:
        root = fresh()
        await new_ledger().record(f"{root}:a", Usage(input_tokens=5), model_calls=1)
        await new_ledger().record(f"{root}:a", Usage(output_tokens=6), model_calls=1)
        assert await new_ledger().totals(root) == UsageTotals(5, 6, 2, 0, 0)

    async def test_totals_for_a_window_sum_whole_utc_hours(self, new_ledger: LedgerFactory) -> None:
        clock, root = Clock(), fresh()
        ledger = new_ledger(clock)
        first, second, third = 1, 20, 300
        for days_ago, tokens in ((40, first), (2, second), (0, third)):
            await ledger.record(root, Usage(input_tokens=tokens), at=NOW - days_ago * 86400)
        assert (await ledger.totals(root)).input_tokens == first + second + third
        assert (await ledger.totals(root, since=timedelta(days=30))).input_tokens == second + third
        assert (await ledger.totals(root, since=timedelta(hours=1))).input_tokens == third
        since = datetime.fromtimestamp(NOW - 3 * 86400, UTC)
        until = datetime.fromtimestamp(NOW - 86400, UTC)
        assert (await ledger.totals(root, since=since, until=until)).input_tokens == second
        # The hour holding ``since`` counts whole: 10:59 still sees the call at 10:30.
        clock.now = NOW + 29 * 60
        assert (await ledger.totals(root, since=timedelta(minutes=1))).input_tokens == third

    async def test_concurrent_increments_give_the_exact_total(
        self, new_ledger: LedgerFactory
    ) -> None:
        root = fresh()
        ledgers = [new_ledger(), new_ledger()]

        async def one(i: int) -> None:
            await ledgers[i % 2].record(
                f"{root}:u{i % 3}",
                Usage(input_tokens=3, output_tokens=2),
                model_calls=1,
                tool_calls=1,
            )

        async with anyio.create_task_group() as tg:
            for i in range(60):
                tg.start_soon(one, i)
        assert await ledgers[0].totals(root) == UsageTotals(180, 120, 60, 60, 0)
        assert (await ledgers[1].totals(f"{root}:u0")).model_calls == 20

    async def test_worker_processes_incrementing_give_the_exact_total(
        self, new_ledger: LedgerFactory, store_url: str | None, store_options: dict[str, Any]
    ) -> None:
        if store_url is None:
            pytest.skip("this backend lives in one process")
        key, count, calls = f"{fresh()}:shared", 3, 25
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(count)
        processes = [
            spawn.Process(
                target=workers.record_calls, args=(store_url, store_options, key, calls, start)
            )
            for _ in range(count)
        ]
        for process in processes:
            process.start()
        try:
            assert [await join(p) for p in processes] == [0] * count
        finally:
            for process in processes:
                process.kill()
        total = await new_ledger().totals(key.split(":")[0])
        assert total == UsageTotals(3 * count * calls, 2 * count * calls, count * calls, 0, 0)

    # -- reservations and budgets ----------------------------------------------------------

    async def test_a_reservation_counts_until_its_call_is_recorded(
        self, new_ledger: LedgerFactory
    ) -> None:
        root = fresh()
        ledger, other = new_ledger(), new_ledger()
        budgets = Budgets({root: Budget(tokens_per_day=100)})
        held = await ledger.reserve(f"{root}:a", budgets, tokens=60)
        assert held is not None
        with pytest.raises(BudgetExceededError) as refused:
            await other.reserve(f"{root}:b", budgets, tokens=60)  # 60 in flight + 60 > 100
        assert refused.value.budget_namespace == root
        assert refused.value.window == "day"
        assert "60 reserved by calls in flight" in str(refused.value)
        await ledger.record(f"{root}:a", Usage(input_tokens=30, output_tokens=20), reservation=held)
        assert await other.reserve(f"{root}:b", budgets, tokens=50) is not None  # 50 used + 50
        with pytest.raises(BudgetExceededError, match=r"100 tokens per day and has 50 tokens used"):
            await other.reserve(f"{root}:b", budgets, tokens=1)

    async def test_a_released_or_expired_reservation_stops_counting(
        self, new_ledger: LedgerFactory
    ) -> None:
        clock, root = Clock(), fresh()
        ledger = new_ledger(clock)
        budgets = Budgets({root: Budget(tokens_per_hour=100)})
        held = await ledger.reserve(root, budgets, tokens=100, ttl=60)
        assert held is not None
        with pytest.raises(BudgetExceededError):
            await ledger.reserve(root, budgets, tokens=1)
        await ledger.release(held)
        assert await ledger.reserve(root, budgets, tokens=100, ttl=60) is not None  # leaked
        clock.now += 61
        assert await new_ledger(clock).reserve(root, budgets, tokens=100) is not None

    async def test_budgets_apply_per_window_and_to_the_subtree_only(
        self, new_ledger: LedgerFactory
    ) -> None:
        clock, root = Clock(), fresh()
        ledger = new_ledger(clock)
        budgets = Budgets(
            {root: Budget(tokens_per_month=1000), f"{root}:alice": Budget(tokens_per_day=100)}
        )
        await ledger.record(f"{root}:alice:s1", Usage(input_tokens=90))
        with pytest.raises(BudgetExceededError) as refused:
            await ledger.reserve(f"{root}:alice:s2", budgets, tokens=20)  # alice's day
        assert (refused.value.namespace, refused.value.budget_namespace) == (
            f"{root}:alice:s2",
            f"{root}:alice",
        )
        assert await ledger.reserve(f"{root}:bob", budgets, tokens=500) is not None  # a sibling
        clock.now += 86400  # the next day (the reservations above expired meanwhile)
        await ledger.record(f"{root}:bob", Usage(input_tokens=800))
        assert await ledger.reserve(f"{root}:alice", budgets, tokens=100) is not None
        with pytest.raises(BudgetExceededError) as refused:  # 890 used + 100 held + 20 > 1000
            await ledger.reserve(f"{root}:alice", budgets, tokens=20)
        assert refused.value.budget_namespace == root and refused.value.window == "month"

    async def test_cost_budgets(self, new_ledger: LedgerFactory) -> None:
        root = fresh()
        ledger = new_ledger()
        budgets = Budgets({root: Budget(cost_per_day=0.01)})  # 10,000,000 nano-dollars
        await ledger.record(root, Usage(input_tokens=1), cost_nanousd=9_000_000)
        assert await ledger.reserve(root, budgets, tokens=10**9, cost_nanousd=1_000_000)
        with pytest.raises(BudgetExceededError, match=r"\$0\.0100 per day"):
            await ledger.reserve(root, budgets, tokens=1, cost_nanousd=1)

    async def test_concurrent_reservations_never_overcommit(
        self, new_ledger: LedgerFactory
    ) -> None:
        root = fresh()
        ledgers = [new_ledger(), new_ledger()]
        budgets = Budgets({root: Budget(tokens_per_day=100)})
        admitted: list[int] = []

        async def one(i: int) -> None:
            try:
                await ledgers[i % 2].reserve(f"{root}:u{i}", budgets, tokens=10)
                admitted.append(i)
            except BudgetExceededError:
                pass

        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(one, i)
        assert len(admitted) == 10

    async def test_worker_processes_reserving_never_overcommit(
        self, new_ledger: LedgerFactory, store_url: str | None, store_options: dict[str, Any]
    ) -> None:
        if store_url is None:
            pytest.skip("this backend lives in one process")
        key, count = fresh(), 3
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Barrier(count)
        admitted = spawn.Value("i", 0)
        processes = [
            spawn.Process(
                target=workers.reserve_many,
                args=(store_url, store_options, key, 150, 10, start, admitted),
            )
            for _ in range(count)
        ]
        for process in processes:
            process.start()
        try:
            assert [await join(p) for p in processes] == [0] * count
        finally:
            for process in processes:
                process.kill()
        assert admitted.value == 15
