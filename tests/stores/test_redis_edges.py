"""RedisStore edge cases found by review: prune spares held sessions, a cancelled claim
leaves no lease, and a bad URL option is a configuration error."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from redis.asyncio import Redis
from services import REDIS_URL, require_redis

from orra_di.errors import ConfigurationError, StoreError
from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.stores.redis import RedisStore

pytestmark = [pytest.mark.anyio]


@pytest.fixture
async def redis_admin() -> AsyncIterator[Redis]:
    require_redis()
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis_admin: Redis) -> AsyncIterator[str]:
    prefix = f"orra-review:{secrets.token_hex(6)}:"
    yield prefix
    async for key in redis_admin.scan_iter(match=f"{prefix}*", count=1000):
        await redis_admin.delete(key)


@pytest.fixture
async def redis_store(redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(REDIS_URL, key_prefix=redis_prefix, lease_seconds=5.0)
    yield store
    await store.aclose()


@pytest.mark.service
async def test_redis_prune_spares_a_session_under_a_live_lease(redis_store: RedisStore) -> None:
    # SQLite, PostgreSQL and file stores spare held sessions; Redis deletes the history
    # of a running session, whose next append then recreates it with only the new messages.
    busy = Namespace("busy")
    await redis_store.append(busy, [Message.user("history")])
    async with redis_store.lock(busy):
        await anyio.sleep(0.05)
        assert await redis_store.prune(0.01) == 0
        await redis_store.append(busy, [Message.user("new")])
    loaded = await redis_store.load(busy)
    assert loaded is not None
    assert [m.content for m in loaded.messages] == ["history", "new"]


@pytest.mark.service
async def test_redis_lock_cancelled_during_the_claim_leaves_no_lease(
    redis_store: RedisStore, redis_admin: Redis, redis_prefix: str
) -> None:
    # The claim script ran on the server but its reply never reached the cancelled task:
    # the lease stays until it expires (PostgresStore and hold_lease drop it).
    real = redis_store._acquire

    async def acquire_then_stall(keys: Any, args: Any) -> Any:
        value = await real(keys, args)
        await anyio.sleep(30)
        return value

    redis_store._acquire = acquire_then_stall  # type: ignore[method-assign]
    with anyio.move_on_after(0.3):
        async with redis_store.lock(Namespace("alice")):
            pytest.fail("the lock should not have been taken")
    assert await redis_admin.exists(f"{redis_prefix}lease:alice") == 0


@pytest.mark.service
async def test_redis_unknown_url_option_is_not_a_type_error(redis_prefix: str) -> None:
    require_redis()
    try:
        store = RedisStore(f"{REDIS_URL}?no_such_option=1", key_prefix=redis_prefix)
    except ConfigurationError:
        return
    try:
        with pytest.raises((StoreError, ConfigurationError)):
            await store.load(Namespace("alice"))
    finally:
        await store.aclose()
