"""Session store backends, each talking to one kind of storage, chosen by URL.

The URL rules live here, beside the stores they name, so that settings
validation and :func:`open_store` (used by worker processes, scripts and
benchmarks that have a URL but no container) agree on every form.
The PostgreSQL and Redis stores are imported only when their URL is opened:
their drivers are extras.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from orra_di.errors import ConfigurationError, install_hint
from orra_di.store import SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = [
    "STORE_SCHEMES",
    "STORE_URL_FORMS",
    "FileStore",
    "InMemoryStore",
    "SQLiteStore",
    "open_store",
    "split_store_url",
]

STORE_SCHEMES = ("memory", "sqlite", "file", "postgresql", "postgres", "redis", "rediss")
STORE_URL_FORMS = (
    "sqlite:///relative.db or sqlite:////absolute/path.db, memory://, file:///absolute/dir, "
    "postgresql://user:password@host/db, redis://host:6379/0 or rediss://…"
)

# scheme -> (module under orra_di.stores, class, pip extra, what to call it)
_SERVER_STORES = {
    "postgresql": ("postgres", "PostgresStore", "postgres", "PostgreSQL"),
    "postgres": ("postgres", "PostgresStore", "postgres", "PostgreSQL"),
    "redis": ("redis", "RedisStore", "redis", "Redis"),
    "rediss": ("redis", "RedisStore", "redis", "Redis"),
}


def split_store_url(url: str) -> tuple[str, Path | None]:
    """A store URL's scheme, lower-cased, and the path it names (``sqlite``, ``file``).

    ``sqlite:///`` is followed by a file path as SQLAlchemy reads it: relative
    after three slashes, absolute after four. ``file:///dir`` is an absolute,
    percent-encoded directory (RFC 8089). Raises ValueError saying what is wrong.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ValueError("not a URL")
    scheme = scheme.lower()
    if scheme not in STORE_SCHEMES:
        raise ValueError(f"unknown store scheme {scheme!r}")
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ValueError("a SQLite URL needs a file after three slashes")
        return scheme, Path(rest[1:])
    if scheme == "file":
        if not rest.startswith(("/", "localhost/")):
            raise ValueError("a file store needs an absolute directory")
        return scheme, Path(unquote(rest.removeprefix("localhost")))
    if scheme == "memory" and rest:
        raise ValueError("the in-memory store takes no path")
    return scheme, None


def open_store(url: str, **options: Any) -> SessionStore:
    """A store for ``url``; ``options`` go to its constructor (e.g. ``lease_seconds``).

    Raises :class:`ConfigurationError` for a URL of no known form (listing the
    accepted ones) or a store whose extra is not installed.
    """
    try:
        scheme, path = split_store_url(url)
    except ValueError as exc:  # the URL itself is not echoed: it may hold a password
        raise ConfigurationError(f"invalid store URL: {exc}; accepted: {STORE_URL_FORMS}") from None
    if scheme == "memory":
        return InMemoryStore(**options)
    if path is not None:
        return (SQLiteStore if scheme == "sqlite" else FileStore)(path, **options)
    module, name, extra, label = _SERVER_STORES[scheme]
    try:
        store_class = getattr(importlib.import_module(f"orra_di.stores.{module}"), name)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {label} store needs its extra: {install_hint(extra)} ({exc})"
        ) from exc
    store: SessionStore = store_class(url, **options)
    return store
