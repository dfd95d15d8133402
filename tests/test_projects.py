"""Projects: orra's project tests (spec §2E.5) as behaviour, then what orra lacked: a
project is the namespace ``project:<id>`` made of segments (bug 18), its prompt and its
tools apply to the runs under it (bug 42), activation, erasure, and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from typer.testing import CliRunner, Result

from orra_di.cli import app
from orra_di.containers import Container, lifespan
from orra_di.errors import ProjectError
from orra_di.message import Message, Role
from orra_di.namespace import Namespace
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.projects import InMemoryProjectStore, Project, ProjectHook, ProjectManager
from orra_di.provider import CompletionRequest
from orra_di.runtime import Runtime, RuntimeConfig
from orra_di.settings import load_settings
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider, call, tool_calls
from orra_di.tool import tool

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def manager() -> ProjectManager:
    sessions = InMemoryStore()
    return ProjectManager(InMemoryProjectStore(sessions), sessions)


# -- orra's tests ------------------------------------------------------------------------


def test_project_creation() -> None:
    project = Project.new("proj-1", "My Project")
    assert (project.id, project.name, project.description) == ("proj-1", "My Project", "")
    assert project.system_prompt is None
    assert project.enabled_tools is None  # every tool
    assert project.metadata == {}
    assert project.active
    assert project.created_at == project.updated_at or project.created_at < project.updated_at


def test_project_namespace() -> None:
    namespace = Project.new("proj-1", "P").namespace
    assert namespace.key == "project:proj-1"
    assert namespace.segments == ("project", "proj-1")  # orra: one segment "project/proj-1"
    assert namespace == Namespace.parse("project:proj-1")


def test_project_user_namespace() -> None:
    namespace = Project.new("proj-1", "P").user_namespace("user-42")
    assert namespace.key == "project:proj-1:user:user-42"
    assert namespace.is_descendant_of(Project.new("proj-1", "P").namespace)


def test_project_serialization() -> None:
    project = Project.new(
        "p", "P", system_prompt="Be kind.", enabled_tools=["search"], metadata={"k": [1, 2]}
    )
    assert Project.model_validate_json(project.model_dump_json()) == project


async def test_in_memory_store_crud() -> None:
    store = InMemoryProjectStore()
    project = Project.new("p", "P")
    await store.save(project)
    assert await store.load("p") == project
    assert await store.delete("p") is True
    assert await store.load("p") is None


async def test_in_memory_store_list() -> None:
    store = InMemoryProjectStore()
    await store.save(Project.new("b", "B"))
    await store.save(Project.new("a", "A"))
    assert [p.id for p in await store.list()] == ["a", "b"]


async def test_manager_create_and_get(manager: ProjectManager) -> None:
    created = await manager.create("p", "P", system_prompt="Be kind.")
    assert await manager.get("p") == created
    assert await manager.get("other") is None


async def test_manager_duplicate_create_fails(manager: ProjectManager) -> None:
    await manager.create("p", "P")
    with pytest.raises(ProjectError, match="project already exists: p"):
        await manager.create("p", "Again")


async def test_manager_update(manager: ProjectManager) -> None:
    created = await manager.create("p", "P")
    updated = await manager.update(created.model_copy(update={"name": "Renamed"}))
    assert updated.updated_at > created.updated_at
    assert updated.created_at == created.created_at
    assert await manager.get("p") == updated


async def test_manager_list_active(manager: ProjectManager) -> None:
    await manager.create("a", "A")
    await manager.create("b", "B", active=False)
    assert [p.id for p in await manager.list_active()] == ["a"]
    assert [p.id for p in await manager.list()] == ["a", "b"]


async def test_manager_delete(manager: ProjectManager) -> None:
    await manager.create("p", "P")
    assert await manager.delete("p") is True
    assert await manager.get("p") is None
    assert await manager.delete("p") is False


# -- ids, validation, activation, erasure ------------------------------------------------


@pytest.mark.parametrize("bad", ["a:b", "", "tab\there", "x" * 2000])
async def test_an_id_that_is_not_one_segment_is_refused(manager: ProjectManager, bad: str) -> None:
    """orra built "project/<id>" by formatting: an id could reach into another key (bug 18)."""
    with pytest.raises(ProjectError, match="invalid project: id"):
        await manager.create(bad, "P")
    assert await manager.list() == []


async def test_edit_validates_and_updating_a_deleted_project_does_not_revive_it(
    manager: ProjectManager,
) -> None:
    project = await manager.create("p", "P")
    with pytest.raises(ProjectError, match="metadata"):
        await manager.edit("p", metadata={"when": object()})
    with pytest.raises(ProjectError, match="cannot change id"):
        await manager.edit("p", id="q")
    await manager.delete("p")
    with pytest.raises(ProjectError, match="project not found: p"):
        await manager.update(project)
    assert await manager.get("p") is None


async def test_deactivate_and_activate(manager: ProjectManager) -> None:
    await manager.create("p", "P")
    assert (await manager.deactivate("p")).active is False
    assert (await manager.activate("p")).active is True


async def test_deleting_a_project_can_erase_its_sessions_and_only_those(
    manager: ProjectManager,
) -> None:
    sessions = manager.sessions
    assert sessions is not None
    project = await manager.create("p", "P")
    for namespace in [project.user_namespace("bob"), project.namespace, Namespace("p")]:
        await sessions.append(namespace, [Message.user("hi")])
    await sessions.append(Namespace("project", "p2"), [Message.user("hi")])
    assert await manager.delete("p", erase_sessions=True) is True
    assert await sessions.list() == [Namespace("p"), Namespace("project", "p2")]


# -- runs under a project ----------------------------------------------------------------


@tool
def search(query: str) -> str:
    """Search the knowledge base."""
    return f"found {query}"


@tool
def delete_everything() -> str:
    """Delete every record."""
    raise AssertionError("a tool the project did not enable must never run")


def runtime_for(manager: ProjectManager, script: Any, *, prompt: str = "You are Atlas.") -> Runtime:
    sessions = manager.sessions
    assert sessions is not None
    policies = PolicyRegistry()
    return Runtime(
        ScriptedProvider(script),
        sessions,
        tools=[search, delete_everything],
        policies=policies,
        hooks=[ProjectHook(manager.store, policies)],
        config=RuntimeConfig(system_prompt=prompt),
    )


def offered(request: CompletionRequest) -> list[str]:
    return [d.name for d in request.tools]


async def test_a_run_under_a_project_gets_its_prompt_and_only_its_tools(
    manager: ProjectManager,
) -> None:
    await manager.create("acme", "Acme", system_prompt="Answer as Acme.", enabled_tools=["search"])
    script = [
        tool_calls(call("delete_everything"), call("search", {"query": "refunds"})),
        "Done.",
    ]
    runtime = runtime_for(manager, script)
    result = await runtime.run("project:acme:user:bob", "Help")
    requests: list[CompletionRequest] = runtime.llm.requests  # type: ignore[attr-defined]
    system = requests[0].messages[0]
    assert system.role is Role.SYSTEM
    assert system.content == "You are Atlas.\n\nAnswer as Acme."
    assert offered(requests[0]) == ["search"]
    refused, found = result.turns[0].tool_results
    assert refused.is_error
    assert refused.content == "tool 'delete_everything' is not allowed in this session"
    assert found.content == "found refunds"
    stored = await runtime.store.load("project:acme:user:bob")
    assert stored is not None
    assert all("Answer as Acme" not in m.content for m in stored.messages)  # not persisted


async def test_other_namespaces_are_untouched(manager: ProjectManager) -> None:
    await manager.create("acme", "Acme", system_prompt="Answer as Acme.", enabled_tools=[])
    runtime = runtime_for(manager, ["Hi."])
    await runtime.run("acme:bob", "Hello")
    request = runtime.llm.requests[0]  # type: ignore[attr-defined]
    assert request.messages[0].content == "You are Atlas."
    assert offered(request) == ["search", "delete_everything"]


async def test_a_change_to_the_project_applies_from_the_next_run(manager: ProjectManager) -> None:
    await manager.create("acme", "Acme", enabled_tools=[])
    runtime = runtime_for(manager, ["one", "two", "three"])
    await runtime.run("project:acme", "1")
    await manager.edit("acme", enabled_tools=None, system_prompt="Now with a prompt.")
    await runtime.run("project:acme", "2")
    first, second = runtime.llm.requests  # type: ignore[attr-defined]
    assert offered(first) == []
    assert offered(second) == ["search", "delete_everything"]
    assert second.messages[0].content.endswith("\n\nNow with a prompt.")


async def test_all_tools_lets_a_policy_set_higher_up_apply(manager: ProjectManager) -> None:
    await manager.create("acme", "Acme", enabled_tools=["search"])
    runtime = runtime_for(manager, ["one", "two"])
    runtime.policies.set_policy("project", ToolPolicy.deny_list(["delete_everything"]))
    await runtime.run("project:acme", "1")
    await manager.edit("acme", enabled_tools=None)
    await runtime.run("project:acme", "2")
    assert offered(runtime.llm.requests[1]) == ["search"]  # type: ignore[attr-defined]


async def test_runs_under_an_inactive_or_missing_project_are_refused_storing_nothing(
    manager: ProjectManager,
) -> None:
    await manager.create("acme", "Acme", active=False)
    runtime = runtime_for(manager, ["never"])
    with pytest.raises(ProjectError, match="project 'acme' is inactive"):
        await runtime.run("project:acme:user:bob", "Hello")
    with pytest.raises(ProjectError, match="project not found: ghost"):
        await runtime.run("project:ghost", "Hello")
    assert await runtime.store.list() == []
    assert runtime.llm.requests == []  # type: ignore[attr-defined]


# -- the container and the CLI -----------------------------------------------------------


def make_container(**settings: Any) -> Container:
    settings.setdefault("store", {"url": "memory://"})
    settings.setdefault("tools", ["calculate", "current_time"])
    container = Container()
    container.settings.override(providers.Object(load_settings(**settings)))
    return container


async def test_the_container_applies_projects_to_every_agent() -> None:
    container = make_container()
    script = ScriptedProvider([tool_calls(call("current_time")), "It is late."])
    container.llm.override(script)
    async with lifespan(container):
        await container.projects().create(
            "acme", "Acme", system_prompt="Acme rules.", enabled_tools=["calculate"]
        )
        result = await container.runtimes().default.run("project:acme:user:bob", "Time?")
    assert result.turns[0].tool_results[0].content.startswith("tool 'current_time' is not allowed")
    assert [d.name for d in script.requests[0].tools] == ["calculate"]
    assert script.requests[0].messages[0].content.endswith("\n\nAcme rules.")


async def test_projects_can_be_switched_off() -> None:
    container = make_container(projects={"enabled": False})
    container.llm.override(ScriptedProvider(["Hi."]))
    async with lifespan(container):
        result = await container.runtimes().default.run("project:ghost", "Hello")
    assert result.final_message.content == "Hi."


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_the_cli_manages_projects(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("ORRA_TOOLS", '["calculate", "current_time"]')
    created = cli(
        "projects", "create", "acme", "--name", "Acme", "--prompt", "Be Acme.",
        "--tool", "calculate", "--meta", "tier=3", "--meta", "region=eu",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert "namespace:   project:acme" in created.stdout
    again = cli("projects", "create", "acme", "--name", "Again")
    assert again.exit_code == 1
    assert "project already exists: acme" in again.stderr
    shown = json.loads(cli("projects", "show", "acme", "--json").stdout)
    assert shown["enabled_tools"] == ["calculate"]
    assert shown["metadata"] == {"tier": 3, "region": "eu"}
    assert "acme" in cli("projects", "list").stdout

    asked = json.loads(
        cli("ask", "--json", "-n", "project:acme:user:bob", "What time is it?").stdout
    )
    # only calculate is offered: the offline model says so, and cannot call current_time
    assert "work out arithmetic with calculate" in asked["answer"]
    assert "current_time" not in asked["answer"]
    assert asked["turns"] == 1

    updated = cli("projects", "update", "acme", "--deactivate", "--all-tools", "--json")
    assert json.loads(updated.stdout)["active"] is False
    refused = cli("ask", "-n", "project:acme", "hi")
    assert refused.exit_code == 1
    assert "inactive" in refused.stderr

    deleted = cli("projects", "delete", "acme", "--erase-sessions")
    assert deleted.stdout.strip() == "deleted project acme; erased 1 session"
    assert json.loads(cli("projects", "list", "--json").stdout) == []
    missing = cli("projects", "show", "acme")
    assert missing.exit_code == 1
    assert "project not found: acme; `orra-di projects list` shows them" in missing.stderr
    bad = cli("projects", "create", "a:b", "--name", "X")
    assert bad.exit_code == 1
    assert "cannot contain ':'" in bad.stderr


def test_a_project_tool_no_agent_offers_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A misspelt --tool would leave the project silently without any tool."""
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.db")
    monkeypatch.setenv("ORRA_TOOLS", '["calculate", "current_time"]')
    created = cli("projects", "create", "acme", "--name", "Acme", "--tool", "calculat")
    assert created.exit_code == 0  # kept: an MCP server down now may offer it later
    assert "warning: no agent offers 'calculat'" in created.stderr
    assert "offered now: calculate, current_time" in created.stderr
    updated = cli("projects", "update", "acme", "--tool", "calculate")
    assert updated.exit_code == 0 and "warning" not in updated.stderr
