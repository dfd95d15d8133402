"""Creating, changing and removing projects; erasing a project's sessions.

orra's ``ProjectManager`` (spec §2E.5) over a :class:`ProjectStore`, with what a
product needs besides: ``activate``/``deactivate``, an ``edit`` that validates
the changes, and deletion that can erase every session under the project's
namespace (``delete_tree`` of ``project:<id>``) for a right-to-erasure request.
"""

from __future__ import annotations

import builtins
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from orra_di.errors import ProjectError
from orra_di.namespace import Namespace
from orra_di.projects.model import PROJECT_ROOT, Project
from orra_di.projects.stores import ProjectStore
from orra_di.session import utc_now
from orra_di.store import SessionStore

__all__ = ["ProjectManager"]

_EDITABLE = frozenset(
    {"name", "description", "system_prompt", "enabled_tools", "metadata", "active"}
)


def _validated(fields: dict[str, Any]) -> Project:
    try:
        return Project.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False)
        )
        raise ProjectError(f"invalid project: {problems}") from None


class ProjectManager:
    """Projects in ``store``; ``sessions`` (optional) is where their conversations live."""

    def __init__(self, store: ProjectStore, sessions: SessionStore | None = None) -> None:
        self.store = store
        self.sessions = sessions

    async def create(self, id: str, name: str, /, **fields: Any) -> Project:
        """A new project (active, every tool allowed unless ``enabled_tools`` says otherwise).

        ``fields`` are any of ``description``, ``system_prompt``, ``enabled_tools``,
        ``metadata``, ``active``. An existing id is a :class:`ProjectError`
        ("project already exists: <id>"), also when another process created it a
        moment before.
        """
        unknown = sorted(set(fields) - _EDITABLE)
        if unknown:
            raise ProjectError(
                f"unknown project field(s) {', '.join(unknown)}; "
                f"a project takes {', '.join(sorted(_EDITABLE))}"
            )
        project = _validated({"id": id, "name": name, **fields})
        if not await self.store.create(project):
            raise ProjectError(f"project already exists: {id}")
        return project

    async def get(self, id: str) -> Project | None:
        return await self.store.load(id)

    async def require(self, id: str) -> Project:
        """The project, or :class:`ProjectError` ("project not found: <id>")."""
        project = await self.store.load(id)
        if project is None:
            raise ProjectError(f"project not found: {id}; `orra-di projects list` shows them")
        return project

    async def update(self, project: Project) -> Project:
        """Save ``project`` with ``updated_at`` moved to now; return what was saved.

        The project must exist: an update racing a delete does not bring it back.
        """
        current = await self.require(project.id)
        # Strictly later than what is stored, even within one clock tick.
        now = max(utc_now(), current.updated_at + timedelta(microseconds=1))
        saved = project.model_copy(update={"updated_at": now, "created_at": current.created_at})
        await self.store.save(saved)
        return saved

    async def edit(self, id: str, /, **changes: Any) -> Project:
        """Change some fields of project ``id`` (validated like ``create``); return it."""
        unknown = sorted(set(changes) - _EDITABLE)
        if unknown:
            raise ProjectError(
                f"cannot change {', '.join(unknown)}; editable: {', '.join(sorted(_EDITABLE))}"
            )
        current = await self.require(id)
        return await self.update(_validated({**current.model_dump(), **changes}))

    async def activate(self, id: str) -> Project:
        return await self.edit(id, active=True)

    async def deactivate(self, id: str) -> Project:
        """Keep the project and its sessions, but refuse runs under its namespace."""
        return await self.edit(id, active=False)

    async def delete(self, id: str, *, erase_sessions: bool = False) -> bool:
        """Delete the project; ``True`` if it existed.

        With ``erase_sessions``, every session under ``project:<id>`` is deleted too
        (after the project, so no new run can start there meanwhile).
        """
        existed = await self.store.delete(id)
        if erase_sessions:
            await self.erase_sessions(id)
        return existed

    async def erase_sessions(self, id: str) -> int:
        """Delete every session under ``project:<id>``; return how many."""
        if self.sessions is None:
            raise ProjectError(
                "this ProjectManager has no session store; build it with "
                "ProjectManager(store, sessions) to erase sessions"
            )
        return await self.sessions.delete_tree(Namespace(PROJECT_ROOT, id))

    async def list(self) -> list[Project]:
        """Every project, sorted by id."""
        return await self.store.list()

    async def list_active(self) -> builtins.list[Project]:
        return [p for p in await self.store.list() if p.active]
