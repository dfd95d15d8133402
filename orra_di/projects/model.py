"""A project: a named namespace with its own prompt section and tool set.

orra's ``Project`` was data the runtime never read (spec §5.8/42), and its
namespace was the single segment ``"project/<id>"`` while every other key used
``:`` (§5.4/18). Here a project *is* the namespace ``project:<id>``, built from
segments with :class:`~orra_di.namespace.Namespace` so an id holding ``:`` (or
anything else a segment cannot hold) is refused instead of escaping into another
key; runs under it (and under any namespace below it, such as
``project:<id>:user:<user>``) get the project's prompt as a section of their system
prompt and its enabled tools as their policy.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orra_di.errors import NamespaceError, StoreError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.policy import ToolPolicy
from orra_di.session import utc_now

__all__ = ["PROJECT_ROOT", "Project", "project_id_of"]

PROJECT_ROOT = "project"
"""The first segment of every project's namespace."""


class Project(BaseModel):
    """One project (orra's fields; ``enabled_tools=None`` allows every tool).

    ``enabled_tools`` is ``None`` for "every tool the agent has" and a list for
    exactly those (``[]``: none). orra used an empty list for "all", which left no
    way to say "none". Immutable: change one with ``model_copy(update=...)`` and
    :meth:`ProjectManager.update <orra_di.projects.manager.ProjectManager.update>`.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str
    name: str
    description: str = ""
    system_prompt: str | None = None
    """The project's prompt: a section added to the system prompt of runs under it."""
    enabled_tools: list[str] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    active: bool = True
    """An inactive project keeps its data but refuses runs under its namespace."""
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)

    @field_validator("id")
    @classmethod
    def _id_is_one_segment(cls, value: str) -> str:
        if ":" in value:  # the namespace's own advice (Namespace.parse) would mislead here
            raise ValueError(
                f"a project id cannot contain ':' ({value!r}): it is the one segment after "
                f"'{PROJECT_ROOT}:' in the project's namespace"
            )
        try:
            Namespace(PROJECT_ROOT, value)
        except NamespaceError as exc:
            raise ValueError(f"a project id must be one namespace segment: {exc}") from None
        return value

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a project needs a name")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_is_json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"project metadata must be JSON-serialisable: {exc}") from None
        return value

    @classmethod
    def new(cls, id: str, name: str, **fields: Any) -> Project:
        """orra's ``Project::new``: both timestamps now."""
        return cls(id=id, name=name, **fields)

    @property
    def namespace(self) -> Namespace:
        """``project:<id>``: the project's sessions live here and below."""
        return Namespace(PROJECT_ROOT, self.id)

    def user_namespace(self, user_id: str) -> Namespace:
        """``project:<id>:user:<user_id>``: one user's session inside the project."""
        return Namespace(PROJECT_ROOT, self.id, "user", user_id)

    def tool_policy(self) -> ToolPolicy | None:
        """The policy of the project's namespace: its enabled tools, or ``None`` for all."""
        return None if self.enabled_tools is None else ToolPolicy.allow_list(self.enabled_tools)

    # -- storage -----------------------------------------------------------------------

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes, where: str) -> Project:
        """A stored project; a corrupt record is a :class:`StoreError` naming ``where``."""
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise StoreError(f"the project stored at {where} cannot be read: {exc}") from None


def project_id_of(namespace: NamespaceLike) -> str | None:
    """The id of the project ``namespace`` (or its key) lies in (``project:<id>`` or below)."""
    segments = Namespace.coerce(namespace).segments
    return segments[1] if len(segments) >= 2 and segments[0] == PROJECT_ROOT else None
