"""The OAuth2 grants against a loopback token endpoint: caching, early refresh, one fetch
for concurrent callers, and failures that say what to check without showing a secret."""

from __future__ import annotations

import base64
import json
import logging
import socket

import anyio
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from orra_di import AuthError, ConfigurationError
from orra_di.auth import AccessToken, ClientCredentialsProvider, RefreshTokenProvider

from .conftest import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, TOKEN_PATH, Clock, TokenEndpoint

pytestmark = pytest.mark.anyio


def client_credentials(url: str, clock: Clock, **options: object) -> ClientCredentialsProvider:
    return ClientCredentialsProvider(url, CLIENT_ID, CLIENT_SECRET, clock=clock, **options)


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert CLIENT_SECRET not in text
        assert REFRESH_TOKEN not in text


# -- client credentials -----------------------------------------------------------


async def test_client_credentials_posts_the_grant_and_returns_the_token(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    provider = client_credentials(endpoint.url, clock, scope="llm.invoke", audience="llm-api")
    token = await provider.token()
    assert token.authorization_header() == "Bearer token-1"
    assert token.expires_at == clock.now + 3600
    assert token.scopes == ("llm.invoke", "llm.read")
    assert endpoint.forms == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": "llm.invoke",
            "audience": "llm-api",
        }
    ]


async def test_client_secret_basic_sends_the_credentials_in_the_header(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    provider = client_credentials(endpoint.url, clock, client_auth="client_secret_basic")
    await provider.token()
    assert endpoint.forms == [{"grant_type": "client_credentials"}]
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert endpoint.headers[0]["Authorization"] == f"Basic {expected}"


async def test_the_token_is_cached_until_the_skew_before_expiry(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    provider = client_credentials(endpoint.url, clock, skew=60)
    assert (await provider.token()).authorization_header() == "Bearer token-1"
    clock.now += 3600 - 61  # 61 s left: still good
    assert (await provider.token()).authorization_header() == "Bearer token-1"
    assert endpoint.issued() == 1
    clock.now += 2  # 59 s left: inside the skew, renewed before it lapses
    assert (await provider.token()).authorization_header() == "Bearer token-2"
    assert endpoint.issued() == 2


async def test_concurrent_callers_share_one_fetch(endpoint: TokenEndpoint, clock: Clock) -> None:
    provider = client_credentials(endpoint.url, clock)
    seen: list[str] = []

    async def ask() -> None:
        seen.append((await provider.token()).authorization_header())

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(ask)
    assert seen == ["Bearer token-1"] * 10
    assert endpoint.issued() == 1

    clock.now += 4000  # expired: ten callers again, still one fetch
    seen.clear()
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(ask)
    assert seen == ["Bearer token-2"] * 10
    assert endpoint.issued() == 2


async def test_concurrent_refreshes_after_a_rejection_share_one_fetch(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    provider = client_credentials(endpoint.url, clock)
    await provider.token()
    renewed: list[str] = []

    async def renew() -> None:
        renewed.append((await provider.refresh()).authorization_header())

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(renew)
    assert renewed == ["Bearer token-2"] * 5
    assert endpoint.issued() == 2


async def test_revoke_forgets_the_cached_token(endpoint: TokenEndpoint, clock: Clock) -> None:
    provider = client_credentials(endpoint.url, clock)
    await provider.token()
    await provider.revoke()
    assert (await provider.token()).authorization_header() == "Bearer token-2"


# -- refresh token ----------------------------------------------------------------


async def test_refresh_token_grant_renews_and_keeps_an_unrotated_refresh_token(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    held = AccessToken(value="token-0", expires_at=clock.now + 100)
    provider = RefreshTokenProvider(
        endpoint.url, CLIENT_ID, REFRESH_TOKEN, access_token=held, clock=clock
    )
    assert (await provider.token()).authorization_header() == "Bearer token-0"
    assert endpoint.issued() == 0
    clock.now += 80  # 20 s left, inside the 30 s skew
    token = await provider.token()
    assert token.authorization_header() == "Bearer token-1"
    assert token.refresh_token is not None
    assert token.refresh_token.get_secret_value() == REFRESH_TOKEN
    assert endpoint.forms == [
        {"grant_type": "refresh_token", "refresh_token": REFRESH_TOKEN, "client_id": CLIENT_ID}
    ]


async def test_a_rotated_refresh_token_is_used_next_time(
    httpserver: HTTPServer, clock: Clock
) -> None:
    forms: list[str] = []

    def rotate(request: object) -> Response:
        forms.append(request.get_data(as_text=True))  # type: ignore[attr-defined]
        body = {"access_token": f"at-{len(forms)}", "refresh_token": f"rt-new-{len(forms)}"}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request(TOKEN_PATH).respond_with_handler(rotate)
    provider = RefreshTokenProvider(httpserver.url_for(TOKEN_PATH), CLIENT_ID, REFRESH_TOKEN)
    await provider.refresh()
    await provider.refresh()
    assert f"refresh_token={REFRESH_TOKEN}" in forms[0]
    assert "refresh_token=rt-new-1" in forms[1]


async def test_after_revoke_there_is_no_refresh_token(
    endpoint: TokenEndpoint, clock: Clock
) -> None:
    provider = RefreshTokenProvider(endpoint.url, CLIENT_ID, REFRESH_TOKEN, clock=clock)
    await provider.token()
    await provider.revoke()
    with pytest.raises(AuthError, match=r"no refresh token .* sign in again") as caught:
        await provider.token()
    assert f"127.0.0.1:{endpoint.server.port}" in str(caught.value)
    assert endpoint.issued() == 1


# -- failures ---------------------------------------------------------------------


async def test_a_500_names_the_host_and_says_what_to_check(
    httpserver: HTTPServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(TOKEN_PATH).respond_with_data(
        f"Internal error while checking {CLIENT_SECRET}", status=500
    )
    provider = client_credentials(httpserver.url_for(TOKEN_PATH), clock)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    message = str(caught.value)
    assert caught.value.status == 500
    assert f"token endpoint 127.0.0.1:{httpserver.port}" in message
    assert "HTTP 500" in message and "try again later" in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert_no_secret(message, repr(caught.value), caplog.text)


async def test_an_oauth_error_answer_gives_its_advice(httpserver: HTTPServer, clock: Clock) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_json(
        {"error": "invalid_client", "error_description": "Client authentication failed"},
        status=401,
    )
    provider = client_credentials(httpserver.url_for(TOKEN_PATH), clock)
    with pytest.raises(AuthError, match=r"HTTP 401 \(invalid_client: Client authentication"):
        await provider.token()
    with pytest.raises(AuthError, match="check the client id and secret"):
        await provider.token()


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        ("<html><body>Sign in</body></html>", "text/html", "not a JSON object (text/html"),
        ("", "application/json", "(empty body)"),
        ('["token"]', "application/json", "not a JSON object"),
        ('{"token": "x", "ok": true}', "application/json", "without an access_token (fields: ok"),
        ('{"access_token": 42}', "application/json", "does not parse (access_token"),
        ('{"access_token": "a", "expires_in": "soon"}', "application/json", "expires_in"),
    ],
)
async def test_garbage_from_the_token_endpoint_is_an_auth_error(
    httpserver: HTTPServer, clock: Clock, body: str, content_type: str, says: str
) -> None:
    httpserver.expect_request(TOKEN_PATH).respond_with_data(body, content_type=content_type)
    provider = client_credentials(httpserver.url_for(TOKEN_PATH), clock)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    assert says in str(caught.value)
    assert "is the token URL the server's token endpoint?" in str(caught.value)


async def test_an_unreachable_endpoint_is_an_auth_error(clock: Clock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = client_credentials(f"http://127.0.0.1:{port}/token", clock)
    with pytest.raises(AuthError, match=f"127.0.0.1:{port} could not be reached"):
        await provider.token()


async def test_secrets_never_reach_the_logs(
    endpoint: TokenEndpoint, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = RefreshTokenProvider(
        endpoint.url, CLIENT_ID, REFRESH_TOKEN, CLIENT_SECRET, clock=clock
    )
    token = await provider.token()
    assert any("access token from 127.0.0.1" in r.getMessage() for r in caplog.records)
    assert_no_secret(caplog.text, repr(provider), repr(token), str(token))
    assert "token-1" not in caplog.text


def test_bad_construction_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        ClientCredentialsProvider("ftp://host/token", CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(ConfigurationError, match="client secret"):
        ClientCredentialsProvider("https://host/token", CLIENT_ID, "")
    with pytest.raises(ConfigurationError, match="refresh token"):
        RefreshTokenProvider("https://host/token", CLIENT_ID, "")
    with pytest.raises(ConfigurationError, match="skew"):
        ClientCredentialsProvider("https://host/token", CLIENT_ID, CLIENT_SECRET, skew=-1)
