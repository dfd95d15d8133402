"""``orra-di sessions prune``: idle sessions (``--idle`` or ``store.session_ttl``) and
``--keep-last``, through typer's CliRunner on a SQLite file in ``tmp_path``."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import _seconds, app
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.session import Session
from orra_di.stores import SQLiteStore

NOW = datetime.now(UTC)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ORRA_* variable from the developer's shell; the store in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")  # 4 slashes
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)


def seed(tmp_path: Path, sessions: dict[str, tuple[timedelta, int]]) -> None:
    """Save each session, last written ``age`` ago, with ``turns`` tool turns."""

    async def main() -> None:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        for key, (age, turns) in sessions.items():
            messages = [
                message
                for i in range(turns)
                for message in (
                    Message.user(f"q{i}"),
                    Message.assistant("", [ToolCall(id=f"c{i}", name="t")]),
                    Message.tool_result([ToolResult(call_id=f"c{i}", content="r")]),
                    Message.assistant(f"a{i}"),
                )
            ]
            ns = Namespace.parse(key)
            await store.save(Session(namespace=ns, messages=messages, updated_at=NOW - age))
        await store.aclose()

    anyio.run(main)


def stored(tmp_path: Path) -> dict[str, list[str]]:
    """Session key -> message contents, as the store has them now."""

    async def main() -> dict[str, list[str]]:
        store = SQLiteStore(tmp_path / "s.sqlite3")
        found = {}
        for ns in await store.list():
            session = await store.load(ns)
            assert session is not None
            found[ns.key] = [m.content for m in session.messages]
        await store.aclose()
        return found

    return anyio.run(main)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["sessions", "prune", *args])


def ok(*args: str) -> list[str]:
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout.splitlines()


def error(*args: str) -> str:
    result = run(*args)
    assert result.exit_code == 1, (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


HOUR = timedelta(hours=1)


def test_idle_sessions_go(tmp_path: Path) -> None:
    seed(tmp_path, {"a:old": (3 * HOUR, 1), "b:older": (50 * HOUR, 1), "a:new": (HOUR / 2, 1)})
    assert ok("--idle", "90m") == ["pruned 2 idle sessions"]
    assert list(stored(tmp_path)) == ["a:new"]


def test_idle_defaults_to_the_session_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(tmp_path, {"old": (3 * HOUR, 1), "new": (HOUR / 2, 1)})
    monkeypatch.setenv("ORRA_STORE__SESSION_TTL", "3600")
    assert ok() == ["pruned 1 idle session"]
    assert list(stored(tmp_path)) == ["new"]


def test_keep_last_trims_under_the_prefix_only(tmp_path: Path) -> None:
    seed(tmp_path, {"acme:a": (HOUR, 3), "acme:b": (HOUR, 1), "other": (HOUR, 3)})
    # The newest 2 would start with a tool result: the cut moves past it.
    assert ok("--keep-last", "2", "acme") == ["trimmed 14 messages from 2 sessions"]
    assert stored(tmp_path) == {
        "acme:a": ["a2"],
        "acme:b": ["a0"],
        "other": ["q0", "", "", "a0", "q1", "", "", "a1", "q2", "", "", "a2"],
    }


def test_a_prefix_scopes_the_command_so_the_ttl_does_not_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(tmp_path, {"acme:a": (3 * HOUR, 2), "other": (3 * HOUR, 1)})
    monkeypatch.setenv("ORRA_STORE__SESSION_TTL", "3600")
    assert ok("--keep-last", "4", "acme") == ["trimmed 4 messages from 1 session"]
    assert list(stored(tmp_path)) == ["acme:a", "other"]


def test_idle_and_keep_last_together(tmp_path: Path) -> None:
    seed(tmp_path, {"old": (3 * HOUR, 1), "long": (0 * HOUR, 2)})
    assert ok("--idle", "1h", "--keep-last", "1") == [
        "pruned 1 idle session",
        "trimmed 7 messages from 1 session",
    ]
    assert stored(tmp_path) == {"long": ["a1"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "nothing to prune: give --idle (or set store.session_ttl"),
        (("--idle", "30d", "acme"), "--idle prunes the whole store"),
        (("acme",), "PREFIX limits --keep-last; give --keep-last N"),
        (("--idle", "soon"), "--idle 'soon' is not a duration; use e.g. 30d, 12h, 90m"),
        (("--idle", "0"), "--idle '0' is not a duration"),
        (("--idle", "-5"), "--idle '-5' is not a duration"),
        (("--keep-last", "2", "a::b"), "namespace segment is empty"),
    ],
)
def test_mistakes_are_one_error_line(args: tuple[str, ...], message: str) -> None:
    assert message in error(*args)


def test_a_negative_count_is_a_usage_error() -> None:
    result = run("--keep-last", "-1")
    assert result.exit_code == 2
    assert "--keep-last" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        *(("30d", 2_592_000), ("12h", 43_200), ("90m", 5_400), ("45s", 45)),
        *(("3600", 3_600), ("1.5h", 5_400), (" 2D ", 172_800)),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert _seconds(text) == seconds
