"""Every project store keeps the same promises: one conformance suite, run beside each
session store backend (memory, file, SQLite, PostgreSQL, Redis).

A backend's class provides ``sessions``: a factory of session store objects over one
fresh storage. The suite builds its project stores with ``project_store_for`` (so
they share the session store's connection) and opens a second session store object
to check what another process would see.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from redis.asyncio import Redis
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.errors import ConfigurationError, StoreError
from orra_di.message import Message
from orra_di.namespace import MAX_KEY_LENGTH, Namespace
from orra_di.projects import Project, ProjectStore, project_store_for
from orra_di.store import SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.postgres import PostgresStore
from orra_di.stores.redis import RedisStore
from orra_di.stores.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

SessionsFactory = Callable[[], SessionStore]


def sample(id: str = "acme", **fields: Any) -> Project:
    values: dict[str, Any] = {
        "name": "Acme support — 日本語",
        "description": "Customers' questions",
        "system_prompt": "Answer as Acme's support team.\nBe brief.",
        "enabled_tools": ["search", "lookup"],
        "metadata": {"tier": 3, "regions": ["eu", "us"], "owner": {"name": "Zoë"}},
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        "updated_at": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
    }
    values.update(fields)
    return Project(id=id, **values)


class ProjectStoreConformance:
    """The promises; subclasses give ``sessions``."""

    @pytest.fixture
    def sessions(self) -> SessionsFactory:
        raise NotImplementedError

    @pytest.fixture
    async def opened(self, sessions: SessionsFactory) -> AsyncIterator[list[SessionStore]]:
        """Session stores made during the test, closed after it."""
        made: list[SessionStore] = []
        yield made
        for store in made:
            await store.aclose()

    @pytest.fixture
    def new_projects(
        self, sessions: SessionsFactory, opened: list[SessionStore]
    ) -> Callable[[], ProjectStore]:
        """A project store beside a new session store object (another process, in effect)."""

        def make() -> ProjectStore:
            store = sessions()
            opened.append(store)
            return project_store_for(store)

        return make

    @pytest.fixture
    def projects(self, new_projects: Callable[[], ProjectStore]) -> ProjectStore:
        return new_projects()

    async def test_a_project_round_trips_every_field(self, projects: ProjectStore) -> None:
        project = sample()
        await projects.save(project)
        assert await projects.load("acme") == project

    async def test_all_tools_and_no_tools_stay_apart(self, projects: ProjectStore) -> None:
        await projects.save(sample("all", enabled_tools=None))
        await projects.save(sample("none", enabled_tools=[]))
        everything = await projects.load("all")
        nothing = await projects.load("none")
        assert everything is not None
        assert everything.enabled_tools is None
        assert nothing is not None
        assert nothing.enabled_tools == []

    async def test_a_missing_project_is_none(self, projects: ProjectStore) -> None:
        assert await projects.load("nope") is None
        assert await projects.list() == []
        assert await projects.delete("nope") is False

    async def test_save_replaces(self, projects: ProjectStore) -> None:
        await projects.save(sample())
        await projects.save(sample(name="Renamed", active=False))
        loaded = await projects.load("acme")
        assert loaded is not None
        assert (loaded.name, loaded.active) == ("Renamed", False)
        assert [p.id for p in await projects.list()] == ["acme"]

    async def test_create_stores_only_a_new_id(self, projects: ProjectStore) -> None:
        assert await projects.create(sample(name="First")) is True
        assert await projects.create(sample(name="Second")) is False
        loaded = await projects.load("acme")
        assert loaded is not None
        assert loaded.name == "First"

    async def test_concurrent_creates_of_one_id_have_one_winner(
        self, new_projects: Callable[[], ProjectStore]
    ) -> None:
        stores = [new_projects(), new_projects()]
        won: list[str] = []

        async def create(i: int) -> None:
            if await stores[i % 2].create(sample(name=f"creator {i}")):
                won.append(f"creator {i}")

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(create, i)
        assert len(won) == 1
        loaded = await stores[0].load("acme")
        assert loaded is not None
        assert loaded.name == won[0]

    async def test_delete(self, projects: ProjectStore) -> None:
        await projects.save(sample())
        assert await projects.delete("acme") is True
        assert await projects.load("acme") is None
        assert await projects.delete("acme") is False

    async def test_list_is_sorted_by_id(self, projects: ProjectStore) -> None:
        for id in ["b", "a-2", "A", "a", "日本", "z"]:
            await projects.save(sample(id))
        assert [p.id for p in await projects.list()] == sorted(["b", "a-2", "A", "a", "日本", "z"])

    async def test_awkward_ids_are_kept_apart_and_round_trip(self, projects: ProjectStore) -> None:
        longest = "x" * (MAX_KEY_LENGTH - len("project:"))
        ids = ["Acme", "acme", "a/b", "..", "a%2Fb", "a b", "日本語", "~x", longest]
        for id in ids:
            await projects.save(sample(id, name=f"name of {id[:20]}"))
        for id in ids:
            loaded = await projects.load(id)
            assert loaded is not None
            assert loaded.id == id
            assert loaded.name == f"name of {id[:20]}"
        assert sorted(p.id for p in await projects.list()) == sorted(ids)

    async def test_another_store_object_sees_the_projects(
        self, new_projects: Callable[[], ProjectStore]
    ) -> None:
        await new_projects().save(sample())
        assert await new_projects().load("acme") == sample()

    async def test_projects_and_sessions_do_not_see_each_other(
        self, sessions: SessionsFactory, opened: list[SessionStore]
    ) -> None:
        store = sessions()
        opened.append(store)
        projects = project_store_for(store)
        await projects.save(sample())
        await store.append(Namespace("project", "acme", "user", "bob"), [Message.user("hi")])
        assert await store.list() == [Namespace("project", "acme", "user", "bob")]
        assert await store.delete_tree(Namespace("project", "acme")) == 1
        assert await store.list() == []
        assert await projects.load("acme") == sample()


class TestInMemory(ProjectStoreConformance):
    @pytest.fixture
    def sessions(self) -> SessionsFactory:
        shared = InMemoryStore()  # "another object" is the same dict: what memory can share
        return lambda: shared


class TestFile(ProjectStoreConformance):
    @pytest.fixture
    def sessions(self, tmp_path: Path) -> SessionsFactory:
        return lambda: FileStore(tmp_path / "sessions")

    async def test_a_corrupt_project_file_is_a_store_error_naming_it(
        self, projects: ProjectStore, tmp_path: Path
    ) -> None:
        await projects.save(sample())
        path = tmp_path / "sessions" / ".orra-projects" / "acme.json"
        path.write_text("{not json")
        with pytest.raises(StoreError, match=r"acme\.json"):
            await projects.load("acme")


class TestSQLite(ProjectStoreConformance):
    @pytest.fixture
    def sessions(self, tmp_path: Path) -> SessionsFactory:
        return lambda: SQLiteStore(tmp_path / "sessions.db")


@pytest.mark.service
class TestPostgres(ProjectStoreConformance):
    @pytest.fixture
    async def sessions(self) -> AsyncIterator[SessionsFactory]:
        require_postgres()
        schema = f"orra_test_{secrets.token_hex(6)}"
        yield lambda: PostgresStore(POSTGRES_URL, schema=schema)
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as admin:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.service
class TestRedis(ProjectStoreConformance):
    @pytest.fixture
    async def sessions(self) -> AsyncIterator[SessionsFactory]:
        require_redis()
        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield lambda: RedisStore(REDIS_URL, key_prefix=prefix)
        admin = Redis.from_url(REDIS_URL)
        async for key in admin.scan_iter(match=f"{prefix}*", count=1000):
            await admin.delete(key)
        await admin.aclose()


def test_a_store_of_another_kind_says_how_to_give_projects_a_home() -> None:
    class Custom:
        pass

    with pytest.raises(ConfigurationError, match="pass a ProjectStore to ProjectManager"):
        project_store_for(Custom())  # type: ignore[arg-type]
