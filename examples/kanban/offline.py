"""A scripted stand-in for the LLM, so the assistant runs with no key.

It reads a few phrasings ("add Write tests", "move 2 to done", "assign #1 to bob",
"show the board", "columns") and asks for the matching tool; after the tool ran it
repeats the result. Like a confused model, it asks for the tool even when the
session's policy did not offer it (a viewer asking to add a task): the runtime
refuses the call, and the answer shows the refusal.
"""

from __future__ import annotations

import re

from orra_di import CompletionRequest, CompletionResponse
from orra_di.testing import call, reply, tool_calls

from .board import COLUMNS

__all__ = ["OFFLINE_HELP", "board_model"]

OFFLINE_HELP = (
    'Offline I understand: "show the board", "columns", "add <title>", '
    '"move <#id or title> to <column>", "assign <#id or title> to <name>". '
    "Set ANTHROPIC_API_KEY (or OPENAI_API_KEY) for a real model."
)

_COLUMN = "|".join(re.escape(c) for c in COLUMNS) + "|in progress"
_MOVE = re.compile(r"^\s*move\s+(?:task\s+)?(.+?)\s+to\s+(.+?)\s*\.?$", re.IGNORECASE)
_ASSIGN = re.compile(r"^\s*assign\s+(?:task\s+)?(.+?)\s+to\s+(\w+)\s*\.?$", re.IGNORECASE)
_ADD = re.compile(r"^\s*(?:add|create)\s+(?:a\s+)?(?:task|card)?:?\s*(.+?)\s*$", re.IGNORECASE)
_LIST = re.compile(r"\b(board|tasks|cards|list|show)\b", re.IGNORECASE)
_IN_COLUMN = re.compile(rf"\b({_COLUMN})\b", re.IGNORECASE)


def _task(reference: str) -> dict[str, object]:
    """``#2`` or ``2`` is an id; anything else a piece of the title."""
    number = reference.strip().lstrip("#")
    return {"task_id": int(number)} if number.isdigit() else {"task_title": reference.strip()}


def board_model(request: CompletionRequest) -> CompletionResponse:
    last = request.messages[-1]
    if last.tool_results:
        return reply("\n".join(r.content for r in last.tool_results))
    text = last.content
    if found := _MOVE.match(text):
        to = found[2].lower().replace(" ", "-")  # the tool checks the column
        return tool_calls(call("move_task", {"to": to, **_task(found[1])}))
    if found := _ASSIGN.match(text):
        return tool_calls(call("assign_task", {"assignee": found[2], **_task(found[1])}))
    if found := _ADD.match(text):
        return tool_calls(call("create_task", {"title": found[1]}))
    column = _IN_COLUMN.search(text)
    if "column" in text.lower() and not column:
        return tool_calls(call("list_columns"))
    if _LIST.search(text) or column:
        arguments = {"column": column[1].lower().replace(" ", "-")} if column else {}
        return tool_calls(call("list_tasks", arguments))
    return reply(OFFLINE_HELP)
