"""Round 12 review: docs/usage-and-budgets.md beyond the CLI's happy path: the figures
``orra-di usage`` prints (window, totals, budgets and what is left) against a ledger
filled at known times, and usage recorded by many concurrent runs of one process.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from orra_di import BudgetExceededError, InMemoryStore, Runtime, RuntimeConfig, tool
from orra_di.cli import app
from orra_di.provider import Usage
from orra_di.stores import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.usage import Budget, Budgets, UsageHook, usage_ledger_for
from orra_di.usage.ledger import hour_of


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


def fill(tmp_path: Path, records: list[tuple[str, float, int, int, int]]) -> None:
    """(namespace, when, input, output, cost in nano-dollars) straight into the ledger."""

    async def go() -> None:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        try:
            ledger = usage_ledger_for(store)
            for key, at, tokens_in, tokens_out, cost in records:
                await ledger.record(
                    key, Usage(input_tokens=tokens_in, output_tokens=tokens_out),
                    model_calls=1, cost_nanousd=cost, at=at,
                )  # fmt: skip
        finally:
            await store.aclose()

    anyio.run(go)


def ok(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def test_the_window_printed_is_the_one_the_figures_count(tmp_path: Path) -> None:
    now = datetime.now(UTC).timestamp()
    since = now - 90 * 60
    hour_start = hour_of(since) * 3600
    # A call made between the start of --since's hour and --since itself: counted
    # (buckets are whole UTC hours), so the window shown must start at that hour.
    fill(tmp_path, [("acme:alice", hour_start + 1, 100, 20, 0), ("acme:bob", now, 10, 2, 0)])
    report = json.loads(ok("usage", "acme", "--since", "90m", "--json").stdout)
    assert report["usage"]["total_tokens"] == 132
    assert datetime.fromisoformat(report["since"]).timestamp() <= hour_start + 1
    assert datetime.fromisoformat(report["since"]) == datetime.fromtimestamp(hour_start, UTC)
    table = ok("usage", "acme", "--since", "90m").stdout
    shown = datetime.fromtimestamp(hour_start, UTC)
    assert f"since {shown:%Y-%m-%d %H:%M} UTC" in table


def test_the_budget_rows_show_use_limit_and_what_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "ORRA_BUDGETS",
        json.dumps({"acme": {"tokens_per_day": 10_000}, "acme:alice": {"cost_per_month": 2}}),
    )
    now = datetime.now(UTC).timestamp()
    fill(
        tmp_path,
        [
            ("acme:alice:support", now, 2_000, 500, 1_250_000_000),  # $1.25
            ("acme:bob", now, 400, 100, 0),
            ("acme:alice", now - 40 * 86400, 99_999, 0, 5_000_000_000),  # another month
        ],
    )
    report = json.loads(ok("usage", "acme:alice", "--json", "--since", "7d").stdout)
    assert report["usage"]["total_tokens"] == 2_500
    assert report["usage"]["cost_usd"] == pytest.approx(1.25)
    rows = {(r["namespace"], r["window"]): r for r in report["budgets"]}
    assert set(rows) == {("acme", "day"), ("acme:alice", "month")}
    assert rows["acme", "day"]["tokens_used"] == 3_000  # the whole subtree of acme, today
    assert rows["acme", "day"]["tokens_limit"] == 10_000
    assert rows["acme:alice", "month"]["cost_used_usd"] == pytest.approx(1.25)
    table = ok("usage", "acme:alice", "--since", "7d").stdout
    assert re.search(r"acme\s.*day\s.*3,000 tokens\s.*10,000 tokens\s.*7,000 tokens", table)
    assert re.search(r"acme:alice\s.*month\s.*\$1\.2500\s.*\$2\.0000\s.*\$0\.7500", table)
    assert "$1.2500" in table and "2,500" in table


@tool
def lookup(key: str) -> str:
    """Look something up."""
    return "found"


@pytest.mark.anyio
async def test_many_concurrent_runs_lose_no_usage_and_leave_no_reservation() -> None:
    store = InMemoryStore()
    ledger = usage_ledger_for(store)
    hook = UsageHook(ledger, budgets=Budgets({"acme": Budget(tokens_per_hour=1_000_000)}))
    script = [
        tool_calls(call("lookup", {"key": "a"}), usage=Usage(input_tokens=7, output_tokens=3)),
        reply("ok", usage=Usage(input_tokens=11, output_tokens=5)),
    ]

    def build() -> Runtime:
        return Runtime(
            ScriptedProvider(list(script), delay=0.005),
            store,
            tools=[lookup],
            hooks=[hook],
            config=RuntimeConfig(max_tokens=50),
        )

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(build().run, f"acme:user{i % 10}:s{i}", "hi")
    acme = await ledger.totals("acme")
    assert (acme.input_tokens, acme.output_tokens) == (40 * 18, 40 * 8)
    assert (acme.model_calls, acme.tool_calls) == (80, 40)
    user0 = await ledger.totals("acme:user0")
    assert user0.model_calls == 8
    # every reservation was dropped: a budget exactly as large as what was billed plus
    # one more call's reservation still admits that call
    billed = acme.total_tokens
    tight = UsageHook(ledger, budgets=Budgets({"acme": Budget(tokens_per_hour=billed + 1)}))
    with pytest.raises(BudgetExceededError):
        late = Runtime(ScriptedProvider([reply("x")]), store, hooks=[tight])
        await late.run("acme:late", "hello")
    # about 60 tokens for this call's reservation; one leftover reservation of the
    # 80 calls above (each about 60 too) would not fit beside it
    roomy = Budgets({"acme": Budget(tokens_per_hour=billed + 100)})
    await Runtime(
        ScriptedProvider([reply("x", usage=Usage(input_tokens=1, output_tokens=1))]),
        store,
        hooks=[UsageHook(ledger, budgets=roomy)],
        config=RuntimeConfig(max_tokens=50),
    ).run("acme:late", "hello")
    assert (await ledger.totals("acme")).model_calls == 81
