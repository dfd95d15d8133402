"""Secrets stay out of errors, reprs and the CLI's output, for the issue-10 settings.

The docs promise that values under secret-looking keys of a plugin's settings
(``api_key``, ``token``, ``password``, …) are masked wherever settings are shown,
and the brief that secrets never appear in errors. A mistake anywhere in
``ORRA_PLUGINS`` (a typo, settings for a plugin not enabled) is shown back to the
user with the value it read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.errors import ConfigurationError
from orra_di.settings import load_settings

SECRETS = ("PKEY-1234567890", "PW-1234567890", "TOK-1234567890")
PLUGINS = (
    '{"enabled": [], "config": {"weather": {"api_key": "PKEY-1234567890", '
    '"nested": {"password": "PW-1234567890"}, "auth_token": "TOK-1234567890"}}}'
)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.chdir(tmp_path)


def test_an_invalid_plugins_table_is_explained_without_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_PLUGINS", PLUGINS)  # settings for a plugin that is not enabled
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "ORRA_PLUGINS" in message and "weather" in message  # still says what is wrong
    assert not [s for s in SECRETS if s in message]


def test_the_cli_shows_an_invalid_plugins_table_without_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_PLUGINS", PLUGINS)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 1
    shown = result.stdout + result.stderr
    assert "ORRA_PLUGINS" in shown
    assert not [s for s in SECRETS if s in shown]


def test_a_typo_in_the_plugins_table_is_explained_without_its_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ORRA_PLUGINS",
        '{"enabled": ["weather"], "confg": {"weather": {"api_key": "PKEY-1234567890"}}}',
    )
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "confg" in str(caught.value)
    assert "PKEY-1234567890" not in str(caught.value)
