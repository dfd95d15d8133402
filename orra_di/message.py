"""The provider-neutral chat model: roles, messages, tool calls and results.

Messages are frozen values, so a session's history can be shared between the
store's cache, the runtime and a hook without defensive copies.
Tool results travel on a *user* message, as in orra (there is no tool role).
What a vendor needs back on a later request and that has no neutral form
(Anthropic's signed thinking blocks) rides on the message as :class:`VendorData`,
so it is stored with the history and survives a restart.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    SerializerFunctionWrapHandler,
    model_serializer,
)

__all__ = ["JsonValue", "Message", "Role", "ToolCall", "ToolResult", "VendorData"]

JsonValue = Any
"""Any JSON-compatible value (dict, list, str, int, float, bool, None)."""


def _storable(text: str) -> str:
    """Lone surrogates (from a broken decoder or a tool) become U+FFFD.

    No store, JSON encoder or vendor API accepts them; replacing the one bad
    code point keeps the rest of the text instead of failing the whole step.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


Text = Annotated[str, AfterValidator(_storable)]


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class ToolCall(BaseModel):
    """The model asks for ``name`` to run with ``arguments`` (usually a JSON object)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: JsonValue = None


class ToolResult(BaseModel):
    """What a tool returned for the call ``call_id``; errors are results too."""

    model_config = ConfigDict(frozen=True)

    call_id: str
    content: Text
    is_error: bool = False


class VendorData(BaseModel):
    """Data one vendor's API needs back on a later request, opaque to everyone else.

    Anthropic, for instance, refuses a tool loop whose last assistant turn
    comes back without its thinking blocks and their signatures. Kept on the
    message, such data is saved by every store with the history, so a run
    resumed after a restart (or in another process) can still send it. Only
    the adapter named by ``vendor`` reads ``data``; the runtime, the stores
    and other vendors carry it untouched. ``data`` must be JSON-compatible.
    """

    model_config = ConfigDict(frozen=True)

    vendor: str
    data: JsonValue = None


class Message(BaseModel):
    """One message of a conversation; empty tuples are omitted from JSON.

    Omitting them keeps the stored form of a message without vendor data as
    it always was, and messages stored before ``vendor_data`` existed load
    unchanged.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    content: Text = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()
    vendor_data: tuple[VendorData, ...] = ()

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role=Role.SYSTEM, content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role=Role.USER, content=content)

    @classmethod
    def assistant(
        cls,
        content: str,
        tool_calls: tuple[ToolCall, ...] | list[ToolCall] = (),
        *,
        vendor_data: tuple[VendorData, ...] | list[VendorData] = (),
    ) -> Message:
        return cls(
            role=Role.ASSISTANT,
            content=content,
            tool_calls=tuple(tool_calls),
            vendor_data=tuple(vendor_data),
        )

    @classmethod
    def tool_result(cls, results: tuple[ToolResult, ...] | list[ToolResult]) -> Message:
        """The user-role message that answers an assistant's tool calls."""
        return cls(role=Role.USER, content="", tool_results=tuple(results))

    def vendor(self, name: str) -> JsonValue:
        """The data that vendor ``name`` attached to this message, or None."""
        for entry in self.vendor_data:
            if entry.vendor == name:
                return entry.data
        return None

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if not self.tool_calls:
            data.pop("tool_calls", None)
        if not self.tool_results:
            data.pop("tool_results", None)
        if not self.vendor_data:
            data.pop("vendor_data", None)
        return data
