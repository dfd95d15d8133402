"""Round 8 review: the offline default model, against README.md and getting-started.

"An arithmetic expression in your message goes to the built-in calculate tool": the
expression, not a piece of a number or of a function call, which would be answered
with confidence as if it were what the user asked.
"""

from __future__ import annotations

import pytest

from orra_di import InMemoryStore, Runtime
from orra_di.providers.offline import OfflineModel, arithmetic_in
from orra_di.tools.basic import calculate, current_time

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("What is 2+2?", "2+2"),
        ("what is -3+5?", "-3+5"),
        ("What is (2+3)*4 - 7/2?", "(2+3)*4 - 7/2"),
        ("and 2^10, please", "2**10"),
        ("what is 10 % 3", "10 % 3"),
        ("Compute 3, then 4+5", "4+5"),
    ],
)
def test_expressions_are_found(text: str, expression: str) -> None:
    assert arithmetic_in(text) == expression


@pytest.mark.parametrize(
    "text",
    [
        "what is 1e308*10?",  # was 308*10
        "what is 1,000+1?",  # was 000+1
        "sqrt(16)+1",  # was (16)+1
        "what is 0x10+1",  # was 10+1
        "what is 2 * 3e2",  # was 2 * 3
        "what is 12:30+1",  # was 30+1
        "what is 1_000*2",  # was 000*2
        "meeting on 2024-01-31",
    ],
)
def test_a_piece_of_a_number_or_a_call_is_not_an_expression(text: str) -> None:
    assert arithmetic_in(text) is None


async def test_the_offline_model_does_not_answer_another_question() -> None:
    runtime = Runtime(OfflineModel(), InMemoryStore(), tools=[calculate, current_time])
    result = await runtime.run("cli:me", "what is 1,000+1?")
    assert not result.turns[0].tool_results
    assert "= 1 " not in result.final_message.content
    result = await runtime.run("cli:me", "What is 2+2?")
    assert result.final_message.content.startswith("2+2 = 4 (worked out by the calculate tool)")
