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
from typing import Annotated, Any, TypeVar

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


def storable_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the same object if it has none).

    Lone surrogates come from a broken decoder, ``os.fsdecode`` of a file name
    that is not UTF-8, or a JSON ``"\\ud83d"`` escape. No store, JSON encoder or
    vendor API accepts them; replacing the one bad code point keeps the rest of
    the text instead of failing the whole step. Text enters a run in three
    places (model output, the model's tool arguments, tool output) and is
    cleaned there: by the validators of this module (vendor data included), and
    by the runtime before it measures a tool's output.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


def storable_json(value: JsonValue) -> JsonValue:
    """A JSON value with :func:`storable_text` applied to every string in it, keys too.

    Containers are rebuilt only when something in them changed. A value nested
    deeper than Python's recursion limit is returned as it is: no store could
    serialise it anyway, and its store reports that with a clear error.
    """
    try:
        return _storable_json(value)
    except RecursionError:
        return value


def _storable_json(value: JsonValue) -> JsonValue:
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, dict):
        pairs = [(_storable_json(k), _storable_json(v)) for k, v in value.items()]
        if all(a is k and b is v for (a, b), (k, v) in zip(pairs, value.items(), strict=True)):
            return value
        return dict(pairs)
    if isinstance(value, list | tuple):
        items = [_storable_json(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value


Text = Annotated[str, AfterValidator(storable_text)]

_Model = TypeVar("_Model", bound=BaseModel)


def trusted(cls: type[_Model], values: dict[str, Any], fields_set: set[str]) -> _Model:
    """An instance of ``cls`` from values already valid, without validating them again.

    For what the runtime builds itself on every step (a tool's result, the
    message answering the calls, usage totals, requests): validating values it
    built from validated parts would only cost time. ``values`` must hold every
    field, in declaration order, as validation would have left it;
    ``fields_set`` is what the caller passed explicitly (as ``model_fields_set``
    would report it). ``model_construct`` does the same through a generic path
    that walks each field's aliases and defaults, and costs more than this.
    """
    instance = object.__new__(cls)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", fields_set)
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class ToolCall(BaseModel):
    """The model asks for ``name`` to run with ``arguments`` (usually a JSON object)."""

    model_config = ConfigDict(frozen=True)

    id: Text
    name: Text
    arguments: Annotated[JsonValue, AfterValidator(storable_json)] = None


class ToolResult(BaseModel):
    """What a tool returned for the call ``call_id``; errors are results too."""

    model_config = ConfigDict(frozen=True)

    call_id: Text
    content: Text
    is_error: bool = False

    @classmethod
    def trusted(cls, call_id: str, content: str) -> ToolResult:
        """A successful result from values the caller made valid already: ``content``
        passed through :func:`storable_text`, ``call_id`` from a validated call."""
        values = {"call_id": call_id, "content": content, "is_error": False}
        return trusted(cls, values, {"call_id", "content"})


class VendorData(BaseModel):
    """Data one vendor's API needs back on a later request, opaque to everyone else.

    Anthropic, for instance, refuses a tool loop whose last assistant turn
    comes back without its thinking blocks and their signatures. Kept on the
    message, such data is saved by every store with the history, so a run
    resumed after a restart (or in another process) can still send it. Only
    the adapter named by ``vendor`` reads ``data``; the runtime, the stores
    and other vendors carry it untouched. ``data`` must be JSON-compatible; its
    lone surrogates become U+FFFD like the rest of a message's text, since it
    repeats what the model sent (a tool call's input among Anthropic's blocks)
    and no store could keep them.
    """

    model_config = ConfigDict(frozen=True)

    vendor: Text
    data: Annotated[JsonValue, AfterValidator(storable_json)] = None


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
        results = tuple(results)
        if all(type(r) is ToolResult for r in results):  # nothing to validate: skip it
            values = {
                "role": Role.USER,
                "content": "",
                "tool_calls": (),
                "tool_results": results,
                "vendor_data": (),
            }
            return trusted(cls, values, {"role", "content", "tool_results"})
        return cls(role=Role.USER, content="", tool_results=results)

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
