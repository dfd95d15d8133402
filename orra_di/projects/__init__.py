"""Projects: a namespace ``project:<id>`` with its own prompt section and tool set.

:class:`Project` is the record, a :class:`ProjectStore` keeps it beside the
sessions (every session store backend), :class:`ProjectManager` creates and
changes projects, and :class:`ProjectHook` applies a project to the runs under
its namespace. See ``docs/projects.md``.

The names below are imported on first use, so ``orra_di.projects.cli`` (loaded
by the ``orra-di`` command at start-up) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.projects.hook import ProjectHook
    from orra_di.projects.manager import ProjectManager
    from orra_di.projects.model import PROJECT_ROOT, Project, project_id_of
    from orra_di.projects.settings import ProjectSettings
    from orra_di.projects.stores import (
        FileProjectStore,
        InMemoryProjectStore,
        PostgresProjectStore,
        ProjectStore,
        RedisProjectStore,
        SQLiteProjectStore,
        project_store_for,
    )

__all__ = [
    "PROJECT_ROOT",
    "FileProjectStore",
    "InMemoryProjectStore",
    "PostgresProjectStore",
    "Project",
    "ProjectHook",
    "ProjectManager",
    "ProjectSettings",
    "ProjectStore",
    "RedisProjectStore",
    "SQLiteProjectStore",
    "project_id_of",
    "project_store_for",
]

_WHERE = {
    "ProjectHook": "orra_di.projects.hook",
    "ProjectManager": "orra_di.projects.manager",
    **dict.fromkeys(["PROJECT_ROOT", "Project", "project_id_of"], "orra_di.projects.model"),
    "ProjectSettings": "orra_di.projects.settings",
    **dict.fromkeys(
        [
            "FileProjectStore",
            "InMemoryProjectStore",
            "PostgresProjectStore",
            "ProjectStore",
            "RedisProjectStore",
            "SQLiteProjectStore",
            "project_store_for",
        ],
        "orra_di.projects.stores",
    ),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'orra_di.projects' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
