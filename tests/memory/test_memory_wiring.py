"""Memory from the settings: tools on every agent, automatic recall in the prompt, the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

from orra_di.containers import Container
from orra_di.context import CharEstimator
from orra_di.memory import MemoryManager
from orra_di.memory.hook import HEADER, AutoMemoryHook, memory_section
from orra_di.message import Role
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio


def make_container(**settings: Any) -> Container:
    settings.setdefault("tools", [])
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


def tool_names(container: Container) -> list[str]:
    return [d.name for d in container.runtimes()["atlas"].tools.definitions()]


def test_memory_tools_only_when_enabled() -> None:
    assert "remember" not in tool_names(make_container(store={"url": "memory://"}))
    on = make_container(store={"url": "memory://"}, memory={"enabled": True})
    assert tool_names(on)[-3:] == ["remember", "recall", "forget"]
    assert on.memory() is on.memory()
    assert on.memory().embedder is None


def test_the_embedder_and_rules_come_from_the_settings() -> None:
    container = make_container(
        store={"url": "memory://"},
        memory={"embedder": "hash", "embedding_dimensions": 16, "ancestors": "tenant"},
    )
    manager: MemoryManager = container.memory()
    assert manager.embedder is not None
    assert manager.embedder.dimensions == 16
    assert manager.ancestors == "tenant"


def test_auto_recall_reserves_its_budget() -> None:
    plain = make_container(store={"url": "memory://"}, memory={"enabled": True})
    auto = make_container(
        store={"url": "memory://"},
        memory={"enabled": True, "auto_recall": True, "auto_max_tokens": 700},
    )
    before = plain.runtimes()["atlas"].config.context_budget.available_for_input
    after = auto.runtimes()["atlas"].config.context_budget.available_for_input
    assert before - after == 700


async def test_a_preference_remembered_in_one_session_is_used_in_the_next(tmp_path: Path) -> None:
    """Done means: configured from settings, on SQLite, across two conversations."""
    settings = {
        "store": {"url": f"sqlite:///{tmp_path / 'orra.db'}"},
        "memory": {"enabled": True, "auto_recall": True, "owner_depth": 2},
    }
    first = make_container(**settings)
    first.llm.override(
        providers.Object(
            ScriptedProvider(
                [
                    tool_calls(call("remember", {"content": "Alice prefers answers in French"})),
                    reply("Noted."),
                ]
            )
        )
    )
    await first.runtimes()["atlas"].run("acme:alice:chat-1", "Please answer in French from now on")
    await first.store().aclose()

    second = make_container(**settings)  # a new process, the same database
    model = ScriptedProvider([reply("Bien sûr.")])
    second.llm.override(providers.Object(model))
    await second.runtimes()["atlas"].run("acme:alice:chat-2", "What answers do I prefer?")
    system = [m.content for m in model.requests[0].messages if m.role is Role.SYSTEM]
    assert any("Alice prefers answers in French" in str(text) for text in system)
    # bob, in the same tenant, is not told alice's preference
    model = ScriptedProvider([reply("?")])
    second.llm.override(providers.Object(model))
    await second.runtimes()["atlas"].run("acme:bob:chat-1", "What answers do I prefer?")
    assert not any("French" in str(m.content) for m in model.requests[0].messages)
    await second.store().aclose()


def test_memory_section_is_cut_to_its_budget() -> None:
    tokens = CharEstimator()
    section = memory_section(["first fact", "second fact " * 50, "third"], 30, tokens)
    assert section == f"{HEADER}\n- first fact"
    assert tokens.count_tokens(section) <= 30
    cut = memory_section(["a very long single fact " * 40], 40, tokens)
    assert cut is not None and cut.endswith("…") and tokens.count_tokens(cut) <= 40
    assert memory_section([], 100, tokens) is None


async def test_auto_memory_hook_outside_a_run_and_on_failure() -> None:
    class Failing:
        async def recall(self, *args: object) -> list[object]:
            raise RuntimeError("store down")

    from orra_di.message import Message
    from orra_di.provider import CompletionRequest

    request = CompletionRequest(messages=[Message.user("hi")])
    hook = AutoMemoryHook(Failing())  # type: ignore[arg-type]
    await hook.before_provider_call(request)  # no run: nothing to do
    assert [m.content for m in request.messages] == ["hi"]
