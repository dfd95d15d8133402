"""The built-in tools: exact arithmetic without eval, and the time in a zone."""

from __future__ import annotations

import re

import pytest

from orra_di import ConfigurationError, Namespace, ToolContext, ToolInputError
from orra_di.testing import example
from orra_di.tools import BUILTIN_TOOLS, builtin_tools, calculate, current_time

pytestmark = pytest.mark.anyio
CTX = ToolContext(Namespace("t"))


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2 * (3 + 4.5) ** 2", "112.5"), ("7 // 2", "3"), ("-3 % 5", "2"), ("1 / 4", "0.25")],
)
async def test_calculate(expression: str, value: str) -> None:
    assert await calculate.execute({"expression": expression}, CTX) == value


@pytest.mark.parametrize(
    ("expression", "complaint"),
    [
        ("__import__('os').system('true')", "unsupported element"),
        ("2 ** 100000", "too large"),
        ("1 / 0", "division by zero"),
        ("2 +", "not an arithmetic expression"),
        ("True + 1", "numbers, not True/False"),
        ("x" * 501, "longer than 500"),
    ],
)
async def test_calculate_refuses_what_is_not_plain_arithmetic(
    expression: str, complaint: str
) -> None:
    with pytest.raises(ToolInputError, match=complaint):
        await calculate.execute({"expression": expression}, CTX)


async def test_current_time_in_a_zone() -> None:
    text = await current_time.execute({"timezone": "Europe/Paris"}, CTX)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \(\w+day\)", text)
    assert (await current_time.execute({}, CTX)).endswith("day)")
    with pytest.raises(ToolInputError, match="unknown time zone 'Mars/Base'"):
        await current_time.execute({"timezone": "Mars/Base"}, CTX)


def test_the_test_model_uses_the_schema_examples() -> None:
    assert example(calculate.definition.input_schema) == {"expression": "2 * (3 + 4.5) ** 2"}


def test_builtin_tools_by_name() -> None:
    assert builtin_tools(["current_time", "calculate"]) == [current_time, calculate]
    assert set(BUILTIN_TOOLS) == {"calculate", "current_time"}
    with pytest.raises(ConfigurationError, match="unknown built-in tool 'shell'"):
        builtin_tools(["shell"])


def test_the_settings_know_every_built_in_tool() -> None:
    from typing import get_args

    from orra_di.settings import BuiltinTool

    assert set(get_args(BuiltinTool)) == set(BUILTIN_TOOLS)
