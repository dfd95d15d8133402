"""``orra-di ask --speak FILE`` where FILE cannot be written: refused before anything is
sent (no run, no model call, no synthesis billed), like a format no service writes."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.stores import SQLiteStore


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    # A voice service nobody listens on: reaching it would be an error of its own.
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_VOICE__API_KEY", "sk-voice-0123456789")
    monkeypatch.chdir(tmp_path)


def session_count(tmp_path: Path) -> int:
    async def count() -> int:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        try:
            return len(await store.list())
        finally:
            await store.aclose()

    return anyio.run(count)


@pytest.mark.parametrize("target", ["missing/dir/answer.mp3", "."])
def test_speaking_to_a_path_that_cannot_be_written_fails_before_the_run(
    tmp_path: Path, target: str
) -> None:
    result = CliRunner().invoke(app, ["ask", "-n", "acme:alice", "hello", "--speak", target])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "cannot write" in result.stderr
    assert "127.0.0.1" not in result.stderr  # the voice service was never asked
    assert session_count(tmp_path) == 0  # nothing was sent to the model either
