"""Claude through Anthropic's official SDK (``pip install "orra-di[anthropic]"``).

orra's ``ClaudeProvider`` (spec §2B.1) spoke HTTP itself; this adapter drives
``anthropic.AsyncAnthropic`` instead, so retries (honouring ``retry-after``),
timeouts and SSE parsing are the SDK's. It fixes the crate's bugs (§5.3/14):
every system message reaches the model (joined by blank lines), content blocks
other than text and tool calls (thinking, server tools, future types) no longer
fail the response, a 429 carries the server's retry-after, SSE ``error`` events
raise, and an error body that is not JSON still reports its HTTP status.

Thinking: current models think by default, and the API refuses a tool loop
whose last assistant turn comes back without its thinking blocks. A
tool-calling turn with thinking therefore carries the content blocks as
received (signatures included) in its :class:`~orra_di.message.VendorData`,
tagged ``anthropic`` with the model that wrote them; the stores save it with
the message, so a run resumed by a fresh process sends the turn back verbatim.

API version: the SDK 2.x sends ``anthropic-version: 2026-10-21``, which
removed ``temperature`` (sending it is a 400) and sends API keys as
``Authorization: Bearer``. A request's ``temperature`` is therefore sent only
to a client pinned to ``2023-06-01`` (pass ``client=AsyncAnthropic(...,
default_headers={"anthropic-version": "2023-06-01"})``); otherwise it is
dropped with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from orra_di.auth.tokens import TokenProvider, auth_error_in
from orra_di.errors import (
    ConfigurationError,
    ContextLengthExceededError,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderError,
    ProviderTimeoutError,
    ProviderUnavailableError,
    RateLimitedError,
    install_hint,
)
from orra_di.message import JsonValue, Message, Role, ToolCall, VendorData
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    bounded_tool_arguments,
)
from orra_di.providers._http import one_line, retry_after_ms
from orra_di.redaction import mask_url, redact

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

__all__ = ["AnthropicProvider"]

log = logging.getLogger("orra_di.providers.anthropic")

DEFAULT_MODEL = "claude-sonnet-5-5"
"""The current Sonnet; claude-sonnet-4-5 reaches end of life on 2026-11-30."""
DEFAULT_MAX_TOKENS = 4096
OAUTH_PREFIX = "sk-ant-oat"
"""Claude OAuth access tokens; they go as a bearer token with the OAuth beta, as in orra."""
OAUTH_BETA = "oauth-2025-04-20"
TOKEN_PROVIDER_PLACEHOLDER = "orra-di-token-provider"
"""The SDK's ``auth_token`` when a token provider authenticates (it is never sent)."""
SAMPLING_API_VERSION = "2023-06-01"
"""The last API version that accepts ``temperature``."""
VENDOR = "anthropic"
"""The tag of this adapter's :class:`~orra_di.message.VendorData`."""
_THINKING = ("thinking", "redacted_thinking")

_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "tool_use": FinishReason.TOOL_USE,
    "max_tokens": FinishReason.MAX_TOKENS,
}
_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
# The HTTP status each documented error type stands for: an SSE ``error`` event
# arrives on a 200 response, so its type is all there is to classify it by.
_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_TOO_LONG = re.compile(
    r"prompt is too long|context (?:window|length|limit)|too many (?:input )?tokens", re.I
)


def _sdk() -> tuple[ModuleType, ModuleType]:
    """The SDK and its HTTP library (whose errors escape the SDK while a stream is read)."""
    try:
        import anthropic
        import httpx2
    except ImportError as exc:
        raise ConfigurationError(
            f"the Anthropic provider needs the anthropic SDK: {install_hint('anthropic')}"
        ) from exc
    return anthropic, httpx2


def _reveal(secret: str | SecretStr | None) -> str | None:
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    return value or None


def _make_client(
    api_key: str | SecretStr | None,
    auth_token: str | SecretStr | None,
    base_url: str | None,
    timeout: float,
    max_retries: int,
    token_provider: TokenProvider | None = None,
) -> AsyncAnthropic:
    key, token = _reveal(api_key), _reveal(auth_token)
    if key and token:
        raise ConfigurationError("pass either api_key or auth_token to AnthropicProvider, not both")
    http_client = None
    if token_provider is not None:
        if key or token:
            raise ConfigurationError("pass either credentials or token_provider, not both")
        from orra_di.auth.http import bearer_http_client

        # A stand-in the SDK requires; BearerAuth replaces it on every request.
        token = TOKEN_PROVIDER_PLACEHOLDER
        http_client = bearer_http_client(_sdk()[0].DefaultAsyncHttpxClient, token_provider)
    if not key and not token:
        key = os.environ.get("ANTHROPIC_API_KEY") or None
        token = None if key else os.environ.get("ANTHROPIC_AUTH_TOKEN") or None
    if key and key.startswith(OAUTH_PREFIX):
        key, token = None, key
    if not key and not token:
        raise ConfigurationError(
            "no Anthropic credentials: pass api_key= or auth_token=, "
            "or set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN"
        )
    anthropic, _ = _sdk()
    oauth = token is not None and token.startswith(OAUTH_PREFIX)
    client: AsyncAnthropic = anthropic.AsyncAnthropic(
        api_key=key,
        auth_token=token,
        base_url=base_url,
        timeout=timeout,
        max_retries=max_retries,
        default_headers={"anthropic-beta": OAUTH_BETA} if oauth else None,
        http_client=http_client,
    )
    return client


class AnthropicProvider:
    """A :class:`~orra_di.provider.StreamingProvider` for Claude's Messages API.

    ``api_key`` may be an API key or a Claude OAuth token (``sk-ant-oat…``);
    with neither it nor ``auth_token`` (a bearer token, e.g. for a gateway),
    ``ANTHROPIC_API_KEY`` then ``ANTHROPIC_AUTH_TOKEN`` are read. ``timeout``
    (seconds, per request and per wait for a stream chunk) and ``max_retries``
    configure the SDK, which retries 408/409/429/5xx and dropped connections.
    A ``token_provider`` (:mod:`orra_di.auth`) replaces the credentials: each
    request carries its bearer token, renewed before it expires.
    A ``client`` you pass is used as is and stays yours to close.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        auth_token: str | SecretStr | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        client: Any | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        self._sdk, self._http = _sdk()
        if client is not None and (api_key, auth_token, token_provider) != (None, None, None):
            raise ConfigurationError("pass either client or credentials to AnthropicProvider")
        self.model = model
        self.max_tokens = max_tokens
        self._owns_client = client is None
        self._client: AsyncAnthropic = (
            client
            if client is not None
            else _make_client(api_key, auth_token, base_url, timeout, max_retries, token_provider)
        )
        version = self._client.default_headers.get("anthropic-version")
        self._sends_temperature = version == SAMPLING_API_VERSION
        self._warned_temperature = False

    def __repr__(self) -> str:
        base_url = mask_url(str(self._client.base_url))
        return f"AnthropicProvider(model={self.model!r}, base_url={base_url!r})"

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        params = self._params(request)
        try:
            message: Any = await self._client.messages.create(**params)
        except (self._sdk.AnthropicError, ValueError) as exc:
            raise self._error(exc) from None
        if not isinstance(getattr(message, "content", None), list):
            raise ProviderUnavailableError(
                "the API answered with something that is not a message: "
                + one_line(self._clean(str(message)))
            )
        return _response(message, params["model"])

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Text and tool-call events as they arrive, then one :class:`StreamDone`."""
        params = self._params(request)
        tool_ids: dict[int, str] = {}
        started = False
        try:
            # The SDK's stream helper also accumulates the message as received.
            async with self._client.messages.stream(**params) as events:
                # Dispatch on ``type``, never on the class: the SDK builds an event
                # or block type it does not know as the first member of its union.
                async for event in events:
                    if event.type == "message_start":
                        started = True
                    elif event.type == "content_block_start":
                        block: Any = event.content_block
                        if block.type == "tool_use":
                            tool_ids[event.index] = block.id
                            yield ToolCallStart(block.id, block.name)
                    elif event.type == "content_block_delta":
                        delta: Any = event.delta
                        if delta.type == "text_delta":
                            yield TextDelta(delta.text)
                        elif delta.type == "input_json_delta" and event.index in tool_ids:
                            yield ToolCallDelta(tool_ids[event.index], delta.partial_json)
                message: Any = events.current_message_snapshot if started else None
        except (self._sdk.AnthropicError, self._http.HTTPError, ValueError) as exc:
            raise self._error(exc) from None
        if message is None or message.stop_reason is None:
            raise ProviderUnavailableError("the stream ended before the message was complete")
        response = _response(message, params["model"])
        yield StreamDone(response.usage, response.finish_reason, response.message.vendor_data)

    async def aclose(self) -> None:
        """Close the HTTP connections of the client this provider created."""
        if self._owns_client:
            await self._client.close()

    # -- mapping -------------------------------------------------------------

    def _params(self, request: CompletionRequest) -> dict[str, Any]:
        model = request.model or self.model
        system, messages = _messages(request.messages, lambda m: _as_received(m, model))
        params: dict[str, Any] = {
            "model": model,
            "max_tokens": self.max_tokens if request.max_tokens is None else request.max_tokens,
            "messages": messages,
        }
        if system:
            params["system"] = system
        if request.tools:
            params["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
        if request.temperature is not None:
            if self._sends_temperature:
                params["extra_body"] = {"temperature": request.temperature}
            elif not self._warned_temperature:
                self._warned_temperature = True
                log.warning(
                    "temperature %s ignored: Anthropic API version 2026-10-21 removed it",
                    request.temperature,
                )
        return params

    def _error(self, exc: Exception) -> ProviderError:
        """Our error for the SDK's: what happened, with the status, never a credential.

        Gateways and proxies echo keys in their error bodies: every message is
        redacted, and callers raise it ``from None`` so the SDK's exception (whose
        text holds the raw body) is not chained into tracebacks.
        """
        error = self._classify(exc)
        clean = self._clean(error.message)
        error.message, error.args = clean, (clean,)
        return error

    def _clean(self, text: str) -> str:
        """``text`` without a URL password or a credential this client sent; applied
        before a body is cut to one line, whose cut could split a key past recognition."""
        from orra_di.auth.http import sent_tokens

        # A gateway may quote the bearer token it refused (orra_di.auth).
        secrets = [self._client.api_key, self._client.auth_token, *sent_tokens(self._client)]
        return redact(mask_url(text), secrets)

    def _classify(self, exc: Exception) -> ProviderError:
        sdk, http = self._sdk, self._http
        if (no_token := auth_error_in(exc)) is not None:  # the SDK wraps it as a connection error
            return no_token
        if isinstance(exc, sdk.APITimeoutError | http.TimeoutException):
            return ProviderTimeoutError("Anthropic did not answer in time")
        if isinstance(exc, sdk.APIConnectionError | http.TransportError):
            cause = exc.__cause__ if isinstance(exc, sdk.APIConnectionError) else None
            return ProviderUnavailableError(f"cannot reach Anthropic: {cause or exc!r}")
        if isinstance(exc, ValueError):
            return ProviderUnavailableError(f"the API sent a body that does not parse: {exc}")
        if not isinstance(exc, sdk.APIStatusError):
            return ProviderError(f"{type(exc).__name__}: {exc}")
        kind = exc.type if isinstance(exc.type, str) else None
        if exc.api_message is not None:
            detail = str(exc.api_message)
        else:  # a proxy's page, an empty body, JSON of another shape
            body = (
                exc.body if isinstance(exc.body, str) or exc.body is None else json.dumps(exc.body)
            )
            detail = one_line(self._clean(body or "")) or "(empty body)"
        if exc.status_code >= 400:
            status: int = exc.status_code
            label = f"HTTP {status}"
        else:  # an SSE ``error`` event on a stream that had started fine
            status = _STATUS_OF_TYPE.get(kind or "", 500)
            label = "stream error"
        text = f"{label} {kind}: {detail}" if kind else f"{label}: {detail}"
        if exc.request_id:
            text += f" (request id {exc.request_id})"
        if status in (401, 403):
            return ProviderAuthError(text)
        if status == 429:
            headers = exc.response.headers if exc.status_code == 429 else {}
            return RateLimitedError(retry_after_ms(headers), text)
        if status == 413 or (status == 400 and _TOO_LONG.search(text)):
            return ContextLengthExceededError(text)
        if status in (408, 504):
            return ProviderTimeoutError(text)
        if status >= 500:
            return ProviderUnavailableError(text)
        return ProviderBadRequestError(text)


def _messages(
    messages: Sequence[Message],
    as_received: Callable[[Message], list[dict[str, Any]] | None],
) -> tuple[str, list[dict[str, Any]]]:
    """The top-level ``system`` text and the alternating user/assistant turns.

    Messages with nothing to send are left out (the API refuses empty turns),
    and consecutive messages of one role merge into one turn.
    """
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == Role.SYSTEM:
            if message.content:
                system.append(message.content)
            continue
        blocks = as_received(message) or _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == message.role.value:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": message.role.value, "content": list(blocks)})
    for turn in turns:
        only = turn["content"][0]
        if len(turn["content"]) == 1 and only["type"] == "text":
            turn["content"] = only["text"]
    return "\n\n".join(system), turns


def _as_received(message: Message, model: str) -> list[dict[str, Any]] | None:
    """The API's own blocks for ``message`` if it is unchanged and ``model`` made it.

    They come from the message's ``anthropic`` vendor data, so they survive
    the store and a restart. Thinking blocks are bound to the model that
    wrote them, and a hook may have edited the message: either way (or if
    the stored data is not what this adapter writes) the turn is rebuilt
    from the neutral message, without thinking.
    """
    data: JsonValue = message.vendor(VENDOR)
    if not message.tool_calls or not isinstance(data, dict) or data.get("model") != model:
        return None
    blocks = data.get("content")
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks
    ):
        return None
    text = "".join(str(b.get("text", "")) for b in blocks if b["type"] == "text")
    calls = [
        (b.get("id"), b.get("name"), b.get("input")) for b in blocks if b["type"] == "tool_use"
    ]
    if text != message.content or calls != [
        (c.id, c.name, c.arguments) for c in message.tool_calls
    ]:
        return None
    return blocks


def _vendor_data(model: str, calls: list[ToolCall], received: Any) -> tuple[VendorData, ...]:
    """A tool-calling turn's blocks as received, when it has thinking to send back."""
    if not calls:
        return ()
    blocks: list[dict[str, Any]] = [b.to_dict() for b in received.content]
    if not any(b["type"] in _THINKING for b in blocks):
        return ()
    return (VendorData(vendor=VENDOR, data={"model": model, "content": blocks}),)


def _blocks(message: Message) -> list[dict[str, Any]]:
    """Tool results first (the API wants them leading a user turn), text, then tool calls."""
    blocks: list[dict[str, Any]] = []
    for result in message.tool_results:
        block: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": result.call_id,
            "content": result.content,
        }
        if result.is_error:
            block["is_error"] = True
        blocks.append(block)
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        # ``input`` must be an object; arguments that never parsed into one were
        # already answered with an error result, so ``{}`` loses nothing.
        arguments = call.arguments if isinstance(call.arguments, dict) else {}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments})
    return blocks


def _response(message: Any, model: str) -> CompletionResponse:
    """Text blocks joined, ``tool_use`` blocks as calls; other block types are skipped.

    A tool-calling turn with thinking also keeps every block as received, as
    vendor data for the next request (``model`` is the one asked for).
    """
    blocks: list[Any] = message.content
    text = "".join(b.text for b in blocks if b.type == "text")
    calls = [
        ToolCall(id=b.id, name=b.name, arguments=bounded_tool_arguments(b.input))
        for b in blocks
        if b.type == "tool_use"
    ]
    return CompletionResponse(
        message=Message.assistant(text, calls, vendor_data=_vendor_data(model, calls, message)),
        usage=_usage(message.usage),
        finish_reason=_finish(message.stop_reason),
    )


def _finish(stop_reason: str | None) -> FinishReason | str:
    if stop_reason is None:
        return FinishReason.STOP
    return _FINISH.get(stop_reason, stop_reason)


def _usage(reported: Any) -> Usage:
    """Billed tokens, with input normalised to include the cached part.

    Anthropic's ``input_tokens`` leaves out cache reads and writes; ours counts
    them (see :class:`~orra_di.provider.Usage`). The cache counts are absent
    (None) when caching was not involved.
    """
    counts = {name: getattr(reported, name, None) or 0 for name in _USAGE_FIELDS}
    counts["input_tokens"] += counts["cache_read_input_tokens"]
    counts["input_tokens"] += counts["cache_creation_input_tokens"]
    return Usage(**counts)
