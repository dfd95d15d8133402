"""Session store backends. Each module talks to one kind of storage."""

from orra_di.stores.memory import InMemoryStore

__all__ = ["InMemoryStore"]
