"""Access tokens, the static provider and the token response: orra's auth tests, as behaviour."""

from __future__ import annotations

import pickle

import pytest
from pydantic import SecretStr, ValidationError

from orra_di import AuthError, OrraError, ProviderAuthError
from orra_di.auth import (
    DEFAULT_SKEW,
    AccessToken,
    ClientCredentialsProvider,
    StaticTokenProvider,
    TokenProvider,
    TokenResponse,
    auth_error_in,
)

pytestmark = pytest.mark.anyio

SECRET = "abc123-secret-value"


def test_static_token_never_expires() -> None:
    token = AccessToken(value="k")
    assert not token.is_expired(now=1e12)


def test_expired_token() -> None:
    assert AccessToken(value="k", expires_at=100.0).is_expired(now=101.0)


def test_token_expiring_within_the_margin_counts_as_expired() -> None:
    """orra's 30-second margin: a token with 20 s left is not sent."""
    assert DEFAULT_SKEW == 30.0
    assert AccessToken(value="k", expires_at=120.0).is_expired(now=100.0)
    assert not AccessToken(value="k", expires_at=120.0).is_expired(now=100.0, skew=10)


def test_valid_token() -> None:
    assert not AccessToken(value="k", expires_at=3700.0).is_expired(now=100.0)


def test_authorization_header() -> None:
    assert AccessToken(value="abc123").authorization_header() == "Bearer abc123"


def test_a_token_never_prints_its_value() -> None:
    token = AccessToken(value=SECRET, refresh_token=SECRET + "-refresh", expires_at=5.0)
    for shown in (repr(token), str(token), str(token.model_dump()), token.model_dump_json()):
        assert SECRET not in shown
    assert "expires_at=5.0" in repr(token)


async def test_static_provider_returns_its_token() -> None:
    provider = StaticTokenProvider("sk-static-0123456789")
    assert isinstance(provider, TokenProvider)
    token = await provider.token()
    assert token.authorization_header() == "Bearer sk-static-0123456789"
    assert not token.is_expired()
    assert "sk-static" not in repr(provider)


async def test_static_provider_refresh_returns_the_same_token() -> None:
    provider = StaticTokenProvider("sk-static-0123456789")
    first = await provider.token()
    assert await provider.refresh() == first
    await provider.revoke()  # nothing to forget: the key is the configuration
    assert await provider.token() == first


async def test_static_provider_with_a_custom_type() -> None:
    provider = StaticTokenProvider("key", token_type="Basic")
    assert (await provider.token()).authorization_header() == "Basic key"


def test_oauth2_provider_construction_keeps_the_secret_out_of_its_repr() -> None:
    provider = ClientCredentialsProvider(
        "https://login.example.com/oauth2/token",
        "my-client",
        "cs-0123456789abcdef",
        scope=["read", "write"],
    )
    assert provider.token_url == "https://login.example.com/oauth2/token"
    assert provider.client_id == "my-client"
    assert provider.scope == "read write"
    assert "cs-0123456789abcdef" not in repr(provider)
    assert "login.example.com" in repr(provider)


def test_auth_error_display() -> None:
    error = AuthError("the token endpoint login.example.com refused ...", status=500)
    assert str(error) == (
        "cannot get an access token: the token endpoint login.example.com refused ..."
    )
    assert error.status == 500
    assert isinstance(error, ProviderAuthError) and isinstance(error, OrraError)
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.status) == (str(error), 500)


def test_token_response_deserialization() -> None:
    answer = TokenResponse.model_validate(
        {
            "access_token": "at-1",
            "token_type": "bearer",
            "expires_in": 3600,
            "refresh_token": "rt-1",
            "scope": "read write",
            "id_token": "ignored",
        }
    )
    token = answer.to_token(now=50.0)
    assert token.authorization_header() == "Bearer at-1"  # "bearer" sent as strict servers want
    assert token.expires_at == 3650.0
    assert token.refresh_token == SecretStr("rt-1")
    assert token.scopes == ("read", "write")


def test_token_response_minimal() -> None:
    token = TokenResponse.model_validate({"access_token": "at-1"}).to_token(now=0.0)
    assert token.token_type == "Bearer"
    assert token.expires_at is None and token.refresh_token is None and token.scopes == ()


def test_a_token_response_without_a_usable_token_is_refused() -> None:
    with pytest.raises(ValidationError):
        TokenResponse.model_validate({"access_token": "  "})
    with pytest.raises(ValidationError):
        TokenResponse.model_validate({"token_type": "bearer"})


def test_the_auth_error_behind_a_wrapping_exception_is_found() -> None:
    cause = AuthError("no token")
    wrapped = ConnectionError("Connection error.")
    wrapped.__cause__ = cause
    assert auth_error_in(wrapped) is cause
    assert auth_error_in(cause) is cause
    assert auth_error_in(ValueError("unrelated")) is None
