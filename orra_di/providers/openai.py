"""OpenAI Chat Completions, and the servers that speak it (Ollama, vLLM, llama.cpp).

Built on the official ``openai`` SDK (``pip install "orra-di[openai]"``), so
connection pooling, timeouts and retries with backoff (honouring the server's
``retry-after``) are the SDK's. What this module adds is the translation to
and from orra-di's provider-neutral types, and orra's bugs fixed (spec §5.3):

- a tool result's ``is_error`` reaches the model: its content is prefixed with
  ``"ERROR: "`` (Chat Completions has no error flag on ``tool`` messages), and
  text sent along with tool results becomes a following ``user`` message
  instead of being dropped (§5.3/15);
- the token limit goes out as ``max_completion_tokens`` to the models that
  refuse ``max_tokens`` (§5.3/15, see :func:`token_parameter_for`);
- streamed tool-call chunks are matched to their call by ``index``, since only
  the first chunk of a call carries its id, and usage is requested with
  ``stream_options.include_usage`` (§5.3/15);
- ``base_url`` is the API root, ``http://localhost:11434/v1``, as every OpenAI
  client expects; orra's full ``…/chat/completions`` form is accepted too (§5.3/16).

Invalid JSON arguments from the model are kept as the raw string, so the tool
answers with an ``invalid input`` error result the model can correct, instead
of being silently replaced by ``{}``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr

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
from orra_di.message import JsonValue, Message, Role, ToolCall
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
    parse_tool_arguments,
)
from orra_di.providers._http import endpoint, one_line, retry_after_ms
from orra_di.redaction import mask_url, redact
from orra_di.tool import ToolDefinition

if TYPE_CHECKING:
    from types import TracebackType

    import openai
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionChunk
    from openai.types.chat.chat_completion_chunk import ChoiceDelta

    from orra_di.auth.tokens import TokenProvider

__all__ = ["ERROR_PREFIX", "PLACEHOLDER_API_KEY", "OpenAIProvider", "token_parameter_for"]

DEFAULT_MODEL = "gpt-4o"
"""The model for OpenAI's own API when none is given (another server is asked instead)."""

TokenParameter = Literal["auto", "max_tokens", "max_completion_tokens"]

PLACEHOLDER_API_KEY = "not-needed"
"""Sent to the server at ``base_url`` when no key is given: local servers ignore
it, and ``OPENAI_API_KEY`` is not forwarded to a host other than OpenAI's."""

ERROR_PREFIX = "ERROR: "
"""Marks a failed tool result, since a ``tool`` message has no error flag."""

# o1, o3, o4-mini…, gpt-5 and later reject ``max_tokens``; an optional
# "vendor/" prefix (as routers name models) is allowed.
_COMPLETION_TOKENS_MODELS = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-(?:[5-9]|\d{2,}))", re.I)

_FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": FinishReason.STOP,
    "tool_calls": FinishReason.TOOL_USE,
    "function_call": FinishReason.TOOL_USE,
    "length": FinishReason.MAX_TOKENS,
}

# Billing errors share 429 with rate limits, but waiting does not end them.
_QUOTA_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
    }
)
# OpenAI's code, llama.cpp's type, and the wording of vLLM, llama.cpp and OpenAI.
_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_CONTEXT_WORDS = re.compile(r"context[ _-]?(?:length|window|size)", re.I)


def token_parameter_for(model: str) -> Literal["max_tokens", "max_completion_tokens"]:
    """The request field for the token limit when ``token_parameter="auto"``.

    Reasoning models (o1, o3, o4…) and gpt-5 onwards accept only
    ``max_completion_tokens``; everything else gets ``max_tokens``, which older
    OpenAI models and every compatible server understand.
    """
    return "max_completion_tokens" if _COMPLETION_TOKENS_MODELS.match(model) else "max_tokens"


class OpenAIProvider:
    """A :class:`~orra_di.provider.StreamingProvider` for the Chat Completions API.

    Without ``api_key`` the key comes from ``OPENAI_API_KEY``, unless
    ``base_url`` points at another server (Ollama, vLLM, llama.cpp), which gets
    :data:`PLACEHOLDER_API_KEY`. With ``model=None`` the server is asked which
    model it serves (``GET /models``) before the first request: a local server
    serving one model needs no model name. A ready ``client`` (an ``AsyncOpenAI`` or
    ``AsyncAzureOpenAI``) replaces the connection arguments; it stays the
    caller's to close. A ``token_provider`` (:mod:`orra_di.auth`) replaces the
    key: each request carries its bearer token, renewed before it expires.
    """

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str | None = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        max_tokens: int = 4096,
        token_parameter: TokenParameter = "auto",
        client: Any | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigurationError(
                f"the OpenAI provider needs the openai SDK: {install_hint('openai')}"
            ) from None
        if token_parameter not in ("auto", "max_tokens", "max_completion_tokens"):
            raise ConfigurationError(
                f"token_parameter must be 'auto', 'max_tokens' or 'max_completion_tokens', "
                f"not {token_parameter!r}"
            )
        self.model: str | None = model
        self.max_tokens = max_tokens
        self.token_parameter = token_parameter
        self._client: openai.AsyncOpenAI
        if client is not None:
            if api_key is not None or base_url is not None or token_provider is not None:
                raise ConfigurationError(
                    "give either client or api_key/base_url/token_provider, not both"
                )
            self._client = client
            self._owns_client = False
            self._key = SecretStr(str(getattr(client, "api_key", "") or ""))
            return
        if base_url is not None:
            base_url = _api_root(base_url)
        http_client = None
        if token_provider is None:
            self._key = _resolve_key(api_key, base_url)
        else:  # the provider's token replaces the key on every request (orra_di.auth)
            if api_key is not None:
                raise ConfigurationError("give either api_key or token_provider, not both")
            from orra_di.auth.http import bearer_http_client

            self._key = SecretStr(PLACEHOLDER_API_KEY)
            http_client = bearer_http_client(openai.DefaultAsyncHttpxClient, token_provider)
        self._client = openai.AsyncOpenAI(
            api_key=self._key.get_secret_value(),
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )
        self._owns_client = True

    def __repr__(self) -> str:
        base_url = mask_url(str(self._client.base_url))
        return f"OpenAIProvider(model={self.model!r}, base_url={base_url!r})"

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        import openai

        params = self._params(request, request.model or await self.discover_model())
        try:
            completion: ChatCompletion = await self._client.chat.completions.create(**params)
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        except json.JSONDecodeError:
            raise _not_an_api("a body that is not JSON") from None
        choices = getattr(completion, "choices", None)
        if not isinstance(choices, list) or not choices or choices[0].message is None:
            raise _not_an_api(one_line(self._redact(str(completion))))
        choice = completion.choices[0]
        calls = [
            ToolCall(
                id=call.id or _new_call_id(),
                name=function.name,
                arguments=parse_tool_arguments(function.arguments),
            )
            for call in choice.message.tool_calls or ()
            # Compatible servers may omit "type"; custom (non-function) calls have no function.
            if (function := getattr(call, "function", None)) is not None
        ]
        return CompletionResponse(
            message=Message.assistant(choice.message.content or "", calls),
            usage=_usage(completion.usage),
            finish_reason=_finish_reason(choice.finish_reason),
        )

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        """Yield text and tool-call pieces as they arrive, then :class:`StreamDone`.

        A stream that ends before the model said why it stopped (a dropped
        connection) raises :class:`ProviderUnavailableError` rather than
        passing a cut-off answer for a complete one.
        """
        import openai

        params = self._params(request, request.model or await self.discover_model())
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        state = _StreamState()
        try:
            create = self._client.chat.completions.create
            chunks: openai.AsyncStream[ChatCompletionChunk] = await create(**params)
            async with chunks:
                async for chunk in chunks:
                    for event in state.feed(chunk):
                        yield event
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        except json.JSONDecodeError:
            raise _not_an_api("an event that is not JSON") from None
        yield state.done()

    async def discover_model(self) -> str:
        """The model requests name when they name none: the one given, else the server's.

        Ollama, vLLM and llama.cpp list what they serve at ``GET /models``; one
        model there is the model to use. None or several, or a server without
        the endpoint, is a :class:`ConfigurationError` naming ``ORRA_LLM__MODEL``.
        """
        if self.model is not None:
            return self.model
        import openai

        where = endpoint(str(self._client.base_url))
        try:
            names = sorted({m.id async for m in self._client.models.list()})
        except openai.APIStatusError as exc:
            raise ConfigurationError(
                f"no model is set and the server did not list its models (GET {where}/models: "
                f"{self._error(exc)}): set ORRA_LLM__MODEL (or pass model=)"
            ) from None
        except openai.OpenAIError as exc:
            raise self._error(exc) from None
        if len(names) != 1:
            served = (
                f"{len(names)} models ({', '.join(names[:10])}{', …' if len(names) > 10 else ''})"
            )
            raise ConfigurationError(
                f"no model is set and the server at {where} serves "
                f"{served if names else 'no model'}: set ORRA_LLM__MODEL to the model to use "
                "(or pass model=)"
            )
        self.model = names[0]
        return self.model

    async def aclose(self) -> None:
        """Close the SDK client's connections (a ``client`` passed in is left open)."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> OpenAIProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- request -------------------------------------------------------------

    def _params(self, request: CompletionRequest, model: str) -> dict[str, Any]:
        limit = self.token_parameter
        if limit == "auto":
            limit = token_parameter_for(model)
        params: dict[str, Any] = {
            "model": model,
            "messages": _messages(request.messages),
            limit: self.max_tokens if request.max_tokens is None else request.max_tokens,
        }
        if request.tools:
            params["tools"] = [_tool(d) for d in request.tools]
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    # -- errors --------------------------------------------------------------

    def _error(self, exc: openai.OpenAIError) -> ProviderError:
        """The SDK's exception as ours, with the key scrubbed from every message."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return ProviderTimeoutError("no answer within the timeout")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause else exc.message
            where = endpoint(str(self._client.base_url))
            return ProviderUnavailableError(self._redact(f"connection failed to {where}: {reason}"))
        if not isinstance(exc, openai.APIError):
            return ProviderError(self._redact(f"{type(exc).__name__}: {exc}"))
        status = exc.status_code if isinstance(exc, openai.APIStatusError) else None
        codes = {c for c in (exc.code, exc.type) if c}
        message = self._redact(_describe(exc, status, self._redact))
        if status in (401, 403):
            return ProviderAuthError(message)
        if codes & _QUOTA_CODES:
            # Not RateLimitedError: retrying or falling back will not refill the account.
            return ProviderError(f"quota exhausted, check the plan and billing: {message}")
        if isinstance(exc, openai.APIStatusError) and status == 429:
            return RateLimitedError(retry_after_ms(exc.response.headers), message)
        if codes & _CONTEXT_CODES or _CONTEXT_WORDS.search(_error_message(exc.body) or ""):
            return ContextLengthExceededError(message)
        if status == 408:
            return ProviderTimeoutError(message)
        if status is None or status >= 500 or status == 409:
            return ProviderUnavailableError(message)
        if status >= 400:
            return ProviderBadRequestError(message)
        return ProviderError(message)

    def _redact(self, text: str) -> str:
        from orra_di.auth.http import sent_tokens

        # A gateway may quote the bearer token it refused (orra_di.auth).
        return redact(mask_url(text), [self._key.get_secret_value(), *sent_tokens(self._client)])


# -- mapping helpers ------------------------------------------------------------


def _resolve_key(api_key: str | SecretStr | None, base_url: str | None) -> SecretStr:
    if isinstance(api_key, SecretStr):
        return api_key
    if api_key:
        return SecretStr(api_key)
    if base_url is not None:
        return SecretStr(PLACEHOLDER_API_KEY)
    from_env = os.environ.get("OPENAI_API_KEY")
    if not from_env:
        raise ConfigurationError(
            "no OpenAI API key: pass api_key or set OPENAI_API_KEY "
            "(for Ollama, vLLM or llama.cpp give base_url, e.g. http://localhost:11434/v1)"
        )
    return SecretStr(from_env)


def _api_root(base_url: str) -> str:
    """``…/v1`` from ``…/v1/`` or orra's full ``…/v1/chat/completions`` URL."""
    root = base_url.rstrip("/")
    return root.removesuffix("/chat/completions")


def _messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == Role.ASSISTANT and m.tool_calls:
            out.append(
                {
                    "role": "assistant",
                    "content": m.content or None,
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": _arguments_json(c.arguments)},
                        }
                        for c in m.tool_calls
                    ],
                }
            )
            continue
        for r in m.tool_results:
            content = ERROR_PREFIX + r.content if r.is_error else r.content
            out.append({"role": "tool", "tool_call_id": r.call_id, "content": content})
        if m.content or not m.tool_results:
            out.append({"role": m.role.value, "content": m.content})
    return out


def _arguments_json(arguments: JsonValue) -> str:
    """Arguments as the JSON text the API carries; raw text the model sent stays as it was."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps({} if arguments is None else arguments, ensure_ascii=False)


def _tool(definition: ToolDefinition) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": definition.name,
            "description": definition.description,
            "parameters": definition.input_schema,
        },
    }


def _finish_reason(reason: str | None) -> FinishReason | str:
    if not reason:
        return FinishReason.STOP
    return _FINISH_REASONS.get(reason, reason)


def _usage(usage: CompletionUsage | None) -> Usage:
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_input_tokens=getattr(details, "cached_tokens", None) or 0,
        cache_creation_input_tokens=getattr(details, "cache_write_tokens", None) or 0,
    )


def _new_call_id() -> str:
    """For servers that send a tool call without an id; results are matched by it."""
    return f"call_{uuid.uuid4().hex[:24]}"


class _StreamState:
    """What a stream has said so far: which call each ``index`` is, usage, finish reason."""

    def __init__(self) -> None:
        self._ids: dict[int, str] = {}
        self._finish: str | None = None
        self._usage = Usage()
        self._chunks = 0

    def feed(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        self._chunks += 1
        events: list[StreamEvent] = []
        if chunk.usage is not None:
            self._usage = _usage(chunk.usage)
        for choice in chunk.choices or ():
            # The SDK does not validate: a server that leaves out the delta of
            # its last chunk (as some do) gives None here.
            if choice.delta is not None:
                events.extend(self._delta(choice.delta))
            if choice.finish_reason:
                self._finish = choice.finish_reason
        return events

    def _delta(self, delta: ChoiceDelta) -> Iterator[StreamEvent]:
        if delta.content:
            yield TextDelta(delta.content)
        for piece in delta.tool_calls or ():
            function = piece.function
            call_id = self._ids.get(piece.index)
            # A new id under a known index is a new call: some compatible
            # servers number every parallel call 0.
            if call_id is None or (piece.id and piece.id != call_id):
                call_id = self._ids[piece.index] = piece.id or _new_call_id()
                yield ToolCallStart(call_id, (function.name or "") if function else "")
            if function and function.arguments:
                yield ToolCallDelta(call_id, function.arguments)

    def done(self) -> StreamDone:
        if self._finish is None and not self._chunks:
            raise ProviderUnavailableError(
                'the server sent no stream events: a server that ignores "stream": true '
                "answers with one JSON body, which a stream cannot read; run without "
                "streaming (Runtime.run, orra-di ask) against it, or use a server that streams"
            )
        if self._finish is None:
            raise ProviderUnavailableError("the stream ended before the model finished its answer")
        return StreamDone(self._usage, _finish_reason(self._finish))


# -- error helpers --------------------------------------------------------------


def _not_an_api(answer: str) -> ProviderError:
    return ProviderError(
        f"the server answered with {answer}, not a chat completion: "
        "is base_url the API root (e.g. http://localhost:11434/v1)?"
    )


def _error_message(body: object) -> str | None:
    """``error.message`` of a JSON error body (the SDK unwraps ``error``), or the raw text."""
    if isinstance(body, Mapping):
        message = body.get("message")
        return message if isinstance(message, str) else None
    return body if isinstance(body, str) else None


def _describe(exc: openai.APIError, status: int | None, clean: Callable[[str], str]) -> str:
    """``HTTP 429 rate_limit_exceeded: <message> (request req_…)``, whatever the body was.

    The body is ``clean``-ed before it is cut to one line: a key cut in two would
    no longer match the redaction, and its first part would show.
    """
    label = next((c for c in (exc.code, exc.type) if c and not c.isdigit()), None)
    head = " ".join(p for p in ("" if status is None else f"HTTP {status}", label or "") if p)
    detail = _error_message(exc.body) or (exc.message if status is None else "")
    text = ": ".join(p for p in (head, one_line(clean(detail))) if p) or "unknown error"
    request_id = getattr(exc, "request_id", None)
    return f"{text} (request {request_id})" if request_id else text
