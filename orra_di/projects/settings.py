"""The ``projects`` settings section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["ProjectSettings"]


class ProjectSettings(BaseModel):
    """Projects: namespaces ``project:<id>`` with their own prompt and tools."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Apply projects to runs under ``project:<id>`` (their prompt section and tool policy,
    and refusing runs of a missing or inactive project). Off: such namespaces are plain
    namespaces and the project store is not read during runs."""
