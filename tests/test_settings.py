"""Settings: the layers and their priority, validation messages, secrets, describe().

Every test runs in an empty temporary directory with no ``ORRA_*`` or vendor
key variables and no default secrets directory, so neither a developer's
environment nor a stray ``orra.toml`` or ``.env`` can leak in.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, get_args

import pytest
from pydantic import BaseModel, Field, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from orra_di import settings as settings_module
from orra_di.agent import AgentProfile
from orra_di.context import CharEstimator, ContextBudget
from orra_di.errors import ConfigurationError
from orra_di.namespace import Namespace
from orra_di.runtime import RuntimeConfig
from orra_di.settings import (
    LLMSettings,
    OrraSettings,
    PolicySettings,
    StoreSettings,
    describe,
    load_settings,
)

SECRET = "sk-live-TOPSECRET-0123456789"
PASSWORD = "pg-PASSWORD-9876"


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(settings_module, "DEFAULT_SECRETS_DIR", tmp_path / "no-run-secrets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def sources(settings: OrraSettings) -> dict[str, tuple[str, str]]:
    return {name: (value, source) for name, value, source in describe(settings)}


def secrets_dir(monkeypatch: pytest.MonkeyPatch, root: Path, files: dict[str, str]) -> Path:
    directory = root / "secrets"
    directory.mkdir()
    for name, content in files.items():
        (directory / name).write_text(content + "\n", encoding="utf-8")
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(directory))
    return directory


# -- defaults --------------------------------------------------------------------


def test_defaults(workdir: Path) -> None:
    s = load_settings()
    assert s.llm == LLMSettings()
    assert s.llm.kind is None and s.llm.timeout == 60.0 and s.llm.max_retries == 2
    assert s.store.url == f"sqlite:///{workdir}/xdg/orra-di/sessions.sqlite3"
    assert s.store.scheme == "sqlite"
    assert s.store.path == workdir / "xdg" / "orra-di" / "sessions.sqlite3"
    assert s.context.budget() == ContextBudget()
    assert s.runtime.max_turns == 10 and s.runtime.on_busy == "wait"
    assert s.agents == [AgentProfile(name="Atlas")]
    assert s.policies == {}
    assert s.prompt.channel_context == "a chat interface" and s.prompt.sections == []
    assert {source for _, _, source in describe(s)} == {"default"}


def test_settings_are_frozen() -> None:
    s = load_settings()
    with pytest.raises(ValidationError):
        s.runtime = s.runtime  # type: ignore[misc]
    with pytest.raises(ValidationError):
        s.runtime.max_turns = 3  # type: ignore[misc]


def test_default_store_dir_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/is/ignored")
    monkeypatch.setattr(sys, "platform", "linux")
    expected = tmp_path / ".local" / "share" / "orra-di" / "sessions.sqlite3"
    assert load_settings().store.path == expected
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setattr(sys, "platform", "darwin")
    mac = tmp_path / "Library" / "Application Support" / "orra-di" / "sessions.sqlite3"
    assert load_settings().store.path == mac


# -- the layers ------------------------------------------------------------------


def test_environment_nested_case_insensitive_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "5")
    monkeypatch.setenv("orra_llm__model", "claude-x")  # any case
    monkeypatch.setenv("ORRA_LLM__TIMEOUT", "12.5")
    monkeypatch.setenv("ORRA_RUNTIME__ON_BUSY", "refuse")
    monkeypatch.setenv("ORRA_RUNTIME__PARALLEL_TOOL_EXECUTION", "false")
    monkeypatch.setenv("ORRA_AGENTS", '[{"name":"Atlas"},{"name":"CodeBot","personality":"terse"}]')
    monkeypatch.setenv("ORRA_POLICIES", '{"Acme:Viewers": {"allow": ["search"]}}')
    monkeypatch.setenv("ORRA_PROMPT__SECTIONS", '["Be brief.", "Cite sources."]')
    monkeypatch.setenv("ORRA_STORE__URL", "memory://")
    s = load_settings()
    assert s.runtime.max_turns == 5
    assert s.llm.model == "claude-x" and s.llm.timeout == 12.5
    assert s.runtime.on_busy == "refuse" and s.runtime.parallel_tool_execution is False
    assert s.agents == [
        AgentProfile(name="Atlas"),
        AgentProfile(name="CodeBot", personality="terse"),
    ]
    assert s.policies == {"Acme:Viewers": PolicySettings(allow=["search"])}  # JSON keeps case
    assert s.prompt.sections == ["Be brief.", "Cite sources."]
    assert s.store.scheme == "memory" and s.store.path is None


def test_empty_environment_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "")
    monkeypatch.setenv("ORRA_LLM__KIND", "")
    s = load_settings()
    assert s.runtime.max_turns == 10 and s.llm.kind is None


def test_unrelated_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_DASHBOARD_PORT", "8000")  # not a setting of ours, not nested
    monkeypatch.setenv("DATABASE_URL", "postgresql://x")
    assert load_settings().runtime.max_turns == 10


TOML = """
[llm]
kind = "anthropic"
model = "claude-sonnet"

[runtime]
max_turns = 20
temperature = 0.5

[prompt]
sections = ["Be brief."]

[[agents]]
name = "Atlas"

[[agents]]
name = "CodeBot"
personality = "terse"

[policies."acme:viewers"]
allow = ["search"]

[policies.acme]
deny_all = true
"""


def check_toml_settings(s: OrraSettings) -> None:
    assert s.llm.kind == "anthropic" and s.llm.model == "claude-sonnet"
    assert s.runtime.max_turns == 20 and s.runtime.temperature == 0.5
    assert s.runtime.tool_timeout == 120.0  # the rest of the section keeps its defaults
    assert s.prompt.sections == ["Be brief."]
    assert [a.name for a in s.agents] == ["Atlas", "CodeBot"]
    assert s.agents[1].personality == "terse"
    assert s.policies == {
        "acme:viewers": PolicySettings(allow=["search"]),
        "acme": PolicySettings(deny_all=True),
    }


def test_toml_named_by_orra_config_file(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    path = workdir / "conf" / "prod.toml"
    path.parent.mkdir()
    path.write_text(TOML, encoding="utf-8")
    monkeypatch.setenv("ORRA_CONFIG_FILE", str(path))
    s = load_settings()
    check_toml_settings(s)
    assert sources(s)["runtime.max_turns"] == ("20", str(path))


def test_toml_orra_toml_in_working_directory(workdir: Path) -> None:
    (workdir / "orra.toml").write_text(TOML, encoding="utf-8")
    s = load_settings()
    check_toml_settings(s)
    assert sources(s)["llm.model"] == ('"claude-sonnet"', "orra.toml")
    assert sources(s)["runtime.max_tokens"] == ("null", "default")


def test_named_config_file_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_CONFIG_FILE", "missing.toml")
    with pytest.raises(ConfigurationError, match=r"ORRA_CONFIG_FILE='missing.toml' names no file"):
        load_settings()


def test_invalid_toml_is_a_configuration_error(workdir: Path) -> None:
    (workdir / "orra.toml").write_text("[runtime\nmax_turns = 3\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"orra.toml is not valid TOML"):
        load_settings()


def test_unknown_toml_section_is_reported(workdir: Path) -> None:
    (workdir / "orra.toml").write_text("[runtme]\nmax_turns = 3\n", encoding="utf-8")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "runtme (ORRA_RUNTME)" in message
    assert "from orra.toml: unknown setting" in message
    assert "accepted: one of llm, store, context, runtime, agents, policies, prompt" in message


def test_dotenv_file(workdir: Path) -> None:
    (workdir / ".env").write_text(
        "ORRA_RUNTIME__MAX_TURNS=7\n"
        'ORRA_AGENTS=\'[{"name": "Helper"}]\'\n'
        "# other programs' variables in the same file are left alone\n"
        "DATABASE_URL=postgresql://elsewhere/db\n"
        "SOME_TOKEN=abc\n",
        encoding="utf-8",
    )
    s = load_settings()
    assert s.runtime.max_turns == 7
    assert s.agents == [AgentProfile(name="Helper")]
    assert sources(s)["runtime.max_turns"] == ("7", ".env")
    assert sources(s)["agents"] == ('[{"name": "Helper"}]', ".env")


def test_secrets_dir_nested_file_names(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    # pydantic-settings' nested secrets: a file is named like the environment variable,
    # prefix included, "__" between levels, any case.
    secrets_dir(
        monkeypatch,
        workdir,
        {"orra_llm__api_key": SECRET, "ORRA_STORE__URL": f"postgresql://app:{PASSWORD}@db/orra"},
    )
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    s = load_settings()
    assert s.llm.api_key is not None and s.llm.api_key.get_secret_value() == SECRET
    assert s.store.url == f"postgresql://app:{PASSWORD}@db/orra"
    assert sources(s)["llm.api_key"] == ('"**********"', "secrets dir")
    assert sources(s)["store.url"] == ('"postgresql://app:***@db/orra"', "secrets dir")


def test_default_secrets_dir_is_used_when_it_exists(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    run_secrets = workdir / "run-secrets"
    run_secrets.mkdir()
    (run_secrets / "orra_runtime__max_turns").write_text("4\n", encoding="utf-8")
    monkeypatch.setattr(settings_module, "DEFAULT_SECRETS_DIR", run_secrets)
    s = load_settings()
    assert s.runtime.max_turns == 4
    assert sources(s)["runtime.max_turns"] == ("4", "secrets dir")


def test_named_secrets_dir_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_SECRETS_DIR", "/nonexistent/orra-secrets")
    with pytest.raises(ConfigurationError, match=r"ORRA_SECRETS_DIR=.* is not a directory"):
        load_settings()


def test_oversized_secrets_dir_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    directory = secrets_dir(monkeypatch, workdir, {})
    (directory / "huge").write_bytes(b"x" * (16 * 2**20 + 1))  # pydantic-settings' 16 MiB cap
    with pytest.raises(ConfigurationError, match=r"cannot read the settings: secrets_dir size"):
        load_settings()


def test_subclass_adds_settings_and_keeps_the_explanations() -> None:
    class HostSettings(OrraSettings):
        port: int = Field(8000, ge=1)

    assert HostSettings(port=9000).port == 9000
    with pytest.raises(ConfigurationError, match=r"port \(ORRA_PORT\) = 0, from init"):
        HostSettings(port=0)


# -- priority ----------------------------------------------------------------------


@pytest.fixture
def every_layer(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    """runtime.max_turns is 1 in orra.toml, 2 in secrets, 3 in .env and 4 in the environment."""
    (workdir / "orra.toml").write_text("[runtime]\nmax_turns = 1\n", encoding="utf-8")
    secrets_dir(monkeypatch, workdir, {"orra_runtime__max_turns": "2"})
    (workdir / ".env").write_text("ORRA_RUNTIME__MAX_TURNS=3\n", encoding="utf-8")
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "4")


@pytest.mark.usefixtures("every_layer")
def test_priority_init_env_dotenv_secrets_toml_default(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    def effective(**overrides: object) -> tuple[int, str]:
        s = load_settings(**overrides)
        return s.runtime.max_turns, sources(s)["runtime.max_turns"][1]

    assert effective(runtime={"max_turns": 5}) == (5, "init")
    assert effective() == (4, "env ORRA_RUNTIME__MAX_TURNS")
    monkeypatch.delenv("ORRA_RUNTIME__MAX_TURNS")
    assert effective() == (3, ".env")
    (workdir / ".env").unlink()
    assert effective() == (2, "secrets dir")
    monkeypatch.delenv("ORRA_SECRETS_DIR")
    assert effective() == (1, "orra.toml")
    (workdir / "orra.toml").unlink()
    assert effective() == (10, "default")


def test_layers_merge_field_by_field(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    (workdir / "orra.toml").write_text(
        '[runtime]\nmax_turns = 20\n[policies.acme]\nallow = ["a"]\n', encoding="utf-8"
    )
    monkeypatch.setenv("ORRA_RUNTIME__TEMPERATURE", "0.2")
    monkeypatch.setenv("ORRA_POLICIES", '{"beta": {"deny_all": true}}')
    s = load_settings(runtime={"tool_timeout": 5})
    assert (s.runtime.max_turns, s.runtime.temperature, s.runtime.tool_timeout) == (20, 0.2, 5)
    assert set(s.policies) == {"acme", "beta"}
    rows = sources(s)
    assert rows["runtime.max_turns"][1] == "orra.toml"
    assert rows["runtime.temperature"][1] == "env ORRA_RUNTIME__TEMPERATURE"
    assert rows["runtime.tool_timeout"][1] == "init"
    assert rows["policies[acme]"] == ('{"allow": ["a"]}', "orra.toml")
    assert rows["policies[beta]"] == ('{"deny_all": true}', "env ORRA_POLICIES")


# -- the LLM kind ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "kind", "key"),
    [
        ({}, "offline", None),
        ({"ANTHROPIC_API_KEY": "a-key"}, "anthropic", "a-key"),
        ({"OPENAI_API_KEY": "o-key"}, "openai", "o-key"),
        ({"ANTHROPIC_API_KEY": "a-key", "OPENAI_API_KEY": "o-key"}, "anthropic", "a-key"),
        ({"ANTHROPIC_API_KEY": ""}, "offline", None),
    ],
)
def test_kind_is_detected_from_vendor_keys(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], kind: str, key: str | None
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    llm = load_settings().llm
    assert llm.kind is None
    assert llm.resolved_kind == kind
    resolved = llm.resolved_api_key
    assert (resolved.get_secret_value() if resolved else None) == key


def test_explicit_kind_and_key_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    monkeypatch.setenv("OPENAI_API_KEY", "o-key")
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    llm = load_settings().llm
    assert llm.resolved_kind == "openai"
    assert llm.resolved_api_key == SecretStr("o-key")
    own = load_settings(llm={"kind": "openai", "api_key": "mine"}).llm
    assert own.resolved_api_key == SecretStr("mine")
    offline = load_settings(llm={"kind": "scripted"}).llm
    assert offline.resolved_kind == "scripted" and offline.resolved_api_key is None


# -- validation messages -----------------------------------------------------------

# (env var, raw value, dotted name, value as shown, a piece of the accepted text)
INVALID = [
    ("ORRA_LLM__KIND", "gemini", "llm.kind", '"gemini"', "one of 'offline', 'test'"),
    ("ORRA_LLM__TIMEOUT", "0", "llm.timeout", '"0"', "a number > 0"),
    ("ORRA_LLM__TIMEOUT", "soon", "llm.timeout", '"soon"', "a number > 0"),
    ("ORRA_LLM__MAX_RETRIES", "-1", "llm.max_retries", '"-1"', "an integer >= 0"),
    ("ORRA_STORE__URL", "mysql://h/db", "store.url", '"mysql://h/db"', "memory://"),
    ("ORRA_STORE__URL", "sessions.db", "store.url", '"sessions.db"', "sqlite:///relative.db"),
    ("ORRA_STORE__URL", "sqlite://x.db", "store.url", '"sqlite://x.db"', "sqlite:////absolute"),
    ("ORRA_STORE__URL", "memory://x", "store.url", '"memory://x"', "memory://"),
    ("ORRA_STORE__URL", "file://rel/dir", "store.url", '"file://rel/dir"', "file:///absolute"),
    ("ORRA_CONTEXT__MAX_TOKENS", "0", "context.max_tokens", '"0"', "an integer >= 1"),
    (
        "ORRA_CONTEXT__RESERVED_FOR_OUTPUT",
        "-1",
        "context.reserved_for_output",
        '"-1"',
        "an integer >= 0",
    ),
    (
        "ORRA_CONTEXT__RESERVED_FOR_OUTPUT",
        "200000",
        "context.reserved_for_output",
        '"200000"',
        "leaves no room",
    ),
    ("ORRA_CONTEXT__TOOL_RESULT_SHARE", "0", "context.tool_result_share", '"0"', "> 0 and <= 1"),
    ("ORRA_CONTEXT__TOOL_RESULT_SHARE", "1.5", "context.tool_result_share", '"1.5"', "<= 1"),
    ("ORRA_CONTEXT__TOKENIZER", "tiktoken", "context.tokenizer", '"tiktoken"', "one of 'chars'"),
    ("ORRA_CONTEXT__CHARS_PER_TOKEN", "0", "context.chars_per_token", '"0"', "an integer >= 1"),
    ("ORRA_RUNTIME__MAX_TURNS", "0", "runtime.max_turns", '"0"', "an integer >= 1"),
    ("ORRA_RUNTIME__MAX_TOKENS", "0", "runtime.max_tokens", '"0"', ">= 1, or unset"),
    ("ORRA_RUNTIME__TEMPERATURE", "2.5", "runtime.temperature", '"2.5"', ">= 0 and <= 2"),
    (
        "ORRA_RUNTIME__PARALLEL_TOOL_EXECUTION",
        "maybe",
        "runtime.parallel_tool_execution",
        '"maybe"',
        "true or false",
    ),
    ("ORRA_RUNTIME__ENABLE_DELEGATION", "2", "runtime.enable_delegation", '"2"', "true or false"),
    (
        "ORRA_RUNTIME__MAX_DELEGATION_DEPTH",
        "0",
        "runtime.max_delegation_depth",
        '"0"',
        "an integer >= 1",
    ),
    ("ORRA_RUNTIME__TOOL_TIMEOUT", "-5", "runtime.tool_timeout", '"-5"', "a number > 0"),
    ("ORRA_RUNTIME__ON_BUSY", "panic", "runtime.on_busy", '"panic"', "one of 'wait', 'refuse'"),
    ("ORRA_RUNTIME__BUSY_TIMEOUT", "0", "runtime.busy_timeout", '"0"', "a number > 0"),
    ("ORRA_RUNTIME__MAX_TURN", "3", "runtime.max_turn", '"3"', "one of max_turns, max_tokens"),
    ("ORRA_AGENTS", "[]", "agents", "[]", "a non-empty list"),
    ("ORRA_AGENTS", "Atlas", "agents", '"Atlas"', "a non-empty list"),
    (
        "ORRA_AGENTS",
        '[{"name": "Atlas"}, {"name": "ATLAS"}]',
        "agents",
        '[{"name": "Atlas"}, {"name": "ATLAS"}]',
        "distinct names",
    ),
    ("ORRA_AGENTS", '[{"name": " "}]', "agents[0].name", '" "', "text"),
    ("ORRA_AGENTS", '[{"nam": "Atlas"}]', "agents", '[{"nam": "Atlas"}]', "a non-empty list"),
    ("ORRA_POLICIES", '{"a::b": {"allow": []}}', "policies[a::b]", '"a::b"', "keyed by namespace"),
    (
        "ORRA_POLICIES",
        '{"acme": {"allow": ["x"], "deny": ["y"]}}',
        "policies[acme]",
        '{"allow": ["x"], "deny": ["y"]}',
        "exactly one of",
    ),
    ("ORRA_POLICIES", '{"acme": {}}', "policies[acme]", "{}", "exactly one of"),
    ("ORRA_POLICIES", '{"acme": {"allw": ["x"]}}', "policies[acme].allw", '["x"]', "allow, deny"),
    ("ORRA_POLICIES", "acme=all", "policies", '"acme=all"', "keyed by namespace"),
    ("ORRA_PROMPT__SECTIONS", "Be brief.", "prompt.sections", '"Be brief."', "a list of text"),
]


@pytest.mark.parametrize(("variable", "raw", "name", "shown", "accepted"), INVALID)
def test_each_invalid_value_names_setting_variable_value_and_what_is_accepted(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, name: str, shown: str, accepted: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert f"  - {name} ({variable}) = {shown}, from env {variable}: " in message
    assert "; accepted: " in message and accepted in message
    assert info.value.__cause__ is None and info.value.__context__ is None


@pytest.mark.parametrize("raw", ["inf", "-inf", "nan", "1e999", "Infinity", "0", "-1"])
def test_the_llm_timeout_is_a_positive_finite_number_of_seconds(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """``inf`` used to pass ``gt=0``: a request that may hang for ever."""
    monkeypatch.setenv("ORRA_LLM__TIMEOUT", raw)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert f'llm.timeout (ORRA_LLM__TIMEOUT) = "{raw}"' in message
    assert "Input should be a finite number" in message or "greater than 0" in message
    assert "accepted: a number > 0" in message


# Float settings that are not a number of seconds, and where they are validated otherwise.
NOT_SECONDS = {
    "context.tool_result_share",  # a share, <= 1
    "runtime.temperature",  # <= 2
    "voice.speed",  # <= 4
    "memory.vector_weight",  # <= 1
    "budgets.cost_per_hour",  # money: an unbounded budget is simply unset
    "budgets.cost_per_day",
    "budgets.cost_per_month",
    "prices.input_per_mtok",
    "prices.output_per_mtok",
}


def _float_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every float field of ``model`` and the models it holds, by dotted path."""
    for name, field in model.model_fields.items():
        inner = [field.annotation, *get_args(field.annotation)]
        inner += [deeper for arg in inner for deeper in get_args(arg)]
        if float in inner:
            yield f"{prefix}{name}", field
        for arg in inner:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                yield from _float_fields(arg, f"{prefix}{name}.")


SECONDS = sorted(
    {(path, field) for path, field in _float_fields(OrraSettings) if path not in NOT_SECONDS},
    key=lambda pair: pair[0],
)


def test_the_seconds_settings_are_found() -> None:
    paths = {path for path, _ in SECONDS}
    assert {"llm.timeout", "runtime.busy_timeout", "store.lease_seconds"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize(("path", "field"), SECONDS, ids=[path for path, _ in SECONDS])
@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_seconds_setting_refuses_inf_and_nan(
    path: str, field: FieldInfo, value: float
) -> None:
    """No seconds setting documents ``inf`` (an endless wait, a lock held for ever, a TTL
    Redis refuses); an unlimited one is spelt unset where the setting allows it."""
    with pytest.raises(ValidationError):
        TypeAdapter(Annotated[field.annotation, field]).validate_python(value)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("agents = []\n", "configure at least one agent"),
        (
            '[[agents]]\nname = "Atlas"\n[[agents]]\nname = "atlas"\n',
            "agents 'Atlas' and 'atlas' have the same name",
        ),
        (
            '[[agents]]\nname = "Atlas"\npersonalty = "x"\n',
            "agents[0] has unknown key(s) personalty; an agent takes name, personality",
        ),
    ],
)
def test_agent_list_problems_in_toml_are_explained(workdir: Path, toml: str, problem: str) -> None:
    (workdir / "orra.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(
        ConfigurationError, match=r"agents \(ORRA_AGENTS\) = .*, from orra\.toml"
    ) as info:
        load_settings()
    assert problem in str(info.value)


def test_policy_key_and_store_scheme_problems_are_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", "mysql://h/db")
    with pytest.raises(ConfigurationError) as info:
        load_settings(policies={"a::b": {"allow": []}})
    message = str(info.value)
    assert "unknown store scheme 'mysql'; accepted: sqlite:///relative.db" in message
    assert (
        'policies[a::b] (ORRA_POLICIES) = "a::b", from init: namespace segment is empty' in message
    )


def test_every_problem_is_reported_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_RUNTIME__MAX_TURNS", "0")
    monkeypatch.setenv("ORRA_LLM__KIND", "gemini")
    monkeypatch.setenv("ORRA_AGENTS", "[]")
    with pytest.raises(ConfigurationError) as info:
        load_settings(context={"tool_result_share": 2})
    message = str(info.value)
    assert message.startswith("invalid configuration (4 problems):\n")
    for name in ("llm.kind", "runtime.max_turns", "agents", "context.tool_result_share"):
        assert f"  - {name} (" in message
    assert "context.tool_result_share (ORRA_CONTEXT__TOOL_RESULT_SHARE) = 2, from init" in message


def test_an_error_inside_an_optional_table_names_its_own_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``llm.auth`` may be unset; a bad value in it names ``ORRA_LLM__AUTH__SKEW`` (not the
    table's variable), shows a value that is not secret, and still hides the secrets."""
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "static")
    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN", SECRET)
    monkeypatch.setenv("ORRA_LLM__AUTH__SKEW", "soon")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert (
        'llm.auth.skew (ORRA_LLM__AUTH__SKEW) = "soon", from env ORRA_LLM__AUTH__SKEW: '
        "Input should be a valid number" in message
    )
    assert "accepted: a number >= 0" in message
    assert SECRET not in message


def test_unknown_keyword_argument_is_reported() -> None:
    # Hidden: a misspelt section name could be holding the API key.
    with pytest.raises(ConfigurationError, match=r"runtme \(ORRA_RUNTME\) = <hidden>, from init"):
        load_settings(runtme=1)


def test_building_the_class_directly_also_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"runtime.max_turns"):
        OrraSettings(runtime={"max_turns": 0})


def test_a_key_without_a_kind_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # It would otherwise fall back to the offline model and be silently ignored.
    monkeypatch.setenv("ORRA_LLM__API_KEY", SECRET)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "llm.api_key (ORRA_LLM__API_KEY) = <hidden>, from env ORRA_LLM__API_KEY" in message
    assert "needs llm.kind (ORRA_LLM__KIND)" in message
    assert SECRET not in message


# -- secrets stay secret -----------------------------------------------------------


def test_secrets_never_appear_in_repr_str_json_dump_or_describe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    monkeypatch.setenv("ORRA_LLM__API_KEY", SECRET)
    monkeypatch.setenv("ORRA_STORE__URL", f"postgresql://app:{PASSWORD}@db:5432/orra")
    s = load_settings()
    assert s.llm.api_key is not None and s.llm.api_key.get_secret_value() == SECRET
    assert s.store.url == f"postgresql://app:{PASSWORD}@db:5432/orra"  # the real URL for the store
    shown = [
        repr(s),
        str(s),
        repr(s.store),
        str(s.store),
        repr(s.llm),
        s.model_dump_json(),
        str(s.model_dump()),
        s.store.masked(),
        str(describe(s)),
    ]
    for text in shown:
        assert SECRET not in text
        assert PASSWORD not in text
    assert "postgresql://app:***@db:5432/orra" in repr(s)
    assert json.loads(s.model_dump_json())["store"]["url"] == "postgresql://app:***@db:5432/orra"


@pytest.mark.parametrize(
    ("toml", "env"),
    [
        (f'[llm]\nkind = "openai"\napi_key = ["{SECRET}"]\n', {}),  # wrong type: not echoed
        ("", {"ORRA_LLM": f'{{"kind": "openai", "api_key": "{SECRET}", "timeout": }}'}),
        ("", {"ORRA_LLM": f'{{"kind": "gpt", "api_key": "{SECRET}"}}'}),
        ("", {"ORRA_STORE__URL": f"mysql://app:{PASSWORD}@db/orra"}),
        ("", {"ORRA_STORE": f'{{"url": "mysql://app:{PASSWORD}@db/orra", '}),
        (f'[store]\nurl = "postgresql://app:{PASSWORD}@db/orra"\nextra = 1\n', {}),
        ("", {"ORRA_LLM__KIND": "openai", "ORRA_LLM__APIKEY": SECRET}),  # misspelt
    ],
)
def test_secrets_never_appear_in_errors(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, toml: str, env: dict[str, str]
) -> None:
    if toml:
        (workdir / "orra.toml").write_text(toml, encoding="utf-8")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert info.value.__context__ is None  # the pydantic error (raw inputs) is not kept
    printed = "".join(traceback.format_exception(info.value))
    assert "invalid configuration" in printed
    assert SECRET not in printed and PASSWORD not in printed


# -- describe ------------------------------------------------------------------------


def test_describe_names_each_source(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    (workdir / "orra.toml").write_text(
        '[llm]\nkind = "openai"\n[prompt]\nchannel_context = "Slack"\n', encoding="utf-8"
    )
    (workdir / ".env").write_text("ORRA_RUNTIME__MAX_TURNS=7\n", encoding="utf-8")
    secrets_dir(monkeypatch, workdir, {"ORRA_LLM__API_KEY": SECRET})
    monkeypatch.setenv("ORRA_LLM", '{"model": "gpt-x", "timeout": 5}')
    monkeypatch.setenv("ORRA_LLM__TIMEOUT", "9")  # the nested variable wins over the JSON one
    monkeypatch.setenv("ORRA_AGENTS", '[{"name": "Atlas", "personality": "terse"}]')
    s = load_settings(runtime={"on_busy": "refuse"}, llm={"max_retries": 0})
    rows = sources(s)
    assert rows["llm.kind"] == ('"openai"', "orra.toml")
    assert rows["llm.model"] == ('"gpt-x"', "env ORRA_LLM")
    assert rows["llm.timeout"] == ("9.0", "env ORRA_LLM__TIMEOUT")
    assert rows["llm.max_retries"] == ("0", "init")
    assert rows["llm.api_key"] == ('"**********"', "secrets dir")
    assert rows["llm.base_url"] == ("null", "default")
    assert rows["runtime.max_turns"] == ("7", ".env")
    assert rows["runtime.on_busy"] == ('"refuse"', "init")
    assert rows["agents"] == ('[{"name": "Atlas", "personality": "terse"}]', "env ORRA_AGENTS")
    assert rows["prompt.channel_context"] == ('"Slack"', "orra.toml")
    assert rows["policies"] == ("{}", "default")
    assert [name for name, _, _ in describe(s)][:6] == [
        "llm.kind",
        "llm.model",
        "llm.base_url",
        "llm.api_key",
        "llm.timeout",
        "llm.max_retries",
    ]


def test_describe_counts_a_whole_section_given_as_a_model_as_init() -> None:
    s = load_settings(runtime=settings_module.RuntimeSettings(max_turns=3))
    assert {source for name, _, source in describe(s) if name.startswith("runtime.")} == {"init"}
    assert sources(s)["llm.kind"][1] == "default"


# -- policies ------------------------------------------------------------------------


def test_policy_registry_from_settings_inherits_down_the_tree(workdir: Path) -> None:
    (workdir / "orra.toml").write_text(
        '[policies.acme]\nallow = ["search", "calc"]\n'
        '[policies."acme:viewers"]\ndeny_all = true\n'
        '[policies."acme:admins"]\nallow_all = true\n'
        '[policies."beta"]\ndeny = ["shell"]\n',
        encoding="utf-8",
    )
    registry = load_settings().policy_registry()
    assert len(registry) == 4

    def allowed(key: str, tool: str) -> bool:
        return registry.is_allowed(Namespace.parse(key), tool)

    assert allowed("acme", "search") and not allowed("acme", "shell")
    assert allowed("acme:alice:support", "calc")  # inherited from acme
    assert not allowed("acme:alice", "shell")
    assert not allowed("acme:viewers:bob", "search")  # the most specific policy wins
    assert allowed("acme:admins:root", "shell")
    assert allowed("beta:x", "search") and not allowed("beta:x", "shell")
    assert allowed("gamma", "anything")  # no policy: the registry's default allows all


def test_policy_settings_convert_to_tool_policies() -> None:
    assert PolicySettings(allow=["a"]).to_policy().is_allowed("a")
    assert not PolicySettings(allow=["a"]).to_policy().is_allowed("b")
    assert not PolicySettings(deny=["a"]).to_policy().is_allowed("a")
    assert PolicySettings(allow_all=True).to_policy().is_allowed("z")
    assert not PolicySettings(deny_all=True).to_policy().is_allowed("z")
    with pytest.raises(ValidationError, match="exactly one"):
        PolicySettings(allow_all=False)


# -- store URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "path"),
    [
        ("sqlite:////var/lib/orra/s.db", "sqlite", Path("/var/lib/orra/s.db")),
        ("sqlite:///sessions.db", "sqlite", Path("sessions.db")),
        ("sqlite:///./data/s.db", "sqlite", Path("data/s.db")),
        ("SQLite:///s.db", "sqlite", Path("s.db")),
        ("file:///var/lib/orra", "file", Path("/var/lib/orra")),
        ("file://localhost/var/lib/my%20orra", "file", Path("/var/lib/my orra")),
        ("memory://", "memory", None),
        ("postgresql://app:pw@db:5432/orra", "postgresql", None),
        ("postgresql:///orra", "postgresql", None),
        ("redis://localhost:6379/0", "redis", None),
        ("rediss://:pw@cache.example:6380/1", "rediss", None),
    ],
)
def test_store_url_forms(url: str, scheme: str, path: Path | None) -> None:
    store = load_settings(store={"url": url}).store
    assert store.url == url
    assert store.scheme == scheme
    assert store.path == path


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:pw@db/orra", "postgresql://app:***@db/orra"),
        ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
        ("postgresql://app:p@ss/w@db/orra", "postgresql://app:***@db/orra"),
        (
            "postgresql://db/orra?user=app&password=pw&x=1",
            "postgresql://db/orra?user=app&password=***&x=1",
        ),
        ("postgresql://app@db/orra", "postgresql://app@db/orra"),
        ("redis://cache:6379/0", "redis://cache:6379/0"),
        ("sqlite:////var/s.db", "sqlite:////var/s.db"),
    ],
)
def test_store_url_password_is_masked(url: str, masked: str) -> None:
    store = StoreSettings(url=url)
    assert store.masked() == masked
    assert repr(store) == f"StoreSettings(url={masked!r})"


# -- what the container asks for -------------------------------------------------------


def test_context_budget_and_tokenizer() -> None:
    context = load_settings(
        context={
            "max_tokens": 1000,
            "reserved_for_output": 100,
            "tool_result_share": 0.5,
            "chars_per_token": 3,
        }
    ).context
    assert context.budget() == ContextBudget(1000, 100, 0.5)
    assert context.budget().max_tool_result_tokens == 450
    tokenizer = context.make_tokenizer()
    assert tokenizer == CharEstimator(3)
    assert tokenizer.count_tokens("abcdefg") == 3


@pytest.mark.parametrize(("on_busy", "busy_timeout"), [("wait", 12.0), ("refuse", 0.0)])
def test_runtime_config(on_busy: str, busy_timeout: float) -> None:
    s = load_settings(
        runtime={
            "max_turns": 4,
            "max_tokens": 512,
            "temperature": 0.7,
            "tool_timeout": 9,
            "parallel_tool_execution": False,
            "on_busy": on_busy,
            "busy_timeout": 12,
        }
    )
    budget = s.context.budget()
    config = s.runtime.runtime_config("You are terse.", "model-x", budget)
    assert config == RuntimeConfig(
        system_prompt="You are terse.",
        max_turns=4,
        max_tokens=512,
        temperature=0.7,
        model="model-x",
        context_budget=budget,
        parallel_tool_execution=False,
        tool_timeout=9.0,
        busy_timeout=busy_timeout,
    )
