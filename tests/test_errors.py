"""The one exception tree and the exact texts the model and the operator see."""

from __future__ import annotations

import inspect
import pickle

import pytest

from orra_di import errors
from orra_di.errors import (
    ConfigurationError,
    ContextLengthExceededError,
    MaxTurnsExceeded,
    NamespaceError,
    OrraError,
    OrraRuntimeError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    RateLimitedError,
    SessionBusyError,
    StoreError,
    ToolError,
    ToolExecutionError,
    ToolInputError,
)

ALL_ERRORS = [getattr(errors, name) for name in errors.__all__]


def test_all_exports_every_exception_class() -> None:
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    }
    assert set(errors.__all__) == defined


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_error_derives_from_orra_error(cls: type[Exception]) -> None:
    assert issubclass(cls, OrraError)
    assert issubclass(cls, Exception)


def test_the_tree() -> None:
    assert issubclass(NamespaceError, ValueError)
    for cls in (
        ProviderAuthError,
        RateLimitedError,
        ContextLengthExceededError,
        ProviderUnavailableError,
    ):
        assert issubclass(cls, ProviderError)
    assert issubclass(ToolInputError, ToolError)
    assert issubclass(ToolExecutionError, ToolError)
    assert issubclass(MaxTurnsExceeded, OrraRuntimeError)
    # Configuration mistakes are apart from run-time failures.
    for runtime_cls in (ProviderError, StoreError, ToolError, SessionBusyError, OrraRuntimeError):
        assert not issubclass(runtime_cls, ConfigurationError)
        assert not issubclass(ConfigurationError, runtime_cls)
    assert not issubclass(ToolError, ProviderError)
    assert not issubclass(StoreError, ProviderError)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ProviderError("x"), "provider error: x"),
        (ProviderAuthError("x"), "authentication failed: x"),
        (RateLimitedError(1000), "rate limited, retry after 1000ms"),
        (RateLimitedError(retry_after_ms=None), "rate limited, retry after unknown"),
        (ContextLengthExceededError("x"), "context length exceeded: x"),
        (ProviderUnavailableError("x"), "provider unavailable: x"),
        (StoreError("x"), "storage error: x"),
        (ToolError("x"), "tool error: x"),
        (ToolInputError("x"), "invalid input: x"),
        (ToolExecutionError("x"), "execution failed: x"),
        (MaxTurnsExceeded(3), "max turns (3) exceeded"),
        (ConfigurationError("set ORRA_LLM__MODEL"), "set ORRA_LLM__MODEL"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else "",
)
def test_exact_texts(error: OrraError, text: str) -> None:
    assert str(error) == text


def test_provider_errors_keep_the_bare_message() -> None:
    err = ProviderAuthError("bad key")
    assert err.message == "bad key"
    # Not "provider error: provider error: ..." (§5.1/7).
    assert str(ProviderError("boom")).count("provider error") == 1
    assert RateLimitedError(5).message == "rate limited"
    assert RateLimitedError(5, "slow down").message == "slow down"


def test_tool_error_message_attribute() -> None:
    err = ToolInputError("missing 'text' field")
    assert err.message == "missing 'text' field"
    assert err.prefix == "invalid input"


def test_max_turns_exceeded_keeps_the_number() -> None:
    err = MaxTurnsExceeded(7)
    assert err.max_turns == 7
    assert str(err) == "max turns (7) exceeded"


def test_session_busy_error_names_the_key() -> None:
    refused = SessionBusyError("acme:alice")
    assert refused.key == "acme:alice"
    assert refused.waited is None
    assert "'acme:alice'" in str(refused)
    assert "refused at once" in str(refused)

    waited = SessionBusyError("acme:bob", waited=2.5)
    assert "'acme:bob'" in str(waited)
    assert "waited 2.5s" in str(waited)
    assert waited.waited == 2.5


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("x"),
        ProviderAuthError("x"),
        RateLimitedError(1000),
        RateLimitedError(None, "slow"),
        ContextLengthExceededError("x"),
        ProviderUnavailableError("x"),
        StoreError("x"),
        ToolInputError("x"),
        ToolExecutionError("x"),
        SessionBusyError("acme:alice", 1.5),
        SessionBusyError("acme:alice"),
        MaxTurnsExceeded(3),
        NamespaceError("bad"),
        ConfigurationError("bad"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling(error: OrraError) -> None:
    # Errors cross process and thread-pool boundaries; they must rebuild exactly.
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert vars(restored) == vars(error)


def test_catching_orra_error_catches_everything() -> None:
    for err in (MaxTurnsExceeded(1), SessionBusyError("k"), RateLimitedError(1)):
        with pytest.raises(OrraError):
            raise err
