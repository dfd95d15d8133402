"""Round 19 review: ``orra-di sessions prune`` given numbers beyond any history, and
``store.session_ttl`` set huge in orra.toml, run as a user runs them (a subprocess).

Each printed a traceback (an OverflowError from ``timedelta`` or from SQLite's 64-bit
integers); now the command succeeds, prunes and trims nothing, and the stored
sessions are all still there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from orra_di import Message, Namespace
from orra_di.stores import FileStore, SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
NS = Namespace("acme", "alice")
KEPT = ["q", "a", "q2", "a2"]


def cli(tmp_path: Path, store_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
        ORRA_STORE__URL=store_url,
    )
    return subprocess.run(
        [sys.executable, "-m", "orra_di", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(params=["sqlite", "file"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store of that kind in tmp_path holding one session of four messages."""
    if request.param == "sqlite":
        path = tmp_path / "s.db"
        url = f"sqlite:///{path}"

        async def seed() -> None:
            store = SQLiteStore(path)
            await store.append(NS, [Message.user(t) for t in KEPT])
            await store.aclose()
    else:
        url = f"file://{tmp_path / 'sessions'}"

        async def seed() -> None:
            await FileStore(tmp_path / "sessions").append(NS, [Message.user(t) for t in KEPT])

    anyio.run(seed)
    return url


def contents(tmp_path: Path, store_url: str) -> list[str]:
    async def read() -> list[str]:
        if store_url.startswith("sqlite"):
            store = SQLiteStore(tmp_path / "s.db")
            session = await store.load(NS)
            await store.aclose()
        else:
            session = await FileStore(tmp_path / "sessions").load(NS)
        assert session is not None
        return [m.content for m in session.messages]

    return anyio.run(read)


@pytest.mark.parametrize(
    "args",
    [
        ["--keep-last", "99999999999999999999999"],
        ["--keep-last", "99999999999999999999999", "acme"],
        ["--idle", "99999999999999999999d"],
        ["--idle", "999999999999999999999999999999"],
    ],
)
def test_prune_numbers_beyond_any_history_keep_everything(
    tmp_path: Path, store_url: str, args: list[str]
) -> None:
    result = cli(tmp_path, store_url, "sessions", "prune", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert contents(tmp_path, store_url) == KEPT


def test_a_huge_session_ttl_in_orra_toml_prunes_nothing(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "orra.toml").write_text("[store]\nsession_ttl = 1e300\n", encoding="utf-8")
    result = cli(tmp_path, store_url, "sessions", "prune")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert contents(tmp_path, store_url) == KEPT
