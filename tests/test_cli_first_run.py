"""A new user's first run of ``orra-di``: their own container, text printed as it is,
Ctrl-C in ``chat``, the vendor and model actually in use, errors that name the
variable to set, and a start-up that imports only what a command needs.

The tests that need a real terminal or a real process start ``orra-di`` as one;
the rest go through typer's CliRunner. Everything runs offline or on loopback.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner, Result

from orra_di.cli import app
from orra_di.providers.offline import OFFLINE_NOTICE
from orra_di.settings import load_settings
from orra_di.settings_names import SettingsWarning

OFFLINE = "You said: "
TEST_MODEL = "(test model, no LLM configured) You said: "
ECHO = "Offline, I can only repeat you: this agent has neither calculate nor current_time."


def offline(said: str) -> str:
    """The offline model's answer to a first message that asks for no tool, with no tools."""
    return f"{OFFLINE}{said}\n{ECHO}\n\n{OFFLINE_NOTICE}"


TWO_AGENTS = json.dumps([{"name": "Atlas"}, {"name": "CodeBot"}])


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("ORRA_LLM__MAX_RETRIES", "0")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str, input: str | None = None) -> Result:
    result = run(*args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert "Traceback" not in result.stderr
    return line


def contents(tmp_path: Path, key: str) -> list[str]:
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        rows = db.execute(
            "SELECT m.body FROM messages m JOIN sessions s ON s.id = m.session_id "
            "WHERE s.key = ? ORDER BY m.seq",
            (key,),
        ).fetchall()
    return [json.loads(body)["content"] for (body,) in rows]


def process_env(tmp_path: Path) -> dict[str, str]:
    """The environment without ORRA_* or keys; PYTHONPATH (the code under test) is kept,
    and it does not contain the working directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith("ORRA_") and k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY")
    }
    env["ORRA_STORE__URL"] = f"sqlite:///{tmp_path}/s.sqlite3"
    env["ORRA_TOOLS"] = "[]"
    env["NO_COLOR"] = "1"
    return env


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("orra-di")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from orra_di.cli import main; main()"]


# -- 8: --container / ORRA_CONTAINER -------------------------------------------------------

SHOP_APP = '''
from dependency_injector import containers, providers

from orra_di import tool
from orra_di.containers import Container


@tool
def shop_stock(item: str) -> str:
    """How many of an item are in stock."""
    return f"12 {item} in stock"


def shop_tools(profile):
    return [shop_stock]


@containers.copy(Container)  # so that what uses tool_factory gets this one
class ShopContainer(Container):
    tool_factory = providers.Object(shop_tools)


def make_container():
    container = Container()
    container.tool_factory.override(providers.Object(shop_tools))
    return container


container = make_container()
'''


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["--container", "shopapp:ShopContainer"], {}),  # a Container subclass
        ([], {"ORRA_CONTAINER": "shopapp:make_container"}),  # a function returning one
        (["--container", "shopapp:container"], {}),  # an instance
    ],
)
def test_an_application_container_in_the_working_directory_gives_its_tools(
    tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    (tmp_path / "shopapp.py").write_text(SHOP_APP, encoding="utf-8")
    done = subprocess.run(
        [*cli_command(), *args, "ask", "--json", "apples?", "-n", "shop:alice"],
        # the test model calls every tool (the offline model only the built-in ones)
        env={**process_env(tmp_path), "ORRA_LLM__KIND": "test", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["answer"]
    assert answer.startswith(TEST_MODEL + "apples?\nTool results: ")
    assert json.loads(answer.split("Tool results: ", 1)[1]) == {"shop_stock": "12 a in stock"}


def test_something_that_is_not_a_container_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "notapp.py").write_text("def make():\n    return 42\n", encoding="utf-8")
    line = error_line(run("--container", "notapp:make", "ask", "hi"))
    assert line == (
        "error: --container 'notapp:make' gave int, not an instance of "
        "orra_di.containers.Container or of a subclass"
    )


# -- 9: text is printed as it is -------------------------------------------------------------


def test_a_trailing_backslash_is_printed_once_by_chat_and_sessions_show() -> None:
    chat = ok("chat", "-n", "win", input="C:\\temp\\\n/quit\n")
    assert "Atlas: " + OFFLINE + "C:\\temp\\\n" in chat.stdout
    shown = ok("sessions", "show", "win").stdout.splitlines()
    assert shown[:2] == ["user: C:\\temp\\", "assistant: " + OFFLINE + "C:\\temp\\"]


# -- 10: Ctrl-C in chat ------------------------------------------------------------------------

SLOW_APP = '''
import anyio
from dependency_injector import containers, providers

from orra_di.containers import Container
from orra_di.provider import StreamDone, TextDelta
from orra_di.testing import TestModel


class SlowModel(TestModel):
    """Says "partial answer" and then thinks for a minute when asked to be slow."""

    async def stream(self, request):
        said = request.messages[-1].content
        if "slow" in said:
            yield TextDelta("partial answer")
            await anyio.sleep(60)
        yield TextDelta(f"quick answer to {said}")
        yield StreamDone()


@containers.copy(Container)
class SlowContainer(Container):
    llm = providers.Singleton(SlowModel)
'''


def _default_sigint() -> None:
    """In the child before exec: SIGINT handled by default, not inherited as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """``orra-di`` on a pseudo-terminal, as a user runs it."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            close_fds=True,
            # A shell's background job ignores SIGINT and children inherit that; a user's
            # terminal does not, so the CLI starts with the default handling.
            preexec_fn=_default_sigint,
        )
        os.close(slave)
        self.output = ""

    def read_until(self, text: str, timeout: float = 30) -> str:
        """Everything printed up to ``text`` (the deadline only turns a hang into a failure)."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} in {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    self.output += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the process ended and closed the terminal
                    assert text in self.output, f"no {text!r} in {self.output!r}"
        before, _, self.output = self.output.partition(text)
        return before

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def exit_code_after_interrupts(self, tries: int = 30) -> int:
        """Wait for the process to end, interrupting it again each second.

        CPython's ``input()`` looks at signals only when its read is interrupted:
        a SIGINT that lands between the prompt being written and the read
        starting is acted on at the next one. No one types that fast; a test
        that interrupts the moment the prompt appears, on a loaded machine, can.
        """
        for _ in range(tries):
            try:
                return self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.interrupt()
        raise AssertionError(f"still running after {tries} interrupts: {self.output!r}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def test_ctrl_c_stops_an_answer_and_at_the_prompt_leaves_the_chat(tmp_path: Path) -> None:
    (tmp_path / "slowapp.py").write_text(SLOW_APP, encoding="utf-8")
    args = [*cli_command(), "--container", "slowapp:SlowContainer", "chat", "-n", "t"]
    terminal = Terminal(args, process_env(tmp_path), tmp_path)
    try:
        terminal.read_until("you> ")
        terminal.type("slow please")
        terminal.read_until("partial answer")
        terminal.interrupt()  # mid-answer: that answer stops, the chat goes on
        terminal.read_until("(interrupted)")
        terminal.read_until("you> ")
        terminal.type("quick")
        terminal.read_until("quick answer to quick")
        terminal.read_until("you> ")
        terminal.interrupt()  # at the prompt: the chat ends at once, without Enter
        assert terminal.exit_code_after_interrupts() == 0
        rest = terminal.output
    finally:
        terminal.close()
    assert "Traceback" not in rest
    assert "Aborted" not in rest
    history = contents(tmp_path, "t")
    # What the cancelled run kept is the runtime's business; the next turn followed it.
    assert history[0] == "slow please"
    assert history[-2:] == ["quick", "quick answer to quick"]


# -- 11: the vendor and model in use -------------------------------------------------------------


def models_server(httpserver: HTTPServer, models: list[str], seen: list[str]) -> None:
    httpserver.expect_request("/v1/models", method="GET").respond_with_json(
        {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "me"} for m in models]}
    )

    def answer(request: object) -> object:
        from werkzeug import Request, Response

        assert isinstance(request, Request)
        body = request.get_json()
        seen.append(body["model"])
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        }
        return Response(json.dumps(payload), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)


def config_rows(result: Result) -> dict[str, tuple[str, str]]:
    rows: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) == 3 and cells[0] and cells[0] != "setting":
            rows[cells[0]] = (cells[1], cells[2])
    return rows


def test_a_base_url_alone_uses_the_one_model_the_server_serves(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    models_server(httpserver, ["llama3.2:1b"], seen)
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for("/v1"))
    assert ok("ask", "hello").stdout == "hi\n"
    assert seen == ["llama3.2:1b"]  # not gpt-4o, which the server does not have
    rows = config_rows(ok("config"))
    kind, kind_source = rows["llm.kind"]
    assert kind == '"openai"'
    assert "ORRA_LLM__BASE_URL" in kind_source
    model, model_source = rows["llm.model"]
    assert model == '"llama3.2:1b"'
    assert f"{httpserver.url_for('/v1')}/models" in model_source
    agents = ok("agents").stdout
    assert "llama3.2:1b" in next(line for line in agents.splitlines() if "Atlas" in line)
    assert "vendor openai (auto: llm.base_url is set, env ORRA_LLM__BASE_URL)" in agents


def test_a_base_url_alone_on_a_server_with_several_models_names_the_variable(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    models_server(httpserver, ["mistral", "llama3"], seen)
    monkeypatch.setenv("ORRA_LLM__BASE_URL", httpserver.url_for("/v1"))
    line = error_line(run("ask", "hello"))
    assert "serves 2 models (llama3, mistral)" in line
    assert "set ORRA_LLM__MODEL" in line
    assert seen == []
    rows = config_rows(ok("config"))  # config still shows, with the reason
    assert rows["llm.model"][0] == "null"
    assert "ORRA_LLM__MODEL" in rows["llm.model"][1]


def test_config_says_which_variable_chose_the_vendor_and_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = config_rows(ok("config"))
    assert rows["llm.kind"][0] == '"offline"'
    assert rows["llm.kind"][1] == "auto: no ANTHROPIC_API_KEY, OPENAI_API_KEY or ORRA_LLM__BASE_URL"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    rows = config_rows(ok("config"))
    assert rows["llm.kind"] == ('"anthropic"', "auto: ANTHROPIC_API_KEY is set")
    assert rows["llm.model"][1] == "default for anthropic; ORRA_LLM__MODEL to change"
    monkeypatch.setenv("ORRA_LLM__MODEL", "claude-x")
    assert config_rows(ok("config"))["llm.model"] == ('"claude-x"', "env ORRA_LLM__MODEL")


# -- 12: errors that name what to set ---------------------------------------------------------


def test_a_vendor_without_a_key_names_the_variables_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    line = error_line(run("ask", "hi"))
    assert "set OPENAI_API_KEY or ORRA_LLM__API_KEY" in line
    assert "pass api_key" not in line
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    assert "set ANTHROPIC_API_KEY or ORRA_LLM__API_KEY" in error_line(run("ask", "hi"))


def test_an_unreachable_server_is_named_with_its_port_and_without_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("ORRA_LLM__BASE_URL", f"http://bob:hunter2-secret@127.0.0.1:{port}/v1")
    monkeypatch.setenv("ORRA_LLM__MODEL", "m")
    line = error_line(run("ask", "hi"))
    assert f"connection failed to http://127.0.0.1:{port}/v1: ConnectError" in line
    assert "hunter2" not in line


def test_a_misspelt_variable_is_named_with_the_one_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENT", TWO_AGENTS)
    result = ok("ask", "hi")
    assert result.stderr.splitlines()[0] == (
        "warning: ORRA_AGENT is not a setting and is ignored; did you mean ORRA_AGENTS?"
    )
    monkeypatch.delenv("ORRA_AGENT")
    monkeypatch.setenv("ORRA_LLM_MODEL", "llama3")
    with pytest.warns(SettingsWarning, match=r"ORRA_LLM_MODEL .* did you mean ORRA_LLM__MODEL\?"):
        load_settings()


def test_a_mention_of_no_agent_says_who_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_AGENTS", TWO_AGENTS)
    monkeypatch.setenv("ORRA_RUNTIME__ENABLE_DELEGATION", "false")
    note = "note: no agent is named Nobody (agents: Atlas, CodeBot); Atlas answers"
    result = ok("ask", "@Nobody hi")
    assert note in result.stderr.splitlines()
    assert result.stdout == offline("@Nobody hi") + "\n"
    chat = ok("chat", input="@Nobody hi\n@CodeBot hi\n/quit\n")
    assert chat.stderr.splitlines().count(note) == 1  # a known agent gets no note


# -- 14: start-up imports only what a command needs ---------------------------------------------

REPORT = (
    "import atexit, sys\n"
    "heavy = ('orra_di.containers', 'orra_di.settings', 'pydantic', 'dependency_injector', "
    "'dependency_injector.wiring', 'fastapi', 'openai', 'anthropic', 'psycopg', 'redis')\n"
    "atexit.register(lambda: print('IMPORTED', [m for m in heavy if m in sys.modules], "
    "file=sys.stderr))\n"
    "from orra_di.cli import main\n"
    "sys.argv = ['orra-di', *sys.argv[1:]]\n"
    "main()\n"
)


def imported(tmp_path: Path, *args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", REPORT, *args],
        env=process_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return list(json.loads(report.removeprefix("IMPORTED ").replace("'", '"')))


def test_help_imports_no_settings_container_or_sdk(tmp_path: Path) -> None:
    assert imported(tmp_path, "--help") == []


def test_an_offline_ask_imports_neither_wiring_nor_an_sdk(tmp_path: Path) -> None:
    heavy = imported(tmp_path, "ask", "hi")
    assert "orra_di.containers" in heavy  # it did run
    assert [m for m in heavy if m not in ("orra_di.containers", "orra_di.settings")] == [
        "pydantic",
        "dependency_injector",
    ]


def test_wiring_still_works_after_the_container_is_imported(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import sys
        from orra_di.containers import Container
        from dependency_injector.wiring import Provide, inject

        @inject
        def settings(value=Provide[Container.settings]):
            return value

        container = Container()
        container.wire(modules=[sys.modules[__name__]])
        print(type(settings()).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=process_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "OrraSettings\n"
