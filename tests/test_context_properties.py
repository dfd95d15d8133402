"""Properties of ``ContextWindow.truncate_to_fit`` over generated conversations.

A conversation is what the runtime sends: an optional system prompt, the first
user message (the task), then user messages, assistant messages, and assistant
messages with 1-3 tool calls each answered by the tool-result message right
after it. Contents vary in size and include non-ASCII text.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from orra_di.context import CharEstimator, ContextBudget, ContextWindow
from orra_di.message import Message, Role, ToolCall, ToolResult

ESTIMATOR = CharEstimator()
SETTINGS = settings(max_examples=200, deadline=None)

_words = st.text(
    alphabet=st.sampled_from(list("abc xyz\n.é日🙂Ωß")) | st.characters(codec="utf-8"),
    max_size=24,
)


@st.composite
def _content(draw: st.DrawFn) -> str:
    """Text from empty to a few hundred characters, ASCII and not."""
    return draw(_words) * draw(st.integers(min_value=0, max_value=15))


@dataclass(frozen=True)
class Case:
    messages: list[Message]
    budget: int
    has_system: bool


@st.composite
def cases(draw: st.DrawFn) -> Case:
    messages: list[Message] = []
    has_system = draw(st.booleans())
    if has_system:
        messages.append(Message.system(draw(_content())))
    messages.append(Message.user(draw(_content())))
    for turn in range(draw(st.integers(min_value=0, max_value=14))):
        kind = draw(st.sampled_from(["user", "assistant", "tools"]))
        if kind == "user":
            messages.append(Message.user(draw(_content())))
        elif kind == "assistant":
            messages.append(Message.assistant(draw(_content())))
        else:
            calls = [
                ToolCall(
                    id=f"call_{turn}_{n}",
                    name=draw(st.sampled_from(["search", "read_file", "wetter_abfragen"])),
                    arguments={"q": draw(_content()), "n": draw(st.integers(0, 99))},
                )
                for n in range(draw(st.integers(min_value=1, max_value=3)))
            ]
            messages.append(Message.assistant(draw(_content()), calls))
            messages.append(
                Message.tool_result(
                    [
                        ToolResult(
                            call_id=c.id, content=draw(_content()), is_error=draw(st.booleans())
                        )
                        for c in calls
                    ]
                )
            )
    total = ContextWindow(ESTIMATOR).estimate_total_tokens(messages)
    budget = draw(st.integers(min_value=0, max_value=total + 20))
    return Case(messages, budget, has_system)


def _window(budget: int) -> ContextWindow:
    return ContextWindow(ESTIMATOR, ContextBudget(max_tokens=budget + 100, reserved_for_output=100))


def _kept_indices(original: list[Message], result: list[Message]) -> list[int]:
    """Positions in ``original`` of the (identical) objects in ``result``, in order.

    Fails if ``result`` is not a subsequence of ``original``.
    """
    indices: list[int] = []
    start = 0
    for msg in result:
        for i in range(start, len(original)):
            if original[i] is msg:
                indices.append(i)
                start = i + 1
                break
        else:
            raise AssertionError("result is not a subsequence of the input in order")
    return indices


def _always_kept(case: Case) -> set[int]:
    """System prompt, first and latest plain user messages, the newest message with its
    partner."""
    msgs = case.messages
    required = {0, 1} if case.has_system else {0}
    questions = [i for i, m in enumerate(msgs) if m.role == Role.USER and not m.tool_results]
    required.add(questions[-1])
    last = len(msgs) - 1
    required.add(last)
    if msgs[last].tool_results:
        required.add(last - 1)
    return required


@SETTINGS
@given(cases())
def test_structure_is_preserved(case: Case) -> None:
    """An ordered subsequence; tool pairs whole; system prompt, task and newest kept."""
    msgs = case.messages
    result = _window(case.budget).truncate_to_fit(msgs)
    indices = _kept_indices(msgs, result)  # fails unless an ordered subsequence
    kept = set(indices)

    for i in kept:
        if msgs[i].tool_calls:
            assert i + 1 in kept, "assistant tool calls kept without their results"
            answered = {r.call_id for r in msgs[i + 1].tool_results}
            assert answered == {c.id for c in msgs[i].tool_calls}
        if msgs[i].tool_results:
            assert i - 1 in kept, "tool results kept without the assistant call"
            assert msgs[i - 1].tool_calls

    assert _always_kept(case) <= kept
    assert result[0] is msgs[0]
    assert result[-1] is msgs[-1]
    if case.has_system:
        assert result[1] is msgs[1]


@SETTINGS
@given(cases())
def test_budget_is_respected_newest_first(case: Case) -> None:
    """Within budget whenever the always-kept part fits; newest optional messages first."""
    msgs = case.messages
    w = _window(case.budget)
    result = w.truncate_to_fit(msgs)
    kept = set(_kept_indices(msgs, result))
    required = _always_kept(case)
    required_cost = w.estimate_total_tokens([msgs[i] for i in sorted(required)])

    if w.estimate_total_tokens(msgs) <= case.budget:
        assert result == msgs
        return
    if required_cost <= case.budget:
        assert w.estimate_total_tokens(result) <= case.budget
    else:
        # Nothing optional is added to a request that is already over budget.
        assert kept == required

    # What is dropped is older than what is kept, and the next one back did not fit.
    optional = [i for i in range(len(msgs)) if i not in required]
    dropped = [i for i in optional if i not in kept]
    kept_optional = [i for i in optional if i in kept]
    if not dropped:
        return
    assert not kept_optional or max(dropped) < min(kept_optional)
    newest = max(dropped)
    run = [newest - 1, newest] if msgs[newest].tool_results else [newest]
    total = w.estimate_total_tokens(result) + w.estimate_total_tokens([msgs[i] for i in run])
    assert total > case.budget


@SETTINGS
@given(cases())
def test_truncation_is_deterministic_and_idempotent(case: Case) -> None:
    w = _window(case.budget)
    once = w.truncate_to_fit(case.messages)
    assert w.truncate_to_fit(case.messages) == once
    assert _window(case.budget).truncate_to_fit(list(case.messages)) == once
    assert w.truncate_to_fit(once) == once
