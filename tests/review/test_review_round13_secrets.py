"""Round 13 review: secrets in settings shown by ``orra-di config``, in errors and in
reprs, and what a run against a loopback server logs at DEBUG with a real-looking key.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app

TOKEN = "ghp_R13secretTOKEN0123456789abcdef"
KEY = "sk-proj-R13leakCHECK0123456789abcdef"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name.endswith("_API_KEY") or name.endswith("_AUTH_TOKEN"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")


def test_config_masks_the_values_of_tools_exec_env(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tools.exec.env`` is where a token a command needs goes (the exec tool withholds
    the server's own variables); ``orra-di config`` printed its values in clear."""
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ENV", json.dumps({"GH_TOKEN": TOKEN}))
    shown = CliRunner().invoke(app, ["config"])
    assert shown.exit_code == 0, shown.output
    assert TOKEN not in shown.output
    (row,) = [line for line in shown.stdout.splitlines() if "tools.exec" in line]
    assert "GH_TOKEN" in row

    from orra_di.settings import load_settings

    settings = load_settings()
    assert TOKEN not in repr(settings) and TOKEN not in str(settings.tools)


def test_a_command_still_gets_the_exec_env_value(clean_env: None) -> None:
    from orra_di.tools.exec import command_environment
    from orra_di.tools.settings import ExecSettings

    env = command_environment(ExecSettings(env={"GH_TOKEN": TOKEN}))
    assert env["GH_TOKEN"] == TOKEN


class _EchoKey401(BaseHTTPRequestHandler):
    """An OpenAI-like server that refuses the key and echoes it, as some do."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        echoed = f"Incorrect API key provided: {self.headers.get('authorization')}"
        body = json.dumps({"error": {"message": echoed, "type": "invalid_request_error"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _EchoKey401)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


@pytest.mark.anyio
async def test_a_run_refused_for_its_key_logs_and_raises_no_secret(
    clean_env: None,
    monkeypatch: pytest.MonkeyPatch,
    echo_server: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from orra_di.containers import Container, lifespan
    from orra_di.errors import ProviderAuthError

    for name, value in {
        "ORRA_LLM__KIND": "openai",
        "ORRA_LLM__API_KEY": KEY,
        "ORRA_LLM__BASE_URL": f"http://127.0.0.1:{echo_server}/v1",
        "ORRA_LLM__MODEL": "gpt-x",
        "ORRA_LLM__MAX_RETRIES": "0",
        "ORRA_STORE__URL": "memory://",
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    container = Container()
    async with lifespan(container):
        runtimes = container.runtimes()
        with pytest.raises(ProviderAuthError) as raised:
            await runtimes[runtimes.profiles[0].name].run("acme:bob", "hi")
    assert "authentication failed" in str(raised.value)
    assert KEY not in str(raised.value) and KEY not in repr(raised.value.args)
    assert caplog.records, "the run logged nothing at DEBUG"
    assert not [r for r in caplog.records if KEY[8:24] in r.getMessage()]
