"""Round 15 review: the README's and docs/getting-started.md's prose claims, run as written.

(The code blocks themselves run in tests/test_docs.py; what is checked here is what the
prose and the comments say they print or do.)
"""

from __future__ import annotations

import io
import os
import secrets
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner, Result

from orra_di import (
    InMemoryStore,
    Namespace,
    PolicyRegistry,
    Runtime,
    RuntimeConfig,
    ToolPolicy,
    tool,
)
from orra_di.cli import app
from orra_di.testing import TestModel

OFFLINE_NOTICE_START = "(This is the offline model: no LLM is configured"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``orra-di`` from a clean shell: no ORRA_* variable, no key, a data directory of its
    own (the README's 'Run it' starts from nothing)."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.setenv("USER", "tester")
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=stdin)

    return run


@tool
def check_stock(item: str) -> str:
    """How many of an item are in stock."""
    return f"12 {item} in stock"


def test_the_quick_start_prints_what_its_comment_says(tmp_path: Path) -> None:
    """The quick start's comment: '(test model, no LLM configured) You said: Do you have
    apples?' then 'Tool results: {"check_stock": "12 a in stock"}'."""

    async def main() -> None:
        runtime = Runtime(
            TestModel(),
            InMemoryStore(),
            tools=[check_stock],
            config=RuntimeConfig(system_prompt="You are a shop assistant."),
        )
        result = await runtime.run(Namespace("shop", "alice"), "Do you have apples?")
        print(result.final_message.content)

    printed = io.StringIO()
    with redirect_stdout(printed):
        anyio.run(main)
    assert printed.getvalue() == (
        "(test model, no LLM configured) You said: Do you have apples?\n"
        'Tool results: {"check_stock": "12 a in stock"}\n'
    )


def test_a_namespace_key_will_do_wherever_a_namespace_is_taken() -> None:
    """'Wherever a namespace is taken (runtime, stores, policies) its key will do'."""

    async def main() -> None:
        store = InMemoryStore()
        policies = PolicyRegistry()
        policies.set_policy("shop", ToolPolicy.deny_list(["check_stock"]))
        runtime = Runtime(TestModel(), store, tools=[check_stock], policies=policies)
        await runtime.run("shop:alice", "hi")
        by_key, by_namespace = (
            await store.load("shop:alice"),
            await store.load(Namespace.parse("shop:alice")),
        )
        assert by_key is not None and by_namespace is not None
        assert by_key.messages == by_namespace.messages
        assert not policies.is_allowed("shop:alice", "check_stock")
        assert [ns.key for ns in await store.list("shop")] == ["shop:alice"]

    anyio.run(main)


def test_run_it_offline_the_first_answer_the_memory_and_sessions_show(cli: Any) -> None:
    """'The first answer is `2+2 = 4 (worked out by the calculate tool)`, the second says
    what the session remembers, and `sessions show` lists every stored step, the
    `calculate` call and its result included.'"""
    first = cli("ask", "What is 2+2?")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines()[0] == "2+2 = 4 (worked out by the calculate tool)"
    assert OFFLINE_NOTICE_START in first.stdout  # 'said out loud in every answer'

    second = cli("ask", "Do you remember me?")
    assert second.exit_code == 0, second.output
    assert "the first was: What is 2+2?" in second.stdout

    shown = cli("sessions", "show", "cli:tester")
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[:4] == [
        "user: What is 2+2?",
        '  → calculate {"expression": "2+2"}',
        "  ← 4",
        "assistant: 2+2 = 4 (worked out by the calculate tool)",
    ]
    assert "user: Do you remember me?" in lines


def test_the_sessions_are_kept_in_sqlite_under_the_data_directory(cli: Any, tmp_path: Path) -> None:
    """getting-started: 'Without a key it runs on the offline model and keeps sessions in
    SQLite under your data directory.'"""
    assert cli("ask", "hello").exit_code == 0
    assert (tmp_path / "xdg" / "orra-di" / "sessions.sqlite3").is_file()


def test_orra_llm_kind_test_selects_the_test_model_which_calls_every_tool(cli: Any) -> None:
    """'ORRA_LLM__KIND=test selects the schema-driven TestModel instead, which calls every
    tool it is offered'; 'The default agent has those two tools'."""
    os.environ["ORRA_LLM__KIND"] = "test"  # the fixture's monkeypatch removes ORRA_* after
    try:
        answer = cli("ask", "hi")
    finally:
        del os.environ["ORRA_LLM__KIND"]
    assert answer.exit_code == 0, answer.output
    assert answer.stdout.startswith("(test model, no LLM configured) You said: hi\n")
    assert '"calculate": ' in answer.stdout and '"current_time": ' in answer.stdout


def test_a_variable_resembling_a_setting_is_warned_about_naming_the_one_meant(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: 'a variable that sets nothing but resembles a setting (ORRA_AGENT,
    ORRA_LLM_MODEL) is warned about, naming the one meant.'"""
    monkeypatch.setenv("ORRA_AGENT", '[{"name": "X"}]')
    monkeypatch.setenv("ORRA_LLM_MODEL", "gpt-4o")
    listed = cli("agents")
    assert listed.exit_code == 0, listed.output
    assert (
        "warning: ORRA_AGENT is not a setting and is ignored; did you mean ORRA_AGENTS?"
        in listed.stderr
    )
    assert (
        "warning: ORRA_LLM_MODEL is not a setting and is ignored; did you mean ORRA_LLM__MODEL?"
        in listed.stderr
    )


def test_a_bad_value_stops_start_up_naming_setting_variable_value_and_what_is_accepted(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__ON_BUSY", "sometimes")
    failed = cli("ask", "hello")
    assert failed.exit_code != 0
    assert "Traceback" not in failed.output
    text = failed.stderr
    assert 'runtime.on_busy (ORRA_RUNTIME__ON_BUSY) = "sometimes"' in text
    assert "from env ORRA_RUNTIME__ON_BUSY" in text
    assert "'wait'" in text and "'refuse'" in text


def test_config_masks_the_key_and_says_which_variable_chose_the_vendor(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'orra-di config (effective settings, secrets masked, and where each came from,
    including the vendor and model in use and which variable chose them)'."""
    pytest.importorskip("openai")
    secret = "sk-review-" + secrets.token_hex(8)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("ORRA_LLM__MODEL", "gpt-4o-mini")
    shown = cli("config")
    assert shown.exit_code == 0, shown.output
    assert secret not in shown.output
    rows = _rows(shown)
    assert '"openai"' in rows["llm.kind"] and "auto: OPENAI_API_KEY is set" in rows["llm.kind"]
    assert '"gpt-4o-mini"' in rows["llm.model"] and "env ORRA_LLM__MODEL" in rows["llm.model"]

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__API_KEY", secret)
    shown = cli("config")
    assert shown.exit_code == 0, shown.output
    assert secret not in shown.output
    rows = _rows(shown)
    assert "***" in rows["llm.api_key"] and "env ORRA_LLM__API_KEY" in rows["llm.api_key"]
    assert "env ORRA_LLM__KIND" in rows["llm.kind"]


def _rows(shown: Result) -> dict[str, str]:
    """``orra-di config``'s table rows by setting name."""
    return {line.split("│")[1].strip(): line for line in shown.stdout.splitlines() if "│" in line}


def test_the_cli_runs_on_the_applications_own_container_from_the_working_directory(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """'orra-di --container myapp:make_container (or ORRA_CONTAINER) runs the CLI on your
    own container, e.g. one whose tool_factory gives the agents your tools; myapp is
    looked up in the working directory.'"""
    module = f"review15_app_{secrets.token_hex(4)}"
    (tmp_path / f"{module}.py").write_text(
        "from dependency_injector import providers\n"
        "from orra_di import tool\n"
        "from orra_di.containers import Container\n\n\n"
        "@tool\n"
        "def check_stock(item: str) -> str:\n"
        '    """How many of an item are in stock."""\n'
        '    return f"12 {item} in stock"\n\n\n'
        "def make_container() -> Container:\n"
        "    container = Container()\n"
        "    container.tool_factory.override(providers.Object(lambda profile: [check_stock]))\n"
        "    return container\n"
    )
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    answer = cli("--container", f"{module}:make_container", "ask", "apples?")
    assert answer.exit_code == 0, answer.output
    assert '{"check_stock": "12 a in stock"}' in answer.stdout

    monkeypatch.setenv("ORRA_CONTAINER", f"{module}:make_container")
    again = cli("ask", "pears?")
    assert again.exit_code == 0, again.output
    assert '{"check_stock": "12 a in stock"}' in again.stdout

    monkeypatch.setenv("ORRA_CONTAINER", f"{module}:missing")
    wrong = cli("ask", "pears?")
    assert wrong.exit_code != 0
    assert f"cannot load --container '{module}:missing'" in wrong.stderr


def test_sessions_prune_and_keep_last_as_the_readme_lists_them(cli: Any) -> None:
    """'orra-di sessions list|show|delete [--tree]|prune [--idle 30d] [--keep-last N]'."""
    for ns in ("acme:alice", "acme:bob"):
        assert cli("ask", "-n", ns, "hello").exit_code == 0
    assert cli("sessions", "prune", "--idle", "30d").stdout.strip() == "pruned 0 idle sessions"
    trimmed = cli("sessions", "prune", "--keep-last", "1")
    assert trimmed.exit_code == 0, trimmed.output
    assert trimmed.stdout.strip() == "trimmed 2 messages from 2 sessions"
    nothing = cli("sessions", "prune")
    assert nothing.exit_code != 0
    assert "give --idle (or set store.session_ttl, ORRA_STORE__SESSION_TTL) or --keep-last" in (
        nothing.stderr
    )
    bad = cli("sessions", "prune", "--idle", "30x")
    assert "--idle '30x' is not a duration; use e.g. 30d, 12h, 90m or 3600" in bad.stderr
    assert cli("sessions", "delete", "acme", "--tree").exit_code == 0
    assert "acme:" not in cli("sessions", "list").stdout
