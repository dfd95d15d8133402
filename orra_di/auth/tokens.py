"""Access tokens and the providers that hand them out, cached and refreshed early.

Pure Python (pydantic and anyio): the OAuth2 grants that fetch tokens over HTTP
are in :mod:`orra_di.auth.oauth2`, the ``httpx2.Auth`` that puts them on vendor
requests in :mod:`orra_di.auth.http`.

Three rules every provider here keeps (orra's tokens kept none of them, and were
never sent anywhere, bug 39):

- a token counts as expired ``skew`` seconds *before* its expiry, so a request
  never leaves with a token that lapses on the way;
- one refresh at a time: concurrent callers that find the token stale wait on one
  lock and share the single fetch the first of them makes;
- a secret never shows: tokens hold :class:`~pydantic.SecretStr` values, so their
  repr, ``str`` and ``model_dump`` print ``**********``.

Expiry times are read on the provider's ``clock`` (``time.monotonic`` unless
given), so a wall-clock jump cannot make a token look fresh, and tests can drive
time without sleeping.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from orra_di.errors import AuthError, ConfigurationError

__all__ = [
    "DEFAULT_SKEW",
    "AccessToken",
    "CachingTokenProvider",
    "Clock",
    "StaticTokenProvider",
    "TokenProvider",
    "TokenResponse",
    "auth_error_in",
]

DEFAULT_SKEW = 30.0
"""Seconds before its expiry at which a token is treated as expired (orra's margin)."""

Clock = Callable[[], float]


class AccessToken(BaseModel):
    """A bearer credential and when it lapses, with its value hidden from every print.

    ``expires_at`` is a reading of the issuing provider's clock (``None``: never
    expires). ``authorization_header()`` is the one place the value comes out.
    """

    model_config = ConfigDict(frozen=True)

    value: SecretStr
    token_type: str = "Bearer"
    expires_at: float | None = None
    refresh_token: SecretStr | None = None
    scopes: tuple[str, ...] = ()

    def is_expired(self, now: float | None = None, *, skew: float = DEFAULT_SKEW) -> bool:
        """True once ``now`` is within ``skew`` seconds of the expiry; never without one."""
        if self.expires_at is None:
            return False
        return (time.monotonic() if now is None else now) + skew >= self.expires_at

    def authorization_header(self) -> str:
        """``"Bearer <value>"`` (or the token's own type): what goes on a request."""
        return f"{self.token_type} {self.value.get_secret_value()}"


class TokenResponse(BaseModel):
    """A token endpoint's JSON answer (RFC 6749 §5.1); unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")

    access_token: SecretStr
    token_type: str = "Bearer"
    expires_in: float | None = Field(None, ge=0)
    refresh_token: SecretStr | None = None
    scope: str | None = None

    @field_validator("access_token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("access_token is empty")
        return value

    def to_token(self, now: float, *, keep_refresh_token: SecretStr | None = None) -> AccessToken:
        """The :class:`AccessToken` this answer grants, its expiry on the clock reading ``now``.

        ``token_type`` "bearer" (RFC 6750 says any case) is sent as "Bearer",
        which strict servers insist on. A response without a refresh token keeps
        ``keep_refresh_token`` (servers need not rotate it).
        """
        token_type = "Bearer" if self.token_type.lower() == "bearer" else self.token_type
        return AccessToken(
            value=self.access_token,
            token_type=token_type,
            expires_at=None if self.expires_in is None else now + self.expires_in,
            refresh_token=self.refresh_token or keep_refresh_token,
            scopes=tuple(self.scope.split()) if self.scope else (),
        )


@runtime_checkable
class TokenProvider(Protocol):
    """Where a client gets its bearer token; implement it to bring your own."""

    async def token(self) -> AccessToken:
        """A token valid for at least the provider's skew: the cached one, or a new one."""
        ...

    async def refresh(self) -> AccessToken:
        """A new token, even if the cached one looks valid (the server refused it)."""
        ...

    async def revoke(self) -> None:
        """Forget the cached token (and any refresh token): the next call fetches anew."""
        ...


class StaticTokenProvider:
    """A fixed key or token that never expires: an API key sent as a bearer token."""

    def __init__(self, token: str | SecretStr, *, token_type: str = "Bearer") -> None:
        secret = token if isinstance(token, SecretStr) else SecretStr(token)
        if not secret.get_secret_value().strip():
            raise ConfigurationError("StaticTokenProvider needs a non-empty token")
        self._token = AccessToken(value=secret, token_type=token_type)

    def __repr__(self) -> str:
        return f"StaticTokenProvider(token_type={self._token.token_type!r})"

    async def token(self) -> AccessToken:
        return self._token

    async def refresh(self) -> AccessToken:
        """The same token: a static key cannot be renewed."""
        return self._token

    async def revoke(self) -> None:
        """Nothing to forget: the key is the configuration."""


class CachingTokenProvider(ABC):
    """A provider that fetches tokens (``_fetch``) and caches them until ``skew`` before expiry.

    Subclasses implement only the fetch; the cache, the early refresh and the
    single-flight lock are here.
    """

    def __init__(self, *, skew: float = DEFAULT_SKEW, clock: Clock = time.monotonic) -> None:
        if skew < 0:
            raise ConfigurationError(f"skew must be >= 0 seconds, not {skew}")
        self.skew = skew
        self._clock = clock
        self._cached: AccessToken | None = None
        self._lock = anyio.Lock()

    @abstractmethod
    async def _fetch(self, current: AccessToken | None) -> AccessToken:
        """Ask the server for a new token (``current`` is the cached one, if any)."""

    def _fresh(self) -> AccessToken | None:
        token = self._cached
        if token is None or token.is_expired(self._clock(), skew=self.skew):
            return None
        return token

    async def token(self) -> AccessToken:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        async with self._lock:
            fresh = self._fresh()  # another caller may have fetched while we waited
            if fresh is None:
                fresh = self._cached = await self._fetch(self._cached)
            return fresh

    async def refresh(self) -> AccessToken:
        seen = self._cached
        async with self._lock:
            current = self._cached
            if current is not None and current is not seen and self._fresh() is current:
                return current  # refreshed by a concurrent caller while we waited
            self._cached = await self._fetch(current)
            return self._cached

    async def revoke(self) -> None:
        async with self._lock:
            self._cached = None


def auth_error_in(exc: BaseException) -> AuthError | None:
    """The :class:`AuthError` behind ``exc``, if any.

    An SDK that wraps whatever its HTTP client raised (Anthropic's wraps it in a
    connection error) would otherwise hide why there was no token.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, AuthError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
