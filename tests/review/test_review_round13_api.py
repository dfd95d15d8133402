"""Round 13 review: the Python API's entry points given values of the wrong type or
out of range: a clear ``ConfigurationError`` naming the field, not a ``TypeError``
from deep inside or a value that fails later, in the middle of a run.
"""

from __future__ import annotations

from typing import Any

import pytest

from orra_di import ConfigurationError, RuntimeConfig


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("max_turns", "10", "max_turns must be an integer"),
        ("max_turns", 2.5, "max_turns must be an integer"),
        ("max_turns", True, "max_turns must be an integer"),
        ("max_tokens", 0, "max_tokens must be at least 1"),
        ("max_tokens", "100", "max_tokens must be an integer"),
        ("tool_timeout", "30", "tool_timeout must be a number"),
        ("tool_timeout", float("nan"), "tool_timeout must be positive"),
        ("busy_timeout", -1, "busy_timeout must be 0 or more"),
        ("busy_timeout", float("nan"), "busy_timeout must be 0 or more"),
        ("busy_timeout", "5", "busy_timeout must be a number"),
    ],
)
def test_runtime_config_refuses_a_wrong_value_by_name(field: str, value: Any, says: str) -> None:
    """``RuntimeConfig(max_turns="10")`` raised ``TypeError: '<' not supported between
    instances of 'str' and 'int'``; a negative ``busy_timeout`` or a NaN timeout was
    taken and failed (or waited forever) in the middle of a run."""
    with pytest.raises(ConfigurationError, match=says):
        RuntimeConfig(**{field: value})


def test_runtime_config_keeps_accepting_the_documented_values() -> None:
    config = RuntimeConfig(max_turns=1, max_tokens=1, tool_timeout=0.5, busy_timeout=0)
    assert config.busy_timeout == 0
    assert RuntimeConfig(tool_timeout=None, busy_timeout=None).tool_timeout is None
