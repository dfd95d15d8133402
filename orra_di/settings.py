"""Configuration: one :class:`OrraSettings` tree, layered from several places.

Each setting is taken from the first layer that gives it, highest first:

1. keyword arguments (``load_settings(runtime={"max_turns": 5})``);
2. environment variables: ``ORRA_`` + the dotted name with ``__`` for the dots,
   any case (``ORRA_RUNTIME__MAX_TURNS=20``); lists and tables are JSON
   (``ORRA_AGENTS='[{"name": "Atlas"}, {"name": "CodeBot"}]'``); an empty
   variable counts as unset;
3. a ``.env`` file in the working directory, same names;
4. a secrets directory (``ORRA_SECRETS_DIR``, else ``/run/secrets`` when it
   exists): one file per setting, named like its environment variable, e.g.
   ``orra_llm__api_key`` (pydantic-settings' nested secrets: prefix, then ``__``);
5. a TOML file (``ORRA_CONFIG_FILE``, else ``orra.toml`` in the working directory
   when present)::

       [llm]
       kind = "anthropic"
       model = "claude-sonnet-5-5"

       [runtime]
       max_turns = 20

       [[agents]]
       name = "Atlas"

       [policies."acme:viewers"]
       allow = ["search"]

6. the defaults below.

Every invalid value is reported at once, in one :class:`ConfigurationError`
naming the setting, its environment variable, the bad value and what is
accepted. Secrets (``llm.api_key``, a password in ``store.url``) never appear
in a repr, a dump, an error or :func:`describe`. A variable that sets nothing
but resembles a setting (``ORRA_AGENT``) is a :class:`SettingsWarning`.
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from orra_di.agent import DEFAULT_AGENT_NAME, AgentProfile
from orra_di.approvals.settings import ApprovalSettings
from orra_di.auth.settings import AuthSettings
from orra_di.channels.settings import ChannelSettings
from orra_di.context import CharEstimator, ContextBudget, Tokenizer
from orra_di.cron.settings import CronSettings
from orra_di.documents.settings import DocumentSettings
from orra_di.errors import ConfigurationError
from orra_di.gateway.settings import GatewaySettings
from orra_di.hooks.settings import LoggingSettings, WorkingDirectorySettings
from orra_di.mcp.settings import McpSettings
from orra_di.memory.settings import MemorySettings
from orra_di.namespace import Namespace
from orra_di.observability.settings import TelemetrySettings
from orra_di.plugins.base import mask_secret_values, secret_values_of
from orra_di.plugins.settings import PluginOptions, PluginSettings
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.projects.settings import ProjectSettings
from orra_di.redaction import mask_url
from orra_di.runtime import RuntimeConfig
from orra_di.settings_names import SettingsWarning, misspelt_variables
from orra_di.stores import STORE_URL_FORMS, split_store_url
from orra_di.tools.settings import ToolsSettings
from orra_di.usage.ledger import Budget, ModelPrice
from orra_di.usage.settings import UsageSettings
from orra_di.voice.settings import VoiceSettings

__all__ = [
    "CONFIG_FILE_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_SECRETS_DIR",
    "ENV_PREFIX",
    "SECRETS_DIR_ENV",
    "VENDOR_KEY_ENV",
    "ContextSettings",
    "LLMKind",
    "LLMSettings",
    "OrraSettings",
    "PolicySettings",
    "PromptSettings",
    "RuntimeSettings",
    "StoreSettings",
    "describe",
    "load_settings",
    "secret_values",
]

ENV_PREFIX = "ORRA_"
CONFIG_FILE_ENV = "ORRA_CONFIG_FILE"
SECRETS_DIR_ENV = "ORRA_SECRETS_DIR"
DEFAULT_CONFIG_FILE = Path("orra.toml")
DEFAULT_SECRETS_DIR = Path("/run/secrets")

LLMKind = Literal["offline", "test", "scripted", "anthropic", "openai"]
BuiltinTool = Literal["calculate", "current_time"]
"""The names of ``orra_di.tools.BUILTIN_TOOLS`` (a test keeps the two in step)."""
VENDOR_KEY_ENV: Mapping[LLMKind, str] = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
}
"""The vendors' own key variables, in auto-detection order."""

_HIDDEN = "**********"

# -- URLs ----------------------------------------------------------------------


def _user_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative values
        return Path(xdg)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support"
    return Path.home() / ".local" / "share"


def _default_store_url() -> str:
    """``sessions.sqlite3`` in the user's data directory: ``$XDG_DATA_HOME/orra-di/``, else
    ``~/.local/share/orra-di/`` (``~/Library/Application Support/orra-di/`` on macOS)."""
    return "sqlite:///" + (_user_data_dir() / "orra-di" / "sessions.sqlite3").as_posix()


# -- sections ------------------------------------------------------------------


class _Section(BaseModel):
    """Unknown keys are errors, so a typo in orra.toml or a variable name is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LLMSettings(_Section):
    """Which model vendor to talk to, and how patiently."""

    kind: LLMKind | None = Field(
        None,
        description="one of 'offline', 'test', 'scripted', 'anthropic', 'openai', or unset to "
        "detect it from ANTHROPIC_API_KEY / OPENAI_API_KEY (openai when only base_url is set; "
        "offline when nothing is)",
    )
    model: str | None = None
    """The model to ask for; unset: the adapter's default. An agent's own ``model`` wins."""
    base_url: str | None = Field(
        None,
        description="an http:// or https:// URL such as http://127.0.0.1:11434/v1, or unset",
    )
    api_key: SecretStr | None = None
    """The vendor's key; unset: the vendor's own ``ANTHROPIC_API_KEY`` or ``OPENAI_API_KEY``
    (a ``base_url`` server is never sent ``OPENAI_API_KEY``)."""
    timeout: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Seconds one request to the model may take."""
    max_retries: int = Field(2, ge=0)
    """Retries of a request that met a rate limit or an outage (a timeout, a 5xx, a dropped
    connection), with exponential backoff."""
    max_retry_wait: float = Field(60.0, gt=0, allow_inf_nan=False)
    """The longest retry-after worth waiting for; a longer one fails (or falls back) at once."""
    auth: AuthSettings | None = Field(
        None,
        description="a table {kind, token, token_url, client_id, client_secret, refresh_token, "
        "scope, ...} (ORRA_LLM__AUTH__KIND=client_credentials, ...), or unset",
    )
    """A token provider whose bearer token replaces the API key (``orra_di.auth``)."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        # Checked here: the SDKs would fail later with their own exception types.
        if url is None:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad or out-of-range port
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL with a host")
        return url

    @field_validator("api_key")
    @classmethod
    def _key_names_its_vendor(cls, key: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A key without a kind would fall back to the offline model and be ignored;
        # beside a base_url it is the key of that OpenAI-compatible server.
        data = info.data
        both_valid_and_unset = (
            "kind" in data and "base_url" in data and data["kind"] is None and not data["base_url"]
        )
        if key is not None and both_valid_and_unset:
            raise ValueError("an API key needs llm.kind (ORRA_LLM__KIND) to say whose key it is")
        return key

    @model_validator(mode="after")
    def _one_credential(self) -> LLMSettings:
        if self.auth is not None and self.api_key is not None:
            raise ValueError("give llm.api_key or llm.auth, not both (the token replaces the key)")
        if self.auth is not None and self.kind is None and not self.base_url:
            raise ValueError("llm.auth needs llm.kind (ORRA_LLM__KIND) to say whose token it is")
        return self

    @field_serializer("base_url")
    def _masked_base_url(self, url: str | None) -> str | None:
        return None if url is None else mask_url(url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "base_url" and value else value

    @property
    def resolved_kind(self) -> LLMKind:
        """``kind`` if set; else ``openai`` when a ``base_url`` is set (a local
        OpenAI-compatible server: Ollama, vLLM, llama.cpp); else the first vendor
        whose key variable is set; else ``offline`` (rules that pick the built-in tools;
        ``test`` is the schema-driven double for tests)."""
        if self.kind is not None:
            return self.kind
        if self.base_url:
            return "openai"
        for kind, variable in VENDOR_KEY_ENV.items():
            if os.environ.get(variable):
                return kind
        return "offline"

    @property
    def resolved_api_key(self) -> SecretStr | None:
        """``api_key`` if set, else the vendor's own variable for the resolved kind."""
        if self.api_key is not None:
            return self.api_key
        variable = VENDOR_KEY_ENV.get(self.resolved_kind)
        value = os.environ.get(variable) if variable else None
        return SecretStr(value) if value else None


class StoreSettings(_Section):
    """Where sessions live, as one URL, and how long they and their locks last.

    ``sqlite:///`` is followed by a file path as SQLAlchemy reads it: relative to
    the working directory (``sqlite:///sessions.db``, ``sqlite:///./data/s.db``)
    or absolute with a fourth slash (``sqlite:////var/lib/orra/s.db``).
    ``file:///dir`` is an absolute directory (RFC 8089). The rules are
    :func:`orra_di.stores.split_store_url`'s.
    """

    url: str = Field(default_factory=_default_store_url, description=STORE_URL_FORMS)
    session_ttl: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="a number of seconds > 0, or unset to keep sessions",
    )
    """Sessions idle for longer are dropped: by Redis itself, and by
    ``orra-di sessions prune`` (which uses it when ``--idle`` is not given) elsewhere."""
    lease_seconds: float = Field(30.0, gt=0, allow_inf_nan=False)
    """How long a crashed process keeps its sessions locked (SQLite, PostgreSQL, Redis);
    a live holder renews its lease well within it."""
    sqlite_synchronous: Literal["normal", "full", "run"] = "normal"
    """SQLite only: ``normal`` (a commit survives a process crash; a power cut may lose
    the last commits), ``full`` (an fsync per commit of session data, so each stored
    step survives a power cut too; lease bookkeeping is not synced) or ``run`` (each
    step survives a process crash as it is written, and a finished run a power cut: one
    fsync per run, at its last write, which also covers the usage ledger's record of each
    model call; memories and approvals a run writes commit with an fsync of their own)."""

    @field_validator("url")
    @classmethod
    def _known_form(cls, url: str) -> str:
        split_store_url(url)
        return url

    @field_serializer("url")
    def _serialize_masked(self, url: str) -> str:
        return mask_url(url)

    @property
    def scheme(self) -> str:
        """The URL scheme, lower-cased: ``sqlite``, ``memory``, ``file``, ``postgresql``, …"""
        return split_store_url(self.url)[0]

    @property
    def path(self) -> Path | None:
        """The database file (sqlite) or directory (file); ``None`` for other schemes."""
        return split_store_url(self.url)[1]

    def masked(self) -> str:
        """The URL with any password replaced by ``***``, safe to log or show."""
        return mask_url(self.url)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The URL masked; the other fields only when set (a short, safe repr)."""
        yield "url", self.masked()
        for name, value in super().__repr_args__():
            if name != "url" and name in self.model_fields_set:
                yield name, value


class ContextSettings(_Section):
    """The token budget of each request sent to the model."""

    max_tokens: int = Field(200_000, ge=1)
    """The model's context window, in tokens: what one request may hold, answer included."""
    reserved_for_output: int = Field(4096, ge=0)
    """Tokens of the window kept free for the answer; the history is trimmed to the rest."""
    tool_result_share: float = Field(0.3, gt=0, le=1)
    """The largest share of the input budget one tool result may take; longer ones are cut."""
    tokenizer: Literal["chars"] = "chars"
    """How tokens are estimated: ``chars`` counts UTF-8 bytes / ``chars_per_token``."""
    chars_per_token: int = Field(4, ge=1)
    """Bytes per token for the ``chars`` estimate (corrected by the usage the model reports)."""

    @field_validator("reserved_for_output")
    @classmethod
    def _leaves_room_for_input(cls, reserved: int, info: ValidationInfo) -> int:
        max_tokens = info.data.get("max_tokens")
        if max_tokens is not None and reserved >= max_tokens:
            raise ValueError(
                f"reserving {reserved} of context.max_tokens={max_tokens} for the answer "
                "leaves no room for the request"
            )
        return reserved

    def budget(self) -> ContextBudget:
        """The budget every runtime trims its requests to."""
        return ContextBudget(
            max_tokens=self.max_tokens,
            reserved_for_output=self.reserved_for_output,
            tool_result_share=self.tool_result_share,
        )

    def make_tokenizer(self) -> Tokenizer:
        """The token estimator named by ``tokenizer`` (only ``chars`` so far)."""
        return CharEstimator(self.chars_per_token)


class RuntimeSettings(_Section):
    """How each agent runtime runs its loop."""

    max_turns: int = Field(10, ge=1)
    """Model calls one run may make; one more raises ``MaxTurnsExceeded``."""
    max_tokens: int | None = Field(None, ge=1)
    """The longest answer asked of the model, in tokens; unset: the vendor's default."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature sent with every request; unset: the vendor's default."""
    parallel_tool_execution: bool = True
    """Run the tool calls of one answer concurrently (results keep the calls' order)."""
    enable_delegation: bool = True
    """Offer every agent the ``delegate_to_agent`` tool when more than one agent is configured."""
    enable_spawn: bool = False
    """Offer every agent the ``spawn_agent`` tool (a sub-agent in a child session)."""
    max_delegation_depth: int = Field(3, ge=1)
    """How many delegations or spawned sub-agents may nest below one session."""
    tool_timeout: float = Field(120.0, gt=0, allow_inf_nan=False)
    """Seconds one tool call may take before it becomes an error result."""
    on_busy: Literal["wait", "refuse"] = "wait"
    """When another run holds the session: ``wait`` (up to ``busy_timeout``) or ``refuse``
    at once; either way a run that cannot have it raises ``SessionBusyError``."""
    busy_timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds to wait for a session another run holds, when ``on_busy`` is ``wait``."""

    def runtime_config(
        self, system_prompt: str | None, model: str | None, budget: ContextBudget
    ) -> RuntimeConfig:
        """The config of one agent's runtime; ``refuse`` becomes a busy timeout of 0."""
        return RuntimeConfig(
            system_prompt=system_prompt,
            max_turns=self.max_turns,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            model=model,
            context_budget=budget,
            parallel_tool_execution=self.parallel_tool_execution,
            tool_timeout=self.tool_timeout,
            busy_timeout=0.0 if self.on_busy == "refuse" else self.busy_timeout,
        )


class PolicySettings(_Section):
    """One namespace's tool policy: exactly one of the four forms."""

    allow: list[str] | None = None
    deny: list[str] | None = None
    allow_all: bool = False
    deny_all: bool = False

    @model_validator(mode="after")
    def _exactly_one(self) -> PolicySettings:
        given = [self.allow is not None, self.deny is not None, self.allow_all, self.deny_all]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of allow = [...], deny = [...], allow_all = true, deny_all = true"
            )
        return self

    def to_policy(self) -> ToolPolicy:
        """The runtime's policy object for this setting."""
        if self.allow is not None:
            return ToolPolicy.allow_list(self.allow)
        if self.deny is not None:
            return ToolPolicy.deny_list(self.deny)
        return ToolPolicy.allow_all() if self.allow_all else ToolPolicy.deny_all()


class PromptSettings(_Section):
    """What the standard system prompt says besides the agent's profile."""

    channel_context: str = "a chat interface"
    """Where the agent is talking, as the standard prompt says it: "You are chatting in …"."""
    sections: list[str] = Field(
        default_factory=list, description="a list of text (JSON in an environment variable)"
    )


def _namespace_key(key: str) -> str:
    Namespace.parse(key)  # NamespaceError is a ValueError: pydantic reports it under the key
    return key


_NamespaceKey = Annotated[str, AfterValidator(_namespace_key)]


def _default_agents() -> list[AgentProfile]:
    return [AgentProfile(name=DEFAULT_AGENT_NAME)]


# -- the settings tree ---------------------------------------------------------


class OrraSettings(BaseSettings):
    """Every setting of an orra-di application; see the module docstring for the layers.

    Building one raises :class:`ConfigurationError` (never a pydantic error)
    listing every invalid value.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        case_sensitive=False,
        env_ignore_empty=True,
        env_file=".env",
        dotenv_filtering="only_existing",  # a shared .env may hold other programs' variables
        extra="forbid",
        frozen=True,
    )

    llm: LLMSettings = Field(default_factory=LLMSettings, description="a table of llm settings")
    store: StoreSettings = Field(
        default_factory=StoreSettings, description="a table of store settings"
    )
    context: ContextSettings = Field(
        default_factory=ContextSettings, description="a table of context settings"
    )
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings, description="a table of runtime settings"
    )
    agents: list[AgentProfile] = Field(
        default_factory=_default_agents,
        description="a non-empty list of agents with distinct names, each "
        "{name, personality?, system_prompt?, model?} (JSON in an environment variable)",
    )
    policies: dict[_NamespaceKey, PolicySettings] = Field(
        default_factory=dict,
        description="a table keyed by namespace ('acme:viewers'), each with exactly one of "
        "allow = [...], deny = [...], allow_all = true, deny_all = true "
        "(JSON in an environment variable)",
    )
    prompt: PromptSettings = Field(
        default_factory=PromptSettings, description="a table of prompt settings"
    )
    voice: VoiceSettings = Field(
        default_factory=VoiceSettings, description="a table of voice settings"
    )
    tools: ToolsSettings = Field(
        default_factory=ToolsSettings,
        description="a table per built-in tool (calculate, current_time, exec, web_fetch, "
        "read_url, web_search, generate_image, claude_code, github), each with enabled = "
        "true|false and its options; or a list of names to switch on (JSON in an "
        "environment variable; [] for none)",
    )
    plugins: PluginSettings = Field(
        default_factory=PluginSettings, description="a list of plugin names, or a table"
    )
    projects: ProjectSettings = Field(
        default_factory=ProjectSettings, description="a table of projects settings"
    )
    usage: UsageSettings = Field(
        default_factory=UsageSettings, description="a table of usage settings"
    )
    budgets: dict[_NamespaceKey, Budget] = Field(
        default_factory=dict,
        description="a table keyed by namespace ('acme'), each with any of tokens_per_hour, "
        "tokens_per_day, tokens_per_month, cost_per_hour, cost_per_day, cost_per_month "
        "(JSON in an environment variable)",
    )
    """Usage budgets per namespace, covering its subtree, checked before each model call."""
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict,
        description="a table keyed by model name, each {input_per_mtok, output_per_mtok} "
        "in US dollars (JSON in an environment variable)",
    )
    """What each model costs, so usage records cost and cost budgets can be enforced."""
    approval: ApprovalSettings = Field(
        default_factory=ApprovalSettings, description="a table of approval settings"
    )
    telemetry: TelemetrySettings = Field(
        default_factory=TelemetrySettings, description="a table of telemetry settings"
    )
    logging: LoggingSettings = Field(
        default_factory=LoggingSettings, description="a table of logging settings"
    )
    working_directory: WorkingDirectorySettings = Field(
        default_factory=WorkingDirectorySettings,
        description="a table of working_directory settings",
    )
    cron: CronSettings = Field(default_factory=CronSettings, description="a table of cron settings")
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="a table of gateway settings"
    )
    channels: ChannelSettings = Field(
        default_factory=ChannelSettings, description="a table of channels settings"
    )
    mcp: McpSettings = Field(default_factory=McpSettings, description="a table of mcp settings")
    memory: MemorySettings = Field(
        default_factory=MemorySettings, description="a table of memory settings"
    )
    documents: DocumentSettings = Field(
        default_factory=DocumentSettings, description="a table of documents settings"
    )

    _init_values: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            explanation = _explain(exc, type(self), values)
        except SettingsError as exc:  # e.g. an oversized secrets directory
            raise ConfigurationError(f"cannot read the settings: {exc}") from exc
        except UnicodeDecodeError as exc:  # a .env or secret file (orra.toml: _layers)
            raise ConfigurationError(_not_utf8(_unreadable_file(), exc)) from None
        else:
            self._init_values = values
            for message in misspelt_variables(type(self).model_fields, os.environ):
                warnings.warn(message, SettingsWarning, stacklevel=2)
            return
        # Raised outside the handler so that the pydantic error, whose text echoes the raw
        # inputs (secrets included), is not even kept as the __context__.
        raise ConfigurationError(explanation)

    @field_validator("agents", mode="before")
    @classmethod
    def _no_unknown_agent_keys(cls, agents: Any) -> Any:
        # AgentProfile itself ignores unknown keys; in a settings file they are typos.
        known = AgentProfile.model_fields
        for i, agent in enumerate(agents if isinstance(agents, list) else []):
            unknown = sorted(set(agent) - set(known)) if isinstance(agent, dict) else []
            if unknown:
                raise ValueError(
                    f"agents[{i}] has unknown key(s) {', '.join(unknown)}; "
                    f"an agent takes {', '.join(known)}"
                )
        return agents

    @field_validator("agents")
    @classmethod
    def _named_apart(cls, agents: list[AgentProfile]) -> list[AgentProfile]:
        if not agents:
            raise ValueError("configure at least one agent")
        seen: dict[str, str] = {}
        for agent in agents:
            if agent.key in seen:
                raise ValueError(
                    f"agents {seen[agent.key]!r} and {agent.name!r} have the same name "
                    "(names are compared case-insensitively)"
                )
            seen[agent.key] = agent.name
        return agents

    def policy_registry(self) -> PolicyRegistry:
        """A registry holding every configured policy; unlisted namespaces allow all."""
        registry = PolicyRegistry()
        for key, policy in self.policies.items():
            registry.set_policy(Namespace.parse(key), policy.to_policy())
        return registry

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, *(source for _, source in _layers(settings_cls)))


def load_settings(**overrides: Any) -> OrraSettings:
    """The effective settings, ``overrides`` on top of every layer.

    Raises :class:`ConfigurationError` listing every invalid value, or naming
    a missing config file or secrets directory.
    """
    return OrraSettings(**overrides)


# -- sources -------------------------------------------------------------------


class _KeepUndecodable(PydanticBaseSettingsSource):
    """Keep a list or table value that is not JSON as text, so validation reports it
    under its setting's name instead of pydantic-settings' bare SettingsError."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            return value


class _Env(_KeepUndecodable, EnvSettingsSource):
    pass


class _DotEnv(_KeepUndecodable, DotEnvSettingsSource):
    pass


class _Secrets(_KeepUndecodable, NestedSecretsSettingsSource):
    pass


def _secrets_dir() -> Path | None:
    named = os.environ.get(SECRETS_DIR_ENV)
    if not named:
        return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None
    path = Path(named).expanduser()
    if not path.is_dir():
        raise ConfigurationError(f"{SECRETS_DIR_ENV}={named!r} is not a directory")
    return path


def _config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_ENV)
    if not named:
        return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None
    path = Path(named).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"{CONFIG_FILE_ENV}={named!r} names no file (working directory {Path.cwd()})"
        )
    return path


def _not_utf8(where: str, exc: UnicodeDecodeError) -> str:
    return f"{where} is not UTF-8 text (byte {exc.start} cannot be decoded); save it as UTF-8"


def _unreadable_file() -> str:
    """Which of ``.env`` and the secrets directory's files is not UTF-8 (the error
    pydantic-settings lets through does not say)."""
    candidates = [Path(".env")]
    secrets_dir = _secrets_dir()
    if secrets_dir is not None:
        candidates += sorted(p for p in secrets_dir.iterdir() if p.is_file())
    for path in candidates:
        try:
            path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return str(path)
        except OSError:
            continue
    return "a settings file (.env, or one in the secrets directory)"


def _layers(settings_cls: type[BaseSettings]) -> list[tuple[str, PydanticBaseSettingsSource]]:
    """The sources below the keyword arguments, highest first, each with its label."""
    layers: list[tuple[str, PydanticBaseSettingsSource]] = [
        ("env", _Env(settings_cls)),
        (".env", _DotEnv(settings_cls)),
    ]
    secrets_dir = _secrets_dir()
    if secrets_dir is not None:
        layers.append(
            ("secrets dir", _Secrets(SecretsSettingsSource(settings_cls), secrets_dir=secrets_dir))
        )
    config_file = _config_file()
    if config_file is not None:
        try:
            toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{config_file} is not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigurationError(_not_utf8(str(config_file), exc)) from None
        layers.append((str(config_file), toml))
    return layers


def _contains(data: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if isinstance(data, BaseModel):
            if key not in type(data).model_fields:
                return False
            data = getattr(data, key)
        elif isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, dict | BaseModel):
            return False
        else:
            return data is not None  # the layer set a parent as a whole (tools = ["calculate"])
    return True


def _provenance(
    settings_cls: type[BaseSettings], init_values: dict[str, Any]
) -> Callable[[tuple[str, ...]], str]:
    """Map a setting's path to the layer its value came from, as :func:`describe` words it."""
    layers = [
        ("init", init_values, None),
        *((lbl, src(), src) for lbl, src in _layers(settings_cls)),
    ]

    def source_of(path: tuple[str, ...]) -> str:
        for label, data, source in layers:
            if not _contains(data, path):
                continue
            if isinstance(source, _Env):
                # The most specific variable present is the one that won the merge.
                for end in range(len(path), 0, -1):
                    name = source.env_prefix.lower() + "__".join(path[:end]).lower()
                    if name in source.env_vars:
                        return f"env {name.upper()}"
            return label
        return "default"

    return source_of


# -- showing values and errors -------------------------------------------------


def _shown(value: Any) -> Any:
    """``value`` as JSON-ready data with secrets and URL passwords masked."""
    if isinstance(value, SecretStr):
        return _HIDDEN
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, dict):
        return {str(k): _shown(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_shown(v) for v in value]
    if isinstance(value, str):
        return mask_url(value)
    return value


def secret_values(value: Any) -> list[str]:
    """Every secret ``value`` (the settings, or a part of them) holds: each ``SecretStr``
    (tool tokens, ``tools.exec.env``, MCP env and headers, voice and vendor keys...) and
    each string a plugin keeps under a secret-looking key.

    Masking by field only works where the field is shown; a tool's output is plain text
    (a command printing its environment, an error echoing the token it sent), so the
    logging hook masks these values wherever they appear in it.
    """
    found: list[str] = []
    if isinstance(value, SecretStr):
        found.append(value.get_secret_value())
    elif isinstance(value, PluginOptions):
        found.extend(secret_values_of(value.root))
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found.extend(secret_values(getattr(value, name)))
    elif isinstance(value, dict):
        for item in value.values():
            found.extend(secret_values(item))
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            found.extend(secret_values(item))
    return list(dict.fromkeys(s for s in found if s))


def _text(value: Any, limit: int | None = None) -> str:
    text = json.dumps(_shown(value), ensure_ascii=False, default=repr)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _holds_secret(annotation: Any) -> bool:
    """True for a secret, or a section that contains one (its raw input would show it)."""
    if annotation is SecretStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_secret(f.annotation) for f in annotation.model_fields.values())
    return any(_holds_secret(arg) for arg in get_args(annotation))


def _holds_keyed_secrets(annotation: Any) -> bool:
    """True for free-form settings whose secret-looking keys are masked when shown (a
    plugin's), or a section that contains them: an error shows its raw input masked too."""
    if annotation is PluginOptions:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_holds_keyed_secrets(f.annotation) for f in annotation.model_fields.values())
    return any(_holds_keyed_secrets(arg) for arg in get_args(annotation))


_TYPE_WORDS: dict[Any, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "text",
    SecretStr: "a secret string",
}
_BOUNDS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))


def _accepted(field: FieldInfo) -> str:
    """What a field takes, in words: its description, else its type and bounds."""
    if field.description:
        return field.description
    annotation = field.annotation
    args = get_args(annotation)
    optional = get_origin(annotation) in (Union, UnionType) and type(None) in args
    if optional:
        annotation = next(a for a in args if a is not type(None))
    if get_origin(annotation) is Literal:
        words = "one of " + ", ".join(repr(a) for a in get_args(annotation))
    else:
        words = _TYPE_WORDS.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [
        f"{symbol} {getattr(m, attr)}"
        for m in field.metadata
        for attr, symbol in _BOUNDS
        if getattr(m, attr, None) is not None
    ]
    if bounds:
        words += " " + " and ".join(bounds)
    return words + (", or unset" if optional else "")


@dataclass
class _Where:
    """Where a validation error points: names for people, and a path for provenance."""

    name: str = ""
    env_var: str = ENV_PREFIX.rstrip("_")
    path: tuple[str, ...] = ()
    field: FieldInfo | None = None
    known: tuple[str, ...] = ()
    secret: bool = False
    keyed_secrets: bool = False


def _item_model(annotation: Any) -> type[BaseModel] | None:
    """The model a list's items or a dict's values are, if any."""
    args = get_args(annotation)
    last = args[-1] if args else None
    return last if isinstance(last, type) and issubclass(last, BaseModel) else None


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a table of settings, optional ones included (``llm.auth``), so an
    error inside it names its own variable (``ORRA_LLM__AUTH__SKEW``) and is masked
    only if that field is secret."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _section_model(members[0])
    return None


def _locate(loc: tuple[int | str, ...], settings_cls: type[BaseSettings]) -> _Where:
    where = _Where()
    model: type[BaseModel] | None = settings_cls
    item: type[BaseModel] | None = None
    in_fields = True  # still on named fields; env var names stop at a list index or dict key
    for part in loc:
        if part == "[key]":  # pydantic's marker for an invalid dict key, already named
            continue
        if model is not None and isinstance(part, str):
            where.known = tuple(model.model_fields)
            where.field = model.model_fields.get(part)
            where.name += f".{part}" if where.name else part
            annotation = where.field.annotation if where.field else None
            # An unknown key beside a secret may be a misspelt secret: hide it too.
            where.secret = _holds_secret(annotation if where.field else model)
            where.keyed_secrets = _holds_keyed_secrets(annotation if where.field else model)
            if in_fields:
                where.env_var += f"{'__' if where.path else '_'}{part.upper()}"
                where.path += (part,)
            section = _section_model(annotation)
            if section is not None:
                model, item = section, None
            else:
                model, item = None, _item_model(annotation)
        else:
            where.name += f"[{part}]"
            if in_fields and isinstance(part, str):
                where.path += (part,)  # a policy's namespace key, as describe() names it
            in_fields = False
            model, item = item, None
    return where


def _problem(
    error: Any, settings_cls: type[BaseSettings], source_of: Callable[[tuple[str, ...]], str]
) -> str:
    where = _locate(tuple(error["loc"]), settings_cls)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown setting"
        accepted = "one of " + ", ".join(where.known)
    else:
        accepted = _accepted(where.field) if where.field else ""
    given = mask_secret_values(error["input"]) if where.keyed_secrets else error["input"]
    if error["type"] == "missing":  # the input is the enclosing table, secrets and all
        where.secret = where.secret or _locate(tuple(error["loc"])[:-1], settings_cls).secret
    value = "<hidden>" if where.secret else _text(given, limit=120)
    origin = source_of(where.path)
    origin = "" if origin == "default" else f", from {origin}"
    line = f"{where.name} ({where.env_var}) = {value}{origin}: {message}"
    return f"{line}; accepted: {accepted}" if accepted else line


def _explain(
    exc: ValidationError, settings_cls: type[BaseSettings], init_values: dict[str, Any]
) -> str:
    source_of = _provenance(settings_cls, init_values)
    problems = [_problem(error, settings_cls, source_of) for error in exc.errors(include_url=False)]
    count = f" ({len(problems)} problems)" if len(problems) > 1 else ""
    return f"invalid configuration{count}:\n" + "\n".join(f"  - {p}" for p in problems)


# -- describe ------------------------------------------------------------------


def _leaves(settings: OrraSettings) -> Iterator[tuple[str, tuple[str, ...], Any]]:
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                yield f"{name}.{sub}", (name, sub), getattr(value, sub)
        elif isinstance(value, dict) and value:
            for key, item in value.items():
                yield f"{name}[{key}]", (name, key), item
        else:
            yield name, (name,), value


def describe(settings: OrraSettings) -> list[tuple[str, str, str]]:
    """Every leaf setting as (dotted name, masked value as JSON text, source).

    The source is ``init``, ``env ORRA_…``, ``.env``, ``secrets dir``, the TOML
    file's name, or ``default``. The layers are read again, so a variable changed
    since the settings were loaded is reported as it is now.
    """
    source_of = _provenance(type(settings), settings._init_values)
    return [(name, _text(value), source_of(path)) for name, path, value in _leaves(settings)]
