"""The plugin registry: load, configure, start in dependency order, collect, stop.

orra's ``init_all`` stopped at the first plugin that failed, leaving the later ones
unstarted (spec §2E.4). Here a failure is *isolated*: the plugin is marked failed
with a :class:`~orra_di.errors.PluginError` naming it (logged, kept in
:attr:`PluginRegistry.errors`, shown by ``orra-di plugins list``), the plugins that
require it fail with it, and every other plugin starts. Plugins start in
dependency order (``requires``), otherwise in registration order, and stop in the
reverse of the order they started.

Distributions declare plugins as entry points in the group ``orra_di.plugins``
(``[project.entry-points."orra_di.plugins"] weather = "orra_weather:WeatherPlugin"``);
:func:`discover` lists them without importing anything, and
:func:`registry_from_settings` loads only the enabled ones.
"""

from __future__ import annotations

import builtins
import logging
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

from orra_di.agent import AgentProfile
from orra_di.errors import ConfigurationError, PluginError
from orra_di.hook import Hook
from orra_di.plugins.base import (
    ENTRY_POINT_GROUP,
    Plugin,
    PluginConfig,
    PluginInfo,
    PluginState,
    secret_values_of,
)
from orra_di.plugins.settings import PluginSettings
from orra_di.redaction import redact
from orra_di.tool import Tool

__all__ = [
    "DiscoveredPlugin",
    "PluginRegistry",
    "discover",
    "load_plugin",
    "registry_from_settings",
]

log = logging.getLogger("orra_di.plugins")

T = TypeVar("T")


@dataclass(frozen=True)
class DiscoveredPlugin:
    """An installed plugin, as its distribution declares it (nothing imported yet)."""

    name: str
    value: str
    """``module:attribute`` of the plugin class, factory or instance."""
    distribution: str | None = None
    version: str | None = None

    @property
    def source(self) -> str:
        dist = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"entry point {self.name} = {self.value}{dist}"


@dataclass
class _Entry:
    name: str
    plugin: Plugin | None  # None: it could not be loaded
    config: PluginConfig = field(default_factory=PluginConfig)
    enabled: bool = True
    state: PluginState = PluginState.REGISTERED
    error: PluginError | None = None
    source: str | None = None


class PluginRegistry:
    """Plugins by name, in registration order, with their configuration and state."""

    def __init__(self, plugins: Iterable[Plugin] = ()) -> None:
        self._entries: dict[str, _Entry] = {}
        self._started: list[str] = []  # start order, for a reverse shutdown
        for plugin in plugins:
            self.register(plugin)

    # -- building ------------------------------------------------------------------

    def register(self, plugin: Plugin, *, source: str | None = None) -> None:
        """Add ``plugin`` (enabled). Two plugins of one name, or an object that is not a
        plugin, are :class:`ConfigurationError`."""
        if not isinstance(plugin, Plugin):
            raise ConfigurationError(
                f"{plugin!r} is not a plugin: it needs name, description, version, requires, "
                "settings_model, init, tools, hooks, agents and shutdown; subclass "
                "orra_di.plugins.BasePlugin for the defaults"
            )
        name = plugin.name
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"plugin {plugin!r} has no name; set its `name` attribute")
        if name in self._entries:
            raise ConfigurationError(f"two plugins are named {name!r}; plugin names must differ")
        self._entries[name] = _Entry(name, plugin, source=source)

    def add_failed(self, name: str, error: PluginError, *, source: str | None = None) -> None:
        """Record a plugin that could not even be loaded, so it is listed with why."""
        self._entries[name] = _Entry(
            name, None, state=PluginState.FAILED, error=error, source=source
        )

    def configure(self, name: str, config: PluginConfig | Mapping[str, Any]) -> None:
        """Set ``name``'s settings (orra's ``set_config``); checked when it starts."""
        entry = self._entry(name)
        entry.config = config if isinstance(config, PluginConfig) else PluginConfig(config)

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable ``name`` before the start; ``False`` if there is no such plugin."""
        entry = self._entries.get(name)
        if entry is None:
            return False
        entry.enabled = enabled
        return True

    # -- life ----------------------------------------------------------------------

    async def start(self) -> list[str]:
        """Initialise every enabled plugin not running (a stopped one starts again);
        return the names started.

        A plugin whose settings are invalid, whose ``init`` raises, or which requires
        a plugin that is missing, disabled or failed, is marked failed with a
        :class:`PluginError`; the others start regardless. Never raises for a plugin's
        failure: read :attr:`errors` (or ``list()``) to see them.
        """
        started: list[str] = []
        for name in self._start_order():
            entry = self._entries[name]
            startable = entry.state in (PluginState.REGISTERED, PluginState.STOPPED)
            if not startable or not entry.enabled:
                continue
            error = await self._init(entry)
            if error is None:
                entry.state = PluginState.RUNNING
                self._started.append(name)
                started.append(name)
            else:
                self._fail(entry, error)
        return started

    init_all = start
    """orra's name for :meth:`start`."""

    async def shutdown(self) -> list[tuple[str, PluginError | None]]:
        """Stop the running plugins in reverse start order; each one's outcome.

        A plugin whose ``shutdown`` raises is reported (and logged); the others
        are still stopped.
        """
        outcomes: list[tuple[str, PluginError | None]] = []
        while self._started:
            name = self._started.pop()
            entry = self._entries[name]
            assert entry.plugin is not None
            error: PluginError | None = None
            try:
                await entry.plugin.shutdown()
            except Exception as exc:
                cause = _masked(entry, f"{type(exc).__name__}: {exc}")
                error = PluginError(name, f"shutdown raised {cause}")
                log.error("%s%s", error, _masked_traceback(entry, exc))
            entry.state = PluginState.STOPPED
            outcomes.append((name, error))
        return outcomes

    shutdown_all = shutdown
    """orra's name for :meth:`shutdown`."""

    # -- contributions (running plugins only, in start order) --------------------------

    def tools(self, agent: AgentProfile) -> list[Tool]:
        """Every running plugin's tools for ``agent``."""
        return self._collect("tools", lambda p: p.tools(agent))

    def hooks(self, agent: AgentProfile) -> list[Hook]:
        """Every running plugin's hooks for ``agent``."""
        return self._collect("hooks", lambda p: p.hooks(agent))

    def agents(self) -> list[AgentProfile]:
        """Every running plugin's agents."""
        return self._collect("agents", lambda p: p.agents())

    # -- inspection ----------------------------------------------------------------

    @property
    def errors(self) -> dict[str, PluginError]:
        """Why each failed plugin failed, by name."""
        return {n: e.error for n, e in self._entries.items() if e.error is not None}

    def get(self, name: str) -> Plugin | None:
        entry = self._entries.get(name)
        return None if entry is None else entry.plugin

    def state(self, name: str) -> PluginState:
        return self._entry(name).state

    def list(self) -> builtins.list[PluginInfo]:
        """One :class:`PluginInfo` per plugin, in registration order."""
        infos = []
        for entry in self._entries.values():
            plugin = entry.plugin
            infos.append(
                PluginInfo(
                    name=entry.name,
                    description=plugin.description if plugin else "",
                    version=plugin.version if plugin else "",
                    enabled=entry.enabled,
                    initialized=entry.state is PluginState.RUNNING,
                    state=entry.state,
                    error=str(entry.error) if entry.error else None,
                    source=entry.source,
                )
            )
        return infos

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        states = ", ".join(f"{n}={e.state.value}" for n, e in self._entries.items())
        return f"PluginRegistry({states})"

    # -- internals -----------------------------------------------------------------

    def _entry(self, name: str) -> _Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise KeyError(f"no plugin named {name!r}; registered: {known}") from None

    def _start_order(self) -> builtins.list[str]:
        """Registration order, each plugin after what it requires (those that exist)."""
        order: builtins.list[str] = []
        seen: set[str] = set()

        def visit(name: str) -> None:
            if name in seen or name not in self._entries:
                return
            seen.add(name)
            plugin = self._entries[name].plugin
            for required in plugin.requires if plugin else ():
                visit(required)
            order.append(name)

        for name in self._entries:
            visit(name)
        return order

    async def _init(self, entry: _Entry) -> PluginError | None:
        plugin = entry.plugin
        assert plugin is not None
        missing = self._unmet(entry)
        if missing:
            return PluginError(entry.name, missing)
        try:
            if plugin.settings_model is not None:
                entry.config.section(plugin.settings_model)
            await plugin.init(entry.config)
        except Exception as exc:
            cause = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            error = PluginError(entry.name, f"init raised {_masked(entry, cause)}")
            error.__cause__ = exc
            return error
        return None

    def _unmet(self, entry: _Entry) -> str | None:
        plugin = entry.plugin
        for required in plugin.requires if plugin else ():
            other = self._entries.get(required)
            if other is None:
                return f"it requires {required!r}, which is not installed or not enabled"
            if not other.enabled:
                return f"it requires {required!r}, which is disabled"
            if other.state is PluginState.FAILED:
                return f"it requires {required!r}, which failed"
            if other.state is PluginState.STOPPED:
                return f"it requires {required!r}, which is stopped"
            if other.state is not PluginState.RUNNING:  # a cycle: the other waits on us
                return f"it requires {required!r}, which requires it in turn (a cycle)"
        return None

    def _fail(self, entry: _Entry, error: PluginError) -> None:
        entry.state = PluginState.FAILED
        entry.error = error
        why = _masked_traceback(entry, error.__cause__)
        log.error("%s; the other plugins start without it%s", error, why)

    def _collect(self, what: str, get: Callable[[Plugin], Sequence[T]]) -> builtins.list[T]:
        found: builtins.list[T] = []
        for name in self._started:
            entry = self._entries[name]
            assert entry.plugin is not None
            try:
                found.extend(get(entry.plugin))
            except Exception as exc:  # one plugin's bug must not stop every runtime
                why = _masked_traceback(entry, exc)
                log.error("plugin %r failed to give its %s; skipped%s", name, what, why)
                cause = _masked(entry, f"{type(exc).__name__}: {exc}")
                entry.error = PluginError(name, f"{what}() raised {cause}")
        return found


def _masked(entry: _Entry, text: str) -> str:
    """``text`` with the plugin's secret settings (values under secret-looking keys)
    masked: a plugin's exception often repeats what it was given (a client library's
    error quoting the key it sent), and its PluginError is logged and listed."""
    return redact(text, secret_values_of(entry.config.settings))


def _masked_traceback(entry: _Entry, exc: BaseException | None) -> str:
    """The traceback of ``exc`` as text after a newline, masked as :func:`_masked` does
    (empty without one): ``exc_info`` would print the exception's message unmasked."""
    if exc is None:
        return ""
    return "\n" + _masked(entry, "".join(traceback.format_exception(exc)).rstrip())


# -- discovery -----------------------------------------------------------------------


def discover() -> list[DiscoveredPlugin]:
    """The plugins installed distributions declare, sorted by name; nothing is imported."""
    found = []
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        found.append(
            DiscoveredPlugin(
                name=point.name,
                value=point.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
        )
    return sorted(found, key=lambda d: (d.name, d.distribution or ""))


def load_plugin(found: DiscoveredPlugin) -> Plugin:
    """Import the entry point and make the plugin (calling a class or factory with no
    arguments). Any failure is a :class:`PluginError` naming the plugin."""
    point = metadata.EntryPoint(found.name, found.value, ENTRY_POINT_GROUP)
    try:
        target = point.load()
        # A class has every attribute a plugin has, so it passes isinstance(…, Plugin):
        # make the instance. A factory function is called; an instance is taken as is.
        made = isinstance(target, type) or (callable(target) and not isinstance(target, Plugin))
        plugin = target() if made else target
    except Exception as exc:
        error = PluginError(found.name, f"cannot load {found.value}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        raise error from exc
    if not isinstance(plugin, Plugin):
        raise PluginError(
            found.name,
            f"{found.value} gave {type(plugin).__name__}, not a plugin; subclass "
            "orra_di.plugins.BasePlugin",
        )
    if plugin.name != found.name:
        raise PluginError(
            found.name,
            f"{found.value} is named {plugin.name!r}; its entry point must carry the same name, "
            "so that ORRA_PLUGINS and `requires` mean one plugin",
        )
    return plugin


def registry_from_settings(
    settings: PluginSettings, available: Sequence[DiscoveredPlugin] | None = None
) -> PluginRegistry:
    """A registry of the enabled plugins, loaded and configured (not started).

    An enabled name that no installed distribution declares is a
    :class:`ConfigurationError` (a typo, or a missing ``pip install``); a plugin that
    fails to import is recorded as failed and the others load.
    """
    found = discover() if available is None else list(available)
    by_name: dict[str, list[DiscoveredPlugin]] = {}
    for item in found:
        by_name.setdefault(item.name, []).append(item)
    registry = PluginRegistry()
    for name in settings.enabled:
        candidates = by_name.get(name, [])
        if not candidates:
            installed = ", ".join(sorted(by_name)) or "none"
            raise ConfigurationError(
                f"plugin {name!r} is enabled (plugins.enabled, ORRA_PLUGINS) but no installed "
                f"distribution declares it in the entry-point group {ENTRY_POINT_GROUP!r} "
                f"(installed: {installed}); pip install it, or remove it from the setting"
            )
        if len(candidates) > 1:
            dists = ", ".join(c.source for c in candidates)
            raise ConfigurationError(
                f"plugin {name!r} is declared by more than one distribution ({dists}); "
                "uninstall one"
            )
        item = candidates[0]
        try:
            registry.register(load_plugin(item), source=item.source)
        except PluginError as error:
            log.error("%s; the other plugins load without it", error, exc_info=error.__cause__)
            registry.add_failed(name, error, source=item.source)
            continue
        registry.configure(name, settings.options(name))
    return registry
