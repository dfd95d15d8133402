"""The ``tools`` settings section (``ORRA_TOOLS__*``): which built-in tools, with their options.

Each tool has its own table and is off unless ``enabled`` (``calculate`` and
``current_time`` are on by default, as before). The old form, a list of names
(``tools = ["calculate"]``, ``ORRA_TOOLS='["calculate"]'``), is still accepted:
it switches on exactly the tools it names, with their default options.

Examples: ``ORRA_TOOLS__EXEC__ENABLED=true``, ``ORRA_TOOLS__EXEC__ALLOW='["git","ls"]'``,
``ORRA_TOOLS__WEB_SEARCH__API_KEY=...``.
"""

from __future__ import annotations

import os
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

__all__ = [
    "BasicToolSettings",
    "ClaudeCodeSettings",
    "ExecSettings",
    "GitHubSettings",
    "ImageSettings",
    "ReadUrlSettings",
    "ToolsSettings",
    "WebSearchSettings",
    "WebSettings",
]


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicToolSettings(_Table):
    """A tool with no options but whether agents get it (on by default: it does no I/O)."""

    enabled: bool = True
    """Give this tool to every agent."""


DEFAULT_ENV_ALLOW = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM", "USER")


class ExecSettings(_Table):
    """``exec``: run a program (no shell unless ``shell``), with an allowlist and limits."""

    enabled: bool = False
    """Give the ``exec`` tool to every agent."""
    allow: list[str] = Field(
        default_factory=list,
        description='programs the model may run, as names found on PATH or paths ("git", '
        '"/usr/bin/ls"); compared by resolved path (JSON in an environment variable)',
    )
    """The programs the model may run."""
    allow_any: bool = False
    """Let the model run any program (required when ``allow`` is empty, and for ``shell``)."""
    shell: bool = False
    """Run the command through ``/bin/sh -c`` (pipes, ``;``, ``$(...)``): an allowlist cannot be
    enforced through a shell, so this needs ``allow_any``."""
    root: str | None = None
    """A directory commands never leave: the working directory (the call's, the session's)
    must be inside it, and it is the default one; unset: no bound beyond ``confine_paths``,
    which confines arguments to whatever working directory the call has."""
    confine_paths: bool = True
    """Refuse arguments that are absolute paths or climb out of the working directory
    with ``..`` (``--opt=/path`` too)."""
    timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds a command may run when the call gives no ``timeout_secs``."""
    max_timeout: float = Field(120.0, gt=0, allow_inf_nan=False)
    """The most seconds a call may ask for."""
    max_output_chars: int = Field(32_000, ge=100)
    """Characters of output kept (stdout and stderr together); more is cut with a marker."""
    env_allow: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ENV_ALLOW),
        description="names of the server's environment variables a command inherits "
        "(JSON in an environment variable)",
    )
    """Environment variables passed through; every other one (API keys...) is withheld."""
    env: dict[str, SecretStr] = Field(
        default_factory=dict, description="extra environment variables set for every command"
    )
    """Variables set for every command, on top of ``env_allow``. Their values are kept as
    secrets (a token a command needs goes here): ``orra-di config`` and errors mask them."""
    require_approval: bool = True
    """When approvals are on (``approval.enabled``), ``exec`` calls always need one, even if
    ``approval.tools`` does not name it."""

    @model_validator(mode="after")
    def _coherent(self) -> ExecSettings:
        if self.shell and not self.allow_any:
            raise ValueError(
                "tools.exec.shell runs commands through a shell, where an allowlist cannot "
                "be enforced: set tools.exec.allow_any = true as well, or leave shell off"
            )
        if self.enabled and not self.allow and not self.allow_any:
            raise ValueError(
                'tools.exec is enabled with no program allowed: set tools.exec.allow = ["git", '
                "...] or tools.exec.allow_any = true"
            )
        if self.timeout > self.max_timeout:
            raise ValueError("tools.exec.timeout is larger than tools.exec.max_timeout")
        return self


_Network = IPv4Network | IPv6Network


class WebSettings(_Table):
    """``web_fetch`` or ``read_url``: HTTP(S) GET with an SSRF guard and limits."""

    enabled: bool = False
    """Give this tool to every agent."""
    allow_networks: list[str] = Field(
        default_factory=list,
        description="address ranges reachable although private, loopback or link-local, e.g. "
        '["10.1.0.0/16"] (JSON in an environment variable)',
    )
    """Networks (CIDR) let through the SSRF guard; by default only public addresses are."""
    timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds for the whole fetch, redirects and body included."""
    max_bytes: int = Field(5_000_000, ge=1024)
    """Bytes of body read; the rest is not downloaded."""
    max_chars: int = Field(16_000, ge=100)
    """Characters of text returned when the call gives no ``max_length`` (read_url: 50 000)."""
    max_redirects: int = Field(10, ge=0, le=30)
    """Redirects followed, each checked by the guard."""
    content_types: list[str] = Field(
        default_factory=lambda: [
            "text/",
            "application/xhtml+xml",
            "application/json",
            "application/xml",
        ],
        description="content types accepted, a trailing / matching a whole family "
        "(JSON in an environment variable)",
    )
    """Media types accepted; a value ending in ``/`` matches a family (``text/``)."""
    user_agent: str = "orra-di (+https://pypi.org/project/orra-di/)"
    """The User-Agent header."""
    ca_bundle: str | None = None
    """A PEM file of the certificate authorities to trust instead of the usual ones (an
    internal CA); unset: the ``certifi`` bundle."""

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not a network like 10.0.0.0/8 or ::1/128") from None
        return values

    def networks(self) -> list[_Network]:
        """``allow_networks`` parsed."""
        return [ip_network(v, strict=False) for v in self.allow_networks]


class ReadUrlSettings(WebSettings):
    """``read_url``: like ``web_fetch``, with a larger text limit."""

    max_chars: int = Field(50_000, ge=100)
    """Characters of readable text returned."""


class WebSearchSettings(_Table):
    """``web_search``: a search API (Brave or Tavily)."""

    enabled: bool = False
    """Give the ``web_search`` tool to every agent."""
    backend: Literal["brave", "tavily"] = "brave"
    """Which search API answers."""
    api_key: SecretStr | None = None
    """The API key of the backend (required when enabled)."""
    base_url: str | None = None
    """The API's root URL; unset: the vendor's."""
    timeout: float = Field(15.0, gt=0, allow_inf_nan=False)
    """Seconds a search may take."""
    max_results: int = Field(20, ge=1, le=50)
    """The most results a call may ask for."""

    @model_validator(mode="after")
    def _key(self) -> WebSearchSettings:
        if self.enabled and self.api_key is None:
            raise ValueError("tools.web_search is enabled without tools.web_search.api_key")
        return self


class ImageSettings(_Table):
    """``generate_image``: the OpenAI images API."""

    enabled: bool = False
    """Give the ``generate_image`` tool to every agent."""
    api_key: SecretStr | None = None
    """The OpenAI API key; unset: ``OPENAI_API_KEY``."""
    base_url: str | None = None
    """The API root; unset: OpenAI's."""
    model: str = "dall-e-3"
    """The image model."""
    output: Literal["url", "file"] = "url"
    """Return the provider's URL, or save the image in ``directory`` and return its path."""
    directory: str = "images"
    """Where images are saved when ``output`` is ``file``."""
    timeout: float = Field(120.0, gt=0, allow_inf_nan=False)
    """Seconds a generation may take."""


class ClaudeCodeSettings(_Table):
    """``claude_code`` and ``claude_code_resume``: delegate to the local ``claude`` CLI."""

    enabled: bool = False
    """Give both tools to every agent."""
    command: str = "claude"
    """The CLI to run (a name on PATH or a path)."""
    allowed_tools: list[str] = Field(
        default_factory=lambda: ["Read", "Edit", "Bash"],
        description="the CLI's tools it may use (JSON in an environment variable)",
    )
    """Passed as ``--allowedTools``."""
    max_turns: int = Field(10, ge=1)
    """Passed as ``--max-turns``."""
    timeout: float = Field(300.0, gt=0, allow_inf_nan=False)
    """Seconds a task may run; then the CLI and its children are killed."""
    skip_permissions: bool = False
    """Pass ``--dangerously-skip-permissions``."""
    working_directory: str | None = None
    """Where the CLI runs when neither the call nor the session gives a directory."""
    max_output_chars: int = Field(8_000, ge=100)
    """Characters of the CLI's answer kept."""


class GitHubSettings(_Table):
    """The GitHub issue and pull-request tools, on one repository."""

    enabled: bool = False
    """Give the GitHub tools to every agent."""
    token: SecretStr | None = None
    """A token with access to the repository (required when enabled)."""
    owner: str = ""
    """The repository's owner."""
    repo: str = ""
    """The repository's name."""
    base_url: str = "https://api.github.com"
    """The API root (GitHub Enterprise: ``https://HOST/api/v3``)."""
    timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds a request may take."""

    @model_validator(mode="after")
    def _complete(self) -> GitHubSettings:
        if self.enabled and (self.token is None or not self.owner or not self.repo):
            raise ValueError("tools.github is enabled: set tools.github.token, .owner and .repo")
        return self


BUILTIN_NAMES = (
    "calculate",
    "current_time",
    "exec",
    "web_fetch",
    "read_url",
    "web_search",
    "generate_image",
    "claude_code",
    "github",
)


class ToolsSettings(_Table):
    """The built-in tools every agent gets, each a table with ``enabled`` and its options.

    A list of names is also accepted (the old form): it switches those on.
    """

    calculate: BasicToolSettings = Field(default_factory=BasicToolSettings)
    """Exact arithmetic (on by default)."""
    current_time: BasicToolSettings = Field(default_factory=BasicToolSettings)
    """The time in a zone (on by default)."""
    exec: ExecSettings = Field(default_factory=ExecSettings)
    """Run programs."""
    web_fetch: WebSettings = Field(default_factory=WebSettings)
    """Fetch a URL as text."""
    read_url: ReadUrlSettings = Field(default_factory=ReadUrlSettings)
    """A page's readable text and title."""
    web_search: WebSearchSettings = Field(default_factory=WebSearchSettings)
    """Search the web."""
    generate_image: ImageSettings = Field(default_factory=ImageSettings)
    """Generate images."""
    claude_code: ClaudeCodeSettings = Field(default_factory=ClaudeCodeSettings)
    """Delegate coding tasks to the Claude Code CLI."""
    github: GitHubSettings = Field(default_factory=GitHubSettings)
    """GitHub issues and pull requests."""

    _order: tuple[str, ...] = PrivateAttr(default=BUILTIN_NAMES)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_list_order(
        cls, value: Any, handler: ModelWrapValidatorHandler[ToolsSettings]
    ) -> ToolsSettings:
        settings = handler(value)
        if isinstance(value, list | tuple):  # the old form: the tools in the order named
            named = tuple(dict.fromkeys(str(v) for v in value))
            settings._order = named + tuple(n for n in BUILTIN_NAMES if n not in named)
        return settings

    @model_validator(mode="before")
    @classmethod
    def _from_names(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        # pydantic-settings drops ORRA_TOOLS__* variables when ORRA_TOOLS is a list: say so
        # rather than start without them (exec left off, say).
        nested = sorted(k for k in os.environ if k.upper().startswith("ORRA_TOOLS__"))
        if nested:
            raise ValueError(
                f"ORRA_TOOLS is a list, so {', '.join(nested)} would be ignored; drop the list "
                "and switch each tool on with ORRA_TOOLS__<NAME>__ENABLED=true instead"
            )
        tables: dict[str, Any] = {
            "calculate": {"enabled": False},
            "current_time": {"enabled": False},
        }
        for name in value:
            if name not in BUILTIN_NAMES:
                raise ValueError(
                    f"unknown built-in tool {name!r}; available: {', '.join(BUILTIN_NAMES)}"
                )
            if name in ("exec", "web_search", "github"):
                raise ValueError(
                    f"{name!r} needs options: enable it as a table, e.g. "
                    f"ORRA_TOOLS__{name.upper()}__ENABLED=true with its settings"
                )
            tables[name] = {"enabled": True}
        return tables

    def enabled(self) -> list[str]:
        """The names of the tools switched on: in the order of the list for the old form,
        else in the order above."""
        return [name for name in self._order if getattr(self, name).enabled]
