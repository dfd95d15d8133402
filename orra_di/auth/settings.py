"""The ``llm.auth`` settings section: where the bearer token for the vendor comes from.

::

    ORRA_LLM__KIND=openai
    ORRA_LLM__BASE_URL=https://llm-gateway.example.com/v1
    ORRA_LLM__AUTH__KIND=client_credentials
    ORRA_LLM__AUTH__TOKEN_URL=https://login.example.com/oauth2/token
    ORRA_LLM__AUTH__CLIENT_ID=orra-agents
    ORRA_LLM__AUTH__CLIENT_SECRET=...          # or a file in the secrets directory
    ORRA_LLM__AUTH__SCOPE="llm.invoke"

The container builds the token provider from it and hands it to the vendor
adapter, whose SDK then sends the provider's token on every request.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from orra_di.auth.tokens import DEFAULT_SKEW, StaticTokenProvider, TokenProvider

__all__ = ["AuthKind", "AuthSettings"]

AuthKind = Literal["static", "client_credentials", "refresh_token"]

_NEEDS: dict[str, tuple[str, ...]] = {
    "static": ("token",),
    "client_credentials": ("token_url", "client_id", "client_secret"),
    "refresh_token": ("token_url", "client_id", "refresh_token"),
}


class AuthSettings(BaseModel):
    """A token provider, by ``kind``: a static token, or an OAuth2 grant against ``token_url``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AuthKind = Field(
        description="one of 'static' (needs token), 'client_credentials' (needs token_url, "
        "client_id, client_secret), 'refresh_token' (needs token_url, client_id, refresh_token)"
    )
    token: SecretStr | None = None
    """The bearer token itself, for ``kind=static``."""
    token_url: str | None = Field(None, description="the OAuth2 token endpoint, http(s)://...")
    """Where tokens are fetched (the OAuth2 kinds)."""
    client_id: str | None = None
    """The OAuth2 client id."""
    client_secret: SecretStr | None = None
    """The OAuth2 client secret (never printed)."""
    refresh_token: SecretStr | None = None
    """The refresh token, for ``kind=refresh_token`` (never printed)."""
    scope: str | None = Field(None, description="space-separated scopes, or unset")
    """The scopes asked for."""
    audience: str | None = None
    """The audience asked for, where the token endpoint wants one."""
    client_auth: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"
    """How the client authenticates to the token endpoint (form fields or HTTP Basic)."""
    skew: float = Field(DEFAULT_SKEW, ge=0, allow_inf_nan=False)
    """Seconds before expiry at which a token is renewed."""
    timeout: float = Field(30.0, gt=0, allow_inf_nan=False)
    """Seconds one token request may take."""

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL with a host")
        return url

    @model_validator(mode="after")
    def _complete(self) -> AuthSettings:
        missing = [name for name in _NEEDS[self.kind] if not getattr(self, name)]
        if missing:
            raise ValueError(f"auth kind {self.kind!r} also needs {', '.join(missing)}")
        return self

    def secrets(self) -> list[str]:
        """The secret values given (token, client secret, refresh token), for the hooks
        that mask secrets in what they log."""
        given = (self.token, self.client_secret, self.refresh_token)
        return [s.get_secret_value() for s in given if s is not None]

    def token_provider(self) -> TokenProvider:
        """The provider these settings describe (OAuth2 kinds need ``orra-di[auth]``)."""
        if self.kind == "static":
            assert self.token is not None  # checked by _complete
            return StaticTokenProvider(self.token)
        from orra_di.auth.oauth2 import ClientCredentialsProvider, RefreshTokenProvider

        assert self.token_url is not None and self.client_id is not None
        options: dict[str, Any] = {
            "scope": self.scope,
            "audience": self.audience,
            "client_auth": self.client_auth,
            "timeout": self.timeout,
            "skew": self.skew,
        }
        if self.kind == "client_credentials":
            assert self.client_secret is not None
            return ClientCredentialsProvider(
                self.token_url, self.client_id, self.client_secret, **options
            )
        assert self.refresh_token is not None
        return RefreshTokenProvider(
            self.token_url, self.client_id, self.refresh_token, self.client_secret, **options
        )
