"""Plugins: tools, hooks, agents and settings contributed by installed distributions.

A distribution declares ``[project.entry-points."orra_di.plugins"]``; the
application enables plugins by name (``ORRA_PLUGINS='["weather"]'``); the
container loads them, starts them in :func:`~orra_di.containers.lifespan` and
hands their tools, hooks and agents to every agent runtime. See
``docs/plugins.md``.

The names below are imported on first use, so ``orra_di.plugins.cli`` (loaded
by the ``orra-di`` command at start-up) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.plugins.base import (
        ENTRY_POINT_GROUP,
        BasePlugin,
        Plugin,
        PluginConfig,
        PluginInfo,
        PluginState,
    )
    from orra_di.plugins.registry import (
        DiscoveredPlugin,
        PluginRegistry,
        discover,
        load_plugin,
        registry_from_settings,
    )
    from orra_di.plugins.settings import PluginSettings

__all__ = [
    "ENTRY_POINT_GROUP",
    "BasePlugin",
    "DiscoveredPlugin",
    "Plugin",
    "PluginConfig",
    "PluginInfo",
    "PluginRegistry",
    "PluginSettings",
    "PluginState",
    "discover",
    "load_plugin",
    "registry_from_settings",
]

_WHERE = {
    **dict.fromkeys(
        ["ENTRY_POINT_GROUP", "BasePlugin", "Plugin", "PluginConfig", "PluginInfo", "PluginState"],
        "orra_di.plugins.base",
    ),
    **dict.fromkeys(
        ["DiscoveredPlugin", "PluginRegistry", "discover", "load_plugin", "registry_from_settings"],
        "orra_di.plugins.registry",
    ),
    "PluginSettings": "orra_di.plugins.settings",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'orra_di.plugins' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
