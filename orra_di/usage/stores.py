"""Pick the usage backend that lives beside a session store, on its connection."""

from __future__ import annotations

import os
import sys

from orra_di.errors import ConfigurationError
from orra_di.store import SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.usage.ledger import UsageBackend, UsageLedger
from orra_di.usage.local import FileUsageBackend, memory_backend_for
from orra_di.usage.sql import SQLiteUsageBackend

__all__ = ["usage_backend_for", "usage_ledger_for"]


def usage_backend_for(store: SessionStore) -> UsageBackend:
    """The backend storing usage in ``store``'s own storage (same file, database or server).

    Raises :class:`ConfigurationError` for a store of another kind: give the
    ledger a backend of your own (``UsageLedger(backend)``).
    """
    if isinstance(store, InMemoryStore):
        return memory_backend_for(store)
    if isinstance(store, FileStore):
        # The base directory: where the store puts a top-level session.
        return FileUsageBackend(os.path.dirname(store.path_for("x")))
    if isinstance(store, SQLiteStore):
        return SQLiteUsageBackend(store)
    # Only a store whose module is loaded can be of its class: no driver imported for nothing.
    postgres = sys.modules.get("orra_di.stores.postgres")
    if postgres is not None and isinstance(store, postgres.PostgresStore):
        from orra_di.usage.sql import PostgresUsageBackend

        return PostgresUsageBackend(store)
    redis = sys.modules.get("orra_di.stores.redis")
    if redis is not None and isinstance(store, redis.RedisStore):
        from orra_di.usage.redis import RedisUsageBackend

        return RedisUsageBackend(store)
    raise ConfigurationError(
        f"no usage ledger for a {type(store).__name__}: build one with "
        "UsageLedger(backend) for a backend of your own, or turn usage off "
        "(ORRA_USAGE__ENABLED=false) if no budget is set"
    )


def usage_ledger_for(store: SessionStore) -> UsageLedger:
    """A :class:`UsageLedger` beside ``store`` (what the container's ``usage_ledger`` is)."""
    return UsageLedger(usage_backend_for(store))
