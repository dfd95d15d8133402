"""Providers made of providers: retry, fall back to another, or swap at run time.

:class:`RetryingProvider` retries rate limits and outages with exponential
backoff, honouring the server's retry-after but never sleeping longer than
``max_wait`` (the vendor SDKs would sleep whatever the server says; the
container gives them ``max_retries=0`` and wraps them in this instead).
:class:`FallbackProvider` moves to another vendor or model when one is rate
limited or down; :class:`DynamicProvider` replaces the provider while the
application runs (orra's hot swap, spec §2B.3).
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
    close_provider,
    closing_stream,
    response_events,
)

__all__ = [
    "DynamicProvider",
    "FallbackProvider",
    "PlaceholderProvider",
    "RetryingProvider",
    "stream_from",
]

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


class RetryingProvider:
    """Retries ``llm`` on rate limits and outages, ``max_retries`` times at most.

    The pause doubles from ``base_delay``, or is the server's retry-after when
    it sent one. A retry-after longer than ``max_wait`` is not waited for: the
    error is raised at once, so a :class:`FallbackProvider` around this can
    move on instead of the run hanging for an hour. A stream is retried only
    before its first event.
    """

    def __init__(
        self,
        llm: Provider,
        *,
        max_retries: int = 2,
        base_delay: float = 0.5,
        max_wait: float = 60.0,
        retry_on: tuple[type[ProviderError], ...] = FALLBACK_ON,
    ) -> None:
        if max_retries < 0 or base_delay < 0 or max_wait < 0:
            raise ConfigurationError("retries and delays must not be negative")
        self.llm = llm
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_wait = max_wait
        self.retry_on = retry_on

    def _pause(self, attempt: int, error: ProviderError) -> float | None:
        """Seconds to wait before the next attempt, or None to give up now."""
        if attempt >= self.max_retries:
            return None
        hint: int | None = getattr(error, "retry_after_ms", None)
        if hint is not None:  # the server's word: wait for it, or not at all
            return hint / 1000 if hint / 1000 <= self.max_wait else None
        return min(self.base_delay * 2.0**attempt, self.max_wait)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        attempt = 0
        while True:
            try:
                return await self.llm.complete(request)
            except self.retry_on as exc:
                pause = self._pause(attempt, exc)
                if pause is None:
                    raise
                log.warning("provider failed (%s); retrying in %.2fs", exc, pause)
                await anyio.sleep(pause)
                attempt += 1

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        attempt = 0
        while True:
            started = False
            try:
                async with closing_stream(stream_from(self.llm, request)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except self.retry_on as exc:
                pause = None if started else self._pause(attempt, exc)
                if pause is None:
                    raise
                log.warning("provider failed (%s); retrying in %.2fs", exc, pause)
                await anyio.sleep(pause)
                attempt += 1

    async def aclose(self) -> None:
        await close_provider(self.llm)


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
                async with closing_stream(stream_from(llm, request)) as events:
                    async for event in events:
                        started = True
                        yield event
                return
            except self.fallback_on as exc:
                if started or position == len(self.providers) - 1:
                    raise
                log.warning("provider %d failed (%s); falling back", position, exc)

    async def aclose(self) -> None:
        """Close every provider, even when one of them fails to close."""
        failures: list[Exception] = []
        for llm in self.providers:
            try:
                await close_provider(llm)
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


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
        previous, self._llm, self._configured = self._llm, llm, True
        return previous

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return await self._llm.complete(request)

    def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        return stream_from(self._llm, request)

    async def aclose(self) -> None:
        await close_provider(self._llm)
