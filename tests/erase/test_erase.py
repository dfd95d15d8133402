"""One erasure: everything under a namespace goes, on every backend; nothing else does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from orra_di.approvals.model import ApprovalRecord
from orra_di.approvals.stores import approval_store_for
from orra_di.cli import app
from orra_di.cron import AgentTurnPayload, CronJob, EverySchedule, cron_store_for
from orra_di.cron.model import CronRun, run_id_for
from orra_di.documents import Document
from orra_di.documents.stores import document_store_for
from orra_di.erasure import erase
from orra_di.memory import MemoryManager, memory_store_for
from orra_di.message import Message, ToolCall
from orra_di.namespace import Namespace
from orra_di.provider import Usage
from orra_di.session import Session
from orra_di.store import SessionStore
from orra_di.stores import FileStore
from orra_di.usage.stores import usage_ledger_for

pytestmark = pytest.mark.anyio

ERASED = ["acme:alice", "acme:alice:chat"]
KEPT = ["acme:bob", "acmeother"]


async def _fill(sessions: SessionStore, namespace: str) -> None:
    session = Session(namespace=Namespace.parse(namespace))
    session.push_message(Message.user(f"hello from {namespace}"))
    await sessions.save(session)
    job = CronJob(
        name="report",
        schedule=EverySchedule(interval_ms=60_000),
        payload=AgentTurnPayload(prompt="summary"),
        namespace=namespace,
    )
    await cron_store_for(sessions).add(job)
    await cron_store_for(sessions).record_run(
        CronRun(
            id=run_id_for(job.id, job.created_at),
            job_id=job.id,
            namespace=namespace,
            due_at=job.created_at,
            started_at=job.created_at,
            outcome="ok",
        )
    )
    approvals = approval_store_for(sessions)
    call = ToolCall(id="c1", name="delete_all", arguments={})
    await approvals.add(ApprovalRecord.for_call(namespace, call, timeout=60))
    decided = ApprovalRecord.for_call(namespace, call, timeout=60)
    await approvals.add(decided)
    await approvals.deny(decided.id, by="admin")
    await MemoryManager(memory_store_for(sessions)).remember(namespace, f"{namespace} likes tea")
    await usage_ledger_for(sessions).record(namespace, Usage(input_tokens=10, output_tokens=5))
    if not isinstance(sessions, FileStore):  # documents need a store with a search index
        handbook = Document(id="handbook", namespace=namespace, content=f"{namespace} handbook")
        await document_store_for(sessions).upsert(handbook)


async def _left(sessions: SessionStore, namespace: str) -> dict[str, Any]:
    usage = await usage_ledger_for(sessions).totals(namespace)
    return {
        "session": await sessions.load(Namespace.parse(namespace)) is not None,
        "jobs": len(await cron_store_for(sessions).list(namespace)),
        "approvals": len(await approval_store_for(sessions).pending(namespace))
        + len(await approval_store_for(sessions).history(namespace)),
        "memories": len(await memory_store_for(sessions).list([namespace], 10)),
        "usage": usage.input_tokens,
        "documents": 0
        if isinstance(sessions, FileStore)
        else len(await document_store_for(sessions).list([namespace])),
    }


async def test_erase_everything_under_a_namespace(sessions: SessionStore) -> None:
    for namespace in ERASED + KEPT:
        await _fill(sessions, namespace)
    report = await erase(sessions, "acme:alice")
    documents = not isinstance(sessions, FileStore)
    assert report.counts == {
        "cron jobs": 2,
        "approvals": 4,
        "memories": 2,
        **({"documents": 2} if documents else {}),
        "usage keys": 2,
        "sessions": 2,
    }
    if documents:
        assert report.skipped == {}
    else:
        assert list(report.skipped) == ["documents"]
    for namespace in ERASED:
        assert await _left(sessions, namespace) == {
            "session": False,
            "jobs": 0,
            "approvals": 0,
            "memories": 0,
            "usage": 0,
            "documents": 0,
        }
    for namespace in KEPT:
        assert await _left(sessions, namespace) == {
            "session": True,
            "jobs": 1,
            "approvals": 2,
            "memories": 1,
            "usage": 10,
            "documents": 1 if documents else 0,
        }
    again = await erase(sessions, "acme:alice")
    assert again.total == 0
    if documents:
        assert str(again) == (
            "erased under acme:alice: 0 cron jobs, 0 approvals, 0 memories, 0 documents, "
            "0 usage keys, 0 sessions"
        )


async def test_extra_stores_are_erased_before_the_sessions() -> None:
    from orra_di.stores import InMemoryStore

    seen: list[tuple[str, bool]] = []
    sessions = InMemoryStore()
    await _fill(sessions, "acme:alice")

    class Documents:
        async def delete_tree(self, namespace: Any) -> int:
            alive = await sessions.load(Namespace.parse("acme:alice")) is not None
            seen.append((Namespace.coerce(namespace).key, alive))
            return 7

    report = await erase(sessions, "acme:alice", extra=[("documents", Documents())])
    assert report.counts["documents"] == 7
    assert seen == [("acme:alice", True)]


async def test_a_store_kind_without_a_backend_is_reported() -> None:
    class Bare:
        """A session store of the application's own: no cron, memory, ... beside it."""

        async def delete_tree(self, namespace: Any) -> int:
            return 3

    report = await erase(Bare(), "acme")  # type: ignore[arg-type]
    assert report.counts == {"sessions": 3}
    assert set(report.skipped) == {"cron jobs", "approvals", "memories", "documents", "usage keys"}
    assert "not reached: cron jobs" in str(report)


@pytest.fixture
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/orra.db")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def _cli(*args: str, stdin: str = "") -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


@pytest.mark.usefixtures("_isolated")
def test_erase_command_asks_then_erases() -> None:
    added = _cli("memory", "add", "--namespace", "acme:alice", "alice likes tea")
    assert added.exit_code == 0, added.output
    assert added.output.startswith("stored memory ")
    _cli("memory", "add", "-n", "acme:bob", "bob likes coffee")
    refused = _cli("erase", "acme:alice", stdin="n\n")
    assert refused.exit_code == 1
    assert "nothing was erased" in refused.output
    listed = _cli("memory", "list", "-n", "acme:alice")
    assert "alice likes tea" in listed.output
    done = _cli("erase", "acme:alice", "--yes")
    assert done.exit_code == 0, done.output
    assert "1 memories" in done.output and "sessions" in done.output
    assert "no memories" in _cli("memory", "list", "-n", "acme:alice").output
    assert "bob likes coffee" in _cli("memory", "list", "-n", "acme:bob").output
    bad = _cli("erase", "acme::x", "--yes")
    assert bad.exit_code == 1
    assert "error:" in bad.output


@pytest.mark.usefixtures("_isolated")
def test_memory_cli_search_and_forget() -> None:
    out = _cli("memory", "add", "-n", "acme:alice", "--tag", "drink", "likes green tea")
    memory_id = out.output.split()[-1]
    found = _cli("memory", "search", "-n", "acme:alice", "tea")
    assert memory_id in found.output and "drink" in found.output
    assert "no memories" in _cli("memory", "search", "-n", "acme:bob", "tea").output
    other = _cli("memory", "forget", "-n", "acme:bob", memory_id)
    assert other.exit_code == 1 and "no memory" in other.output
    assert _cli("memory", "forget", "-n", "acme:alice", memory_id).exit_code == 0
