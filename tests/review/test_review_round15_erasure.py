"""Round 15 review: erasure as the README and docs/memory.md promise it.

'one call, ``orra_di.erasure.erase(container, "acme:alice")`` (or ``orra-di erase
acme:alice``…), deletes a namespace subtree's sessions, memories, documents, cron jobs,
approvals and usage in every store, counting what went per kind'; 'An ancestor's
rolled-up usage totals stay'; the container's stores are used, overrides included.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis
from typer.testing import CliRunner, Result

from orra_di import Message, NamespaceError
from orra_di.approvals.model import ApprovalRecord
from orra_di.cli import app
from orra_di.containers import Container
from orra_di.cron import AgentTurnPayload, CronJob, EverySchedule, cron_store_for
from orra_di.documents import Document
from orra_di.erasure import erase
from orra_di.memory import MemoryManager
from orra_di.message import ToolCall
from orra_di.provider import Usage
from orra_di.settings import load_settings
from orra_di.store import SessionStore
from orra_di.stores import InMemoryStore

pytestmark = pytest.mark.anyio


async def _server_store(kind: str) -> AsyncIterator[SessionStore]:
    """A PostgreSQL store in a schema of its own, or a Redis store under its own prefix."""
    if kind == "postgres":
        require_postgres()
        import psycopg

        from orra_di.stores.postgres import PostgresStore

        schema = f"orra_r15_{secrets.token_hex(6)}"
        store: Any = PostgresStore(POSTGRES_URL, schema=schema, max_size=2)
        try:
            yield store
        finally:
            await store.aclose()
            async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as c:
                await c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        require_redis()
        from redis.asyncio import Redis

        from orra_di.stores.redis import RedisStore

        prefix = f"orra-r15:{secrets.token_hex(6)}:"
        store = RedisStore(REDIS_URL, key_prefix=prefix)
        try:
            yield store
        finally:
            await store.aclose()
            client = Redis.from_url(REDIS_URL, decode_responses=True)
            async for key in client.scan_iter(match=f"{prefix}*", count=1000):
                await client.delete(key)
            await client.aclose()


def _container(store: SessionStore) -> Container:
    container = Container()
    container.settings.override(providers.Object(load_settings(store={"url": "memory://"})))
    container.store.override(providers.Object(store))
    return container


async def _fill(container: Container, namespace: str) -> None:
    """One of every kind under ``namespace``, through the container's own stores."""
    await container.store().append(namespace, [Message.user(f"hello from {namespace}")])
    job = CronJob(
        name="daily",
        schedule=EverySchedule(interval_ms=60_000),
        payload=AgentTurnPayload(prompt="summary"),
        namespace=namespace,
    )
    await container.cron_store().add(job)
    call = ToolCall(id="c1", name="exec", arguments={"cmd": "ls"})
    await container.approval_store().add(ApprovalRecord.for_call(namespace, call, timeout=60))
    await MemoryManager(container.memory_store()).remember(namespace, f"{namespace} likes tea")
    doc = Document(id="handbook", namespace=namespace, content=f"the {namespace} handbook")
    await container.document_store().upsert(doc)
    await container.usage_ledger().record(namespace, Usage(input_tokens=10, output_tokens=5))


@pytest.mark.service
@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_erase_through_the_container_reaches_every_kind_on_a_server_store(
    kind: str,
) -> None:
    """The container's stores are used, an overridden session store included; every kind
    is counted; ``acmeother`` and ``acme:bob`` keep everything; the tenant's rolled-up
    usage stays (docs/memory.md)."""
    async for store in _server_store(kind):
        container = _container(store)
        for namespace in ["acme:alice", "acme:alice:support", "acme:bob", "acmeother"]:
            await _fill(container, namespace)

        report = await erase(container, "acme:alice")
        assert report.counts == {
            "cron jobs": 2,
            "approvals": 2,
            "memories": 2,
            "documents": 2,
            "usage keys": 2,
            "sessions": 2,
        }
        assert report.skipped == {}
        assert str(report).startswith("erased under acme:alice: 2 cron jobs, 2 approvals, ")

        assert [ns.key for ns in await store.list()] == ["acme:bob", "acmeother"]
        jobs = await cron_store_for(store).list()
        assert sorted(j.namespace for j in jobs) == ["acme:bob", "acmeother"]
        ledger = container.usage_ledger()
        assert (await ledger.totals("acme:alice")).input_tokens == 0
        assert (await ledger.totals("acme")).input_tokens == 30  # the aggregate stays
        assert (await ledger.totals("acmeother")).input_tokens == 10

        again = await erase(container, "acme:alice")
        assert again.total == 0  # safe to run again


async def test_erase_refuses_a_malformed_namespace_before_touching_anything() -> None:
    store = InMemoryStore()
    await store.append("acme:alice", [Message.user("hi")])
    with pytest.raises(NamespaceError, match="empty"):
        await erase(store, "acme::alice")
    assert [ns.key for ns in await store.list()] == ["acme:alice"]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/orra.db")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)

    def run(*args: str, stdin: str = "") -> Result:
        return CliRunner().invoke(app, list(args), input=stdin)

    return run


def test_erase_asks_naming_every_kind_and_defaults_to_no(cli: Any) -> None:
    """'orra-di erase acme:alice  # asks first; --yes to skip the question'."""
    assert cli("ask", "-n", "acme:alice", "hello").exit_code == 0
    asked = cli("erase", "acme:alice", stdin="\n")  # Enter takes the default
    assert asked.exit_code == 1
    question = "Erase everything under acme:alice (sessions, memories, documents, cron jobs, "
    assert question in asked.output
    assert "nothing was erased" in asked.output
    listed = cli("sessions", "list")
    assert "acme:alice" in listed.output

    done = cli("erase", "-y", "acme:alice")
    assert done.exit_code == 0, done.output
    assert "erased under acme:alice: " in done.output and "1 sessions" in done.output
    assert "acme:alice" not in cli("sessions", "list").output


def test_sessions_delete_tree_erases_the_tenants_sessions_and_cron_jobs(cli: Any) -> None:
    """README: '`orra-di sessions delete acme --tree` erases the tenant's sessions, jobs and
    run history'."""
    for ns in ["acme:alice", "acme:bob", "acmeother"]:
        assert cli("ask", "-n", ns, "hello").exit_code == 0
    added = cli("cron", "add", "acme:alice", "--name", "r", "--every", "3600", "--prompt", "report")
    assert added.exit_code == 0, added.output
    other = cli("cron", "add", "acmeother", "--name", "r", "--every", "3600", "--prompt", "report")
    assert other.exit_code == 0, other.output

    deleted = cli("sessions", "delete", "acme", "--tree")
    assert deleted.exit_code == 0, deleted.output
    assert cli("sessions", "list").output.split() == ["acmeother"]
    jobs = cli("cron", "list")
    assert "acmeother" in jobs.output and "acme:alice" not in jobs.output
