"""The remember / recall / forget tools: orra's tests, with the namespace from ToolContext."""

from __future__ import annotations

import re

import pytest

from orra_di.errors import ToolInputError
from orra_di.memory import MemoryManager
from orra_di.memory.stores import InMemoryMemoryStore
from orra_di.memory.tool import ForgetTool, RecallTool, RememberTool, register_tools
from orra_di.tool import ToolContext, ToolRegistry

pytestmark = pytest.mark.anyio

ALICE = ToolContext("acme:alice")


@pytest.fixture
def manager() -> MemoryManager:
    return MemoryManager(InMemoryMemoryStore())


def test_definitions_and_registration(manager: MemoryManager) -> None:
    registry = ToolRegistry()
    register_tools(registry, manager)
    assert [d.name for d in registry.definitions()] == ["remember", "recall", "forget"]
    for d in registry.definitions():
        assert d.input_schema["type"] == "object"
        assert "namespace" not in d.input_schema["properties"]  # bug 34
    assert RememberTool(manager).definition.input_schema["required"] == ["content"]


async def test_remember_and_recall_roundtrip(manager: MemoryManager) -> None:
    out = await RememberTool(manager).execute(
        {"content": "The capital of France is Paris", "tags": ["geo", 3]}, ALICE
    )
    assert re.fullmatch(r"Stored memory [0-9a-f-]{36}", out)
    found = await RecallTool(manager).execute({"query": "capital France"}, ALICE)
    assert found.startswith("1. (score: ")
    assert "[geo]\n   The capital of France is Paris" in found
    assert (await manager.list("acme:alice"))[0].tags == ["geo"]


async def test_forget_removes_memory(manager: MemoryManager) -> None:
    out = await RememberTool(manager).execute({"content": "temporary fact"}, ALICE)
    memory_id = out.removeprefix("Stored memory ")
    assert await ForgetTool(manager).execute({"id": memory_id}, ALICE) == (
        f"Deleted memory {memory_id}."
    )
    assert await RecallTool(manager).execute({"query": "temporary"}, ALICE) == (
        "No relevant memories found."
    )


async def test_missing_fields_return_errors(manager: MemoryManager) -> None:
    with pytest.raises(ToolInputError, match="missing 'content'"):
        await RememberTool(manager).execute({}, ALICE)
    with pytest.raises(ToolInputError, match="missing 'query'"):
        await RecallTool(manager).execute({"query": 5}, ALICE)
    with pytest.raises(ToolInputError, match="missing 'id'"):
        await ForgetTool(manager).execute(None, ALICE)


async def test_the_namespace_comes_from_the_caller_not_the_model(manager: MemoryManager) -> None:
    await RememberTool(manager).execute(
        {"content": "alice secret plan", "namespace": "globex"}, ALICE
    )
    assert [e.namespace for e in await manager.list("acme:alice")] == ["acme:alice"]
    assert await manager.list("globex") == []
    mallory = ToolContext("globex:mallory")
    assert await RecallTool(manager).execute({"query": "secret plan"}, mallory) == (
        "No relevant memories found."
    )
    memory_id = (await manager.list("acme:alice"))[0].id
    assert await ForgetTool(manager).execute({"id": memory_id}, mallory) == (
        f"Memory {memory_id} not found."
    )
    assert len(await manager.list("acme:alice")) == 1


async def test_recall_limit_and_an_oversized_memory(manager: MemoryManager) -> None:
    for i in range(8):
        await manager.remember("acme:alice", f"tea fact {i}")
    out = await RecallTool(manager).execute({"query": "tea", "limit": 3}, ALICE)
    assert out.count("(score: ") == 3
    out = await RecallTool(manager).execute({"query": "tea", "limit": "many"}, ALICE)
    assert out.count("(score: ") == 5
    with pytest.raises(ToolInputError, match="at most 1,000,000 characters"):
        await RememberTool(manager).execute({"content": "x" * 1_000_001}, ALICE)
