"""The offline model: what the CLI and the container answer with when no LLM is set.

Runs through a real Runtime with the real built-in tools, so what is checked is what
a new user sees: the tool it chose, the arguments, the stored steps and the answer.
"""

from __future__ import annotations

import re

import pytest

from orra_di import InMemoryStore, Namespace, Runtime, tool
from orra_di.providers.offline import OFFLINE_NOTICE, OfflineModel, arithmetic_in
from orra_di.tools import calculate, current_time

pytestmark = pytest.mark.anyio


@tool
def order_status(order_id: str) -> str:
    """An application's tool: the offline model never calls it."""
    return f"order {order_id}: shipped"


def runtime(*tools: object) -> Runtime:
    return Runtime(OfflineModel(), InMemoryStore(), tools=list(tools or (calculate, current_time)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expression"),
    [
        ("What is 2+2?", "2+2"),
        ("what's 3 * (4 + 5.5) please", "3 * (4 + 5.5)"),
        ("compute 2^10.", "2**10"),
        ("12 × 3 ÷ 4", "12 * 3 / 4"),
        ("(and then 7 - 2)", "7 - 2"),
        ("-3 + 1 is what", "-3 + 1"),
    ],
)
def test_arithmetic_is_found_in_a_sentence(text: str, expression: str) -> None:
    assert arithmetic_in(text) == expression


@pytest.mark.parametrize(
    "text", ["Hello, who are you?", "born on 2024-01-31", "top-3 ideas", "version 1.2", "5 apples"]
)
def test_no_arithmetic_where_there_is_none(text: str) -> None:
    assert arithmetic_in(text) is None


async def test_two_plus_two_is_four_through_calculate() -> None:
    result = await runtime().run(Namespace("u", "a"), "What is 2+2?")

    (first, second) = result.turns
    assert [(c.name, c.arguments) for c in first.response.message.tool_calls] == [
        ("calculate", {"expression": "2+2"})
    ]
    assert first.tool_results[0].content == "4"
    assert result.final_message.content == (
        f"2+2 = 4 (worked out by the calculate tool)\n\n{OFFLINE_NOTICE}"
    )
    assert second.tool_results == ()


async def test_a_question_about_time_goes_to_current_time_with_its_zone() -> None:
    result = await runtime().run(Namespace("u", "a"), "What time is it in Asia/Tokyo?")
    call = result.turns[0].response.message.tool_calls[0]
    assert (call.name, call.arguments) == ("current_time", {"timezone": "Asia/Tokyo"})
    first_line = result.final_message.content.splitlines()[0]
    assert re.fullmatch(
        r"It is \S+\+09:00 \(\w+day\) in Asia/Tokyo \(read by the current_time tool\)\.",
        first_line,
    )
    plain = await runtime().run(Namespace("u", "b"), "what day is it today")
    assert plain.turns[0].response.message.tool_calls[0].arguments == {}  # UTC by default


async def test_any_other_message_calls_no_tool_and_says_what_it_can_do() -> None:
    rt = runtime(calculate, current_time, order_status)
    result = await rt.run(Namespace("u", "a"), "Where is order A-1001?")
    assert len(result.turns) == 1
    assert result.final_message.content == (
        "You said: Where is order A-1001?\n"
        'Offline, I can only work out arithmetic with calculate (try "What is 2+2?") and '
        'tell the time with current_time (try "What time is it?").\n\n' + OFFLINE_NOTICE
    )


async def test_it_says_what_the_session_remembers() -> None:
    rt = runtime()
    ns = Namespace("u", "a")
    await rt.run(ns, "Hello, who are you?")
    await rt.run(ns, "What is 1+1?")
    result = await rt.run(ns, "Do you remember me?")
    assert (
        "This session remembers 2 earlier messages from you; the first was: Hello, who are you?"
        in result.final_message.content
    )


async def test_arithmetic_without_the_calculate_tool_is_said_not_faked() -> None:
    result = await runtime(order_status).run(Namespace("u", "a"), "What is 2+2?")
    assert len(result.turns) == 1
    lines = result.final_message.content.splitlines()
    assert lines[1] == (
        "That looks like arithmetic, but this agent has no calculate tool. Offline, I can "
        "only repeat you: this agent has neither calculate nor current_time."
    )


async def test_a_failing_calculation_is_reported() -> None:
    result = await runtime().run(Namespace("u", "a"), "what is 1/0")
    assert result.final_message.content.startswith(
        "calculate could not work out 1/0: invalid input: division by zero"
    )


async def test_the_notice_names_the_variables_and_extras_that_plug_in_a_real_model() -> None:
    for needed in (
        "ANTHROPIC_API_KEY",
        'pip install "orra-di[anthropic]"',
        "OPENAI_API_KEY",
        'pip install "orra-di[openai]"',
        "ORRA_LLM__BASE_URL=",
    ):
        assert needed in OFFLINE_NOTICE


async def test_streaming_gives_the_same_answer() -> None:
    rt = runtime()
    async with rt.run_streaming(Namespace("u", "s"), "What is 6*7?") as events:
        async for _ in events:
            pass
    assert events.result is not None
    assert events.result.final_message.content.startswith("6*7 = 42 ")
