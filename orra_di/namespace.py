"""Hierarchical session keys.

A namespace such as ``acme:alice:support`` isolates a conversation, and its
ancestors (``acme:alice``, ``acme``) are where tool policies are inherited from.

Unlike orra 0.0.2 (spec §5.4/17), a segment can never contain the separator,
so ``Namespace("a", "b")`` and ``Namespace.parse("a:b")`` are the only two
spellings of one key and always agree; ``Namespace("a:b")`` is an error that
points at :meth:`Namespace.parse`.

Every API that takes a namespace takes :data:`NamespaceLike` (a ``Namespace``
or its key, as httpx takes a URL or a string) and turns it into a
``Namespace`` once, at its entry, with :meth:`Namespace.coerce`.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Iterator
from typing import Any, TypeAlias

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from orra_di.errors import NamespaceError

__all__ = ["MAX_KEY_LENGTH", "SEPARATOR", "Namespace", "NamespaceLike", "index_token"]

SEPARATOR = ":"
MAX_KEY_LENGTH = 1024
"""Longest key accepted, in characters: keys end up in file paths and index columns."""


def index_token(key: str) -> str:
    """A word standing for the namespace ``key`` in a full-text index: ``ns`` and 20 hex
    digits of its SHA-256 (letters and digits only, so every tokenizer keeps it whole).

    The SQLite memory and document indexes write each word as ``<token>_<word>``, so a
    search reads only the posting lists of the namespaces it may see.
    """
    return "ns" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _check_segment(segment: object) -> str:
    if not isinstance(segment, str):
        raise NamespaceError(f"namespace segment must be a string, got {type(segment).__name__}")
    if not segment:
        raise NamespaceError(
            "namespace segment is empty; every segment needs at least one character"
        )
    if SEPARATOR in segment:
        raise NamespaceError(
            f"namespace segment {segment!r} contains {SEPARATOR!r}, the separator; "
            f"use Namespace.parse({segment!r}) to split a key into segments"
        )
    for char in segment:
        category = unicodedata.category(char)
        if category == "Cc":
            raise NamespaceError(
                f"namespace segment {segment!r} contains the control character "
                f"U+{ord(char):04X}; use printable characters only"
            )
        if category == "Cs":
            # A lone surrogate cannot be encoded as UTF-8: no JSON, file or SQL store
            # could hold the key.
            raise NamespaceError(
                f"namespace segment {segment!r} contains the lone surrogate "
                f"U+{ord(char):04X}; a key must be valid Unicode text"
            )
    return segment


@functools.total_ordering
class Namespace:
    """An immutable, hashable sequence of segments; ``str(ns)`` is its key."""

    __slots__ = ("_key", "_segments")

    _segments: tuple[str, ...]
    _key: str

    def __init__(self, *segments: str) -> None:
        if not segments:
            raise NamespaceError("a namespace needs at least one segment")
        checked = tuple(_check_segment(s) for s in segments)
        key = SEPARATOR.join(checked)
        if len(key) > MAX_KEY_LENGTH:
            raise NamespaceError(
                f"namespace key is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
            )
        object.__setattr__(self, "_segments", checked)
        object.__setattr__(self, "_key", key)

    @classmethod
    def parse(cls, key: str) -> Namespace:
        """Split ``"acme:alice"`` into ``Namespace("acme", "alice")``."""
        if not isinstance(key, str):
            raise NamespaceError(f"namespace key must be a string, got {type(key).__name__}")
        if not key:
            raise NamespaceError("namespace key is empty; give at least one segment, e.g. 'acme'")
        return cls(*key.split(SEPARATOR))

    @classmethod
    def coerce(cls, value: NamespaceLike) -> Namespace:
        """``value`` itself if it is a ``Namespace``, else :meth:`parse` of the key.

        The one place a public API turns what it was given into a namespace, so
        ``runtime.run("acme:alice", ...)`` and ``store.load("acme:alice")`` mean
        exactly ``Namespace.parse("acme:alice")`` and fail with its
        :class:`~orra_di.errors.NamespaceError` (never an ``AttributeError``).
        """
        if isinstance(value, Namespace):
            return value
        if isinstance(value, str):
            return cls.parse(value)
        raise NamespaceError(
            f"expected a Namespace or a key like 'acme:alice', got {type(value).__name__}"
        )

    def child(self, segment: str) -> Namespace:
        """A new namespace one level below this one."""
        return Namespace(*self._segments, segment)

    @property
    def parent(self) -> Namespace | None:
        """The namespace one level up, or ``None`` for a root."""
        if len(self._segments) <= 1:
            return None
        return Namespace(*self._segments[:-1])

    @property
    def root(self) -> str:
        return self._segments[0]

    @property
    def depth(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> tuple[str, ...]:
        return self._segments

    @property
    def key(self) -> str:
        return self._key

    def ancestors(self) -> Iterator[Namespace]:
        """Parent, grandparent, … up to the root (most specific first)."""
        for end in range(len(self._segments) - 1, 0, -1):
            yield Namespace(*self._segments[:end])

    def is_ancestor_of(self, other: NamespaceLike) -> bool:
        """True when ``other`` (a namespace or its key) lies strictly below this one."""
        other = Namespace.coerce(other)
        n = len(self._segments)
        return n < len(other._segments) and other._segments[:n] == self._segments

    def is_descendant_of(self, other: NamespaceLike) -> bool:
        """True when this namespace lies strictly below ``other`` (a namespace or its key)."""
        return Namespace.coerce(other).is_ancestor_of(self)

    def contains(self, other: NamespaceLike) -> bool:
        """True for this namespace itself and everything below it (``other`` may be a key)."""
        other = Namespace.coerce(other)
        return other == self or self.is_ancestor_of(other)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Namespace is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Namespace):
            return NotImplemented
        return self._segments == other._segments

    def __hash__(self) -> int:
        return hash(self._segments)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Namespace):
            return NotImplemented
        return self._segments < other._segments

    def __str__(self) -> str:
        return self._key

    def __repr__(self) -> str:
        return f"Namespace.parse({self._key!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Namespace, self._segments)

    # pydantic: serialised as {"segments": [...]} like orra; a plain key string is
    # also accepted on input so configuration files can say "acme:alice".
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        def validate(value: Any) -> Namespace:
            if isinstance(value, Namespace):
                return value
            if isinstance(value, str):
                return cls.parse(value)
            if isinstance(value, dict) and isinstance(value.get("segments"), list | tuple):
                return cls(*value["segments"])
            raise NamespaceError(
                "a namespace is a key like 'acme:alice' or {'segments': ['acme', 'alice']}"
            )

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda ns: {"segments": list(ns.segments)}
            ),
            json_schema_input_schema=core_schema.str_schema(),
        )


NamespaceLike: TypeAlias = Namespace | str
"""What a public API accepts as a namespace: a ``Namespace`` or its key (``"acme:alice"``)."""
