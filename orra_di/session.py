"""A conversation held under one namespace."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from orra_di.message import Message
from orra_di.namespace import Namespace

__all__ = ["Session", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        self.updated_at = utc_now()

    @property
    def message_count(self) -> int:
        return len(self.messages)

    def snapshot(self) -> Session:
        """A copy that shares the (frozen) messages but not the lists holding them."""
        return self.model_copy(
            update={"messages": list(self.messages), "metadata": copy.deepcopy(self.metadata)}
        )
