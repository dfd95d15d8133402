"""Session store backends. Each module talks to one kind of storage."""

from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore

__all__ = ["FileStore", "InMemoryStore", "SQLiteStore"]
