"""Bearer tokens for the model vendors: static keys and OAuth2 grants, wired into the SDKs.

- :mod:`orra_di.auth.tokens` — :class:`AccessToken`, the :class:`TokenProvider`
  protocol, :class:`StaticTokenProvider` and the caching base (pure);
- :mod:`orra_di.auth.oauth2` — :class:`ClientCredentialsProvider`,
  :class:`RefreshTokenProvider` (on ``httpx2``: ``orra-di[auth]``);
- :mod:`orra_di.auth.http` — :class:`~orra_di.auth.http.BearerAuth`, the
  ``httpx2.Auth`` the vendor adapters give their SDK's ``http_client``;
- :mod:`orra_di.auth.settings` — the ``llm.auth`` settings section.

The OAuth2 classes are imported on first use, so ``import orra_di.auth`` works
without ``httpx2``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orra_di.auth.settings import AuthKind, AuthSettings
from orra_di.auth.tokens import (
    DEFAULT_SKEW,
    AccessToken,
    CachingTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    TokenResponse,
    auth_error_in,
)
from orra_di.errors import AuthError

if TYPE_CHECKING:
    from orra_di.auth.oauth2 import ClientCredentialsProvider, RefreshTokenProvider

__all__ = [
    "DEFAULT_SKEW",
    "AccessToken",
    "AuthError",
    "AuthKind",
    "AuthSettings",
    "CachingTokenProvider",
    "ClientCredentialsProvider",
    "RefreshTokenProvider",
    "StaticTokenProvider",
    "TokenProvider",
    "TokenResponse",
    "auth_error_in",
]


def __getattr__(name: str) -> Any:
    if name in ("ClientCredentialsProvider", "RefreshTokenProvider"):
        from orra_di.auth import oauth2

        return getattr(oauth2, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
