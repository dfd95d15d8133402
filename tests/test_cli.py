"""The ``orra-di`` command line, through typer's CliRunner and once as a real process.

Every test runs offline (the offline model; the test model where a test says so) on a
SQLite file in ``tmp_path``.
typer's CliRunner keeps stdout and stderr apart (``result.stdout`` and
``result.stderr``), so the tests check which stream each line goes to.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app
from orra_di.errors import ConfigurationError
from orra_di.providers.offline import OFFLINE_NOTICE

TWO_AGENTS = json.dumps(
    [
        {"name": "Atlas", "personality": "calm"},
        {"name": "CodeBot", "personality": "terse", "model": "code-model"},
    ]
)
OFFLINE = "You said: "
TEST_MODEL = "(test model, no LLM configured) You said: "
ECHO = "Offline, I can only repeat you: this agent has neither calculate nor current_time."


def offline(said: str) -> str:
    """The offline model's answer to a first message that asks for no tool, with no tools."""
    return f"{OFFLINE}{said}\n{ECHO}\n\n{OFFLINE_NOTICE}"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORRA_* or vendor key from the developer's shell; the store in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")  # 4 slashes
    monkeypatch.setenv("ORRA_TOOLS", "[]")  # answers are then plain echoes; see the tools test
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")  # rich tables wide enough not to fold values
    monkeypatch.setenv("LOGNAME", "tester")  # the default namespace is cli:<user>
    monkeypatch.chdir(tmp_path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str, input: str | None = None) -> Result:
    result = run(*args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_error_line(result: Result) -> str:
    """The single ``error: ...`` line of a failed command (no traceback).

    Commands that talk may print the offline notice first; it is not counted.
    """
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [x for x in result.stderr.splitlines() if not x.startswith("No LLM configured")]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


def stored(tmp_path: Path) -> dict[str, int]:
    """Session key -> message count, read from the SQLite file directly."""
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        rows = db.execute("SELECT key, message_count FROM sessions ORDER BY key").fetchall()
    return dict(rows)


# -- ask -------------------------------------------------------------------------------


def test_ask_prints_the_answer_and_the_offline_notice_on_stderr(tmp_path: Path) -> None:
    result = ok("ask", "hello")
    assert result.stdout == offline("hello") + "\n"
    (notice,) = result.stderr.splitlines()
    assert notice.startswith("No LLM configured: offline model, sessions in sqlite:///")
    assert str(tmp_path / "s.sqlite3") in notice
    assert stored(tmp_path) == {"cli:tester": 2}


def test_ask_json_prints_one_object() -> None:
    result = ok("ask", "hello", "--json", "--namespace", "acme:alice")
    payload = json.loads(result.stdout)
    assert set(payload) == {"agent", "namespace", "answer", "turns", "usage"}
    assert payload["agent"] == "Atlas"
    assert payload["namespace"] == "acme:alice"
    assert payload["answer"] == offline("hello")
    assert payload["turns"] == 1
    assert payload["usage"]["input_tokens"] > 0
    assert payload["usage"]["output_tokens"] > 0


def test_no_notice_when_the_test_model_is_chosen_explicitly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    result = ok("ask", "hello")
    assert result.stdout == TEST_MODEL + "hello\n"
    assert result.stderr == ""


@pytest.mark.parametrize(
    "command", [["sessions", "list"], ["agents"], ["config"], ["sessions", "show", "x"]]
)
def test_the_offline_notice_is_only_for_commands_that_talk(command: list[str]) -> None:
    result = run(*command)
    assert "No LLM configured" not in result.stdout + result.stderr


def test_ask_keeps_the_conversation_in_its_namespace(tmp_path: Path) -> None:
    ok("ask", "one", "-n", "acme:alice")
    ok("ask", "two", "-n", "acme:alice")
    assert stored(tmp_path) == {"acme:alice": 4}


def test_a_bad_namespace_is_one_error_line() -> None:
    line = one_error_line(run("ask", "hi", "--namespace", "acme::alice"))
    assert "namespace segment is empty" in line


# -- agents: --agent and @mentions -----------------------------------------------------


def test_at_mention_routes_to_that_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_DELEGATION", "false")
    payload = json.loads(ok("ask", "@codebot fix it", "--json").stdout)
    assert payload["agent"] == "CodeBot"
    assert payload["answer"] == offline("fix it")  # the mention is taken out
    assert json.loads(ok("ask", "no mention", "--json").stdout)["agent"] == "Atlas"


def test_agent_option_picks_the_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_DELEGATION", "false")
    payload = json.loads(ok("ask", "@Atlas hi", "--agent", "CODEBOT", "--json").stdout)
    assert payload["agent"] == "CodeBot"
    assert payload["answer"] == offline("@Atlas hi")  # --agent wins; text untouched


def test_an_unknown_agent_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    line = one_error_line(run("ask", "hi", "--agent", "nobody"))
    assert line == "error: agent 'nobody' not found. Available agents: Atlas, CodeBot"
    line = one_error_line(run("chat", "--agent", "nobody", input="hello\n"))
    assert "agent 'nobody' not found" in line


def test_agents_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    monkeypatch.setenv("ORRA_LLM__MODEL", "general-model")
    result = ok("agents")
    assert result.stderr == ""
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "│" in line}
    assert "calm" in rows["Atlas"]
    assert "general-model" in rows["Atlas"]
    assert "yes" in rows["Atlas"]
    assert "terse" in rows["CodeBot"]
    assert "code-model" in rows["CodeBot"]
    assert "yes" not in rows["CodeBot"]


# -- tools: the CLI cannot be given application tools, only the built-in ones ----------
# The offline model calls only calculate and current_time; the test model (llm.kind
# "test") calls every tool it is offered, spawn_agent included.


def test_the_test_model_calls_the_spawn_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_SPAWN", "true")
    payload = json.loads(ok("ask", "go", "-n", "acme", "--json").stdout)
    assert payload["turns"] == 2
    # the test model reports each tool's result after what the user said
    answer = json.loads(payload["answer"].split("Tool results: ", 1)[1])
    assert "Sub-agent responded" in answer["spawn_agent"]
    listed = ok("sessions", "list", "acme").stdout.splitlines()
    assert listed[0] == "acme"
    assert len(listed) == 2
    assert listed[1].startswith("acme:spawn.")


def test_chat_shows_tool_calls_as_they_happen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "test")
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_SPAWN", "true")
    result = ok("chat", "-n", "acme", input="go\n/quit\n")
    assert "→ spawn_agent" in result.stdout
    assert "← [Sub-agent responded" in result.stdout


# -- chat --------------------------------------------------------------------------------


def test_chat_streams_an_answer_and_persists(tmp_path: Path) -> None:
    result = ok("chat", "-n", "acme:alice", input="hello\n/quit\n")
    assert "New session acme:alice." in result.stdout
    assert "Agents: Atlas." in result.stdout
    assert "Atlas: " + OFFLINE + "hello" in result.stdout
    assert len(result.stderr.splitlines()) == 1  # the offline notice, nothing else
    assert stored(tmp_path) == {"acme:alice": 2}


def test_a_second_chat_resumes_the_session(tmp_path: Path) -> None:
    ok("chat", "-n", "acme:alice", input="hello\n/quit\n")
    result = ok("chat", "-n", "acme:alice", input="again\n\n/exit\n")
    assert "Resuming acme:alice (2 messages)." in result.stdout
    assert stored(tmp_path) == {"acme:alice": 4}


def test_chat_ends_at_end_of_input_and_uses_the_default_namespace(tmp_path: Path) -> None:
    result = ok("chat", input="hello\n")
    assert "New session cli:tester." in result.stdout
    assert stored(tmp_path) == {"cli:tester": 2}


def test_chat_routes_at_mentions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_DELEGATION", "false")
    result = ok("chat", input="@CodeBot fix it\nplain\n/quit\n")
    assert "Agents: Atlas, CodeBot." in result.stdout
    assert "CodeBot: " + OFFLINE + "fix it" in result.stdout
    assert "Atlas: " + OFFLINE + "plain" in result.stdout


# -- sessions ----------------------------------------------------------------------------


def test_sessions_list_with_and_without_prefix() -> None:
    for ns in ("acme:bob", "acme:alice", "acmeother", "zeta"):
        ok("ask", "hi", "-n", ns)
    assert ok("sessions", "list").stdout.splitlines() == [
        "acme:alice",
        "acme:bob",
        "acmeother",
        "zeta",
    ]
    assert ok("sessions", "list", "acme").stdout.splitlines() == ["acme:alice", "acme:bob"]
    assert ok("sessions", "list", "nothing").stdout == ""


def test_keys_and_messages_are_printed_verbatim() -> None:
    """No rich markup or emoji codes are interpreted in stored text."""
    ok("ask", "[bold]x[/bold] :thumbs_up:", "-n", "acme:thumbs_up:x")
    assert ok("sessions", "list").stdout == "acme:thumbs_up:x\n"
    shown = ok("sessions", "show", "acme:thumbs_up:x").stdout
    assert "user: [bold]x[/bold] :thumbs_up:" in shown


def test_sessions_show_prints_the_messages() -> None:
    ok("ask", "hello", "-n", "acme:alice")
    result = ok("sessions", "show", "acme:alice")
    assert result.stdout == f"user: hello\nassistant: {offline('hello')}\n"


def test_long_messages_are_not_wrapped_into_lines() -> None:
    long = " ".join(["word"] * 100)  # 499 characters, wider than COLUMNS
    ok("ask", long, "-n", "long")
    assert ok("sessions", "show", "long").stdout.splitlines()[0] == "user: " + long


def test_sessions_show_prints_tool_calls_and_results(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "test")  # calls spawn_agent with arguments from its schema
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_SPAWN", "true")
    ok("ask", "go", "-n", "acme")
    lines = ok("sessions", "show", "acme").stdout.splitlines()
    assert lines[0] == "user: go"
    assert lines[1] == '  → spawn_agent {"task": "a"}'
    assert lines[2].startswith("  ← [Sub-agent responded")


def test_sessions_show_of_a_missing_session_is_one_error_line() -> None:
    line = one_error_line(run("sessions", "show", "acme:nobody"))
    assert line == "error: no session acme:nobody; `orra-di sessions list` shows what is stored"


def test_sessions_delete_one(tmp_path: Path) -> None:
    ok("ask", "hi", "-n", "acme")
    ok("ask", "hi", "-n", "acme:alice")
    assert ok("sessions", "delete", "acme").stdout == "deleted 1 session\n"
    assert list(stored(tmp_path)) == ["acme:alice"]
    line = one_error_line(run("sessions", "delete", "acme"))
    assert line == "error: no session acme"


def test_sessions_delete_tree_counts(tmp_path: Path) -> None:
    for ns in ("acme", "acme:alice", "acme:alice:support", "acmeother"):
        ok("ask", "hi", "-n", ns)
    assert ok("sessions", "delete", "acme", "--tree").stdout == "deleted 3 sessions\n"
    assert list(stored(tmp_path)) == ["acmeother"]
    one_error_line(run("sessions", "delete", "acme", "--tree"))


# -- config ------------------------------------------------------------------------------


def config_rows(result: Result) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) == 3 and cells[0] and cells[0] != "setting":
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_config_shows_values_and_their_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "orra.toml").write_text('[runtime]\nmax_turns = 7\n\n[llm]\nmodel = "m1"\n')
    monkeypatch.setenv("ORRA_LLM__MODEL", "m2")
    result = ok("config")
    assert result.stderr == ""
    rows = config_rows(result)
    assert rows["store.url"] == (f'"sqlite:///{tmp_path}/s.sqlite3"', "env ORRA_STORE__URL")
    assert rows["runtime.max_turns"] == ("7", "orra.toml")
    assert rows["llm.model"] == ('"m2"', "env ORRA_LLM__MODEL")
    assert rows["context.max_tokens"] == ("200000", "default")


def test_config_masks_an_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-ant-very-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-vendor-secret")
    monkeypatch.setenv("ORRA_STORE__URL", "postgresql://orra:db-secret@localhost/orra")
    result = ok("config")
    rows = config_rows(result)
    assert rows["llm.api_key"] == ('"**********"', "env ORRA_LLM__API_KEY")
    assert rows["store.url"][0] == '"postgresql://orra:***@localhost/orra"'
    for secret in ("very-secret", "vendor-secret", "db-secret"):
        assert secret not in result.stdout + result.stderr


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["ask", "hi"], ["config"], ["sessions", "list"]])
def test_a_bad_setting_is_a_readable_error_without_traceback(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "0")
    result = run(*command)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    # One error: its first line names the problem, each further line is one bad setting.
    first, *problems = result.stderr.splitlines()
    assert first == "error: invalid configuration:"
    assert len(problems) == 1
    assert problems[0].startswith(
        '  - runtime.max_turns (ORRA_RUNTIME__MAX_TURNS) = "0", from env ORRA_RUNTIME__MAX_TURNS'
    )


def test_debug_lets_the_exception_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "0")
    result = run("--debug", "ask", "hi")
    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigurationError)
    assert "error:" not in result.stderr


def test_an_unavailable_llm_is_one_error_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "scripted")
    line = one_error_line(run("ask", "hi"))
    assert "llm.kind 'scripted' is not available" in line


def test_a_bad_store_path_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/missing/s.db")
    line = one_error_line(run("sessions", "list"))
    assert line.startswith("error: storage error: cannot open the SQLite database")


# -- the real thing ----------------------------------------------------------------------


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("orra-di")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from orra_di.cli import main; main()"]


def test_the_console_script_as_a_real_process(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env["ORRA_STORE__URL"] = f"sqlite:///{tmp_path}/s.sqlite3"
    env["ORRA_TOOLS"] = "[]"
    done = subprocess.run(
        [*cli_command(), "ask", "hello from a process", "-n", "proc:one"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == offline("hello from a process") + "\n"
    (notice,) = done.stderr.splitlines()
    assert notice.startswith("No LLM configured: offline model")
    assert stored(tmp_path) == {"proc:one": 2}
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM messages ORDER BY seq")]
    assert [b["content"] for b in bodies] == [
        "hello from a process",
        offline("hello from a process"),
    ]


def test_the_default_built_in_tools_run_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ORRA_TOOLS")
    sum_ = json.loads(ok("ask", "--json", "What is 2+2?", "-n", "a").stdout)
    assert sum_["answer"] == f"2+2 = 4 (worked out by the calculate tool)\n\n{OFFLINE_NOTICE}"
    assert sum_["turns"] == 2
    time = json.loads(ok("ask", "--json", "what time is it in Europe/Paris?", "-n", "b").stdout)
    first, rest = time["answer"].split("\n", 1)
    assert re.fullmatch(
        r"It is \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00 \(\w+day\) in Europe/Paris "
        r"\(read by the current_time tool\)\.",
        first,
    )
    assert rest == "\n" + OFFLINE_NOTICE
    hello = json.loads(ok("ask", "--json", "Hello, who are you?", "-n", "c").stdout)
    assert hello["turns"] == 1  # no tool for a greeting
    assert hello["answer"].splitlines()[1] == (
        'Offline, I can only work out arithmetic with calculate (try "What is 2+2?") and '
        'tell the time with current_time (try "What time is it?").'
    )
    shown = ok("sessions", "show", "a").stdout
    assert '  → calculate {"expression": "2+2"}\n  ← 4\n' in shown


def test_the_readme_first_run_reads_sensibly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orra-di commands of the README's first command line, run as they are written."""
    monkeypatch.delenv("ORRA_TOOLS")  # the default agent, built-in tools and all
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (line,) = [
        x for x in readme.splitlines() if x.startswith("python3 -m venv .venv && ") and " ask " in x
    ]
    commands = [
        shlex.split(part.replace("$(whoami)", "tester"))[1:]
        for part in line.split(" && ")
        if part.startswith(".venv/bin/orra-di ")
    ]
    assert [c[0] for c in commands] == ["ask", "ask", "sessions"]
    first, second, shown = (ok(*c).stdout for c in commands)
    assert first == f"2+2 = 4 (worked out by the calculate tool)\n\n{OFFLINE_NOTICE}\n"
    assert (
        "This session remembers 1 earlier message from you; the first was: What is 2+2?" in second
    )
    assert shown.startswith('user: What is 2+2?\n  → calculate {"expression": "2+2"}\n  ← 4\n')


def test_python_dash_m_runs_the_command() -> None:
    """``python -m orra_di`` (and ``-m orra_di.cli``) is the ``orra-di`` command, for an
    environment whose scripts directory is not on PATH."""
    import subprocess
    import sys

    for module in ("orra_di", "orra_di.cli"):
        done = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert "namespaced, persistent sessions" in done.stdout
