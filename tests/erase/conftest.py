"""Fixtures of the erasure tests."""

from memory.backends import sessions  # noqa: F401 - the fixture over every backend
