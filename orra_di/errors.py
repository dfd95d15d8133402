"""The one exception tree of orra-di.

Every error the library raises derives from :class:`OrraError`, so a host
application can catch ours without catching a dependency-injector, SDK or
driver exception type. Configuration mistakes (found at start-up, fixed by
the operator) are kept apart from run-time failures (a provider, a store, a
tool or a busy session), which callers may retry or report.

```
OrraError
├── ConfigurationError            bad settings or wiring; fix and restart
├── NamespaceError (ValueError)   a namespace that cannot be a session key
├── ProviderError                 the LLM call failed
│   ├── ProviderAuthError
│   │   └── AuthError             no token from the token endpoint (auth/)
│   ├── RateLimitedError          .retry_after_ms
│   ├── ContextLengthExceededError
│   ├── ProviderBadRequestError   the vendor refused the request as malformed
│   └── ProviderUnavailableError  5xx, dropped connections: retry or fall back
│       └── ProviderTimeoutError
├── StoreError                    the session store failed
├── ToolError                     raised by a tool; becomes an error result
│   ├── ToolInputError            "invalid input: ..."
│   └── ToolExecutionError        "execution failed: ..."
├── SessionBusyError              another run holds the session
├── VoiceError                    speech-to-text or text-to-speech failed (voice/)
├── PluginError                   a plugin failed to load, start or stop (.plugin names it)
├── ProjectError                  a project is missing, exists already, or is inactive
├── ApprovalError                 an approval id that is not one, or not answerable
├── ChannelError                  a channel could not take or deliver a message (channels/):
│                                 ChannelSendError, ChannelClosedError, ChannelTimeoutError,
│                                 UnknownAgentError, NoChannelsError, GatewayRunError
└── OrraRuntimeError              the agent loop gave up
    ├── MaxTurnsExceeded
    └── BudgetExceededError       a namespace's usage budget is spent; nothing was sent
```
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApprovalError",
    "AuthError",
    "BudgetExceededError",
    "ConfigurationError",
    "ContextLengthExceededError",
    "CronError",
    "MaxTurnsExceeded",
    "NamespaceError",
    "OrraError",
    "OrraRuntimeError",
    "PluginError",
    "ProjectError",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "SessionBusyError",
    "StoreError",
    "ToolError",
    "ToolExecutionError",
    "ToolInputError",
    "VoiceError",
]
# install_hint() is used by the adapters; __all__ holds the exception tree only.


class OrraError(Exception):
    """Root of every exception orra-di raises on purpose."""


class ConfigurationError(OrraError):
    """Settings or wiring are wrong; the message names what to change."""


def install_hint(extra: str) -> str:
    """The command that installs an extra, from PyPI and from a checkout.

    ``pip install "orra-di[openai]"`` fetches orra-di from PyPI, which is not
    what someone running a clone wants; in a clone ``pip install -e ".[openai]"`` is.
    """
    return f'pip install "orra-di[{extra}]" (in a checkout: pip install -e ".[{extra}]")'


class NamespaceError(OrraError, ValueError):
    """A namespace or segment that cannot be used as a session key."""


class ProviderError(OrraError):
    """The LLM provider failed. ``str(err)`` is safe to show: it never holds a key."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"provider error: {self.message}"


class ProviderAuthError(ProviderError):
    """The provider refused the credentials."""

    def __str__(self) -> str:
        return f"authentication failed: {self.message}"


class AuthError(ProviderAuthError):
    """A token provider could not get an access token.

    A :class:`ProviderAuthError`, so code that handles a refused key handles a
    token endpoint that is down or misconfigured too. The message names the
    endpoint's host and what to check; it never holds a secret. ``status`` is
    the token endpoint's HTTP status, if it answered.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.status), self.__dict__)

    def __str__(self) -> str:
        return f"cannot get an access token: {self.message}"


class RateLimitedError(ProviderError):
    """The provider asked us to slow down; ``retry_after_ms`` is its hint, if any."""

    def __init__(self, retry_after_ms: int | None = None, message: str = "") -> None:
        super().__init__(message or "rate limited")
        self.retry_after_ms = retry_after_ms

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.retry_after_ms, self.message), self.__dict__)

    def __str__(self) -> str:
        after = "unknown" if self.retry_after_ms is None else f"{self.retry_after_ms}ms"
        return f"rate limited, retry after {after}"


class ContextLengthExceededError(ProviderError):
    """The request did not fit the model's context window."""

    def __str__(self) -> str:
        return f"context length exceeded: {self.message}"


class ProviderBadRequestError(ProviderError):
    """The vendor rejected the request itself (HTTP 400/404/422): retrying will not help."""

    def __str__(self) -> str:
        return f"bad request: {self.message}"


class ProviderUnavailableError(ProviderError):
    """A timeout, a 5xx or a dropped connection: worth retrying or falling back."""

    def __str__(self) -> str:
        return f"provider unavailable: {self.message}"


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer in time."""

    def __str__(self) -> str:
        return f"provider timed out: {self.message}"


class StoreError(OrraError):
    """The session store failed; the message says which operation and why."""

    def __str__(self) -> str:
        return f"storage error: {self.args[0] if self.args else ''}"


class ToolError(OrraError):
    """Raised by a tool; the runtime turns it into an error result the model reads."""

    prefix = "tool error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.prefix}: {self.message}"


class ToolInputError(ToolError):
    """The model's arguments do not fit the tool's schema."""

    prefix = "invalid input"


class ToolExecutionError(ToolError):
    """The tool ran and failed."""

    prefix = "execution failed"


class SessionBusyError(OrraError):
    """Another run holds this session and the wait timed out (or waiting is off)."""

    def __init__(self, key: str, waited: float | None = None) -> None:
        self.key = key
        self.waited = waited
        how = "refused at once" if not waited else f"waited {waited:g}s"
        super().__init__(
            f"session {key!r} is busy with another run ({how}); retry later or raise "
            "the runtime's busy timeout"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the constructor's arguments, not from the formatted message,
        # so the error survives pickling (to another process or thread pool).
        return (type(self), (self.key, self.waited), self.__dict__)


class VoiceError(OrraError):
    """Speech-to-text or text-to-speech failed; ``status`` is the API's, if it answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.status), self.__dict__)

    def __str__(self) -> str:
        return f"voice error: {self.message}"


class OrraRuntimeError(OrraError):
    """The agent loop could not produce a final answer."""


class MaxTurnsExceeded(OrraRuntimeError):
    """The model kept asking for tools after ``max_turns`` provider calls."""

    def __init__(self, max_turns: int) -> None:
        super().__init__(f"max turns ({max_turns}) exceeded")
        self.max_turns = max_turns

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.max_turns,), self.__dict__)


class PluginError(OrraError):
    """A plugin failed to load, initialise or shut down; ``plugin`` names it.

    The registry records it and starts the other plugins: one broken plugin never
    keeps the application from starting.
    """

    def __init__(self, plugin: str, cause: str) -> None:
        super().__init__(f"plugin {plugin!r} failed: {cause}")
        self.plugin = plugin
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.plugin, self.cause), self.__dict__)


class ProjectError(OrraError):
    """A project operation or a run under ``project:<id>`` was refused; the message says why."""


class BudgetExceededError(OrraRuntimeError):
    """A usage budget of the namespace (or of an ancestor) would be exceeded by the next call.

    Raised before the call, so nothing was sent to the model. ``namespace`` is
    the run's namespace, ``budget_namespace`` the one whose budget refused
    (itself or an ancestor), ``window`` ``"hour"``, ``"day"`` or ``"month"``.
    """

    def __init__(self, message: str, *, namespace: str, budget_namespace: str, window: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.budget_namespace = budget_namespace
        self.window = window

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_budget_error, (self.args[0], self.__dict__))


def _rebuild_budget_error(message: str, state: dict[str, Any]) -> BudgetExceededError:
    return BudgetExceededError(
        message,
        namespace=state["namespace"],
        budget_namespace=state["budget_namespace"],
        window=state["window"],
    )


class ApprovalError(OrraError):
    """An approval request that does not exist, is malformed, or cannot be answered.

    A refused tool call is not this error: it becomes an error result the model
    reads (``ToolCallDenied``); this is for whoever answers approvals.
    """


class CronError(OrraError, ValueError):
    """A cron job or schedule that cannot be used: a bad expression or time zone, an
    unknown agent, a namespace outside the caller's subtree, a job that does not exist."""
