"""Where the real PostgreSQL and Redis servers are, and what to do when one is absent.

Service tests skip with the reason when their server does not answer, except
under CI (the ``CI`` environment variable set), where an absent server is a
failure: ``.ci/run`` starts both before the suite.
"""

from __future__ import annotations

import os
import socket

import pytest

POSTGRES_URL = os.environ.get("ORRA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ORRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or, under CI, fail) the calling test when the server is not listening."""
    if _answers(host, port):
        return
    reason = f"{name} is not listening on {host}:{port}; start it or set ORRA_TEST_*_URL"
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so service tests must run: {reason}")
    pytest.skip(reason)


def require_postgres() -> None:
    require_service("PostgreSQL", "127.0.0.1", 5432)


def require_redis() -> None:
    require_service("Redis", "127.0.0.1", 6379)
