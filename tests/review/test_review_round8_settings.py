"""Round 8 review: the new settings sections as a user meets them in `orra-di config`.

Every secret of the new sections is masked; a typo or a wrong type names the setting,
what was given and what is accepted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orra_di.cli import app

SECRETS = {
    "ORRA_MCP__SERVERS": json.dumps(
        {
            "gh": {"command": "gh-mcp", "env": {"GITHUB_TOKEN": "ghp_SECRET_ONE"}},
            "search": {
                "url": "http://127.0.0.1:9/mcp",
                "headers": {"Authorization": "Bearer SECRET_TWO"},
            },
        }
    ),
    "ORRA_MCP__SERVE_TOKEN": "SECRET_THREE",
    "ORRA_MEMORY__EMBEDDING_API_KEY": "SECRET_FOUR",
    "ORRA_TOOLS__WEB_SEARCH__ENABLED": "true",
    "ORRA_TOOLS__WEB_SEARCH__API_KEY": "SECRET_FIVE",
    "ORRA_CHANNELS__DISCORD__TOKEN": "SECRET_SIX_abcd",
    "ORRA_TOOLS__GITHUB__TOKEN": "SECRET_SEVEN",
    "ORRA_TOOLS__GENERATE_IMAGE__API_KEY": "SECRET_EIGHT",
}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/orra.db")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def test_config_masks_every_secret_of_the_new_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code == 0, out.output
    assert "SECRET" not in out.output
    for section in ("mcp.servers", "memory.embedding_api_key", "channels.discord", "tools.github"):
        assert section in out.output


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ORRA_MEMORY__OWNER_DEPTH", "two", ["memory.owner_depth", "integer"]),
        ("ORRA_MEMORY__ENABLE", "true", ["memory.enable", "unknown setting", "enabled"]),
        ("ORRA_TOOLS__EXEC__ALLOW", "git", ["tools.exec.allow", "JSON"]),
        ("ORRA_TOOLS__EXEC__ENABLED", "true", ["tools.exec.allow", "allow_any"]),
        ("ORRA_TOOLS__EXECC__ENABLED", "true", ["tools.execc", "exec"]),
        ("ORRA_CHANNELS__DISCORD__FILTER", "dm", ["channels.discord.filter", "'dms'"]),
        ("ORRA_MCP__SERVERS", '{"files": {"command": "npx"', ["mcp.servers", "JSON"]),
        ("ORRA_MCP__SERVERS", '{"a": {"command": "x", "url": "http://a"}}', ["'command'"]),
        ("ORRA_TOOLS__WEB_FETCH__ALLOW_NETWORKS", '["intranet"]', ["not a network"]),
    ],
)
def test_a_bad_setting_says_what_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("ORRA_MCP__SERVE_TOKEN", "SECRET_NINE")
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code != 0
    assert "Traceback" not in out.output
    for word in expected:
        assert word in out.output, out.output
    assert "SECRET" not in out.output


def test_a_server_secret_in_bad_json_stays_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ORRA_MCP__SERVERS", '{"gh": {"command": "x", "env": {"T": "SECRET_TEN"}, "url": 1}}'
    )
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code != 0
    assert "SECRET_TEN" not in out.output


def test_config_names_the_list_form_as_the_source_of_each_tool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `orra-di config` says where each value came from: the list form's choices were
    # reported as defaults ("tools.current_time {"enabled": false} default")
    from orra_di.settings import describe, load_settings

    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    rows = {name: (value, source) for name, value, source in describe(load_settings())}
    assert rows["tools.current_time"] == ('{"enabled": false}', "env ORRA_TOOLS")
    assert rows["tools.exec"][1] == "env ORRA_TOOLS"
    monkeypatch.delenv("ORRA_TOOLS")
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ENABLED", "true")
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ALLOW", '["git"]')
    rows = {name: (value, source) for name, value, source in describe(load_settings())}
    assert rows["tools.current_time"] == ("{}", "default")
    assert rows["tools.exec"][1] == "env"  # two variables set it


def test_auto_recall_alone_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_MEMORY__AUTO_RECALL", "true")
    out = CliRunner().invoke(app, ["config"])
    assert out.exit_code != 0
    assert "ORRA_MEMORY__ENABLED=true" in out.output
    monkeypatch.setenv("ORRA_MEMORY__ENABLED", "true")
    assert CliRunner().invoke(app, ["config"]).exit_code == 0
