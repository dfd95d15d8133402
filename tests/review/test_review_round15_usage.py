"""Round 15 review: the cost of a call on the vendor's default model.

The README's usage section sets ``ORRA_PRICES='{"gpt-4o": …}'`` and says ``orra-di usage``
shows the cost; ``orra-di config`` says the model in use is ``gpt-4o`` ('default for
openai') when only ``OPENAI_API_KEY`` is set. The usage hook was given ``llm.model``
(unset there), so it priced the calls of the default model as a model with no name: the
cost stayed 0 and a cost budget asked for ``ORRA_LLM__MODEL`` to be set.
"""

from __future__ import annotations

import os

import anyio
import pytest
from dependency_injector import providers

from orra_di.containers import Container
from orra_di.provider import Usage
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, reply


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)


def _cost_of_one_call(llm: dict[str, object], prices: dict[str, object], **more: object) -> int:
    container = Container()
    settings = load_settings(store={"url": "memory://"}, llm=llm, prices=prices, **more)
    container.settings.override(providers.Object(settings))
    answer = reply("hi", usage=Usage(input_tokens=1_000_000, output_tokens=0))
    container.llm.override(providers.Object(ScriptedProvider([answer])))
    anyio.run(container.runtimes().default.run, "acme:alice", "hello")
    totals = anyio.run(container.usage_ledger().totals, "acme")
    return totals.cost_nanousd


@pytest.mark.parametrize(
    ("llm", "model"),
    [
        ({"kind": "openai", "api_key": "sk-test"}, "gpt-4o"),
        ({"kind": "anthropic", "api_key": "sk-ant-test"}, "claude-sonnet-5-5"),
    ],
)
def test_a_call_on_the_vendors_default_model_is_priced(llm: dict[str, object], model: str) -> None:
    prices = {model: {"input_per_mtok": 2.5, "output_per_mtok": 10}}
    assert _cost_of_one_call(llm, prices) == 2_500_000_000  # $2.50 for a million tokens


def test_a_cost_budget_on_the_default_model_needs_no_model_setting() -> None:
    prices = {"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}
    budgets = {"acme": {"cost_per_month": 100}}
    cost = _cost_of_one_call({"kind": "openai", "api_key": "sk-test"}, prices, budgets=budgets)
    assert cost == 2_500_000_000


def test_a_model_named_in_the_settings_is_still_the_one_priced() -> None:
    llm = {"kind": "openai", "api_key": "sk-test", "model": "gpt-4o-mini"}
    prices = {
        "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10},
        "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
    }
    assert _cost_of_one_call(llm, prices) == 150_000_000
