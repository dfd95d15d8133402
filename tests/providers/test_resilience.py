"""RetryingProvider, FallbackProvider and DynamicProvider (spec §2B.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orra_di import (
    CompletionRequest,
    CompletionResponse,
    ConfigurationError,
    InMemoryStore,
    Message,
    Namespace,
    ProviderAuthError,
    ProviderBadRequestError,
    ProviderUnavailableError,
    RateLimitedError,
    Runtime,
    StreamDone,
    StreamEvent,
    TextDelta,
)
from orra_di.providers.resilience import (
    DynamicProvider,
    FallbackProvider,
    PlaceholderProvider,
    RetryingProvider,
)
from orra_di.testing import ScriptedProvider, reply

pytestmark = pytest.mark.anyio

REQUEST = CompletionRequest(messages=[Message.user("hi")])


async def test_falls_back_on_rate_limits_and_outages() -> None:
    first = ScriptedProvider([RateLimitedError(1000)])
    second = ScriptedProvider([ProviderUnavailableError("503")])
    third = ScriptedProvider([reply("from the third")])
    response = await FallbackProvider([first, second, third]).complete(REQUEST)
    assert response.message.content == "from the third"
    assert [len(p.requests) for p in (first, second, third)] == [1, 1, 1]


async def test_does_not_fall_back_on_errors_another_provider_would_repeat() -> None:
    backup = ScriptedProvider([reply("unused")])
    chain = FallbackProvider(
        [ScriptedProvider([ProviderBadRequestError("bad tool schema")]), backup]
    )
    with pytest.raises(ProviderBadRequestError):
        await chain.complete(REQUEST)
    assert backup.requests == []


async def test_the_last_error_is_raised_when_all_fail() -> None:
    chain = FallbackProvider(
        [ScriptedProvider([RateLimitedError(5)]), ScriptedProvider([RateLimitedError(7)])]
    )
    with pytest.raises(RateLimitedError) as caught:
        await chain.complete(REQUEST)
    assert caught.value.retry_after_ms == 7


async def test_streams_fall_back_before_the_first_event() -> None:
    chain = FallbackProvider(
        [ScriptedProvider([ProviderUnavailableError("down")]), ScriptedProvider([reply("ok")])]
    )
    events = [e async for e in chain.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "ok"


async def test_a_runtime_runs_through_the_fallback_chain() -> None:
    chain = FallbackProvider(
        [ScriptedProvider([RateLimitedError(None)]), ScriptedProvider([reply("served")])]
    )
    result = await Runtime(chain, InMemoryStore()).run(Namespace("u"), "hello")
    assert result.final_message.content == "served"


async def test_placeholder_returns_auth_error() -> None:
    with pytest.raises(ProviderAuthError, match="not configured"):
        await PlaceholderProvider().complete(REQUEST)
    dynamic = DynamicProvider.placeholder()
    assert not dynamic.is_configured
    with pytest.raises(ProviderAuthError, match="not configured"):
        await dynamic.complete(REQUEST)


async def test_swap_replaces_provider() -> None:
    dynamic = DynamicProvider.placeholder()
    previous = await dynamic.swap(ScriptedProvider([reply("Hello from mock!")]))
    assert isinstance(previous, PlaceholderProvider)
    assert dynamic.is_configured
    assert (await dynamic.complete(REQUEST)).message.content == "Hello from mock!"


async def test_with_provider_starts_configured_and_streams() -> None:
    dynamic = DynamicProvider(ScriptedProvider([reply("streamed")]))
    assert dynamic.is_configured
    events = [e async for e in dynamic.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"


async def test_retries_honour_retry_after_and_then_succeed() -> None:
    flaky = ScriptedProvider(
        [RateLimitedError(1), ProviderUnavailableError("502"), reply("third time")]
    )
    llm = RetryingProvider(flaky, max_retries=2, base_delay=0.001)
    assert (await llm.complete(REQUEST)).message.content == "third time"
    assert len(flaky.requests) == 3


async def test_retries_stop_after_max_retries() -> None:
    down = ScriptedProvider([ProviderUnavailableError("a"), ProviderUnavailableError("b")])
    with pytest.raises(ProviderUnavailableError, match="b"):
        await RetryingProvider(down, max_retries=1, base_delay=0.001).complete(REQUEST)


async def test_a_retry_after_beyond_max_wait_is_raised_at_once() -> None:
    slow_down = ScriptedProvider([RateLimitedError(3_600_000), reply("never")])
    with pytest.raises(RateLimitedError):
        await RetryingProvider(slow_down, max_retries=5, max_wait=60).complete(REQUEST)
    assert len(slow_down.requests) == 1


async def test_errors_that_would_repeat_are_not_retried() -> None:
    bad = ScriptedProvider([ProviderBadRequestError("schema"), reply("never")])
    with pytest.raises(ProviderBadRequestError):
        await RetryingProvider(bad, base_delay=0.001).complete(REQUEST)
    assert len(bad.requests) == 1


async def test_streams_are_retried_before_the_first_event() -> None:
    flaky = ScriptedProvider([ProviderUnavailableError("x"), reply("streamed")])
    events = [e async for e in RetryingProvider(flaky, base_delay=0.001).stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"


class BreaksMidStream:
    """Streams "Hel", then fails as a dropped connection would; later calls answer fully."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise AssertionError("only streams are under test")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        if self.calls == 1:
            yield TextDelta("Hel")
            raise self.error
        yield TextDelta("Hello")
        yield StreamDone()


async def drain(events: AsyncIterator[StreamEvent], seen: list[str]) -> None:
    async for event in events:
        if isinstance(event, TextDelta):
            seen.append(event.text)


@pytest.mark.parametrize("error", [ProviderUnavailableError("reset"), RateLimitedError(1)])
async def test_a_stream_that_fails_after_its_first_event_is_not_retried(error: Exception) -> None:
    flaky = BreaksMidStream(error)
    seen: list[str] = []
    with pytest.raises(type(error)):
        await drain(RetryingProvider(flaky, max_retries=3, base_delay=0.001).stream(REQUEST), seen)
    assert seen == ["Hel"]  # retrying would have sent "Hel" + "Hello"
    assert flaky.calls == 1


@pytest.mark.parametrize("error", [ProviderUnavailableError("reset"), RateLimitedError(1)])
async def test_a_stream_that_fails_after_its_first_event_does_not_fall_back(
    error: Exception,
) -> None:
    backup = ScriptedProvider([reply("from the backup")])
    seen: list[str] = []
    with pytest.raises(type(error)):
        await drain(FallbackProvider([BreaksMidStream(error), backup]).stream(REQUEST), seen)
    assert seen == ["Hel"]
    assert backup.requests == []


async def test_a_run_streaming_through_both_shows_the_text_once_and_fails() -> None:
    """What a user sees: the partial text once, then the error; the user turn is kept."""
    store = InMemoryStore()
    llm = FallbackProvider(
        [
            RetryingProvider(BreaksMidStream(ProviderUnavailableError("reset")), base_delay=0),
            ScriptedProvider([reply("from the backup")]),
        ]
    )
    seen: list[str] = []
    with pytest.raises(ProviderUnavailableError, match="reset"):
        async with Runtime(llm, store).run_streaming(Namespace("u"), "hi") as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    seen.append(event.text)
    assert seen == ["Hel"]
    session = await store.load(Namespace("u"))
    assert session is not None
    assert [m.content for m in session.messages] == ["hi"]


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the retrying provider asks for, taken without waiting."""
    asked: list[float] = []

    async def sleep(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr("orra_di.providers.resilience.anyio.sleep", sleep)
    return asked


def outages(n: int) -> list[object]:
    return [ProviderUnavailableError(f"502 #{i}") for i in range(n)]


async def test_retry_pauses_double_from_base_delay_up_to_max_wait(pauses: list[float]) -> None:
    flaky = ScriptedProvider([*outages(4), reply("fifth time")])
    llm = RetryingProvider(flaky, max_retries=4, base_delay=0.5, max_wait=1.5)
    assert (await llm.complete(REQUEST)).message.content == "fifth time"
    assert pauses == [0.5, 1.0, 1.5, 1.5]
    assert flaky.requests == [REQUEST] * 5  # the request itself, each time


async def test_stream_retry_pauses_double_the_same_way(pauses: list[float]) -> None:
    flaky = ScriptedProvider([*outages(3), reply("streamed")])
    llm = RetryingProvider(flaky, max_retries=3, base_delay=0.25, max_wait=10)
    events = [e async for e in llm.stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"
    assert pauses == [0.25, 0.5, 1.0]
    assert flaky.requests == [REQUEST] * 4


async def test_defaults_retry_twice_from_half_a_second(pauses: list[float]) -> None:
    down = ScriptedProvider(outages(3))
    with pytest.raises(ProviderUnavailableError, match="502 #2"):
        await RetryingProvider(down).complete(REQUEST)
    assert pauses == [0.5, 1.0]
    # The default max_wait is a minute: a retry-after just over it is not waited for.
    slow = ScriptedProvider([RateLimitedError(61_000), reply("never")])
    with pytest.raises(RateLimitedError):
        await RetryingProvider(slow).complete(REQUEST)
    assert pauses == [0.5, 1.0]


async def test_a_retry_after_of_exactly_max_wait_is_waited_for(pauses: list[float]) -> None:
    limited = ScriptedProvider([RateLimitedError(2_000), reply("ok")])
    llm = RetryingProvider(limited, max_wait=2)
    assert (await llm.complete(REQUEST)).message.content == "ok"
    assert pauses == [2.0]


async def test_each_retry_is_logged_with_its_cause(
    pauses: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    llm = RetryingProvider(ScriptedProvider([*outages(1), reply("ok")]))
    await llm.complete(REQUEST)
    events = RetryingProvider(ScriptedProvider([*outages(1), reply("ok")])).stream(REQUEST)
    _ = [e async for e in events]
    assert [r.getMessage() for r in caplog.records].count(
        "provider failed (provider unavailable: 502 #0); retrying in 0.50s"
    ) == 2


@pytest.mark.parametrize(
    "bad", [{"max_retries": -1}, {"base_delay": -0.1}, {"max_wait": -1.0}], ids=str
)
def test_negative_retries_or_delays_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match=r"^retries and delays must not be negative$"):
        RetryingProvider(ScriptedProvider([]), **bad)  # type: ignore[arg-type]


async def test_zero_retries_and_zero_waits_are_allowed(pauses: list[float]) -> None:
    down = ScriptedProvider([*outages(1), reply("never")])
    llm = RetryingProvider(down, max_retries=0, base_delay=0, max_wait=0)
    with pytest.raises(ProviderUnavailableError):
        await llm.complete(REQUEST)
    assert pauses == []


async def test_fallback_hands_each_provider_the_request() -> None:
    first = ScriptedProvider(outages(1))
    second = ScriptedProvider([reply("second")])
    assert (await FallbackProvider([first, second]).complete(REQUEST)).message.content == "second"
    assert first.requests == [REQUEST]
    assert second.requests == [REQUEST]
    with pytest.raises(ConfigurationError, match=r"^FallbackProvider needs at least one provider$"):
        FallbackProvider([])


class Closable:
    """A provider that records its closing, or fails to close."""

    def __init__(self, name: str, closed: list[str], *, fails: bool = False) -> None:
        self.name, self.closed, self.fails = name, closed, fails

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return reply(self.name)

    async def aclose(self) -> None:
        self.closed.append(self.name)
        if self.fails:
            raise OSError(f"{self.name} would not close")


async def test_wrappers_close_what_they_wrap() -> None:
    closed: list[str] = []
    await RetryingProvider(Closable("retried", closed)).aclose()
    await DynamicProvider(Closable("current", closed)).aclose()
    assert closed == ["retried", "current"]


async def test_fallback_closes_every_provider_and_raises_the_first_failure() -> None:
    closed: list[str] = []
    chain = FallbackProvider(
        [
            Closable("a", closed),
            Closable("b", closed, fails=True),
            Closable("c", closed, fails=True),
        ]
    )
    with pytest.raises(OSError, match="b would not close"):
        await chain.aclose()
    assert closed == ["a", "b", "c"]


class CompleteOnly:
    """A provider without ``stream``."""

    def __init__(self, script: list[object]) -> None:
        self.inner = ScriptedProvider(script)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return await self.inner.complete(request)


async def test_a_stream_falls_back_to_a_provider_that_can_only_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = ScriptedProvider(outages(1))
    plain = CompleteOnly([reply("replayed")])
    events = [e async for e in FallbackProvider([down, plain]).stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "replayed"
    assert isinstance(events[-1], StreamDone)
    assert plain.inner.requests == [REQUEST]
    assert "provider 0 failed (provider unavailable: 502 #0); falling back" in [
        r.getMessage() for r in caplog.records
    ]


async def test_a_chain_of_three_tries_each_in_turn(caplog: pytest.LogCaptureFixture) -> None:
    first, second = ScriptedProvider(outages(1)), ScriptedProvider([RateLimitedError(1)])
    third = ScriptedProvider([reply("third"), reply("third again")])
    chain = FallbackProvider([first, second, third])
    assert (await chain.complete(REQUEST)).message.content == "third"
    assert [r.getMessage() for r in caplog.records] == [
        "provider 0 failed (provider unavailable: 502 #0); falling back",
        "provider 1 failed (rate limited, retry after 1ms); falling back",
    ]
    events = [
        e
        async for e in FallbackProvider(
            [ScriptedProvider(outages(1)), ScriptedProvider(outages(1)), third]
        ).stream(REQUEST)
    ]
    assert third.requests == [REQUEST, REQUEST]
    assert any(isinstance(e, StreamDone) for e in events)


async def test_the_dynamic_provider_hands_over_the_request() -> None:
    inner = ScriptedProvider([reply("a"), reply("b")])
    dynamic = DynamicProvider(inner)
    await dynamic.complete(REQUEST)
    _ = [e async for e in dynamic.stream(REQUEST)]
    assert inner.requests == [REQUEST, REQUEST]


async def test_a_stream_raises_the_last_error_when_every_provider_fails() -> None:
    chain = FallbackProvider(
        [ScriptedProvider(outages(1)), ScriptedProvider([RateLimitedError(5)])]
    )
    with pytest.raises(RateLimitedError):
        _ = [e async for e in chain.stream(REQUEST)]


async def test_a_retry_after_just_over_max_wait_is_raised(pauses: list[float]) -> None:
    limited = ScriptedProvider([RateLimitedError(2_001), reply("never")])
    with pytest.raises(RateLimitedError):
        await RetryingProvider(limited, max_wait=2).complete(REQUEST)
    assert pauses == []


async def test_a_stream_retry_waits_for_the_servers_retry_after(pauses: list[float]) -> None:
    limited = ScriptedProvider([RateLimitedError(1_500), reply("streamed")])
    events = [e async for e in RetryingProvider(limited, base_delay=0.25).stream(REQUEST)]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "streamed"
    assert pauses == [1.5]
