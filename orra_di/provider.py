"""The LLM abstraction: requests, responses, usage and streaming events.

A provider is anything with ``async complete(request) -> CompletionResponse``;
a streaming provider also has ``stream(request)``, an async iterator of
:data:`StreamEvent`. Failures are raised as the :class:`ProviderError` tree of
:mod:`orra_di.errors`, never as an SDK's own exception types.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from orra_di.message import JsonValue, Message, VendorData, trusted
from orra_di.tool import ToolDefinition

__all__ = [
    "MAX_ARGUMENT_DEPTH",
    "CompletionRequest",
    "CompletionResponse",
    "FinishReason",
    "Provider",
    "StreamDone",
    "StreamEvent",
    "StreamingProvider",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallStart",
    "Usage",
    "bounded_tool_arguments",
    "close_provider",
    "closing_stream",
    "parse_tool_arguments",
    "response_events",
]


class FinishReason(StrEnum):
    """Why the model stopped. Vendors' other reasons are kept as plain strings."""

    STOP = "stop"
    TOOL_USE = "tool_use"
    MAX_TOKENS = "max_tokens"


class Usage(BaseModel):
    """Tokens billed for one call (or summed over a run).

    ``input_tokens`` counts every input token, cached or not (OpenAI's
    convention); the two cache fields say how many of them were read from or
    written to the vendor's prompt cache. Adapters normalise to this, so totals
    and the budget calibration mean the same for every vendor.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @classmethod
    def zero(cls) -> Usage:
        """``Usage()``, without validating four zeros (every run starts one)."""
        values = dict.fromkeys(_USAGE_FIELDS, 0)
        return trusted(cls, values, set())

    def __add__(self, other: Usage) -> Usage:
        """The sum, built without validation: sums of valid counts are valid counts."""
        values = {
            "input_tokens": self.input_tokens + other.input_tokens,
            "output_tokens": self.output_tokens + other.output_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens + other.cache_read_input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
        }
        return trusted(Usage, values, set(_USAGE_FIELDS))


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)


class CompletionRequest(BaseModel):
    """One call to the model; hooks may change it in ``before_provider_call``."""

    messages: list[Message]
    tools: list[ToolDefinition] = Field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None
    model: str | None = None
    """Overrides the provider's default model for this call."""


class CompletionResponse(BaseModel):
    message: Message
    usage: Usage = Field(default_factory=Usage)
    # left_to_right: a known reason given as a string ("tool_use") becomes the
    # enum member; only unknown vendor reasons stay plain strings.
    finish_reason: FinishReason | str = Field(default=FinishReason.STOP, union_mode="left_to_right")


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call's JSON arguments, for the call started with ``id``."""

    id: str
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class StreamDone:
    """The end of a stream: the bill, why the model stopped, and data for the message.

    ``vendor_data`` is what the adapter wants on the assembled assistant
    message (see :class:`~orra_di.message.VendorData`): a stream's events
    carry only the neutral parts, so whoever assembles them puts it there.
    """

    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | str = FinishReason.STOP
    vendor_data: tuple[VendorData, ...] = ()


StreamEvent = TextDelta | ToolCallStart | ToolCallDelta | StreamDone


@runtime_checkable
class Provider(Protocol):
    async def complete(self, request: CompletionRequest) -> CompletionResponse: ...


@runtime_checkable
class StreamingProvider(Provider, Protocol):
    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield events as the model produces them; raise ProviderError on failure."""
        ...


MAX_ARGUMENT_DEPTH = 100
"""Deepest nesting of a model's tool arguments taken as JSON (no tool's schema comes
near it). Deeper ones cannot be stored: the sessions' JSON serialiser stops at about
250 levels, and the parser at about 1,000 (``RecursionError``), so a model led on to
nest them (a prompt injection) would fail the run and lose its turn."""


def _nested_within(value: JsonValue, limit: int) -> bool:
    """True when ``value`` nests at most ``limit`` lists and objects deep (no recursion)."""
    stack: list[tuple[JsonValue, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def bounded_tool_arguments(arguments: JsonValue) -> JsonValue:
    """Arguments a vendor's SDK parsed, as they are unless nested past
    :data:`MAX_ARGUMENT_DEPTH`: then a short text, which the tool refuses as invalid
    input (an error the model reads) instead of the run failing when it is stored."""
    if _nested_within(arguments, MAX_ARGUMENT_DEPTH):
        return arguments
    return f"(tool arguments nested more than {MAX_ARGUMENT_DEPTH} levels deep)"


def parse_tool_arguments(raw: str | None) -> JsonValue:
    """A model's tool arguments from their JSON text.

    Empty is ``{}``; invalid JSON, and JSON nested past :data:`MAX_ARGUMENT_DEPTH`, stay
    the raw string, so the tool reports an ``invalid input`` error the model can read
    instead of the run failing.
    """
    if not raw or not raw.strip():
        return {}
    try:
        value: JsonValue = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return raw
    return value if _nested_within(value, MAX_ARGUMENT_DEPTH) else raw


async def response_events(
    response: CompletionResponse, chunk: int | None = None
) -> AsyncIterator[StreamEvent]:
    """A finished response as the events a vendor would have streamed.

    Lets non-streaming providers stand in where a stream is expected. With
    ``chunk``, text comes in pieces of that many characters and each call's
    arguments in two pieces, like a real stream (test doubles use this).
    """
    text = response.message.content
    step = chunk or max(len(text), 1)
    for start in range(0, len(text), step):
        yield TextDelta(text[start : start + step])
    for call in response.message.tool_calls:
        yield ToolCallStart(call.id, call.name)
        raw = json.dumps(call.arguments)
        middle = len(raw) // 2 if chunk else len(raw)
        for piece in (raw[:middle], raw[middle:]):
            if piece:
                yield ToolCallDelta(call.id, piece)
    yield StreamDone(response.usage, response.finish_reason, response.message.vendor_data)


async def close_provider(llm: object) -> None:
    """Close ``llm``'s connections if it holds any (providers may have ``aclose``)."""
    close = getattr(llm, "aclose", None)
    if close is not None:
        await close()


@asynccontextmanager
async def closing_stream(
    events: AsyncIterator[StreamEvent],
) -> AsyncIterator[AsyncIterator[StreamEvent]]:
    """Iterate a provider's stream and close it on leaving, even early.

    Without this, a stream abandoned mid-way (an error, a cancelled run) keeps
    its HTTP response open until the garbage collector finds it.
    """
    try:
        yield events
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()
