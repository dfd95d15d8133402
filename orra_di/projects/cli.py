"""``orra-di projects list|create|show|update|delete``.

Imports only typer at load (the ``orra-di`` command registers this module at
start-up); the rest is imported when a command runs. Projects live in the
configured store (``ORRA_STORE__URL``), beside the sessions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.projects.manager import ProjectManager
    from orra_di.projects.model import Project

__all__ = ["app"]

T = TypeVar("T")

app = typer.Typer(
    help="Projects: namespaces project:<id> with their own prompt and tools.",
    no_args_is_help=True,
)

IdArgument = Annotated[str, typer.Argument(help="The project's id (one namespace segment).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DescriptionOption = Annotated[str | None, typer.Option("--description", help="What it is for.")]
PromptOption = Annotated[
    str | None,
    typer.Option("--prompt", help="Added to the system prompt of every run under the project."),
]
ToolOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tool", "-t", help="A tool the project enables (repeat it); default: every tool."
    ),
]
NoToolsOption = Annotated[bool, typer.Option("--no-tools", help="Enable no tool at all.")]
MetaOption = Annotated[
    list[str] | None,
    typer.Option("--meta", help="KEY=VALUE metadata (VALUE as JSON if it parses); repeat it."),
]


def _manage(job: Callable[[ProjectManager], Awaitable[T]], *, tools: Any = ...) -> T:
    """Run ``job`` on the container's project manager; ``tools`` (what ``_tools`` gave)
    are checked against what the agents offer first."""
    from orra_di import cli

    async def run(container: Container) -> T:
        if isinstance(tools, list) and tools:
            _warn_unknown_tools(container, tools)
        return await job(container.projects())

    return cli._run(run)


def _warn_unknown_tools(container: Container, names: list[str]) -> None:
    """Say which of ``names`` no agent offers: a misspelt tool would otherwise leave the
    project silently without it. A warning, not a refusal: an MCP server that is down
    now may offer the tool later."""
    runtimes = container.runtimes()
    offered = {
        tool.definition.name
        for profile in runtimes.profiles
        for tool in runtimes[profile.name].tools
    }
    unknown = [name for name in names if name not in offered]
    if unknown:
        sys.stderr.write(
            f"warning: no agent offers {', '.join(map(repr, unknown))}; the project enables "
            f"only tools that exist (offered now: {', '.join(sorted(offered)) or 'none'})\n"
        )


def _tools(tools: list[str] | None, no_tools: bool, *, all_tools: bool = False) -> Any:
    """The ``enabled_tools`` the options say; ``...`` when they say nothing."""
    given = sum([bool(tools), no_tools, all_tools])
    if given > 1:
        raise typer.BadParameter("give only one of --tool, --no-tools, --all-tools")
    if tools:
        return list(tools)
    if no_tools:
        return []
    return None if all_tools else ...


def _metadata(pairs: list[str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--meta {pair!r} is not KEY=VALUE")
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return metadata


def _print(project: Project, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(project.model_dump_json() + "\n")
        return
    tools = "all" if project.enabled_tools is None else ", ".join(project.enabled_tools) or "none"
    lines = [
        f"id:          {project.id}",
        f"name:        {project.name}",
        f"namespace:   {project.namespace}",
        f"active:      {'yes' if project.active else 'no'}",
        f"tools:       {tools}",
        f"description: {project.description}",
        f"prompt:      {project.system_prompt or ''}",
        f"metadata:    {json.dumps(project.metadata, ensure_ascii=False)}",
        f"created:     {project.created_at.isoformat()}",
        f"updated:     {project.updated_at.isoformat()}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")


@app.command("list")
def projects_list(
    active: Annotated[bool, typer.Option("--active", help="Only active projects.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List the projects."""

    async def job(manager: ProjectManager) -> list[Project]:
        return await (manager.list_active() if active else manager.list())

    projects = _manage(job)
    if as_json:
        rows = [json.loads(p.model_dump_json()) for p in projects]
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    if not projects:  # as `approvals list` does: a sentence, not an empty table
        which = "active project" if active else "project"
        print(f"no {which}; create one with `orra-di projects create ID --name NAME`")
        return
    table = Table("id", "name", "active", "tools", "prompt")
    for p in projects:
        tools = "all" if p.enabled_tools is None else ", ".join(p.enabled_tools) or "none"
        prompt = (p.system_prompt or "").replace("\n", " ")
        table.add_row(
            Text(p.id),
            Text(p.name),
            "yes" if p.active else "no",
            Text(tools),
            Text(prompt[:60] + ("…" if len(prompt) > 60 else "")),
        )
    Console(highlight=False, emoji=False).print(table)


@app.command("create")
def projects_create(
    project_id: IdArgument,
    name: Annotated[str, typer.Option("--name", help="A name for people.")],
    description: DescriptionOption = None,
    prompt: PromptOption = None,
    tool: ToolOption = None,
    no_tools: NoToolsOption = False,
    meta: MetaOption = None,
    inactive: Annotated[bool, typer.Option("--inactive", help="Create it inactive.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a project; its sessions will be project:<id> and below."""
    fields: dict[str, Any] = {"metadata": _metadata(meta), "active": not inactive}
    tools = _tools(tool, no_tools)
    if tools is not ...:
        fields["enabled_tools"] = tools
    if description is not None:
        fields["description"] = description
    if prompt is not None:
        fields["system_prompt"] = prompt

    async def job(manager: ProjectManager) -> Project:
        return await manager.create(project_id, name, **fields)

    _print(_manage(job, tools=tools), as_json)


@app.command("show")
def projects_show(project_id: IdArgument, as_json: JsonOption = False) -> None:
    """Print a project."""

    async def job(manager: ProjectManager) -> Project:
        return await manager.require(project_id)

    _print(_manage(job), as_json)


@app.command("update")
def projects_update(
    project_id: IdArgument,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    description: DescriptionOption = None,
    prompt: PromptOption = None,
    clear_prompt: Annotated[
        bool, typer.Option("--clear-prompt", help="Remove the project's prompt.")
    ] = False,
    tool: ToolOption = None,
    no_tools: NoToolsOption = False,
    all_tools: Annotated[
        bool, typer.Option("--all-tools", help="Enable every tool again.")
    ] = False,
    meta: MetaOption = None,
    activate: Annotated[
        bool | None,
        typer.Option("--activate/--deactivate", help="Allow or refuse runs under it."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Change a project: only what the options give changes (--meta keys are merged)."""
    changes: dict[str, Any] = {}
    if prompt is not None and clear_prompt:
        raise typer.BadParameter("give --prompt or --clear-prompt, not both")
    tools = _tools(tool, no_tools, all_tools=all_tools)
    if tools is not ...:
        changes["enabled_tools"] = tools
    for key, value in (("name", name), ("description", description), ("system_prompt", prompt)):
        if value is not None:
            changes[key] = value
    if clear_prompt:
        changes["system_prompt"] = None
    if activate is not None:
        changes["active"] = activate
    extra = _metadata(meta)

    async def job(manager: ProjectManager) -> Project:
        if extra:
            current = await manager.require(project_id)
            changes["metadata"] = {**current.metadata, **extra}
        if not changes:
            raise ValueError("nothing to change: give --name, --prompt, --tool, --activate, …")
        return await manager.edit(project_id, **changes)

    _print(_manage(job, tools=tools), as_json)


@app.command("delete")
def projects_delete(
    project_id: IdArgument,
    erase_sessions: Annotated[
        bool,
        typer.Option("--erase-sessions", help="Also delete every session under project:<id>."),
    ] = False,
) -> None:
    """Delete a project (its sessions stay unless --erase-sessions)."""

    async def job(manager: ProjectManager) -> tuple[bool, int]:
        existed = await manager.delete(project_id)
        erased = await manager.erase_sessions(project_id) if erase_sessions else 0
        return existed, erased

    existed, erased = _manage(job)
    if not existed and not erased:
        from orra_di.cli import _one_line_errors
        from orra_di.errors import ProjectError

        with _one_line_errors():
            raise ProjectError(
                f"project not found: {project_id}; `orra-di projects list` shows them"
            )
    words = [f"deleted project {project_id}" if existed else f"no project {project_id}"]
    if erase_sessions:
        words.append(f"erased {erased} session{'' if erased == 1 else 's'}")
    sys.stdout.write("; ".join(words) + "\n")
