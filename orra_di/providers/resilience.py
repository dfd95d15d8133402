"""Providers made of providers: fall back to another on failure, or swap at run time.

Retries with backoff live in the vendor SDKs (``llm.max_retries`` configures
them, and they honour the server's retry-after); what these add is what a
retry cannot do: move to another vendor or model when one is rate limited or
down, and replace the provider while the application runs (orra's
``DynamicProvider``, spec §2B.3).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence

import anyio

from orra_di.errors import (
    ConfigurationError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
)
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    Provider,
    StreamEvent,
    StreamingProvider,
    response_events,
)

__all__ = ["DynamicProvider", "FallbackProvider", "PlaceholderProvider", "stream_from"]

log = logging.getLogger("orra_di.providers")

FALLBACK_ON: tuple[type[ProviderError], ...] = (RateLimitedError, ProviderUnavailableError)
"""Rate limits, timeouts, 5xx and dropped connections: another provider may well succeed.
A bad request or a context overflow would fail the same way elsewhere, and an
auth error needs an operator, so those are raised at once."""


def stream_from(llm: Provider, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
    """``llm``'s stream, or its complete answer replayed as stream events."""
    if isinstance(llm, StreamingProvider):
        return llm.stream(request)
    return _replayed(llm, request)


async def _replayed(llm: Provider, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
    async for event in response_events(await llm.complete(request)):
        yield event


class FallbackProvider:
    """Tries each provider in order, moving on for the errors in ``fallback_on``.

    A stream falls back only before its first event: once text has reached
    the caller it cannot be taken back, so a later failure is raised.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        *,
        fallback_on: tuple[type[ProviderError], ...] = FALLBACK_ON,
    ) -> None:
        if not providers:
            raise ConfigurationError("FallbackProvider needs at least one provider")
        self.providers = list(providers)
        self.fallback_on = fallback_on

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        for position, llm in enumerate(self.providers):
            try:
                return await llm.complete(request)
            except self.fallback_on as exc:
                if position == len(self.providers) - 1:
                    raise
                log.warning("provider %d failed (%s); falling back", position, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        for position, llm in enumerate(self.providers):
            started = False
            try:
                async for event in stream_from(llm, request):
                    started = True
                    yield event
                return
            except self.fallback_on as exc:
                if started or position == len(self.providers) - 1:
                    raise
                log.warning("provider %d failed (%s); falling back", position, exc)

    async def aclose(self) -> None:
        for llm in self.providers:
            close = getattr(llm, "aclose", None)
            if close is not None:
                await close()


class PlaceholderProvider:
    """Stands in until a real provider is configured; every call is an auth error."""

    message = "Provider not configured. Please set your API key via the web UI or config file."

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise ProviderAuthError(self.message)


class DynamicProvider:
    """A provider that can be replaced while runs are in flight (hot swap).

    Each call uses the provider current when it started; a swap affects the
    calls that start after it.
    """

    def __init__(self, llm: Provider | None = None) -> None:
        self._llm: Provider = llm or PlaceholderProvider()
        self._configured = llm is not None
        self._lock = anyio.Lock()

    @classmethod
    def placeholder(cls) -> DynamicProvider:
        return cls()

    @property
    def is_configured(self) -> bool:
        return self._configured

    @property
    def current(self) -> Provider:
        return self._llm

    async def swap(self, llm: Provider) -> Provider:
        """Install ``llm``; returns the previous provider (close it when you are done)."""
        async with self._lock:
            previous, self._llm, self._configured = self._llm, llm, True
        return previous

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return await self._llm.complete(request)

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        return stream_from(self._llm, request)

    async def aclose(self) -> None:
        close = getattr(self._llm, "aclose", None)
        if close is not None:
            await close()
