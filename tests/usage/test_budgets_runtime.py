"""Usage and budgets through the real Runtime: counted per namespace, refused before the call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di import (
    BudgetExceededError,
    ConfigurationError,
    OrraRuntimeError,
    Runtime,
    RuntimeConfig,
)
from orra_di.errors import ProviderError
from orra_di.provider import Usage
from orra_di.store import SessionStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import tool
from orra_di.usage import (
    Budget,
    Budgets,
    ModelPrice,
    UsageHook,
    UsageLedger,
    UsageTotals,
    usage_backend_for,
    usage_ledger_for,
)

from .conformance import Clock

pytestmark = pytest.mark.anyio


@tool
async def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


def answer(usage: Usage) -> Any:
    """A script that answers every request with ``usage`` billed."""
    return lambda request: reply("ok", usage=usage)


def runtime(
    store: SessionStore,
    llm: ScriptedProvider,
    budgets: dict[str, Budget] | None = None,
    **options: Any,
) -> Runtime:
    hook = UsageHook(usage_ledger_for(store), budgets=Budgets(budgets or {}), **options)
    return Runtime(llm, store, tools=[lookup], hooks=[hook], config=RuntimeConfig(max_tokens=80))


async def test_usage_is_recorded_per_namespace_and_ancestors_with_cost() -> None:
    store = InMemoryStore()
    llm = ScriptedProvider(
        [
            tool_calls(
                call("lookup", {"key": "a"}), usage=Usage(input_tokens=1000, output_tokens=10)
            ),
            reply("done", usage=Usage(input_tokens=1200, output_tokens=40)),
        ]
    )
    prices = {"gpt-4o": ModelPrice(input_per_mtok=2.5, output_per_mtok=10)}
    rt = runtime(store, llm, prices=prices, default_model="gpt-4o")
    await rt.run("acme:alice:support", "find a")
    ledger = usage_ledger_for(store)
    # 2,200 input tokens at $2.5/M + 50 output at $10/M = $0.0055 + $0.0005.
    expected = UsageTotals(2200, 50, 2, 1, 6_000_000)
    assert await ledger.totals("acme:alice:support") == expected
    assert await ledger.totals("acme") == expected
    assert await ledger.totals("acme:bob") == UsageTotals()


async def test_over_budget_raises_and_nothing_is_sent_to_the_model() -> None:
    store = InMemoryStore()
    ledger = usage_ledger_for(store)
    await ledger.record("acme:alice", Usage(input_tokens=99_990), model_calls=1)
    llm = ScriptedProvider(answer(Usage(input_tokens=5, output_tokens=5)))
    rt = runtime(store, llm, {"acme:alice": Budget(tokens_per_day=100_000)})
    with pytest.raises(BudgetExceededError) as refused:
        await rt.run("acme:alice", "hello")
    assert llm.requests == []  # the vendor never saw the call
    error = refused.value
    assert isinstance(error, OrraRuntimeError)
    assert (error.namespace, error.budget_namespace, error.window) == (
        "acme:alice",
        "acme:alice",
        "day",
    )
    text = str(error)
    assert "'acme:alice' allows 100,000 tokens per day" in text
    assert "has 99,990 tokens used" in text
    assert "Nothing was sent to the model" in text


async def test_an_ancestor_budget_applies_to_a_child_and_not_to_a_sibling() -> None:
    store = InMemoryStore()
    ledger = usage_ledger_for(store)
    await ledger.record("acme:alice:support", Usage(input_tokens=1000))
    llm = ScriptedProvider(answer(Usage(input_tokens=5, output_tokens=5)))
    budgets = {"acme:alice": Budget(tokens_per_hour=1000), "acme": Budget(tokens_per_day=10**6)}
    rt = runtime(store, llm, budgets)
    with pytest.raises(BudgetExceededError) as refused:
        await rt.run("acme:alice:billing", "hello")  # alice's other session: same budget
    assert refused.value.budget_namespace == "acme:alice"
    assert llm.requests == []
    result = await rt.run("acme:bob", "hello")  # the sibling has only acme's budget
    assert result.final_message.content == "ok"
    assert len(llm.requests) == 1
    assert (await ledger.totals("acme")).total_tokens == 1010


async def test_a_cost_budget_needs_the_models_price() -> None:
    store = InMemoryStore()
    llm = ScriptedProvider(answer(Usage(input_tokens=5)))
    rt = runtime(store, llm, {"acme": Budget(cost_per_month=5.0)}, default_model="mystery-1")
    with pytest.raises(ConfigurationError, match=r"'acme' has a cost budget but model 'mystery-1'"):
        await rt.run("acme:alice", "hello")
    assert llm.requests == []


async def test_a_cost_budget_with_no_model_name_says_to_name_it() -> None:
    store = InMemoryStore()
    llm = ScriptedProvider(answer(Usage(input_tokens=5)))
    rt = runtime(store, llm, {"acme": Budget(cost_per_month=5.0)})
    with pytest.raises(ConfigurationError, match="no name to price: set ORRA_LLM__MODEL") as info:
        await rt.run("acme:alice", "hello")
    assert "ORRA_PRICES" in str(info.value)
    assert llm.requests == []


async def test_a_free_model_runs_under_a_cost_budget_at_no_cost() -> None:
    """The offline and test models cost nothing: a cost budget has nothing to price there
    and must not refuse every run; token budgets still apply."""
    store = InMemoryStore()
    llm = ScriptedProvider(answer(Usage(input_tokens=5, output_tokens=1)))
    budgets = {"acme": Budget(cost_per_month=5.0)}
    rt = runtime(store, llm, budgets, free=True)
    assert (await rt.run("acme:alice", "hello")).final_message.content == "ok"
    totals = await usage_ledger_for(store).totals("acme")
    assert totals.total_tokens == 6 and totals.cost_nanousd == 0
    tight = runtime(store, llm, {"acme": Budget(tokens_per_day=1)}, free=True)
    with pytest.raises(BudgetExceededError):
        await tight.run("acme:alice", "again")


async def test_a_failed_call_leaves_no_reservation_behind_in_its_task() -> None:
    store = InMemoryStore()
    llm = ScriptedProvider([ProviderError("down"), reply("ok", usage=Usage(input_tokens=5))])
    rt = runtime(store, llm, {"acme": Budget(tokens_per_day=150)})  # room for one reservation
    with pytest.raises(ProviderError):
        await rt.run("acme:alice", "hello")
    assert (await rt.run("acme:alice", "again")).final_message.content == "ok"


async def test_a_crashed_calls_reservation_expires() -> None:
    store, clock = InMemoryStore(), Clock()
    ledger = UsageLedger(usage_backend_for(store), clock=clock)
    budgets = Budgets({"acme": Budget(tokens_per_day=150)})
    await ledger.reserve("acme:alice", budgets, tokens=100, ttl=600)  # its process died
    llm = ScriptedProvider(answer(Usage(input_tokens=5)))
    rt = Runtime(
        llm, store, hooks=[UsageHook(ledger, budgets=budgets)], config=RuntimeConfig(max_tokens=80)
    )
    with pytest.raises(BudgetExceededError, match="100 reserved by calls in flight"):
        await rt.run("acme:bob", "hello")
    clock.now += 601
    assert (await rt.run("acme:bob", "hello")).final_message.content == "ok"


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    made: SessionStore = (
        InMemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "o.db")
    )
    yield made
    await made.aclose()


async def test_concurrent_runs_in_one_tenant_overshoot_by_at_most_one_call(
    store: SessionStore,
) -> None:
    # 30 sessions of acme race for 1,000 tokens; each call bills what was reserved for it
    # (the estimate of its request, plus max_tokens=80 for the answer).
    hook = UsageHook(
        usage_ledger_for(store), budgets=Budgets({"acme": Budget(tokens_per_day=1000)})
    )
    billed: list[int] = []

    def bill(request: Any) -> Any:
        prompt, _ = hook.estimate(request)
        billed.append(prompt + 80)
        return reply("ok", usage=Usage(input_tokens=prompt, output_tokens=80))

    llm = ScriptedProvider(bill, delay=0.01)
    rt = Runtime(llm, store, tools=[lookup], hooks=[hook], config=RuntimeConfig(max_tokens=80))
    outcomes: list[str] = []

    async def one(i: int) -> None:
        try:
            await rt.run(f"acme:user{i}", "hi")
            outcomes.append("ran")
        except BudgetExceededError:
            outcomes.append("refused")

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(one, i)
    used = await usage_ledger_for(store).totals("acme")
    call_size = max(billed)
    assert used.model_calls == len(llm.requests) == outcomes.count("ran")
    assert outcomes.count("refused") == 30 - outcomes.count("ran") > 0
    assert used.total_tokens <= 1000 + call_size  # at most one call over
    assert used.total_tokens > 1000 - call_size  # and the budget was spent, not refused early
