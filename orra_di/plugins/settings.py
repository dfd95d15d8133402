"""The ``plugins`` settings section: which plugins start, and each one's settings.

``ORRA_PLUGINS='["weather", "audit"]'`` is the short form (the list of enabled
plugins); the full form is a table::

    [plugins]
    enabled = ["weather"]

    [plugins.config.weather]
    units = "metric"
    api_key = "..."

(``ORRA_PLUGINS='{"enabled": [...], "config": {"weather": {...}}}'`` in the
environment). A plugin's settings are free-form here and validated by the
plugin's own ``settings_model`` when it starts; values under secret-looking keys
(``api_key``, ``token``, ``password``, …) are masked wherever settings are shown.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_serializer, model_validator

from orra_di.plugins.base import mask_secret_values

__all__ = ["PluginOptions", "PluginSettings"]


class PluginOptions(RootModel[dict[str, Any]]):
    """One plugin's settings as given; shown (``orra-di config``, reprs) with secrets masked."""

    model_config = ConfigDict(frozen=True)

    @model_serializer(mode="plain")
    def _masked(self) -> dict[str, Any]:
        masked: dict[str, Any] = mask_secret_values(self.root)
        return masked

    def __repr__(self) -> str:
        return f"PluginOptions({mask_secret_values(self.root)!r})"


class PluginSettings(BaseModel):
    """Plugins found through the ``orra_di.plugins`` entry points, enabled by name;
    ``ORRA_PLUGINS='["weather"]'`` is short for ``ORRA_PLUGINS__ENABLED``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: list[str] = Field(
        default_factory=list,
        description="a list of plugin names as their distributions declare them "
        "(`orra-di plugins list` shows the installed ones)",
    )
    """Plugins to load and start, by entry-point name; they start in this order, each
    after the plugins it requires. None by default: installing a plugin does not run it."""
    config: dict[str, PluginOptions] = Field(
        default_factory=dict,
        description="a table keyed by plugin name, each a table of that plugin's settings",
    )
    """Each plugin's own settings, validated by the plugin when it starts."""

    @model_validator(mode="before")
    @classmethod
    def _list_is_enabled(cls, value: Any) -> Any:
        # ORRA_PLUGINS='["weather"]': the list alone names the enabled plugins.
        if not isinstance(value, list):
            return value
        # pydantic-settings drops ORRA_PLUGINS__* variables when ORRA_PLUGINS is a list:
        # say so rather than start the plugins without their settings.
        nested = sorted(k for k in os.environ if k.upper().startswith("ORRA_PLUGINS__"))
        if nested:
            raise ValueError(
                f"ORRA_PLUGINS is a list, so {', '.join(nested)} would be ignored; "
                "name the plugins in ORRA_PLUGINS__ENABLED instead"
            )
        return {"enabled": value}

    @model_validator(mode="after")
    def _configured_plugins_are_enabled(self) -> PluginSettings:
        if len(set(self.enabled)) != len(self.enabled):
            raise ValueError("a plugin is enabled twice; list each name once")
        stray = sorted(set(self.config) - set(self.enabled))
        if stray:
            raise ValueError(
                f"settings are given for {', '.join(stray)}, which is not enabled; "
                "add it to plugins.enabled or remove its settings"
            )
        return self

    def options(self, name: str) -> dict[str, Any]:
        """The settings given for plugin ``name`` (empty when none)."""
        found = self.config.get(name)
        return dict(found.root) if found is not None else {}
