"""A scripted stand-in for the LLM, so the triage agent runs (and is tested) with no key.

"triage" lists the open issues, then, for each issue without a label: a title close
to an older issue's is closed as its duplicate (labelled ``duplicate``, with a
comment naming it); otherwise a keyword picks ``bug``, ``enhancement`` or
``question`` (a question also gets a comment). "list issues", "show #N" and
"close #N" call the matching tool. After the tools ran it reports their results.
"""

from __future__ import annotations

import re

from orra_di import CompletionRequest, CompletionResponse, ToolCall
from orra_di.testing import call, reply, tool_calls

__all__ = ["OFFLINE_HELP", "triage_model"]

OFFLINE_HELP = (
    'Offline I understand: "triage the new issues", "list issues", "show #<n>", '
    '"close #<n>". Set ANTHROPIC_API_KEY (or OPENAI_API_KEY) for a real model.'
)
QUESTION_COMMENT = (
    "Thanks for asking! A maintainer will answer here; the documentation may already cover it."
)

_ISSUE = re.compile(r"^#(\d+) \[(\w+)\] (.*)$")
_SHOW = re.compile(r"\b(?:show|get|read)\s+(?:issue\s+)?#?(\d+)\b", re.IGNORECASE)
_CLOSE = re.compile(r"\bclose\s+(?:issue\s+)?#?(\d+)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9.]*")
_SMALL_WORDS = "a an the on in of to with under when for and or is it my i do how"
_STOP = frozenset(_SMALL_WORDS.split())
_BUG = ("crash", "error", "exception", "traceback", "broken", "fail", "bug")
_ASKING = frozenset(["how", "why", "what", "can", "is", "does"])
_WISH = ("add ", "support", "feature", "allow", "option")


def _words(title: str) -> frozenset[str]:
    """The title's words, plural and -es endings cut, small words left out."""
    found = set()
    for word in _WORD.findall(title.lower()):
        if word in _STOP:
            continue
        for ending in ("es", "s"):
            if word.endswith(ending) and len(word) > len(ending) + 3:
                word = word[: -len(ending)]
                break
        found.add(word)
    return frozenset(found)


def _similar(a: frozenset[str], b: frozenset[str]) -> bool:
    return bool(a and b) and len(a & b) / len(a | b) >= 0.6


def _kind(title: str) -> str | None:
    text = title.lower()
    if any(hint in text for hint in _BUG):
        return "bug"
    if text.rstrip().endswith("?") or text.split(" ", 1)[0] in _ASKING:
        return "question"
    if any(hint in f"{text} " for hint in _WISH):
        return "enhancement"
    return None


def parse_issues(listing: str) -> list[tuple[int, str, bool]]:
    """``(number, title, labelled)`` from ``list_issues`` output."""
    issues: list[tuple[int, str, bool]] = []
    for line in listing.splitlines():
        if found := _ISSUE.match(line):
            issues.append((int(found[1]), found[3], False))
        elif line.startswith("  labels:") and issues:
            number, title, _ = issues[-1]
            issues[-1] = (number, title, True)
    return issues


def plan(listing: str) -> list[ToolCall]:
    """The triage calls for the open issues in ``listing``."""
    calls: list[ToolCall] = []
    issues = sorted(parse_issues(listing))
    for index, (number, title, labelled) in enumerate(issues):
        if labelled:
            continue
        words = _words(title)
        original = next((n for n, t, _ in issues[:index] if _similar(words, _words(t))), None)
        if original is not None:
            calls.append(call("add_labels", {"number": number, "labels": ["duplicate"]}))
            comment = f"Closing as a duplicate of #{original}; please follow that issue."
            arguments = {"number": number, "comment": comment, "reason": "not_planned"}
            calls.append(call("close_issue", arguments))
            continue
        kind = _kind(title)
        if kind is None:
            continue
        calls.append(call("add_labels", {"number": number, "labels": [kind]}))
        if kind == "question":
            calls.append(call("add_comment", {"number": number, "body": QUESTION_COMMENT}))
    return calls


def triage_model(request: CompletionRequest) -> CompletionResponse:
    last = request.messages[-1]
    if last.tool_results:
        asked = [m for m in request.messages if m.role == "user" and not m.tool_results][-1]
        listing = "\n".join(r.content for r in last.tool_results)
        previous = request.messages[-2].tool_calls
        if "triage" in asked.content.lower() and [c.name for c in previous] == ["list_issues"]:
            if any(r.is_error for r in last.tool_results):
                return reply(f"I could not list the issues: {listing}")
            calls = plan(listing)
            if not calls:
                return reply("Nothing to triage: every open issue has a label.")
            return tool_calls(*calls)
        if any(c.name == "add_labels" for c in previous):
            return reply("Triage done:\n" + "\n".join(f"- {line}" for line in listing.splitlines()))
        return reply(listing)
    text = last.content
    if "triage" in text.lower():
        return tool_calls(call("list_issues", {"state": "open"}))
    if found := _CLOSE.search(text):
        return tool_calls(call("close_issue", {"number": int(found[1])}))
    if found := _SHOW.search(text):
        return tool_calls(call("get_issue", {"number": int(found[1])}))
    if re.search(r"\b(list|issues)\b", text, re.IGNORECASE):
        return tool_calls(call("list_issues", {"state": "open"}))
    return reply(OFFLINE_HELP)
