"""Round 13 review: ``orra-di`` subcommands given wrong input, run as a hostile user
would. Each bad input must end with a non-zero exit code and one line that says what
was wrong and what to do: no traceback, no pydantic dump, nothing half-written.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def orra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_") or name.endswith("_API_KEY") or name.endswith("_AUTH_TOKEN"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


def _process(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """``python -m orra_di`` in a process of its own, with a clean environment."""
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "250",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "orra_di", *args],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_error_line(result: Any) -> str:
    """The single ``error: ...`` line of a failed command (no traceback, no dump)."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "pydantic" not in lines[0] and "input_value" not in lines[0]
    return lines[0]


def test_gateway_new_key_with_an_empty_name_or_a_bad_tenant_is_one_line(orra: Any) -> None:
    """The values reach a pydantic model; its multi-line ValidationError text (with a
    link to pydantic's site and the raw input) was printed as the error."""
    empty = _one_error_line(orra("gateway", "new-key", ""))
    assert empty.startswith("error: name: ") and "at least 1 character" in empty

    tenant = _one_error_line(orra("gateway", "new-key", "bob", "--tenant", "acme::x"))
    assert tenant == (
        "error: tenant: namespace segment is empty; every segment needs at least one character"
    )


def test_cron_add_with_an_empty_name_is_one_line_and_adds_nothing(orra: Any) -> None:
    added = orra("cron", "add", "acme", "--name", "", "--every", "60", "--prompt", "hi")
    line = _one_error_line(added)
    assert line.startswith("error: name: ")
    assert orra("cron", "list").stdout.strip() == "no cron jobs"


@pytest.mark.parametrize("every", ["inf", "1e12", "1e300"])
def test_cron_add_every_beyond_reach_is_refused_not_a_traceback(orra: Any, every: str) -> None:
    """``--every inf`` raised OverflowError (int(inf)); ``--every 1e12`` (31,700 years)
    got into the job and overflowed the date of its next run."""
    done = orra("cron", "add", "acme", "--name", "j", "--every", every, "--prompt", "hi")
    assert done.exit_code != 0
    assert not isinstance(done.exception, OverflowError | ValueError), repr(done.exception)
    assert "--every" in done.output
    assert "Traceback" not in done.output
    assert orra("cron", "list").stdout.strip() == "no cron jobs"


def test_an_every_schedule_far_beyond_any_date_is_refused_as_it_is_built() -> None:
    from pydantic import ValidationError

    from orra_di.cron.schedule import EverySchedule

    with pytest.raises(ValidationError, match="interval_ms"):
        EverySchedule(interval_ms=10**15)
    EverySchedule(interval_ms=365 * 86_400_000)  # a year is fine

    from orra_di.cron import cli as cron_cli
    from orra_di.cron import schedule

    assert cron_cli.MAX_EVERY_MS == schedule.MAX_EVERY_MS  # the CLI's copy of the limit


@pytest.mark.parametrize("command", [["serve"], ["mcp", "serve", "--http"]])
@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_a_usage_error(orra: Any, command: list[str], port: str) -> None:
    """``serve --port 70000`` ended in an OverflowError traceback from bind()."""
    done = orra(*command, f"--port={port}")
    assert done.exit_code == 2, done.output
    assert "Invalid value for '--port'" in done.output


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    """uvicorn calls sys.exit(3) when it cannot bind; inside the task group that was
    an ExceptionGroup traceback with a SystemExit in it."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _process(tmp_path, "serve", "--port", str(port))
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "SystemExit" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"127.0.0.1:{port}" in errors[0] and "--port" in errors[0]


@pytest.mark.parametrize("name", ["orra.toml", ".env"])
def test_a_settings_file_that_is_not_utf8_is_named(orra: Any, tmp_path: Path, name: str) -> None:
    """A file in Latin-1 (or binary) gave ``'utf-8' codec can't decode byte 0xff ...``:
    neither which file nor what to do."""
    line = "ORRA_LLM__MODEL=caf\xe9\n" if name == ".env" else 'llm.model = "caf\xe9"\n'
    (tmp_path / name).write_bytes(line.encode("latin-1"))
    error = _one_error_line(orra("config"))
    assert name in error and "UTF-8" in error
    assert "codec" not in error
