"""What a plugin is: the :class:`Plugin` protocol, its configuration and its report.

orra's ``Plugin`` trait (spec §2E.4) registered tools and hooks into registries the
application had to wire by hand (§5.8/42). Here a plugin *contributes*: tools and
hooks per agent, whole agents, and a settings model for its own section, and the
container hands them to the runtimes. A plugin is any object with these attributes;
subclass :class:`BasePlugin` to get the no-op defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ValidationError

from orra_di.agent import AgentProfile
from orra_di.hook import Hook
from orra_di.tool import Tool

__all__ = [
    "ENTRY_POINT_GROUP",
    "BasePlugin",
    "Plugin",
    "PluginConfig",
    "PluginInfo",
    "PluginState",
    "mask_secret_values",
    "secret_values_of",
]

ENTRY_POINT_GROUP = "orra_di.plugins"
"""The ``importlib.metadata`` entry-point group a distribution declares its plugins in."""

M = TypeVar("M", bound=BaseModel)

_SECRET_KEY = re.compile(
    r"key|token|secret|password|passwd|credential|auth|bearer|cookie|signature|dsn",
    re.IGNORECASE,
)
_HIDDEN = "**********"


def mask_secret_values(value: Any) -> Any:
    """``value`` with every item under a secret-looking key (``api_key``, ``token``,
    ``password``, …) replaced by stars, at any depth: plugin settings are free-form,
    so this is how ``orra-di config``, reprs and errors keep their secrets out."""
    if isinstance(value, Mapping):
        return {
            k: _HIDDEN if _SECRET_KEY.search(str(k)) else mask_secret_values(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [mask_secret_values(v) for v in value]
    return value


def secret_values_of(value: Any) -> list[str]:
    """The strings :func:`mask_secret_values` hides in ``value`` (under a secret-looking
    key, at any depth): a log that may show them as plain text (a tool's output) masks
    these values wherever they stand, since no key is there to point at them."""
    if isinstance(value, Mapping):
        found: list[str] = []
        for k, v in value.items():
            if _SECRET_KEY.search(str(k)):
                found.extend(s for s in _strings(v) if s)
            else:
                found.extend(secret_values_of(v))
        return found
    if isinstance(value, list | tuple):
        return [s for v in value for s in secret_values_of(v)]
    return []


def _strings(value: Any) -> list[str]:
    """Every string in ``value`` at any depth (a secret may be a list of tokens)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@runtime_checkable
class Plugin(Protocol):
    """A unit of extension, started once per application and stopped at its end.

    ``requires`` names plugins that must be running before this one starts;
    ``settings_model`` (a pydantic model, or ``None``) validates the plugin's own
    settings section (``plugins.config.<name>``) before ``init`` is called.
    """

    name: str
    description: str
    version: str
    requires: Sequence[str]
    settings_model: type[BaseModel] | None

    async def init(self, config: PluginConfig) -> None:
        """Start: open what the plugin needs. Raising marks it failed; others still start."""
        ...

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        """The tools ``agent`` gets from this plugin (asked each time a runtime is built)."""
        ...

    def hooks(self, agent: AgentProfile) -> Sequence[Hook]:
        """The hooks ``agent``'s runtime runs, after the application's own."""
        ...

    def agents(self) -> Sequence[AgentProfile]:
        """Agents this plugin adds beside the configured ones."""
        ...

    async def shutdown(self) -> None:
        """Stop: release what ``init`` opened. Called in reverse start order."""
        ...


class BasePlugin:
    """A plugin that contributes nothing: subclass it and override what you offer."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    requires: ClassVar[Sequence[str]] = ()
    settings_model: ClassVar[type[BaseModel] | None] = None

    async def init(self, config: PluginConfig) -> None:
        """Nothing to start."""

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        return ()

    def hooks(self, agent: AgentProfile) -> Sequence[Hook]:
        return ()

    def agents(self) -> Sequence[AgentProfile]:
        return ()

    async def shutdown(self) -> None:
        """Nothing to stop."""


class PluginConfig:
    """One plugin's settings: a JSON-like mapping with orra's typed getters.

    The getters return ``None`` when the key is missing or holds another type
    (orra's contract). :meth:`section` validates the whole mapping against a
    pydantic model: the typed way, and what the registry does with a plugin's
    ``settings_model`` before ``init``.
    """

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings: dict[str, Any] = dict(settings or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.settings.get(key, default)

    def get_str(self, key: str) -> str | None:
        value = self.settings.get(key)
        return value if isinstance(value, str) else None

    def get_bool(self, key: str) -> bool | None:
        value = self.settings.get(key)
        return value if isinstance(value, bool) else None

    def get_int(self, key: str) -> int | None:
        value = self.settings.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    get_i64 = get_int
    """orra's name for :meth:`get_int`."""

    def set(self, key: str, value: Any) -> None:
        self.settings[key] = value

    def section(self, model: type[M]) -> M:
        """The settings validated as ``model``; a mistake is a ``ValueError`` naming each
        bad key and why (never the value: it may be a secret)."""
        try:
            return model.model_validate(self.settings)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(settings)'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise ValueError(f"invalid settings: {problems}") from None

    def __repr__(self) -> str:
        return f"PluginConfig({mask_secret_values(self.settings)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PluginConfig) and other.settings == self.settings

    __hash__ = None  # type: ignore[assignment]  # mutable


class PluginState(StrEnum):
    """Where a plugin is in its life: registered, running, failed or stopped."""

    REGISTERED = "registered"
    RUNNING = "running"
    FAILED = "failed"
    STOPPED = "stopped"


class PluginInfo(BaseModel):
    """What ``orra-di plugins list`` shows for one plugin (orra's fields, and why it is
    not running)."""

    name: str
    description: str = ""
    version: str = ""
    enabled: bool = True
    initialized: bool = False
    state: PluginState = PluginState.REGISTERED
    error: str | None = None
    """Why it failed (a :class:`~orra_di.errors.PluginError` message), when it did."""
    source: str | None = None
    """Where it came from: ``entry point weather = pkg.mod:Plugin (orra-weather 1.0)``."""
