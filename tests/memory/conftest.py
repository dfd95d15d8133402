"""Fixtures of the memory tests."""

from .backends import sessions  # noqa: F401 - the fixture over every backend
