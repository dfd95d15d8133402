"""The ``remember``, ``recall`` and ``forget`` tools, bound to the calling session.

orra's tools took the namespace from the model's arguments and ``forget`` deleted any id
(bugs 29 and 34). Here the namespace is the caller's (:class:`~orra_di.tool.ToolContext`):
``remember`` stores in it, ``recall`` searches what it sees (its own memories and, by the
manager's rule, its ancestors'), ``forget`` deletes only inside its subtree, and any other
id is "not found". Descriptions and output texts are orra's.
"""

from __future__ import annotations

from typing import Any

from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.memory.manager import MemoryManager
from orra_di.memory.model import EmbeddingError, MemorySearchResult
from orra_di.message import JsonValue
from orra_di.tool import Tool, ToolContext, ToolDefinition, ToolRegistry

__all__ = [
    "ForgetTool",
    "RecallTool",
    "RememberTool",
    "format_results",
    "memory_tools",
    "register_tools",
]

MAX_RECALL = 50


def _args(arguments: JsonValue) -> dict[str, Any]:
    return arguments if isinstance(arguments, dict) else {}


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolInputError(f"missing '{name}'")
    return value


class RememberTool:
    def __init__(self, manager: MemoryManager) -> None:
        self.manager = manager
        self.definition = ToolDefinition(
            name="remember",
            description=(
                "Store a piece of information in long-term memory for later retrieval. Use "
                "this when the user tells you something important, shares a preference, or "
                "when you learn a fact worth remembering across conversations."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "content": {"type": "string", "description": "The information to remember"},
                    "tags": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Optional tags for categorisation",
                    },
                },
                "required": ["content"],
            },
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        args = _args(arguments)
        content = _text(args, "content")
        raw_tags = args.get("tags")
        tags = [t for t in raw_tags if isinstance(t, str)] if isinstance(raw_tags, list) else []
        try:
            memory_id = await self.manager.remember(context.namespace, content, tags)
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None
        except EmbeddingError as exc:
            raise ToolExecutionError(str(exc)) from exc
        return f"Stored memory {memory_id}"


def format_results(results: list[MemorySearchResult]) -> str:
    """orra's recall output: numbered entries with score, id, tags, then the content."""
    if not results:
        return "No relevant memories found."
    parts = []
    for i, r in enumerate(results, 1):
        tags = f" [{', '.join(r.entry.tags)}]" if r.entry.tags else ""
        parts.append(f"{i}. (score: {r.score:.2f}, id: {r.entry.id}){tags}\n   {r.entry.content}")
    return "\n\n".join(parts)


class RecallTool:
    def __init__(self, manager: MemoryManager) -> None:
        self.manager = manager
        self.definition = ToolDefinition(
            name="recall",
            description=(
                "Search long-term memory for relevant information. Use this when you need to "
                "recall something that was previously stored, like user preferences, past "
                "conversations, or learned facts."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to search for"},
                    "limit": {
                        "type": "integer",
                        "description": "Maximum number of results (default: 5)",
                    },
                },
                "required": ["query"],
            },
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        args = _args(arguments)
        query = _text(args, "query")
        limit = args.get("limit", 5)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            limit = 5
        try:
            found = await self.manager.recall(context.namespace, query, min(limit, MAX_RECALL))
        except EmbeddingError as exc:
            raise ToolExecutionError(str(exc)) from exc
        return format_results(found)


class ForgetTool:
    def __init__(self, manager: MemoryManager) -> None:
        self.manager = manager
        self.definition = ToolDefinition(
            name="forget",
            description=(
                "Delete a specific memory by its ID. Use this when the user asks you to forget "
                "something or when stored information is no longer relevant."
            ),
            input_schema={
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The memory ID"}},
                "required": ["id"],
            },
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        memory_id = _text(_args(arguments), "id").strip()
        if await self.manager.forget(context.namespace, memory_id):
            return f"Deleted memory {memory_id}."
        return f"Memory {memory_id} not found."


def memory_tools(manager: MemoryManager) -> list[Tool]:
    """The three tools over ``manager``."""
    return [RememberTool(manager), RecallTool(manager), ForgetTool(manager)]


def register_tools(registry: ToolRegistry, manager: MemoryManager) -> None:
    """orra's ``register_tools``: add remember, recall and forget to ``registry``."""
    for t in memory_tools(manager):
        registry.register(t)
