"""Shared fixtures: anyio's pytest plugin runs every async test on asyncio."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """pytest-httpserver on 127.0.0.1 (not "localhost"): loopback only, whatever DNS says."""
    return ("127.0.0.1", 0)
