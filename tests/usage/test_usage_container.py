"""Usage and budgets configured from settings and wired by the container."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import providers

from orra_di import AgentProfile, BudgetExceededError, Hook
from orra_di.containers import Container, lifespan
from orra_di.provider import Usage
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, reply
from orra_di.usage import UsageHook

pytestmark = pytest.mark.anyio


def container_with(llm: ScriptedProvider, **settings: Any) -> Container:
    container = Container()
    settings.setdefault("store", {"url": "memory://"})
    container.settings.override(providers.Object(load_settings(tools=[], **settings)))
    container.llm.override(providers.Object(llm))
    return container


def billing(input_tokens: int, output_tokens: int) -> ScriptedProvider:
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    return ScriptedProvider(lambda request: reply("ok", usage=usage))


async def test_budgets_from_settings_refuse_before_the_call_and_usage_is_counted() -> None:
    llm = billing(200, 2)
    container = container_with(
        llm, budgets={"acme:alice": {"tokens_per_day": 400}}, usage={"output_allowance": 100}
    )
    async with lifespan(container):
        runtimes = container.runtimes()
        runtime = runtimes[runtimes.default_agent]
        await runtime.run("acme:alice", "hi")  # about 120 + 100 reserved, 202 billed
        with pytest.raises(BudgetExceededError, match="'acme:alice' allows 400 tokens per day"):
            await runtime.run("acme:alice", "hi again")  # 202 used + about 230 > 400
        assert len(llm.requests) == 1
        ledger = container.usage_ledger()
        assert ledger is container.usage_ledger()  # one ledger, on the store
        totals = await ledger.totals("acme")
        assert (totals.model_calls, totals.total_tokens) == (1, 202)


async def test_the_usage_hook_comes_after_the_applications_hooks() -> None:
    class Mine(Hook):
        pass

    def hooks(profile: AgentProfile) -> list[Hook]:
        return [Mine()]

    container = container_with(billing(1, 1))
    container.hook_factory.override(providers.Object(hooks))
    runtimes = container.runtimes()
    kinds = [type(h) for h in runtimes[runtimes.default_agent].hooks._hooks]
    assert kinds[-2:] == [Mine, UsageHook]  # the built-in hooks that shape a run come first


async def test_usage_off_and_no_budget_means_no_hook_and_no_counts() -> None:
    container = container_with(billing(1, 1), usage={"enabled": False})
    async with lifespan(container):
        runtimes = container.runtimes()
        runtime = runtimes[runtimes.default_agent]
        assert not any(isinstance(h, UsageHook) for h in runtime.hooks._hooks)
        await runtime.run("acme", "hi")
        assert (await container.usage_ledger().totals("acme")).model_calls == 0


async def test_a_second_lifespan_gets_a_ledger_on_the_new_store(tmp_path: Any) -> None:
    container = container_with(billing(3, 4), store={"url": f"sqlite:///{tmp_path}/o.db"})
    async with lifespan(container):
        runtimes = container.runtimes()
        await runtimes[runtimes.default_agent].run("acme", "hi")
        first = container.usage_ledger()
    async with lifespan(container):  # the first store is closed: its ledger must not be reused
        assert container.usage_ledger() is not first
        assert (await container.usage_ledger().totals("acme")).total_tokens == 7
