"""The tools the settings switch on, and what a missing extra says."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from orra_di.errors import ConfigurationError
from orra_di.settings import load_settings
from orra_di.tools.build import approval_required, settings_tools


def test_every_tool_from_settings_in_order() -> None:
    settings = load_settings(
        tools={
            "exec": {"enabled": True, "allow": ["ls"]},
            "web_fetch": {"enabled": True},
            "read_url": {"enabled": True},
            "web_search": {"enabled": True, "api_key": "k"},
            "generate_image": {"enabled": True, "api_key": "k"},
            "claude_code": {"enabled": True},
            "github": {"enabled": True, "token": "t", "owner": "o", "repo": "r"},
        }
    )
    names = [t.definition.name for t in settings_tools(settings.tools)]
    assert names[:7] == [
        "calculate",
        "current_time",
        "exec",
        "web_fetch",
        "read_url",
        "web_search",
        "generate_image",
    ]
    assert names[7:9] == ["claude_code", "claude_code_resume"]
    assert names[9:] == [
        "list_issues",
        "get_issue",
        "list_comments",
        "create_issue",
        "add_comment",
        "close_issue",
        "search_issues",
        "list_pull_requests",
        "get_pull_request",
    ]
    assert approval_required(settings.tools) == ["exec"]
    assert approval_required(load_settings().tools) == []


def test_a_default_configuration_loads_no_tool_sdk() -> None:
    code = (
        "import sys; from orra_di.settings import load_settings; "
        "from orra_di.tools.build import settings_tools; settings_tools(load_settings().tools); "
        "sdks = ('httpx', 'trafilatura', 'gidgethub', 'openai'); "
        "print(sorted(m for m in sdks if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from orra_di.tools.web import readable

    monkeypatch.setitem(sys.modules, "trafilatura", None)
    with pytest.raises(ConfigurationError, match=r'pip install "orra-di\[web\]"'):
        readable("<p>x</p>")


def test_config_masks_the_tools_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from orra_di.cli import app

    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    monkeypatch.setenv("ORRA_TOOLS__GITHUB__TOKEN", "ghp_secret_value_123")
    monkeypatch.setenv("ORRA_TOOLS__WEB_SEARCH__API_KEY", "BSA_secret_value_456")
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 0, result.stderr
    assert "ghp_secret_value_123" not in result.stdout + result.stderr
    assert "BSA_secret_value_456" not in result.stdout + result.stderr
    assert "tools.github" in result.stdout and "**********" in result.stdout


def test_the_list_form_beside_options_inside_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORRA_TOOLS as a list replaces the section: an ORRA_TOOLS__EXEC__... beside it would be
    dropped silently (exec left off), so it is an error naming both and the form to use."""
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ENABLED", "true")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    message = str(error.value)
    assert "ORRA_TOOLS is a list" in message and "tools" in message
    assert "ORRA_TOOLS__EXEC__ENABLED" in message and "__<NAME>__ENABLED=true" in message
    monkeypatch.delenv("ORRA_TOOLS__EXEC__ENABLED")
    assert load_settings().tools.enabled() == ["calculate"]
