"""Round 10 review: docs/usage-and-budgets.md and docs/approvals.md, through the settings
and the CLI as a user meets them: the error a missing price gives, bad values named
with what is accepted (secrets never shown), and an ``orra-di ask`` waiting in one
process for ``orra-di approvals approve|deny`` in another.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.errors import ConfigurationError
from orra_di.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
CLI = "from orra_di.cli import main; main()"


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


COST_BUDGET = '{"acme": {"tokens_per_day": 2000000}, "acme:alice": {"cost_per_month": 20}}'
PRICES = '{"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}'


def test_a_cost_budget_prices_a_named_model_and_lets_a_free_one_run(
    shell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline and test models cost nothing: under a cost budget they run (at no
    cost) instead of asking for a price; given a priced name, the price counts. (That an
    unnamed or unpriced paid model is refused with what to set is tested on the hook,
    tests/usage/test_budgets_runtime.py.)"""
    monkeypatch.setenv("ORRA_BUDGETS", COST_BUDGET)
    monkeypatch.setenv("ORRA_PRICES", PRICES)
    assert shell("ask", "-n", "acme:alice:support", "hello").exit_code == 0
    free = json.loads(shell("usage", "acme:alice", "--json").output)["usage"]
    assert free["model_calls"] == 1 and free["cost_usd"] == 0
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    monkeypatch.setenv("ORRA_LLM__MODEL", "gpt-4o")  # priced: the run goes through
    assert shell("ask", "-n", "acme:alice:support", "hello").exit_code == 0
    used = shell("usage", "acme:alice", "--json")
    assert used.exit_code == 0, used.output
    usage = json.loads(used.output)["usage"]
    assert usage["model_calls"] == 3 and usage["cost_usd"] > 0  # + a tool round, the answer


@pytest.mark.parametrize(
    ("variable", "value", "named", "accepted"),
    [
        ("ORRA_APPROVAL__TIMEOUT", "inf", "approval.timeout", "a number > 0"),
        ("ORRA_APPROVAL__TOOLS", "exec", "approval.tools", "a list of tool names"),
        ("ORRA_BUDGETS", '{"acme": {"tokens_per_week": 5}}', "budgets[acme]", "tokens_per_day"),
        ("ORRA_BUDGETS", '{"acme": {"tokens_per_day": -5}}', "budgets[acme]", ">= 0"),
        ("ORRA_PRICES", '{"m": {"input_per_mtok": "x", "output_per_mtok": 1}}', "prices[m]", "0"),
        ("ORRA_USAGE__RESERVATION_TTL", "-1", "usage.reservation_ttl", "a number > 0"),
        ("ORRA_CRON__MISSED_RUNS", "sometimes", "cron.missed_runs", "'skip', 'run_once'"),
        ("ORRA_LOGGING__LEVEL", "LOUD", "logging.level", "'DEBUG', 'INFO', 'WARNING'"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str, accepted: str
) -> None:
    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-round10-secret")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    text = str(caught.value)
    assert named in text and variable in text and accepted in text
    assert "sk-round10-secret" not in text


def _ask_waiting(tmp_path: Path, question: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``orra-di ask`` whose calculate call waits for approval; the request id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORRA_")}
    env.update(
        ORRA_STORE__URL=f"sqlite:///{tmp_path}/sessions.db",
        ORRA_APPROVAL__ENABLED="true",
        ORRA_APPROVAL__TOOLS='["calculate"]',
        ORRA_APPROVAL__TIMEOUT="30",
        ORRA_APPROVAL__POLL_INTERVAL="0.05",
        PYTHONPATH=str(ROOT),
    )
    env.pop("ANTHROPIC_API_KEY", None)
    env.pop("OPENAI_API_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "ask", "-n", "acme:alice", question],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"orra-di approvals approve ([0-9a-f]{32})", line)
        if found:
            return process, found.group(1)
        if not line and process.poll() is not None:
            break
    process.kill()
    raise AssertionError(f"ask did not say which request waits: {process.communicate()}")


def test_ask_waits_for_an_approval_given_from_another_process(
    shell: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    process, request = _ask_waiting(tmp_path, "What is 3+4?")
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    listed = shell("approvals", "list", "acme")
    assert request in listed.output and "calculate" in listed.output
    approved = shell("approvals", "approve", request, "--by", "ops")
    assert approved.exit_code == 0, approved.output
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out.startswith("3+4 = 7 (worked out by the calculate tool)")
    again = shell("approvals", "deny", request, "--by", "eve")
    assert again.exit_code == 1 and "already approved by ops" in again.output
    history = shell("approvals", "list", "--history")
    assert request in history.output and "approved" in history.output


def test_a_denial_from_another_process_reaches_the_model_with_its_reason(
    shell: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    process, request = _ask_waiting(tmp_path, "What is 5*5?")
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    denied = shell("approvals", "deny", request, "--by", "ops", "--reason", "not [now]")
    assert denied.exit_code == 0, denied.output
    out, _ = process.communicate(timeout=30)
    assert "Tool call 'calculate' was denied by ops: not [now]" in out
    assert "= 25" not in out
