"""``orra-di usage`` with the inputs a user types: every bad one is one error line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orra_di.cli import app


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("since", ["99999999d", "9999999999999w", "5000000w"])
def test_a_since_further_back_than_the_calendar_is_one_error_line(since: str) -> None:
    result = CliRunner().invoke(app, ["usage", "acme", "--since", since])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"--since {since!r}" in result.stderr
    assert "--since all" in result.stderr  # what to do instead
    assert "Traceback" not in result.stdout + result.stderr
