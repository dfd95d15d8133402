"""LoggingHook: structured records, per-session totals (bug 13), safe previews (bug 26)."""

from __future__ import annotations

import logging

import pytest

from orra_di import InMemoryStore, Runtime, RuntimeConfig, tool
from orra_di.hooks.logging import TOKENS_STATE_KEY, LoggingHook, preview
from orra_di.provider import Usage
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

API_KEY = "sk-live-0123456789abcdef"


@tool
def fetch(name: str) -> str:
    """Return a record that holds secrets."""
    return f"record {name}: postgresql://app:hunter2pass@db/prod key={API_KEY} " + "é" * 300


def runtime(store: InMemoryStore, hook: LoggingHook) -> Runtime:
    def answer(request: object) -> object:
        last = request.messages[-1]  # type: ignore[attr-defined]
        if last.tool_results:
            return reply("done", usage=Usage(input_tokens=20, output_tokens=4))
        return tool_calls(
            call("fetch", {"name": "x"}), usage=Usage(input_tokens=10, output_tokens=2)
        )

    return Runtime(
        ScriptedProvider(answer),  # type: ignore[arg-type]
        store,
        tools=[fetch],
        hooks=[hook],
        config=RuntimeConfig(name="Atlas", model="m1"),
    )


def events(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "orra_di.run"]


async def test_logging_hook_logs_every_step_with_structured_fields(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="orra_di.run")
    await runtime(InMemoryStore(), LoggingHook(secrets=[API_KEY])).run("acme:alice", "go")
    records = events(caplog)
    assert [r.orra_event for r in records] == [  # type: ignore[attr-defined]
        "run_start",
        "model_call_start",
        "model_call",
        "tool_call_start",
        "tool_call",
        "model_call_start",
        "model_call",
        "run_end",
    ]
    assert records[0].getMessage() == "[session] new session for acme:alice"
    for record in records:
        assert record.namespace == "acme:alice"  # type: ignore[attr-defined]
        assert record.agent == "Atlas"  # type: ignore[attr-defined]
        assert len(record.run_id) == 32  # type: ignore[attr-defined]
    call_done = records[2]
    assert call_done.getMessage().endswith("10 in / 2 out tokens (session total: 10 in / 2 out)")
    assert call_done.finish_reason == "tool_use"  # type: ignore[attr-defined]
    assert call_done.model == "m1"  # type: ignore[attr-defined]
    tool_done = records[4]
    assert tool_done.tool == "fetch" and tool_done.is_error is False  # type: ignore[attr-defined]
    assert records[-1].getMessage() == "[session] saving 4 messages for acme:alice"


async def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    await runtime(InMemoryStore(), LoggingHook(secrets=[API_KEY])).run("acme:alice", "go")
    text = caplog.text + repr([r.__dict__ for r in caplog.records])
    assert "hunter2pass" not in text and API_KEY not in text
    (tool_done,) = [r for r in events(caplog) if r.orra_event == "tool_call"]  # type: ignore[attr-defined]
    assert tool_done.preview.startswith(  # type: ignore[attr-defined]
        "record x: postgresql://app:***@db/prod key=***"
    )
    assert API_KEY not in repr(LoggingHook(secrets=[API_KEY]))


async def test_token_totals_are_per_session_and_kept_in_the_session(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # orra summed every session of the process into its "session total" (bug 13).
    caplog.set_level(logging.INFO, logger="orra_di.run")
    store = InMemoryStore()
    hook = LoggingHook()
    await runtime(store, hook).run("acme:alice", "one")
    await runtime(store, hook).run("acme:alice", "two")
    caplog.clear()
    await runtime(store, hook).run("acme:bob", "one")
    bob_calls = [r for r in events(caplog) if r.orra_event == "model_call"]  # type: ignore[attr-defined]
    assert bob_calls[-1].session_input_tokens == 30  # type: ignore[attr-defined]
    alice = await store.load("acme:alice")
    bob = await store.load("acme:bob")
    assert alice is not None and alice.metadata["state"][TOKENS_STATE_KEY] == {
        "input": 60,
        "output": 12,
    }
    assert bob is not None and bob.metadata["state"][TOKENS_STATE_KEY] == {"input": 30, "output": 6}


def test_preview_is_cut_on_characters_on_one_line() -> None:
    # orra cut at 120 bytes, which panics inside a multi-byte character (bug 26).
    text = "ligne\nsuivante " + "日本語" * 100
    shown = preview(text, 20)
    assert shown == "ligne suivante 日本語日本..."
    assert preview("short") == "short"
    assert preview("x" * 120) == "x" * 120
    assert preview("x" * 121) == "x" * 120 + "..."


def test_a_secret_across_the_cut_is_masked_before_cutting() -> None:
    shown = preview("token: " + API_KEY, 12, [API_KEY])
    assert shown == "token: ***"
    assert "sk-li" not in preview("token: " + API_KEY, 12, [API_KEY])


async def test_a_quiet_logger_costs_no_state_change_but_totals_still_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="orra_di.run")
    store = InMemoryStore()
    await runtime(store, LoggingHook()).run("acme:alice", "go")
    assert events(caplog) == []
    session = await store.load("acme:alice")
    assert session is not None
    assert session.metadata["state"][TOKENS_STATE_KEY] == {"input": 30, "output": 6}
