"""The ``logging`` and ``working_directory`` settings sections (built-in hooks).

Composed by :class:`orra_di.settings.OrraSettings`; the container adds the hooks
they switch on to every agent, before the application's own hooks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LoggingSettings", "WorkingDirectorySettings"]


class LoggingSettings(BaseModel):
    """The logging hook: each run's steps as structured records of the stdlib logging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Add a ``LoggingHook`` to every agent."""
    logger: str = "orra_di.run"
    """The name of the logger the records go to."""
    level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"
    """The level of every record."""
    preview_chars: int = Field(120, ge=0)
    """Characters of a tool's output shown in its record (secrets masked first)."""


class WorkingDirectorySettings(BaseModel):
    """A working directory per session, handed to the tools that take one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Add a ``WorkingDirectoryHook`` for every tool with a ``working_directory`` parameter,
    and the ``set_working_directory`` tool, to every agent."""
    default: str | None = None
    """The directory of sessions that have not set one; unset: none (the tool's own default)."""
