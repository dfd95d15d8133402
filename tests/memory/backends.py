"""A ``sessions`` fixture over every session store backend (memories live beside them)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di.store import SessionStore
from orra_di.stores import FileStore, InMemoryStore, SQLiteStore

BACKENDS = [
    "memory",
    "file",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.service),
    pytest.param("redis", marks=pytest.mark.service),
]


async def open_sessions(kind: str, tmp_path: Path) -> AsyncIterator[SessionStore]:
    """A fresh, empty session store of ``kind``; removes what it wrote afterwards."""
    if kind == "memory":
        store: Any = InMemoryStore()
        yield store
    elif kind == "file":
        yield FileStore(tmp_path / "sessions")
    elif kind == "sqlite":
        store = SQLiteStore(tmp_path / "sessions.db")
        yield store
        await store.aclose()
    elif kind == "postgres":
        require_postgres()
        import psycopg

        from orra_di.stores.postgres import PostgresStore

        schema = f"orra_test_{secrets.token_hex(6)}"
        store = PostgresStore(POSTGRES_URL, schema=schema, max_size=3)
        yield store
        await store.aclose()
        async with await psycopg.AsyncConnection.connect(POSTGRES_URL, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    else:
        require_redis()
        from redis.asyncio import Redis

        from orra_di.stores.redis import RedisStore

        prefix = f"orra-test:{secrets.token_hex(6)}:"
        store = RedisStore(REDIS_URL, key_prefix=prefix)
        yield store
        await store.aclose()
        client = Redis.from_url(REDIS_URL, decode_responses=True)
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):
            await client.delete(key)
        await client.aclose()


@pytest.fixture(params=BACKENDS)
async def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    async for store in open_sessions(request.param, tmp_path):
        yield store
