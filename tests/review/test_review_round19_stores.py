"""Round 19 review: bad input written to a session store, on every backend.

Each test stores a session first, feeds one store method something wrong (a
message list holding what is no Message, metadata JSON refuses or a lone
surrogate in it, odd numbers for ``trim`` and ``prune``), and checks both
halves of the rule: the error says what was wrong (a StoreError or ValueError
naming it, never a bare AttributeError, OverflowError or UnicodeEncodeError
from a driver), and what was stored before is still there, whole.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from orra_di import Message, Namespace, Session, StoreError
from orra_di.message import ToolCall, ToolResult, VendorData
from orra_di.store import SessionStore
from tests.memory.backends import BACKENDS, open_sessions

pytestmark = pytest.mark.anyio

NS = Namespace("round19", "alice")
KEPT = [f"m{i}" for i in range(5)]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A store of each backend holding one session: five messages and ``{"k": 1}``."""
    async for opened in open_sessions(request.param, tmp_path):
        await opened.append(NS, [Message.user(text) for text in KEPT], metadata={"k": 1})
        yield opened


async def assert_untouched(store: SessionStore) -> None:
    session = await store.load(NS)
    assert session is not None
    assert [m.content for m in session.messages] == KEPT
    assert session.metadata == {"k": 1}


def deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


# -- messages that are no Message ------------------------------------------------------


@pytest.mark.parametrize("item", ["raw text", {"role": "user", "content": "x"}, None])
async def test_append_of_something_that_is_no_message_names_it(
    store: SessionStore, item: object
) -> None:
    """Was an AttributeError ('str' object has no attribute 'model_dump_json') on the
    persistent stores, and stored as a "message" by InMemoryStore, breaking every
    later load and run of the session."""
    with pytest.raises(StoreError, match=r"message 1: it is a \w+, not a Message; make it"):
        await store.append(NS, [Message.user("fine"), item])  # type: ignore[list-item]
    await assert_untouched(store)


async def test_append_of_a_bare_string_is_refused_not_stored_letter_by_letter(
    store: SessionStore,
) -> None:
    with pytest.raises(StoreError, match="message 0: it is a str, not a Message"):
        await store.append(NS, "hello")  # type: ignore[arg-type]
    await assert_untouched(store)


async def test_save_of_a_session_whose_messages_are_invalid_keeps_the_stored_one(
    store: SessionStore,
) -> None:
    """``Session`` does not validate on assignment, so a hook or an application can put
    anything in ``messages``; the save was a pydantic ValidationError (SQLite, file),
    an AttributeError (PostgreSQL, Redis), or replaced the history (InMemoryStore)."""
    session = await store.load(NS)
    assert session is not None
    session.messages.append("garbage")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="message 5: it is a str, not a Message"):
        await store.save(session)
    await assert_untouched(store)


# -- metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [{1, 2}, b"\xff", datetime(2024, 1, 1), math.nan, math.inf, object()],
    ids=["set", "bytes", "datetime", "nan", "inf", "object"],
)
async def test_metadata_json_refuses_is_a_store_error_on_every_backend(
    store: SessionStore, bad: object
) -> None:
    """InMemoryStore took any object, so a test on it passed where production failed."""
    with pytest.raises(StoreError, match="metadata is not JSON-serialisable"):
        await store.append(NS, [Message.user("x")], metadata={"k": bad})
    with pytest.raises(StoreError, match="metadata is not JSON-serialisable"):
        await store.save(Session(namespace=NS, messages=[Message.user("y")], metadata={"k": bad}))
    await assert_untouched(store)  # the message of the refused append is not stored either


async def test_metadata_nested_too_deep_is_a_store_error_and_nothing_is_half_written(
    store: SessionStore,
) -> None:
    """Was a bare RecursionError; InMemoryStore also kept the message of the failed
    append (it extended the history before copying the metadata)."""
    with pytest.raises(StoreError, match="nested too deeply"):
        await store.append(NS, [Message.user("x")], metadata={"k": deep(5000)})
    await assert_untouched(store)


@pytest.mark.parametrize("metadata", [{"cwd": "/home/\udcff"}, {"\ud800": 1}])
async def test_lone_surrogates_in_metadata_are_stored_as_replacement_characters(
    store: SessionStore, metadata: dict[str, Any]
) -> None:
    """A hook keeping ``os.fsdecode`` of a non-UTF-8 path failed the run's write with a
    bare UnicodeEncodeError from the driver; text in messages was already cleaned."""
    await store.append(NS, [Message.user("x")], metadata=metadata)
    session = await store.load(NS)
    assert session is not None and [m.content for m in session.messages] == [*KEPT, "x"]
    cleaned = {k.replace("\ud800", "\ufffd"): v for k, v in metadata.items()}
    cleaned = {k: v.replace("\udcff", "\ufffd") if isinstance(v, str) else v
               for k, v in cleaned.items()}  # fmt: skip
    assert session.metadata == cleaned


async def test_metadata_comes_back_as_json_gives_it_on_every_backend(store: SessionStore) -> None:
    """Tuples become lists and number keys text, on InMemoryStore too."""
    await store.append(NS, [], metadata={1: ("a", "b")})
    session = await store.load(NS)
    assert session is not None and session.metadata == {"1": ["a", "b"]}


# -- vendor data and tool results ----------------------------------------------------------


async def test_lone_surrogates_in_vendor_data_are_stored_as_replacement_characters(
    store: SessionStore,
) -> None:
    """Anthropic's blocks repeat the tool call's input: the arguments were cleaned, the
    copy in vendor data was not, and the step failed to store."""
    blocks = {"content": [{"type": "tool_use", "input": {"q": "\ud83d"}}]}
    message = Message.assistant(
        "",
        [ToolCall(id="c1", name="lookup", arguments={"q": "\ud83d"})],
        vendor_data=[VendorData(vendor="anthropic\udcff", data=blocks)],
    )
    result = Message.tool_result([ToolResult(call_id="c1\udcff", content="ok")])
    await store.append(NS, [message, result])
    session = await store.load(NS)
    assert session is not None
    stored = session.messages[-2]
    assert stored.vendor_data[0].vendor == "anthropic\ufffd"
    assert stored.vendor_data[0].data == {
        "content": [{"type": "tool_use", "input": {"q": "\ufffd"}}]
    }
    assert session.messages[-1].tool_results[0].call_id == "c1\ufffd"


# -- trim and prune with odd numbers ---------------------------------------------------------


@pytest.mark.parametrize("keep_last", [2.5, True, "3", None])
async def test_trim_with_a_keep_last_that_is_no_whole_number_is_refused_alike(
    store: SessionStore, keep_last: Any
) -> None:
    """SQLite and PostgreSQL trimmed 2.5 as 2, the others raised TypeError or a
    backend's own error; ``True`` trimmed to one message on three of them."""
    with pytest.raises(ValueError, match="keep_last must be a whole number of messages >= 0"):
        await store.trim(NS, keep_last)
    await assert_untouched(store)


@pytest.mark.parametrize("keep_last", [10**30, 2**63, 2**53 + 1])
async def test_trim_keeping_more_than_any_session_holds_keeps_everything(
    store: SessionStore, keep_last: int
) -> None:
    """Was an OverflowError on SQLite ('too large to convert to SQLite INTEGER') and a
    'bigint out of range' StoreError on PostgreSQL."""
    assert await store.trim(NS, keep_last) == 0
    await assert_untouched(store)


async def test_trim_to_zero_and_negative(store: SessionStore) -> None:
    with pytest.raises(ValueError, match="keep_last must be >= 0, got -1"):
        await store.trim(NS, -1)
    await assert_untouched(store)
    assert await store.trim(NS, 0) == len(KEPT)


@pytest.mark.parametrize("idle_for", [-1, -0.5, math.nan, "10", None, True])
async def test_prune_with_a_negative_or_non_number_idle_for_deletes_nothing(
    store: SessionStore, idle_for: Any
) -> None:
    """``prune(-1)`` deleted every session on every backend (a sign error, a bad
    setting); NaN and text failed in each backend's own words."""
    with pytest.raises(ValueError, match="idle_for must be a number of seconds >= 0"):
        await store.prune(idle_for)
    await assert_untouched(store)


@pytest.mark.parametrize("idle_for", [math.inf, 1e300, 1e15, 10**40])
async def test_prune_with_an_idle_time_longer_than_history_deletes_nothing(
    store: SessionStore, idle_for: float
) -> None:
    """Was an OverflowError from ``timedelta`` (memory, file, SQLite) or a 'timestamp
    out of range' StoreError (PostgreSQL); ``orra-di sessions prune --idle 1e20d`` and
    ``store.session_ttl = 1e300`` showed a traceback."""
    assert await store.prune(idle_for) == 0
    await assert_untouched(store)


async def test_prune_zero_still_deletes_every_idle_session(store: SessionStore) -> None:
    assert await store.prune(0) == 1
    assert await store.load(NS) is None
