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


@pytest.mark.anyio
async def test_the_logging_hook_masks_the_llm_token_of_llm_auth(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """ORRA_LOGGING__ENABLED adds the LLM's credentials to the secrets the hook masks
    (observability.md): with ``llm.auth`` the credential is a token, not an API key."""
    import logging

    from dependency_injector import providers

    from orra_di import tool
    from orra_di.containers import Container, lifespan
    from orra_di.testing import ScriptedProvider, call, reply, tool_calls

    token, secret = "static-token-0123456789", "client-secret-0123456789"

    @tool
    def environment() -> str:
        """Show the environment."""
        return f"LLM_TOKEN={token} CLIENT_SECRET={secret}"

    container = Container()
    settings = load_settings(
        store={"url": f"sqlite:///{tmp_path}/orra.db"},
        tools=[],
        llm={
            "kind": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "auth": {"kind": "static", "token": token},
        },
        logging={"enabled": True, "logger": "review.secrets"},
    )
    container.settings.override(providers.Object(settings))
    container.tool_factory.override(providers.Object(lambda profile: [environment]))
    container.llm.override(ScriptedProvider([tool_calls(call("environment")), reply("done")]))
    caplog.set_level(logging.INFO, logger="review.secrets")
    async with lifespan(container):
        await container.runtimes().default.run("acme:alice", "show the environment")
    logged = "\n".join(r.getMessage() + str(getattr(r, "preview", "")) for r in caplog.records)
    assert "[tool] environment" in logged
    assert token not in logged
