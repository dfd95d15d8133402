"""Small, safe tools that help almost any assistant: the time, and arithmetic.

Models are bad at both; these are harmless to offer (no I/O, bounded work),
so the default configuration gives them to every agent.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field

from orra_di.errors import ConfigurationError, ToolInputError
from orra_di.tool import FunctionTool, Tool, tool

__all__ = ["BUILTIN_TOOLS", "builtin_tools", "calculate", "current_time"]

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}
_MAX_EXPONENT = 1000
_MAX_LENGTH = 500


def _evaluate(node: ast.AST) -> float | int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise ToolInputError("use numbers, not True/False")
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT:
            raise ToolInputError(f"exponent {right} is too large (limit {_MAX_EXPONENT})")
        return _BINARY[type(node.op)](left, right)  # type: ignore[no-any-return]
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))  # type: ignore[no-any-return]
    raise ToolInputError(
        f"unsupported element {ast.dump(node)[:40]}: use numbers, + - * / // % ** and parentheses"
    )


@tool
def calculate(
    expression: Annotated[
        str, Field(description="Arithmetic to evaluate", examples=["2 * (3 + 4.5) ** 2"])
    ],
) -> str:
    """Evaluate an arithmetic expression exactly (numbers, + - * / // % ** and parentheses)."""
    if len(expression) > _MAX_LENGTH:
        raise ToolInputError(f"expression is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise ToolInputError(f"not an arithmetic expression: {exc.msg}") from None
    try:
        return str(_evaluate(tree))
    except ZeroDivisionError:
        raise ToolInputError("division by zero") from None


@tool
def current_time(
    timezone: Annotated[
        str, Field(description="IANA time zone, e.g. Europe/Paris", examples=["UTC"])
    ] = "UTC",
) -> str:
    """The current date and time in a time zone, as ISO 8601 with the weekday."""
    try:
        zone = UTC if timezone.upper() == "UTC" else ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolInputError(f"unknown time zone {timezone!r}; use an IANA name") from None
    now = datetime.now(zone)
    return f"{now.isoformat(timespec='seconds')} ({now.strftime('%A')})"


BUILTIN_TOOLS: dict[str, FunctionTool] = {"calculate": calculate, "current_time": current_time}


def builtin_tools(names: Iterable[str]) -> list[Tool]:
    """The built-in tools called ``names``, in that order."""
    chosen: list[Tool] = []
    for name in names:
        if name not in BUILTIN_TOOLS:
            raise ConfigurationError(
                f"unknown built-in tool {name!r}; available: {', '.join(BUILTIN_TOOLS)}"
            )
        chosen.append(BUILTIN_TOOLS[name])
    return chosen
