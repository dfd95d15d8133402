"""Token estimates and the context budget.

The estimates are orra's (UTF-8 bytes / 4, +4 per message, +5 per tool call or
result) so budgets carry over. Trimming is fixed (spec §5.1/4): it works on
whole exchanges, so an assistant's tool calls never lose their results, and it
always keeps the system prompt, the session's first user message (the task)
and the newest exchange.
"""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from orra_di.errors import ConfigurationError
from orra_di.message import Message, Role
from orra_di.session import History, Session
from orra_di.tool import ToolDefinition

__all__ = ["CharEstimator", "ContextBudget", "ContextMemory", "ContextWindow", "Tokenizer"]


@runtime_checkable
class Tokenizer(Protocol):
    def count_tokens(self, text: str) -> int: ...


@dataclass(frozen=True, slots=True)
class CharEstimator:
    """About four UTF-8 bytes per token, rounded up: cheap and model-agnostic."""

    chars_per_token: int = 4

    def __post_init__(self) -> None:
        if self.chars_per_token < 1:
            raise ConfigurationError(
                f"chars_per_token must be at least 1, got {self.chars_per_token}"
            )

    def count_tokens(self, text: str) -> int:
        """Total over any ``str``: a lone surrogate counts as the three bytes it would take."""
        n = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
        return -(-n // self.chars_per_token)


@dataclass(frozen=True, slots=True)
class ContextBudget:
    """How much of the model's window the request may use."""

    max_tokens: int = 200_000
    reserved_for_output: int = 4_096
    tool_result_share: float = 0.3

    def __post_init__(self) -> None:
        if self.max_tokens < 1 or self.reserved_for_output < 0:
            raise ConfigurationError(
                "context budget needs max_tokens >= 1 and reserved_for_output >= 0, got "
                f"{self.max_tokens} and {self.reserved_for_output}"
            )
        if not 0.0 < self.tool_result_share <= 1.0:
            raise ConfigurationError(
                f"tool_result_share must be in (0, 1], got {self.tool_result_share}"
            )

    @property
    def available_for_input(self) -> int:
        return max(self.max_tokens - self.reserved_for_output, 0)

    @property
    def max_tool_result_tokens(self) -> int:
        return int(self.available_for_input * self.tool_result_share)


def _compact_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _is_question(message: Message) -> bool:
    return message.role == Role.USER and not message.tool_results


def _exchanges(messages: Sequence[Message]) -> list[tuple[int, int]]:
    """Split into [start, end) runs that must be kept or dropped together.

    An assistant message with tool calls forms one run with the user messages
    right after it that carry tool results; every other message is alone.
    """
    runs: list[tuple[int, int]] = []
    i, n = 0, len(messages)
    while i < n:
        end = i + 1
        if messages[i].role == Role.ASSISTANT and messages[i].tool_calls:
            while end < n and messages[end].tool_results:
                end += 1
        runs.append((i, end))
        i = end
    return runs


@dataclass(slots=True)
class Tally:
    """A running token total of one session object's history when that is a plain list
    (a :class:`History` keeps its own: see ``history_tokens``).

    ``session`` is a weak reference, so a tally never keeps a session alive and
    goes away with it; ``messages`` is the very list that was counted and
    ``last`` the object at position ``count - 1`` in it.
    """

    session: weakref.ref[Session]
    messages: list[Message]
    last: Message
    tokenizer: Tokenizer
    count: int
    total: int


class ContextMemory:
    """What context windows learn, shareable between them (the container shares one).

    Per-message estimates and per-session running totals are remembered with
    the tokenizer that produced them, so windows with different tokenizers can
    share one memory without mixing counts; the usage calibration is per model.
    """

    max_tallies = 10_000
    """Live sessions with a plain message list whose running token total is remembered
    (oldest first out); a loaded session's :class:`History` keeps its own."""
    max_estimates = 100_000
    """Messages whose estimate is remembered (oldest first out)."""

    def __init__(self) -> None:
        # OrderedDict: evicting the oldest is O(1); on a plain dict, next(iter())
        # walks past every slot earlier deletions left behind.
        self.estimates: OrderedDict[int, tuple[object, Tokenizer, int]] = OrderedDict()
        self.tallies: OrderedDict[int, Tally] = OrderedDict()
        """Running totals by ``id()`` of the session object they count."""
        self.scales: dict[str, float] = {}

    def remember_estimate(self, item: object, tokenizer: Tokenizer, count: int) -> None:
        self.estimates[id(item)] = (item, tokenizer, count)
        if len(self.estimates) > self.max_estimates:
            self.estimates.popitem(last=False)

    def tally(self, session: Session) -> Tally | None:
        """The running total of this very session object, if one is remembered."""
        found = self.tallies.get(id(session))
        return found if found is not None and found.session() is session else None

    def remember_tally(
        self, session: Session, tokenizer: Tokenizer, count: int, total: int
    ) -> None:
        """Remember that the first ``count`` of ``session.messages`` make ``total`` tokens."""
        key = id(session)
        previous = self.tally(session)
        if previous is not None:
            ref = previous.session
        else:
            tallies = self.tallies

            def forget(dead: weakref.ref[Session]) -> None:
                entry = tallies.get(key)
                if entry is not None and entry.session is dead:
                    del tallies[key]

            ref = weakref.ref(session, forget)
        messages = session.messages
        self.tallies[key] = Tally(ref, messages, messages[count - 1], tokenizer, count, total)
        self.tallies.move_to_end(key)
        if len(self.tallies) > self.max_tallies:
            self.tallies.popitem(last=False)


class ContextWindow:
    """Estimates a request's size and trims it to the budget."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        budget: ContextBudget | None = None,
        memory: ContextMemory | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.budget = budget or ContextBudget()
        self.memory = memory if memory is not None else ContextMemory()

    def estimate_message_tokens(self, message: Message) -> int:
        """orra's estimate, remembered per message object (messages are frozen)."""
        cached = self.memory.estimates.get(id(message))
        if cached is not None and cached[0] is message and cached[1] is self.tokenizer:
            return cached[2]
        count = self.tokenizer.count_tokens
        total = count(message.content) + 4
        for call in message.tool_calls:
            total += count(call.name) + count(_compact_json(call.arguments)) + 5
        for result in message.tool_results:
            total += count(result.content) + 5
        self.memory.remember_estimate(message, self.tokenizer, total)
        return total

    def estimate_tools_tokens(self, definitions: Sequence[ToolDefinition]) -> int:
        """What the tool definitions add to a request (their compact JSON).

        orra left them out, so a request with many tools could overflow the
        window while the messages alone looked within budget.
        """
        total = 0
        for definition in definitions:
            cached = self.memory.estimates.get(id(definition))
            if cached is not None and cached[0] is definition and cached[1] is self.tokenizer:
                total += cached[2]
                continue
            count = self.tokenizer.count_tokens(_compact_json(definition.model_dump())) + 5
            self.memory.remember_estimate(definition, self.tokenizer, count)
            total += count
        return total

    calibration_weight = 0.3
    """How much each new observation moves the per-model correction (moving average)."""

    def scale(self, model: str) -> float:
        """The learned ratio "tokens the provider billed / our estimate" for ``model``."""
        return self.memory.scales.get(model, 1.0)

    def calibrate(self, model: str, estimated: int, reported: int) -> float:
        """Fold one observation into ``model``'s correction and return the new value.

        The character estimate can be off by 2x for code or non-Latin text; the
        input tokens the provider reports are the truth, so budgets follow them.
        The ratio is clamped to [0.25, 4] so one odd response cannot wreck it.
        """
        if estimated <= 0 or reported <= 0:
            return self.scale(model)
        ratio = min(max(reported / estimated, 0.25), 4.0)
        previous = self.memory.scales.get(model)
        w = self.calibration_weight
        value = ratio if previous is None else previous + w * (ratio - previous)
        self.memory.scales[model] = value
        return value

    def estimate_total_tokens(self, messages: Sequence[Message]) -> int:
        return sum(map(self.estimate_message_tokens, messages))

    def history_tokens(self, session: Session) -> int:
        """The estimate of ``session.messages``, counting only what was added since last time.

        A loaded session's messages are a :class:`History`, which carries its own
        running total (``History.tally``): each step of a run counts only its new
        messages. It is reused while the list was only appended to (any other
        change clears it) and still holds, at the last counted position, the
        message counted there. A hook that replaces ``session.messages`` makes a
        new list, which starts over.

        A new load is a new list, copied from the store's own: the total of that
        list's first messages, kept on it when an earlier load was counted,
        carries over while neither list was rewritten (only appended to), so a
        run counts the messages added since the last one, not the whole session.
        A rewrite (``store.save``, ``trim``, any change other than an append to
        either list) makes a list without that provenance, and it is counted whole.

        A plain list (a session built by hand, or a list a hook assigned) has its
        running total in :class:`ContextMemory`, by the session object.
        """
        messages = session.messages
        if isinstance(messages, History):
            return self._history_list_tokens(messages)
        tally = self.memory.tally(session)
        if (
            tally is not None
            and tally.messages is messages
            and tally.tokenizer is self.tokenizer
            and 0 < tally.count <= len(messages)
            and messages[tally.count - 1] is tally.last
        ):
            total = tally.total + self.estimate_total_tokens(messages[tally.count :])
        else:
            total = self.estimate_total_tokens(messages)
        if messages:
            self.memory.remember_tally(session, self.tokenizer, len(messages), total)
        return total

    def _history_list_tokens(self, messages: History) -> int:
        """``history_tokens`` of a :class:`History`: its own tally, else its source's."""
        tokenizer, count = self.tokenizer, len(messages)
        tally = messages.tally
        if (
            tally is not None
            and tally[0] is tokenizer
            and tally[1] <= count
            and messages[tally[1] - 1] is tally[3]
        ):
            total = tally[2]
            if tally[1] < count:
                total += self.estimate_total_tokens(messages[tally[1] :])
        else:
            total = self._first_count(messages)
        if count:
            messages.tally = (tokenizer, count, total, messages[-1])
        return total

    def _first_count(self, messages: History) -> int:
        """The total of a list with no running total of its own, reusing the one of the
        store's list it was copied from, and leaving that list its total so far."""
        source = None if messages.rewritten or messages.source is None else messages.source()
        if source is None or source.rewritten:
            return self.estimate_total_tokens(messages)
        # While neither list was rewritten, messages[:copied] are source[:copied].
        copied = messages.copied
        known = source.tally
        counted, total = 0, 0
        if (
            known is not None
            and known[0] is self.tokenizer
            and known[1] <= copied
            and source[known[1] - 1] is known[3]
        ):
            counted, total = known[1], known[2]
        total += self.estimate_total_tokens(messages[counted:copied])
        if copied:
            source.tally = (self.tokenizer, copied, total, messages[copied - 1])
        return total + self.estimate_total_tokens(messages[copied:])

    def is_over_budget(self, messages: Sequence[Message]) -> bool:
        return self.estimate_total_tokens(messages) > self.budget.available_for_input

    def tokens_remaining(self, messages: Sequence[Message]) -> int:
        return max(self.budget.available_for_input - self.estimate_total_tokens(messages), 0)

    def truncate_to_fit(
        self, messages: Sequence[Message], *, scale: float = 1.0, reserved: int = 0
    ) -> list[Message]:
        """Drop the oldest exchanges until the request fits the budget.

        Kept always: leading system messages, the first plain user message (the
        session's task), the latest plain user message (the question being
        answered) and the newest exchange. Of the rest, the newest contiguous exchanges
        that fit are kept; the result stays in chronological order. When the
        kept-always part alone is over budget, that part is returned.
        ``scale`` corrects the estimates (see :meth:`calibrate`); ``reserved``
        is what the rest of the request (tool definitions) takes.
        """
        budget = int(self.budget.available_for_input / scale) - reserved
        sizes = [self.estimate_message_tokens(m) for m in messages]
        if sum(sizes) <= budget:
            return list(messages)
        runs = _exchanges(messages)
        pinned: set[int] = {len(runs) - 1}
        for r, (start, _end) in enumerate(runs):
            if messages[start].role != Role.SYSTEM:
                break
            pinned.add(r)
        asked = [r for r, (start, _end) in enumerate(runs) if _is_question(messages[start])]
        pinned.update(asked[:1] + asked[-1:])
        run_size = [sum(sizes[s:e]) for s, e in runs]
        used = sum(run_size[r] for r in pinned)
        keep = set(pinned)
        for r in range(len(runs) - 1, -1, -1):
            if r in pinned:
                continue
            if used + run_size[r] > budget:
                break
            keep.add(r)
            used += run_size[r]
        return [m for r in sorted(keep) for m in messages[runs[r][0] : runs[r][1]]]

    def truncate_tool_result(self, content: str) -> str:
        """Shorten a tool's output to its share of the budget, on a character boundary."""
        limit = self.budget.max_tool_result_tokens
        current = self.tokenizer.count_tokens(content)
        if current <= limit:
            return content
        raw = content.encode("utf-8", "surrogatepass")  # total, like the estimate
        keep = int(len(raw) * (limit / current))
        prefix = raw[:keep].decode("utf-8", errors="ignore")
        cut = prefix.rfind("\n")
        if cut > 0:
            prefix = prefix[:cut]
        return f"{prefix}\n\n[truncated — original was {current} tokens, limit is {limit}]"
