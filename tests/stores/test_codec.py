"""The shared store codec: what every store writes the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from orra_di.errors import StoreError
from orra_di.message import Message, ToolCall
from orra_di.stores._codec import dump_messages, dump_metadata, load_messages, time_text


def test_a_message_too_deep_to_serialise_is_a_store_error() -> None:
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(400):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(StoreError, match="cannot store a message as JSON"):
        dump_messages([Message.assistant("", [ToolCall(id="1", name="t", arguments=nested)])])


def test_messages_round_trip() -> None:
    messages = [Message.user("héllo\x00"), Message.assistant("", [ToolCall(id="c", name="t")])]
    assert load_messages(dump_messages(messages)) == messages


def test_metadata_that_is_not_json_names_the_operation() -> None:
    with pytest.raises(StoreError, match="append to 'x' failed: metadata is not JSON"):
        dump_metadata({"when": object()}, "append to 'x'")


def test_time_text_is_fixed_width_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert (
        time_text(datetime(2026, 1, 2, 4, 5, 6, tzinfo=paris)) == "2026-01-02T03:05:06.000000+00:00"
    )
    assert time_text(datetime(2026, 1, 2, 3, 5, 6)) == time_text(
        datetime(2026, 1, 2, 3, 5, 6, tzinfo=UTC)
    )
