"""The cron-store conformance suite on every session store backend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.cron import cron_store_for
from orra_di.errors import ConfigurationError
from orra_di.stores import FileStore, InMemoryStore, SQLiteStore

from .conformance import CronStoreConformance, SessionsFactory, make_job

pytestmark = pytest.mark.anyio


class TestMemoryCron(CronStoreConformance):
    @pytest.fixture
    def new_sessions(self) -> SessionsFactory:
        store = InMemoryStore()
        return lambda: store


class TestFileCron(CronStoreConformance):
    @pytest.fixture
    def new_sessions(self, tmp_path: Path) -> SessionsFactory:
        return lambda: FileStore(tmp_path)

    @pytest.mark.anyio
    async def test_jobs_never_show_as_sessions(self, tmp_path: Path) -> None:
        sessions = FileStore(tmp_path)
        await cron_store_for(sessions).add(make_job())
        assert await sessions.list() == []


class TestSQLiteCron(CronStoreConformance):
    @pytest.fixture
    def new_sessions(self, tmp_path: Path) -> SessionsFactory:
        return lambda: SQLiteStore(tmp_path / "sessions.db")


@pytest.mark.service
class TestPostgresCron(CronStoreConformance):
    @pytest.fixture
    async def schema(self) -> AsyncIterator[str]:
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield schema
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    @pytest.fixture
    def new_sessions(self, schema: str) -> SessionsFactory:
        from orra_di.stores.postgres import PostgresStore

        return lambda: PostgresStore(POSTGRES_URL, schema=schema, max_size=3)


@pytest.mark.service
class TestRedisCron(CronStoreConformance):
    @pytest.fixture
    async def prefix(self) -> AsyncIterator[str]:
        require_redis()
        from redis.asyncio import Redis

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        yield prefix
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()

    @pytest.fixture
    def new_sessions(self, prefix: str) -> SessionsFactory:
        from orra_di.stores.redis import RedisStore

        return lambda: RedisStore(REDIS_URL, key_prefix=prefix)


def test_one_cron_store_per_session_store() -> None:
    sessions = InMemoryStore()
    assert cron_store_for(sessions) is cron_store_for(sessions)


def test_a_session_store_without_a_cron_backend_is_named() -> None:
    class Custom:
        pass

    with pytest.raises(ConfigurationError, match="no backend beside a Custom"):
        cron_store_for(Custom())  # type: ignore[arg-type]
