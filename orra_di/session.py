"""A conversation held under one namespace."""

from __future__ import annotations

import copy
import weakref
from datetime import UTC, datetime
from typing import Any, SupportsIndex

from pydantic import BaseModel, Field

from orra_di.message import Message
from orra_di.namespace import Namespace

__all__ = ["History", "Session", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class History(list[Message]):
    """A session's message list that knows where it was copied from and whether it
    was only ever appended to since.

    Every :meth:`Session.snapshot` makes one, and the stores keep their own copies
    as one (the in-memory store, the load cache of the others). ``source`` (a weak
    reference) and ``copied`` say which list this one was copied from and how long
    that list was then; ``rewritten`` turns true, for good, on any change that is
    not an append (item or slice assignment, ``del``, ``insert``, ``pop``,
    ``remove``, ``clear``, ``sort``, ``reverse``, ``*=``). So while neither list is
    rewritten, the first ``copied`` messages of both are the same objects, which
    lets the token estimate of a history carry over from one load to the next
    (:meth:`orra_di.context.ContextWindow.history_tokens`) instead of being redone
    over the whole session on every run. ``tally`` is that estimate's running total,
    kept on the list it counts (no lookup, nothing to forget when the list goes):
    (tokenizer, count, total, the message at ``count - 1``); any change other than
    an append clears it. A copy, a deep copy or a pickle is a plain list: the
    provenance belongs to this object alone.
    """

    __slots__ = ("__weakref__", "copied", "rewritten", "source", "tally")

    source: weakref.ref[History] | None
    copied: int
    rewritten: bool
    tally: tuple[object, int, int, Message] | None

    def __init__(self, messages: Any = ()) -> None:
        super().__init__(messages)
        self.source = None
        self.copied = 0
        self.rewritten = False
        self.tally = None

    def _rewrite(self) -> None:
        self.rewritten = True
        self.tally = None

    def copy_of(self) -> History:
        """A copy that remembers it came from this list (unless this one was rewritten)."""
        clone = History(self)
        if not self.rewritten:
            clone.source = weakref.ref(self)
            clone.copied = len(clone)
        return clone

    def __reduce_ex__(self, protocol: SupportsIndex) -> tuple[Any, ...]:
        return (list, (list(self),))

    def __setitem__(self, index: Any, value: Any) -> None:
        self._rewrite()
        super().__setitem__(index, value)

    def __delitem__(self, index: SupportsIndex | slice) -> None:
        self._rewrite()
        super().__delitem__(index)

    def __imul__(self, count: SupportsIndex) -> History:
        self._rewrite()
        return super().__imul__(count)

    def insert(self, index: SupportsIndex, value: Message) -> None:
        self._rewrite()
        super().insert(index, value)

    def pop(self, index: SupportsIndex = -1) -> Message:
        self._rewrite()
        return super().pop(index)

    def remove(self, value: Message) -> None:
        self._rewrite()
        super().remove(value)

    def clear(self) -> None:
        self._rewrite()
        super().clear()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        self._rewrite()
        super().sort(*args, **kwargs)

    def reverse(self) -> None:
        self._rewrite()
        super().reverse()


class Session(BaseModel):
    """The messages, timestamps and free-form metadata of one namespace.

    ``metadata`` is the extension point for hooks and applications (for
    example ``working_directory``); it must stay JSON-serialisable.
    """

    namespace: Namespace
    messages: list[Message] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def push_message(self, message: Message) -> None:
        self.messages.append(message)
        self.touch()

    def touch(self) -> None:
        """Set ``updated_at`` to now. Runs on every persisted step, so it writes the
        field directly: pydantic's ``__setattr__`` (no validation on assignment
        here anyway) costs about ten times as much."""
        self.__dict__["updated_at"] = utc_now()
        self.__pydantic_fields_set__.add("updated_at")

    @property
    def message_count(self) -> int:
        return len(self.messages)

    def snapshot(self) -> Session:
        """A copy that shares the (frozen) messages but not the lists holding them.

        Every load of every store makes one, so it is built the way ``model_copy``
        does (a new ``__dict__``, no validation) without that method's generic
        path, about 4x faster; empty metadata is not deep-copied. Its messages are
        a :class:`History` that remembers this session's list when that is one.
        """
        fields = dict(self.__dict__)
        messages = self.messages
        fields["messages"] = (
            messages.copy_of() if isinstance(messages, History) else History(messages)
        )
        fields["metadata"] = copy.deepcopy(self.metadata) if self.metadata else {}
        clone = object.__new__(type(self))
        object.__setattr__(clone, "__dict__", fields)
        object.__setattr__(clone, "__pydantic_fields_set__", set(self.__pydantic_fields_set__))
        object.__setattr__(clone, "__pydantic_extra__", None)
        object.__setattr__(clone, "__pydantic_private__", None)
        return clone
