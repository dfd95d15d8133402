"""The usage-ledger conformance suite on every session-store backend."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

from .conformance import LedgerConformance, StoreFactory


class TestMemoryLedger(LedgerConformance):
    @pytest.fixture
    def new_store(self) -> StoreFactory:
        store = InMemoryStore()  # in-process: every "object" is the one store
        return lambda: store


class TestFileLedger(LedgerConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: FileStore(tmp_path / "sessions")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"file://{tmp_path / 'sessions'}"


class TestSQLiteLedger(LedgerConformance):
    @pytest.fixture
    def new_store(self, tmp_path: Path) -> StoreFactory:
        return lambda: SQLiteStore(tmp_path / "orra.db")

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'orra.db'}"


@pytest.mark.service
class TestPostgresLedger(LedgerConformance):
    @pytest.fixture
    async def schema(self) -> AsyncIterator[str]:
        require_postgres()
        import psycopg

        schema = f"orra_test_{secrets.token_hex(6)}"
        yield schema
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    @pytest.fixture
    def new_store(self, schema: str) -> StoreFactory:
        from orra_di.stores.postgres import PostgresStore

        return lambda: PostgresStore(POSTGRES_URL, schema=schema)

    @pytest.fixture
    def store_url(self, schema: str) -> str:
        return POSTGRES_URL

    @pytest.fixture
    def store_options(self, schema: str) -> dict[str, Any]:
        return {"schema": schema}


@pytest.mark.service
class TestRedisLedger(LedgerConformance):
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
    def new_store(self, prefix: str) -> StoreFactory:
        from orra_di.stores.redis import RedisStore

        return lambda: RedisStore(REDIS_URL, key_prefix=prefix)

    @pytest.fixture
    def store_url(self, prefix: str) -> str:
        return REDIS_URL

    @pytest.fixture
    def store_options(self, prefix: str) -> dict[str, Any]:
        return {"key_prefix": prefix}
