"""``orra-di usage``: what a namespace's runs used, its budgets, and refusals, from the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORRA_* or vendor key from the shell; offline model, SQLite store in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("ORRA_LLM__MODEL", "offline-1")
    monkeypatch.setenv(
        "ORRA_PRICES", '{"offline-1": {"input_per_mtok": 2.5, "output_per_mtok": 10}}'
    )
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def ok(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def ask(namespace: str, text: str) -> dict[str, int]:
    usage: dict[str, int] = json.loads(ok("ask", "-n", namespace, "--json", text).stdout)["usage"]
    return usage


def test_usage_adds_up_the_runs_of_a_namespace_subtree() -> None:
    first = ask("acme:alice:support", "hello")
    second = ask("acme:bob", "a somewhat longer message")
    ask("other", "not counted for acme")
    report = json.loads(ok("usage", "acme", "--since", "30d", "--json").stdout)
    assert report["namespace"] == "acme"
    used = report["usage"]
    assert used["input_tokens"] == first["input_tokens"] + second["input_tokens"]
    assert used["output_tokens"] == first["output_tokens"] + second["output_tokens"]
    assert used["model_calls"] == 2
    price = used["input_tokens"] * 2.5e-6 + used["output_tokens"] * 10e-6
    assert used["cost_usd"] == pytest.approx(price)
    assert report["budgets"] == []
    alice = json.loads(ok("usage", "acme:alice", "--json").stdout)["usage"]
    assert alice["input_tokens"] == first["input_tokens"]


def test_usage_prints_a_table_with_the_budgets_that_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_BUDGETS", '{"acme": {"tokens_per_day": 2000000, "cost_per_month": 5}}')
    used = ask("acme:alice", "hello")
    table = ok("usage", "acme:alice", "--since", "all").stdout
    assert "usage all time" in table
    total = used["input_tokens"] + used["output_tokens"]
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in table.splitlines()]
    assert ["acme:alice", str(used["input_tokens"])] in [r[:2] for r in rows]
    assert ["acme", "day", f"{total:,} tokens", "2,000,000 tokens"] in [r[:4] for r in rows]
    assert ["acme", "month", "$5.0000"] in [[r[0], r[1], r[3]] for r in rows if len(r) > 3]


def test_a_spent_budget_refuses_the_run_from_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_BUDGETS", '{"acme:alice": {"tokens_per_hour": 500}}')
    result = CliRunner().invoke(app, ["ask", "-n", "acme:alice:support", "hello"])
    assert result.exit_code == 1
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(
        "error: budget exceeded for namespace 'acme:alice:support': 'acme:alice' allows "
        "500 tokens per hour and has 0 tokens used this hour"
    )
    assert json.loads(ok("usage", "acme", "--json").stdout)["usage"]["model_calls"] == 0
    ask("acme:bob", "hello")  # a sibling is not bound by alice's budget


def test_a_bad_since_is_one_error_line() -> None:
    result = CliRunner().invoke(app, ["usage", "acme", "--since", "yesterday"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: --since 'yesterday' is not a duration or a date: give e.g. 30d, 12h, 2w, "
        "90m, 2026-12-01, 2026-12-01T08:00 or all"
    )
