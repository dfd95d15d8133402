"""Round 17 review: docs/projects.md's and docs/usage-and-budgets.md's command lines.

Each test runs ``orra-di`` through the Typer app on a SQLite file of its own, with no
key: ``projects create|show|update|delete`` and runs under ``project:<id>``, then
``usage`` with its windows and budgets (the refusal, what it keeps, the JSON form, and
``ORRA_USAGE__ENABLED``).
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app


@pytest.fixture
def orra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``orra-di`` in-process on a SQLite file of this test; no key, no other setting."""
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


def _project(orra: Any, project_id: str = "acme") -> dict[str, Any]:
    shown = orra("projects", "show", project_id, "--json")
    assert shown.exit_code == 0, shown.output
    record: dict[str, Any] = json.loads(shown.output)
    return record


# -- projects -------------------------------------------------------------------------------------


def test_the_pages_create_and_show_json(orra: Any) -> None:
    created = orra(
        "projects", "create", "acme", "--name", "Acme support",
        "--prompt", "You answer for Acme.", "--tool", "calculate",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "namespace:   project:acme" in created.output
    record = _project(orra)
    assert record["enabled_tools"] == ["calculate"] and record["active"] is True
    assert record["system_prompt"] == "You answer for Acme."
    listed = orra("projects", "list").output
    assert "acme" in listed and "Acme support" in listed


def test_a_run_under_a_project_is_offered_only_its_tools(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TestModel calls every tool it is offered: only the project's one is."""
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    orra("projects", "create", "acme", "--name", "Acme", "--tool", "calculate")
    asked = orra("ask", "-n", "project:acme:user:bob", "What is 6*7?")
    assert asked.exit_code == 0, asked.output
    shown = orra("sessions", "show", "project:acme:user:bob").output
    assert "→ calculate" in shown and "current_time" not in shown
    orra("ask", "-n", "plain:bob", "What is 6*7?")  # outside the project: both tools
    outside = orra("sessions", "show", "plain:bob").output
    assert "→ calculate" in outside and "→ current_time" in outside


def test_update_all_tools_meta_and_deactivate_as_on_the_page(orra: Any) -> None:
    orra("projects", "create", "acme", "--name", "Acme", "--tool", "calculate")
    updated = orra("projects", "update", "acme", "--all-tools", "--meta", "tier=3", "--deactivate")
    assert updated.exit_code == 0, updated.output
    record = _project(orra)
    assert record["enabled_tools"] is None and record["active"] is False
    assert record["metadata"] == {"tier": 3}  # the value as JSON, since it parses


def test_meta_keys_are_merged_and_a_value_that_is_not_json_stays_text(orra: Any) -> None:
    orra("projects", "create", "acme", "--name", "Acme", "--meta", "tier=3")
    orra("projects", "update", "acme", "--meta", "owner=alice", "--meta", "flags=[1, 2]")
    assert _project(orra)["metadata"] == {"tier": 3, "owner": "alice", "flags": [1, 2]}


def test_an_inactive_project_refuses_runs_says_how_to_activate_and_stores_nothing(
    orra: Any,
) -> None:
    orra("projects", "create", "acme", "--name", "Acme")
    orra("projects", "update", "acme", "--deactivate")
    asked = orra("ask", "-n", "project:acme:user:bob", "hello")
    assert asked.exit_code == 1
    assert "project 'acme' is inactive" in asked.output
    assert "orra-di projects update acme --activate" in asked.output
    assert orra("sessions", "list").output.strip() == ""
    orra("projects", "update", "acme", "--activate")
    assert orra("ask", "-n", "project:acme:user:bob", "What is 1+1?").exit_code == 0


def test_a_missing_project_refuses_runs_and_says_how_to_create_it(orra: Any) -> None:
    asked = orra("ask", "-n", "project:ghost:u", "hello")
    assert asked.exit_code == 1
    assert "project not found: ghost" in asked.output
    assert "orra-di projects create ghost" in asked.output


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--tool", "calculate", "--all-tools"], "only one of --tool, --no-tools, --all-tools"),
        (["--no-tools", "--all-tools"], "only one of --tool, --no-tools, --all-tools"),
        (["--prompt", "x", "--clear-prompt"], "--prompt or --clear-prompt, not both"),
        (["--meta", "notakv"], "--meta 'notakv' is not KEY=VALUE"),
    ],
)
def test_contradicting_update_options_change_nothing(
    orra: Any, options: list[str], expected: str
) -> None:
    orra("projects", "create", "acme", "--name", "Acme", "--prompt", "p", "--tool", "calculate")
    before = _project(orra)
    updated = orra("projects", "update", "acme", *options)
    assert updated.exit_code == 2 and expected in updated.output
    assert _project(orra) == before


def test_an_id_with_a_colon_is_refused_with_the_reason(orra: Any) -> None:
    created = orra("projects", "create", "a:b", "--name", "x")
    assert created.exit_code == 1
    assert "a project id cannot contain ':'" in created.output
    assert "a:b" not in orra("projects", "list").output


def test_creating_an_existing_project_again_leaves_the_first_as_it_was(orra: Any) -> None:
    orra("projects", "create", "acme", "--name", "First", "--prompt", "one")
    again = orra("projects", "create", "acme", "--name", "Second", "--prompt", "two")
    assert again.exit_code == 1 and "project already exists: acme" in again.output
    record = _project(orra)
    assert (record["name"], record["system_prompt"]) == ("First", "one")


@pytest.mark.parametrize("command", [["show"], ["update", "--name", "x"], ["delete"]])
def test_an_unknown_project_is_one_error_line(orra: Any, command: list[str]) -> None:
    result = orra("projects", command[0], "nope", *command[1:])
    assert result.exit_code == 1 and "project not found: nope" in result.output
    assert "Traceback" not in result.output


def test_delete_erase_sessions_erases_the_projects_subtree_only(orra: Any) -> None:
    orra("projects", "create", "acme", "--name", "Acme")
    orra("ask", "-n", "project:acme:user:bob", "What is 1+1?")
    orra("ask", "-n", "project:acmeother", "What is 1+1?")  # not below project:acme
    orra("projects", "create", "acmeother", "--name", "Other")
    orra("ask", "-n", "project:acmeother", "What is 1+1?")
    deleted = orra("projects", "delete", "acme", "--erase-sessions")
    assert deleted.output.strip() == "deleted project acme; erased 1 session"
    assert orra("sessions", "list").output.split() == ["project:acmeother"]
    assert orra("projects", "show", "acme").exit_code == 1


def test_with_projects_off_a_project_namespace_is_a_plain_one(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_PROJECTS__ENABLED", "false")
    asked = orra("ask", "-n", "project:ghost:u", "What is 2+2?")
    assert asked.exit_code == 0 and "2+2 = 4" in asked.output


# -- usage and budgets ----------------------------------------------------------------------------


def _hour(moment: datetime) -> str:
    return moment.replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%d %H:00 UTC")


@pytest.mark.parametrize(
    ("since", "delta"), [("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))]
)
def test_since_durations_count_from_the_start_of_that_hour(
    orra: Any, since: str, delta: timedelta
) -> None:
    before = datetime.now(UTC)
    shown = orra("usage", "acme", "--since", since)
    after = datetime.now(UTC)
    assert shown.exit_code == 0, shown.output
    first = shown.output.splitlines()[0]
    assert first in (
        f"usage since {_hour(before - delta)} (hourly buckets)",
        f"usage since {_hour(after - delta)} (hourly buckets)",
    )


@pytest.mark.parametrize(
    ("since", "header"),
    [
        ("2026-01-01", "usage since 2026-01-01 00:00 UTC"),
        ("2026-01-01T10:30", "usage since 2026-01-01 10:00 UTC"),
        ("all", "usage all time"),
    ],
)
def test_since_dates_and_all(orra: Any, since: str, header: str) -> None:
    shown = orra("usage", "acme", "--since", since)
    assert shown.exit_code == 0 and shown.output.startswith(header)


@pytest.mark.parametrize("since", ["bogus", "-5d", "30x"])
def test_a_bad_since_names_the_forms_accepted(orra: Any, since: str) -> None:
    shown = orra("usage", "acme", "--since", since)
    assert shown.exit_code == 1
    assert f"--since {since!r} is not a duration or a date" in shown.output
    assert "30d, 12h, 2w, 90m" in shown.output and "all" in shown.output


def test_usage_rolls_up_to_every_ancestor_and_json_is_one_object(orra: Any) -> None:
    assert orra("ask", "-n", "acme:alice:support", "What is 1+1?").exit_code == 0
    figures = []
    for namespace in ("acme:alice:support", "acme:alice", "acme"):
        shown = orra("usage", namespace, "--json")
        assert shown.exit_code == 0, shown.output
        data = json.loads(shown.output)
        assert data["namespace"] == namespace and data["budgets"] == []
        figures.append(data["usage"])
    assert figures[0] == figures[1] == figures[2]
    assert figures[0]["model_calls"] == 2 and figures[0]["tool_calls"] == 1
    assert figures[0]["total_tokens"] == figures[0]["input_tokens"] + figures[0]["output_tokens"]
    assert json.loads(orra("usage", "acme:bob", "--json").output)["usage"]["model_calls"] == 0


def test_a_refused_run_sends_nothing_keeps_the_message_and_says_what_to_do(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_BUDGETS", json.dumps({"acme:alice": {"tokens_per_day": 1000}}))
    asked = orra("ask", "-n", "acme:alice:support", "hello")
    assert asked.exit_code == 1
    message = asked.output
    assert "budget exceeded for namespace 'acme:alice:support'" in message
    assert "'acme:alice' allows 1,000 tokens per day" in message
    assert "Nothing was sent to the model" in message and "or raise the budget" in message
    assert re.search(r"The window resets at \d{4}-\d\d-\d\d 00:00 UTC", message)
    assert orra("sessions", "show", "acme:alice:support").output.strip() == "user: hello"
    budget = json.loads(orra("usage", "acme:alice", "--json").output)["budgets"]
    assert budget == [
        {
            "namespace": "acme:alice",
            "window": "day",
            "since": budget[0]["since"],
            "tokens_limit": 1000,
            "tokens_used": 0,
        }
    ]
    monkeypatch.delenv("ORRA_BUDGETS")  # the next run of the session answers it
    assert orra("ask", "-n", "acme:alice:support", "What is 1+1?").exit_code == 0
    shown = orra("sessions", "show", "acme:alice:support").output
    assert shown.startswith("user: hello\nuser: What is 1+1?") and "1+1 = 2" in shown


def test_a_budget_applies_to_its_subtree_and_not_to_a_sibling(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_BUDGETS", json.dumps({"acme:alice": {"tokens_per_hour": 10}}))
    assert orra("ask", "-n", "acme:alice:x", "hi").exit_code == 1
    assert orra("ask", "-n", "acme:bob", "What is 1+1?").exit_code == 0
    shown = orra("usage", "acme")
    assert "no budget applies to acme" in shown.output


def test_an_unknown_budget_field_is_named_with_the_accepted_ones(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_BUDGETS", json.dumps({"acme": {"tokens_per_fortnight": 5}}))
    shown = orra("usage", "acme")
    assert shown.exit_code == 1
    assert "budgets[acme].tokens_per_fortnight" in shown.output and "ORRA_BUDGETS" in shown.output
    for accepted in ("tokens_per_hour", "tokens_per_day", "tokens_per_month", "cost_per_month"):
        assert accepted in shown.output


def test_usage_off_records_nothing_without_a_budget(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_USAGE__ENABLED", "false")
    assert orra("ask", "-n", "quiet", "What is 1+1?").exit_code == 0
    monkeypatch.delenv("ORRA_USAGE__ENABLED")
    assert json.loads(orra("usage", "quiet", "--json").output)["usage"]["model_calls"] == 0


def test_usage_off_still_records_while_a_budget_is_set(
    orra: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_USAGE__ENABLED", "false")
    monkeypatch.setenv("ORRA_BUDGETS", json.dumps({"other": {"tokens_per_day": 100}}))
    assert orra("ask", "-n", "counted", "What is 1+1?").exit_code == 0
    monkeypatch.delenv("ORRA_USAGE__ENABLED")
    monkeypatch.delenv("ORRA_BUDGETS")
    assert json.loads(orra("usage", "counted", "--json").output)["usage"]["model_calls"] == 2
