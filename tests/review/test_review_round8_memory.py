"""Round 8 review: long-term memory and the one erasure, against docs/memory.md.

Isolation first: who sees what, forget across tenants and owners, ids that cannot be
probed; then erase's completeness on every backend with namespaces a hostile tenant
would pick (SQL LIKE and glob characters: ``a_b`` must never reach ``aXb``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from memory.backends import BACKENDS, open_sessions
from typer.testing import CliRunner

from orra_di import ToolContext
from orra_di.approvals.model import ApprovalRecord
from orra_di.approvals.stores import approval_store_for
from orra_di.cli import app
from orra_di.cron import AgentTurnPayload, CronJob, EverySchedule, cron_store_for
from orra_di.cron.model import CronRun, run_id_for
from orra_di.erasure import erase
from orra_di.memory import MemoryManager, memory_store_for
from orra_di.memory.tool import memory_tools
from orra_di.message import Message, ToolCall
from orra_di.namespace import Namespace
from orra_di.provider import Usage
from orra_di.session import Session
from orra_di.store import SessionStore
from orra_di.usage.stores import usage_ledger_for

pytestmark = pytest.mark.anyio


@pytest.fixture(params=BACKENDS)
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    async for store in open_sessions(request.param, tmp_path):
        yield store


# -- who sees what ---------------------------------------------------------------------


async def test_forget_answers_alike_for_another_tenants_id_and_an_unknown_one(
    sessions: SessionStore,
) -> None:
    manager = MemoryManager(memory_store_for(sessions))
    tools = {t.definition.name: t for t in memory_tools(manager)}
    stored = await tools["remember"].execute(
        {"content": "globex secret plan"}, ToolContext("globex")
    )
    theirs = stored.removeprefix("Stored memory ")
    unknown = "0" * len(theirs)
    as_acme = ToolContext("acme:alice")
    other = await tools["forget"].execute({"id": theirs}, as_acme)
    missing = await tools["forget"].execute({"id": unknown}, as_acme)
    assert other.replace(theirs, "ID") == missing.replace(unknown, "ID")
    recalled = await tools["recall"].execute({"query": "globex secret plan"}, as_acme)
    assert recalled == "No relevant memories found."
    # still there for its owner
    assert "globex secret plan" in await tools["recall"].execute(
        {"query": "plan"}, ToolContext("globex")
    )


async def test_owner_depth_shares_a_persons_memories_and_keeps_tenant_facts_read_only(
    sessions: SessionStore,
) -> None:
    memory = MemoryManager(memory_store_for(sessions), owner_depth=2)
    shared = await memory.remember("acme", "the office closes at six")
    mine = await memory.remember("acme:alice:chat-7", "alice drinks green tea")
    # chat-2 of alice's sees what chat-7 remembered, and the tenant's fact
    seen = {e.content for e in await memory.list("acme:alice:chat-2")}
    assert seen == {"alice drinks green tea", "the office closes at six"}
    # bob's conversations do not
    assert {e.content for e in await memory.list("acme:bob:chat-1")} == {"the office closes at six"}
    assert await memory.recall("acme:bob:chat-1", "green tea") == []
    # alice may forget her own from another conversation, never the tenant's shared fact
    assert await memory.forget("acme:alice:chat-2", shared) is False
    assert await memory.forget("acme:bob:chat-1", mine) is False
    assert await memory.forget("acme:alice:chat-2", mine) is True


async def test_ancestor_never_reads_descendants(sessions: SessionStore) -> None:
    memory = MemoryManager(memory_store_for(sessions))
    await memory.remember("acme:alice", "alice salary 90k")
    await memory.remember("acme:alicia", "alicia salary 80k")
    assert await memory.recall("acme", "salary") == []
    assert await memory.list("acme") == []
    assert [r.entry.content for r in await memory.recall("acme:alice:chat", "salary")] == [
        "alice salary 90k"
    ]


async def test_a_huge_memory_is_refused_with_the_limit_named() -> None:
    from orra_di import ToolInputError
    from orra_di.stores import InMemoryStore

    manager = MemoryManager(memory_store_for(InMemoryStore()))
    tools = {t.definition.name: t for t in memory_tools(manager)}
    with pytest.raises(ToolInputError, match=r"1000000|1,000,000"):
        await tools["remember"].execute({"content": "x" * 1_000_001}, ToolContext("acme"))


# -- erase ---------------------------------------------------------------------------

HOSTILE = ["a_b", "a%b", "a*b", "a[b]", "a\\b", ".", ".."]
NEIGHBOURS = ["aXb", "a_bc", "a%bc", "aXXb", "ab", "a", "a_b_", "aab", "...", ".x"]


async def _fill(sessions: SessionStore, namespace: str) -> str:
    session = Session(namespace=Namespace.parse(namespace))
    session.push_message(Message.user(f"hello from {namespace}"))
    await sessions.save(session)
    job = CronJob(
        name="report",
        schedule=EverySchedule(interval_ms=60_000),
        payload=AgentTurnPayload(prompt="summary"),
        namespace=namespace,
    )
    cron = cron_store_for(sessions)
    await cron.add(job)
    await cron.record_run(
        CronRun(
            id=run_id_for(job.id, job.created_at),
            job_id=job.id,
            namespace=namespace,
            due_at=job.created_at,
            started_at=job.created_at,
            outcome="ok",
        )
    )
    call = ToolCall(id="c1", name="delete_all", arguments={})
    await approval_store_for(sessions).add(ApprovalRecord.for_call(namespace, call, timeout=60))
    await MemoryManager(memory_store_for(sessions)).remember(namespace, "likes tea")
    await usage_ledger_for(sessions).record(namespace, Usage(input_tokens=10, output_tokens=5))
    return job.id


async def _left(sessions: SessionStore, namespace: str, job_id: str) -> list[str]:
    kinds = []
    if await sessions.load(Namespace.parse(namespace)) is not None:
        kinds.append("session")
    if await cron_store_for(sessions).list(namespace):
        kinds.append("jobs")
    if await cron_store_for(sessions).runs(job_id):
        kinds.append("runs")
    if await approval_store_for(sessions).pending(namespace):
        kinds.append("approvals")
    if await memory_store_for(sessions).list([namespace], 10):
        kinds.append("memories")
    if (await usage_ledger_for(sessions).totals(namespace)).input_tokens:
        kinds.append("usage")
    return kinds


ALL_KINDS = ["session", "jobs", "runs", "approvals", "memories", "usage"]


async def test_erase_with_hostile_namespaces_is_complete_and_exact(
    sessions: SessionStore,
) -> None:
    jobs = {}
    for ns in [*HOSTILE, *(f"{h}:child" for h in HOSTILE), *NEIGHBOURS]:
        jobs[ns] = await _fill(sessions, ns)
    for hostile in HOSTILE:
        report = await erase(sessions, hostile)
        # a file store keeps no documents, and the report says so; nothing else is skipped
        assert set(report.skipped) <= {"documents"}, report.skipped
        assert report.counts["sessions"] == 2, (hostile, report)
        assert report.counts["memories"] == 2, (hostile, report)
    for hostile in HOSTILE:
        for ns in (hostile, f"{hostile}:child"):
            assert await _left(sessions, ns, jobs[ns]) == [], ns
    for ns in NEIGHBOURS:
        assert await _left(sessions, ns, jobs[ns]) == ALL_KINDS, ns


# -- the command line ------------------------------------------------------------------


@pytest.fixture
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/orra.db")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("_isolated")
def test_memory_cli_as_documented() -> None:
    run = CliRunner()
    added = run.invoke(
        app, ["memory", "add", "-n", "acme:alice", "alice likes green tea", "--tag", "drink"]
    )
    assert added.exit_code == 0, added.output
    memory_id = added.output.split()[-1]
    run.invoke(app, ["memory", "add", "-n", "acme", "the office closes at six"])
    listed = run.invoke(app, ["memory", "list", "-n", "acme:alice"]).output
    assert "alice likes green tea" in listed and "the office closes at six" in listed
    assert listed.index("the office closes at six") < listed.index("alice likes green tea")
    found = run.invoke(app, ["memory", "search", "-n", "acme:alice", "tea"]).output
    assert memory_id in found
    # the tenant cannot forget alice's memory through the CLI by guessing the namespace
    # of a sibling; alice can
    bob = run.invoke(app, ["memory", "forget", "-n", "acme:bob", memory_id])
    assert bob.exit_code == 1
    assert run.invoke(app, ["memory", "forget", "-n", "acme:alice", memory_id]).exit_code == 0


@pytest.mark.usefixtures("_isolated")
def test_memory_cli_refuses_a_bad_namespace_in_one_line() -> None:
    out = CliRunner().invoke(app, ["memory", "add", "-n", "acme::alice", "x"])
    assert out.exit_code != 0
    assert "Traceback" not in out.output
    assert "namespace" in out.output


async def test_erasing_a_projects_namespace_keeps_its_record_as_documented() -> None:
    from orra_di.projects.model import Project
    from orra_di.projects.stores import project_store_for
    from orra_di.stores import InMemoryStore

    sessions = InMemoryStore()
    projects = project_store_for(sessions)
    await projects.create(Project.new("apollo", "Apollo"))
    await _fill(sessions, "project:apollo:user:bob")
    report = await erase(sessions, "project:apollo")
    assert report.counts["sessions"] == 1 and report.counts["memories"] == 1
    assert await projects.load("apollo") is not None  # configuration: `projects delete`
    text = Path(__file__).parents[2].joinpath("docs", "memory.md").read_text()
    assert "orra-di projects delete" in text


async def test_owner_depth_over_discord_keys_shares_a_channel_as_documented() -> None:
    from orra_di.channels.discord_text import discord_namespace
    from orra_di.stores import InMemoryStore

    alice = discord_namespace("discord", 1, 2, 100)
    bob = discord_namespace("discord", 1, 2, 200)
    shared = MemoryManager(memory_store_for(InMemoryStore()), owner_depth=3)
    await shared.remember(alice, "alice's secret")
    assert [e.content for e in await shared.list(bob)] == ["alice's secret"]
    apart = MemoryManager(memory_store_for(InMemoryStore()))  # unset, as the page advises
    await apart.remember(alice, "alice's secret")
    assert await apart.list(bob) == []
    text = Path(__file__).parents[2].joinpath("docs", "memory.md").read_text()
    assert "Leave it unset for\nthe Discord bot" in text
