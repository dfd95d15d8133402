"""Automatic memory: before each model call, the relevant memories go into the prompt.

:class:`AutoMemoryHook` reads the latest user message of the request, recalls the
``top_k`` memories the running session's namespace sees (:func:`current_run`), and
inserts them as one system message after the leading system prompt, cut to
``max_tokens`` by the runtime's tokenizer. The container shrinks the history's share of
the context by the same ``max_tokens``, so the request still fits its budget. A failing
recall (store or embedder down) leaves the request as it was and is logged: memory is
an aid, the conversation goes on without it.
"""

from __future__ import annotations

import logging

from orra_di.context import CharEstimator, Tokenizer
from orra_di.hook import Hook
from orra_di.memory.manager import MemoryManager
from orra_di.message import Message, Role
from orra_di.provider import CompletionRequest
from orra_di.run_context import maybe_current_run

__all__ = ["AutoMemoryHook", "memory_section"]

log = logging.getLogger("orra_di.memory")

HEADER = "Relevant long-term memories (saved earlier; use them if they help):"


def memory_section(contents: list[str], max_tokens: int, tokenizer: Tokenizer) -> str | None:
    """The section listing ``contents`` in order, as many whole ones as fit ``max_tokens``
    (a first one too long for the budget alone is cut); None when there is nothing."""
    lines = [HEADER]
    used = tokenizer.count_tokens(HEADER)
    for text in contents:
        line = "- " + " ".join(text.split())
        cost = tokenizer.count_tokens(line) + 1
        if used + cost > max_tokens:
            if len(lines) == 1:  # cut the best one rather than say nothing
                room = max(max_tokens - used - 1, 0)
                while line and tokenizer.count_tokens(line + "…") > room:
                    line = line[: max(len(line) * 3 // 4, 0)]
                if line:
                    lines.append(line + "…")
            break
        lines.append(line)
        used += cost
    return "\n".join(lines) if len(lines) > 1 else None


class AutoMemoryHook(Hook):
    """Adds the section described in the module docstring to every model call."""

    def __init__(
        self,
        manager: MemoryManager,
        *,
        top_k: int = 5,
        max_tokens: int = 500,
        tokenizer: Tokenizer | None = None,
    ) -> None:
        self.manager = manager
        self.top_k = top_k
        self.max_tokens = max_tokens
        self.tokenizer: Tokenizer = tokenizer or CharEstimator()

    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = maybe_current_run()
        if run is None:
            return
        query = next(
            (m.content for m in reversed(request.messages) if m.role is Role.USER and m.content),
            "",
        )
        if not isinstance(query, str) or not query.strip():
            return
        try:
            found = await self.manager.recall(run.namespace, query, self.top_k)
        except Exception as exc:  # an aid, not a requirement
            log.warning("automatic memory recall failed: %s: %s", type(exc).__name__, exc)
            return
        section = memory_section([r.entry.content for r in found], self.max_tokens, self.tokenizer)
        if section is None:
            return
        at = 0
        while at < len(request.messages) and request.messages[at].role is Role.SYSTEM:
            at += 1
        request.messages.insert(at, Message.system(section))
