"""The cron tool: orra's tests (spec §3, src/tools/cron.rs) and bug 34 (the namespace came
from the model: any session could schedule work in any other)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orra_di.cron import CronService, CronTool, cron_store_for, register_tool
from orra_di.errors import ToolInputError
from orra_di.stores import InMemoryStore
from orra_di.tool import ToolContext, ToolRegistry

pytestmark = pytest.mark.anyio

ALICE = ToolContext("acme:alice", "c1")


def make_tool(**options: Any) -> CronTool:
    sessions = InMemoryStore()
    return CronTool(CronService(cron_store_for(sessions), sessions), **options)


def create_args(**changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "action": "create",
        "name": "morning report",
        "schedule": {"type": "cron", "expression": "0 9 * * *"},
        "payload": {"type": "agent_turn", "prompt": "summarise"},
    }
    args.update(changes)
    return args


def test_tool_definition_valid() -> None:
    definition = make_tool().definition
    assert definition.name == "cron"
    assert definition.input_schema["required"] == ["action"]
    assert "agent_turn" in definition.description and "every" in definition.description


async def test_create_and_list() -> None:
    tool = make_tool()
    created = await tool.execute(create_args(), ALICE)
    assert created.startswith("Created cron job 'morning report' (id: ")
    listing = await tool.execute({"action": "list"}, ALICE)
    assert "morning report" in listing and "[Active]" in listing and "cron: 0 9 * * *" in listing


async def test_create_at_schedule() -> None:
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    out = await make_tool().execute(
        create_args(schedule={"type": "at", "datetime": when.isoformat().replace("+00:00", "Z")}),
        ALICE,
    )
    assert "Next run: " + when.isoformat() in out


async def test_pause_resume_delete() -> None:
    tool = make_tool()
    created = await tool.execute(create_args(), ALICE)
    job_id = re.search(r"\(id: ([^)]+)\)", created).group(1)  # type: ignore[union-attr]
    assert await tool.execute({"action": "pause", "id": job_id}, ALICE) == f"Paused job {job_id}."
    assert "[Paused]" in await tool.execute({"action": "list"}, ALICE)
    assert await tool.execute({"action": "resume", "id": job_id}, ALICE) == f"Resumed job {job_id}."
    got = json.loads(await tool.execute({"action": "get", "id": job_id}, ALICE))
    assert got["namespace"] == "acme:alice" and got["status"] == "active"
    assert await tool.execute({"action": "delete", "id": job_id}, ALICE) == f"Deleted job {job_id}."
    assert await tool.execute({"action": "get", "id": job_id}, ALICE) == f"Job not found: {job_id}"
    assert await tool.execute({"action": "list"}, ALICE) == "No cron jobs configured."


async def test_invalid_action() -> None:
    with pytest.raises(ToolInputError, match="unknown action: 'explode'"):
        await make_tool().execute({"action": "explode"}, ALICE)


async def test_invalid_cron_expression() -> None:
    tool = make_tool()
    with pytest.raises(ToolInputError, match="invalid cron expression 'not a cron'"):
        await tool.execute(
            create_args(schedule={"type": "cron", "expression": "not a cron"}), ALICE
        )
    assert await tool.execute({"action": "list"}, ALICE) == "No cron jobs configured."


async def test_an_unknown_time_zone_is_an_error_and_nothing_stored() -> None:
    tool = make_tool()
    schedule = {"type": "cron", "expression": "0 9 * * *", "timezone": "Mars/Base"}
    with pytest.raises(ToolInputError, match="unknown time zone 'Mars/Base'"):
        await tool.execute(create_args(schedule=schedule), ALICE)
    assert await tool.execute({"action": "list"}, ALICE) == "No cron jobs configured."


async def test_the_timezone_defaults_to_the_tools_setting() -> None:
    tool = make_tool(default_timezone="Europe/Paris")
    created = await tool.execute(create_args(), ALICE)
    job_id = re.search(r"\(id: ([^)]+)\)", created).group(1)  # type: ignore[union-attr]
    got = json.loads(await tool.execute({"action": "get", "id": job_id}, ALICE))
    assert got["schedule"]["timezone"] == "Europe/Paris"


def test_register_tool_adds_one() -> None:
    registry = ToolRegistry()
    sessions = InMemoryStore()
    register_tool(registry, CronService(cron_store_for(sessions), sessions))
    assert registry.names() == ["cron"]


# -- bug 34: the namespace is the caller's ---------------------------------------------


async def test_jobs_are_created_in_the_callers_namespace() -> None:
    tool = make_tool()
    await tool.execute(create_args(), ALICE)
    (job,) = await tool.service.list_jobs()
    assert job.namespace == "acme:alice"


async def test_a_namespace_below_the_caller_is_allowed() -> None:
    tool = make_tool()
    await tool.execute(create_args(namespace="acme:alice:reports"), ALICE)
    (job,) = await tool.service.list_jobs()
    assert job.namespace == "acme:alice:reports"


@pytest.mark.parametrize("other", ["acme:bob", "acme", "globex:alice", "acme:alicex"])
async def test_another_tenants_namespace_is_refused_and_nothing_stored(other: str) -> None:
    tool = make_tool()
    with pytest.raises(ToolInputError, match="outside this conversation's"):
        await tool.execute(create_args(namespace=other), ALICE)
    assert await tool.service.list_jobs() == []


async def test_another_tenants_jobs_are_invisible() -> None:
    tool = make_tool()
    created = await tool.execute(create_args(), ToolContext("globex:carol"))
    job_id = re.search(r"\(id: ([^)]+)\)", created).group(1)  # type: ignore[union-attr]
    assert await tool.execute({"action": "list"}, ALICE) == "No cron jobs configured."
    for action in ("get", "pause", "delete", "run"):
        out = await tool.execute({"action": action, "id": job_id}, ALICE)
        assert out == f"Job not found: {job_id}"
    assert len(await tool.service.list_jobs()) == 1
