"""How a project reaches its runs: its prompt section and its tool policy.

orra's projects were data the runtime never read (spec §5.8/42). The container
gives every agent runtime a :class:`ProjectHook`. At the start of a run under
``project:<id>`` (or below it), the hook reads the project from the store, so a
change made by another process (``orra-di projects update``) applies from the
next run on:

- its ``enabled_tools`` become the policy of ``project:<id>`` in the runtime's
  :class:`~orra_di.policy.PolicyRegistry` (``None`` removes it, so an
  operator's policy higher up, or the default, applies). The runtime resolves
  the policy after this hook, filters the tools offered to the model with it,
  and checks it again when a call is executed: a tool the project did not
  enable is refused even when the model names it;
- its ``system_prompt`` is added as a section at the end of the system prompt
  of each model call of the run;
- a missing or inactive project refuses the run with a :class:`ProjectError`
  before anything is stored.

Runs under other namespaces pay one tuple comparison per hook point.
"""

from __future__ import annotations

from orra_di.errors import ProjectError
from orra_di.hook import Hook
from orra_di.message import Message, Role
from orra_di.namespace import Namespace
from orra_di.policy import PolicyRegistry
from orra_di.projects.model import PROJECT_ROOT, project_id_of
from orra_di.projects.stores import ProjectStore
from orra_di.provider import CompletionRequest
from orra_di.run_context import maybe_current_run
from orra_di.session import Session

__all__ = ["ProjectHook", "with_prompt_section"]


def with_prompt_section(messages: list[Message], section: str) -> list[Message]:
    """``messages`` with ``section`` appended to the leading system message (or as one)."""
    if messages and messages[0].role is Role.SYSTEM:
        return [Message.system(f"{messages[0].content}\n\n{section}"), *messages[1:]]
    return [Message.system(section), *messages]


class ProjectHook(Hook):
    """Applies the project of a run's namespace to the run (module docstring)."""

    def __init__(self, store: ProjectStore, policies: PolicyRegistry) -> None:
        self._store = store
        self._policies = policies
        # The prompt of each project as its latest run start read it: a cache of the
        # store keyed by project (not per-session state), refreshed on every run start.
        self._prompts: dict[str, str | None] = {}

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        project_id = project_id_of(namespace)
        if project_id is None:
            return
        project = await self._store.load(project_id)
        if project is None:
            self._policies.remove_policy(Namespace(PROJECT_ROOT, project_id))
            self._prompts.pop(project_id, None)
            raise ProjectError(
                f"project not found: {project_id}; namespaces under '{PROJECT_ROOT}:' belong "
                f"to projects: create it (`orra-di projects create {project_id} --name ...`) "
                "or use another namespace"
            )
        if not project.active:
            raise ProjectError(
                f"project {project_id!r} is inactive; activate it "
                f"(`orra-di projects update {project_id} --activate`) to run under it"
            )
        policy = project.tool_policy()
        if policy is None:
            self._policies.remove_policy(project.namespace)
        else:
            self._policies.set_policy(project.namespace, policy)
        self._prompts[project_id] = project.system_prompt

    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = maybe_current_run()
        project_id = None if run is None else project_id_of(run.namespace)
        section = None if project_id is None else self._prompts.get(project_id)
        if section:
            request.messages = with_prompt_section(request.messages, section)
