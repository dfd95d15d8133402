"""A scripted stand-in for the LLM, so the bot runs (and is tested) with no key.

It reads a few phrasings ("note buy milk", "notes", "delete note 2", "summary") and
asks for the matching tool; after the tool ran it repeats the result, signed with
the agent's name (read from the system prompt, so routing shows). The reviewer
agent, offline, only counts what it was given.
"""

from __future__ import annotations

import re

from orra_di import CompletionRequest, CompletionResponse
from orra_di.testing import call, reply, tool_calls

__all__ = ["OFFLINE_HELP", "bot_model"]

OFFLINE_HELP = (
    'Offline I understand: "note <text>", "notes", "delete note <n>", "summary". '
    "Set ANTHROPIC_API_KEY (or OPENAI_API_KEY) for a real model."
)

_NOTE = re.compile(r"^\s*(?:note|remember)\b:?\s*(.+)$", re.IGNORECASE | re.DOTALL)
_DELETE = re.compile(r"^\s*(?:delete|remove|forget)\s+(?:note\s+)?#?(\d+)\b", re.IGNORECASE)
_LIST = re.compile(r"\b(notes|summary|summari[sz]e)\b", re.IGNORECASE)
_NAME = re.compile(r"\bYou are (\w+)")


def _agent(request: CompletionRequest) -> str:
    for message in request.messages:
        if message.role == "system" and (found := _NAME.search(message.content)):
            return found[1]
    return "Bot"


def bot_model(request: CompletionRequest) -> CompletionResponse:
    agent = _agent(request)
    last = request.messages[-1]
    if last.tool_results:
        return reply(f"[{agent}] " + "\n".join(r.content for r in last.tool_results))
    text = last.content
    if found := _DELETE.match(text):
        return tool_calls(call("delete_note", {"note_id": int(found[1])}))
    if found := _NOTE.match(text):
        return tool_calls(call("add_note", {"text": found[1].strip()}))
    if _LIST.search(text):
        return tool_calls(call("list_notes"))
    if agent == "Reviewer":
        words = len(text.split())
        return reply(
            f"[Reviewer] I read {words} word{'s' if words != 1 else ''}; offline I cannot "
            "judge them. Set ANTHROPIC_API_KEY (or OPENAI_API_KEY) for a real review."
        )
    return reply(f"[{agent}] {OFFLINE_HELP}")
