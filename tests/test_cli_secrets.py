"""Store URL passwords never reach the CLI's output, whatever they hold.

Every URL the CLI shows (the offline notice, ``config``, a store's error) goes
through :func:`orra_di.redaction.mask_url`; a password whose unescaped character
makes the driver cut the URL elsewhere is refused with advice to percent-encode
it, instead of a connection to a host named after half the password.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app

# Two distinctive halves around the character under test: neither may be shown.
HEAD, TAIL = "Zq9k", "Wx7-4242"
SEPARATORS = ["/", "@", ":", "%", "?", "#"]
# Nothing listens on port 1: each store fails to connect and says where it tried.
UNREACHABLE = {
    "postgresql": "postgresql://app:{password}@127.0.0.1:1/db",
    "redis": "redis://app:{password}@127.0.0.1:1/0",
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def assert_hidden(result: Result, password: str) -> None:
    shown = result.stdout + result.stderr
    assert "Traceback" not in shown
    for secret in (password, quote(password, safe=""), HEAD, TAIL):
        assert secret not in shown, (secret, shown)


@pytest.mark.parametrize("scheme", sorted(UNREACHABLE))
@pytest.mark.parametrize("encoded", [False, True], ids=["as-typed", "percent-encoded"])
@pytest.mark.parametrize("separator", SEPARATORS)
@pytest.mark.parametrize("command", [["sessions", "list"], ["ask", "hi"], ["config"]])
def test_a_store_password_never_appears(
    monkeypatch: pytest.MonkeyPatch, scheme: str, encoded: bool, separator: str, command: list[str]
) -> None:
    password = f"{HEAD}{separator}{TAIL}"
    written = quote(password, safe="") if encoded else password
    url = UNREACHABLE[scheme].format(password=written)
    monkeypatch.setenv("ORRA_STORE__URL", url)
    result = run(*command)
    assert_hidden(result, password)
    if command != ["config"]:
        assert result.exit_code == 1  # unreachable, or refused: one error line either way
        assert result.stderr.startswith(("error: ", "No LLM configured")), result.stderr


# The characters each driver cuts a URL at (libpq takes "?" and "#" into the password,
# redis-py an "@").
@pytest.mark.parametrize(
    ("scheme", "separator"),
    [("postgresql", "/"), ("postgresql", "@"), ("redis", "/"), ("redis", "?"), ("redis", "#")],
)
def test_an_unescaped_password_is_refused_with_advice(
    monkeypatch: pytest.MonkeyPatch, scheme: str, separator: str
) -> None:
    """Not a connection to the host "app" or "Wx7-4242@127.0.0.1": say what to do."""
    password = f"{HEAD}{separator}{TAIL}"
    monkeypatch.setenv("ORRA_STORE__URL", UNREACHABLE[scheme].format(password=password))
    result = run("sessions", "list")
    assert result.exit_code == 1
    assert "percent-encode the password" in result.stderr
    assert "app:***@127.0.0.1:1" in result.stderr
    assert_hidden(result, password)


@pytest.mark.parametrize("scheme", sorted(UNREACHABLE))
def test_the_offline_notice_masks_the_store_password(
    monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """The notice comes before the store is opened: it names the store, masked."""
    password = f"{HEAD}/{TAIL}"
    url = UNREACHABLE[scheme].format(password=quote(password, safe=""))
    monkeypatch.setenv("ORRA_STORE__URL", url)
    result = run("ask", "hi")
    notice = result.stderr.splitlines()[0]
    masked = UNREACHABLE[scheme].format(password="***")
    assert notice.startswith(f"No LLM configured: offline model, sessions in {masked}. ")
    assert_hidden(result, password)
