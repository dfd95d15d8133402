"""OAuth2 token providers: the client-credentials and refresh-token grants (RFC 6749).

They POST a form to the token endpoint with ``httpx2``, the HTTP library the
vendor SDKs are built on (``pip install "orra-di[auth]"``; the ``anthropic`` and
``openai`` extras bring it too), and cache the answer as
:class:`~orra_di.auth.tokens.CachingTokenProvider` does: refreshed ``skew``
seconds before expiry, one fetch for all concurrent callers.

Every failure is an :class:`~orra_di.errors.AuthError` whose message names the
endpoint's host, what went wrong (unreachable, HTTP status and the server's
OAuth2 ``error``, a body that is not JSON, JSON without ``access_token``) and
what to check. The client secret and the refresh token are never in it, nor in
a log record, nor in a repr.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError

from orra_di.auth.tokens import (
    DEFAULT_SKEW,
    AccessToken,
    CachingTokenProvider,
    Clock,
    TokenResponse,
)
from orra_di.errors import AuthError, ConfigurationError
from orra_di.providers._http import one_line
from orra_di.redaction import mask_url, redact

if TYPE_CHECKING:
    import httpx2

__all__ = ["ClientAuthMethod", "ClientCredentialsProvider", "RefreshTokenProvider"]

logger = logging.getLogger(__name__)

ClientAuthMethod = Literal["client_secret_post", "client_secret_basic"]
"""How the client proves itself: id and secret in the form (orra's way), or HTTP Basic."""

_ADVICE = {
    "invalid_client": "check the client id and secret",
    "unauthorized_client": "check that this client may use the {grant} grant",
    "invalid_grant": "the {grant} was refused (expired or revoked?)",
    "invalid_scope": "check the scope",
    "unsupported_grant_type": "check that the server supports the {grant} grant",
    "invalid_request": "check the token URL and the parameters (scope, audience)",
}


def _httpx2() -> Any:
    try:
        import httpx2
    except ImportError:
        raise ConfigurationError(
            'OAuth2 token providers need httpx2: pip install "orra-di[auth]" '
            '(or pip install -e ".[auth]" from a checkout)'
        ) from None
    return httpx2


def _endpoint_host(url: str) -> str:
    """``host[:port]`` of the token URL: what an error may name (no credentials, no query)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


class _OAuth2Provider(CachingTokenProvider):
    """What both grants share: the endpoint, the client's credentials, the POST."""

    grant = "client_credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr | None = None,
        *,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        client_auth: ClientAuthMethod = "client_secret_post",
        timeout: float = 30.0,
        http_client: httpx2.AsyncClient | None = None,
        skew: float = DEFAULT_SKEW,
        clock: Clock = time.monotonic,
    ) -> None:
        super().__init__(skew=skew, clock=clock)
        self._http = _httpx2()
        parts = urlsplit(token_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"the token URL must be an http:// or https:// URL with a host, "
                f"not {_endpoint_host(token_url)!r}"
            )
        if not client_id:
            raise ConfigurationError("an OAuth2 token provider needs a client id")
        if client_auth not in ("client_secret_post", "client_secret_basic"):
            raise ConfigurationError(
                f"client_auth must be 'client_secret_post' or 'client_secret_basic', "
                f"not {client_auth!r}"
            )
        self.token_url = token_url
        self.client_id = client_id
        self._secret = (
            client_secret
            if isinstance(client_secret, SecretStr) or client_secret is None
            else SecretStr(client_secret)
        )
        self.scope = scope if scope is None or isinstance(scope, str) else " ".join(scope)
        self.audience = audience
        self.client_auth = client_auth
        self.timeout = timeout
        self._client = http_client

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(endpoint={_endpoint_host(self.token_url)!r}, "
            f"client_id={self.client_id!r}, scope={self.scope!r})"
        )

    def _secrets(self) -> list[str]:
        """Every secret this provider holds, to scrub from anything it says."""
        return [self._secret.get_secret_value()] if self._secret else []

    async def _request(self, form: dict[str, str]) -> AccessToken:
        """POST the grant and turn the answer into a token, or an :class:`AuthError`."""
        http = self._http
        host = _endpoint_host(self.token_url)
        secret = self._secret.get_secret_value() if self._secret else ""
        auth: Any = None
        form = {"grant_type": self.grant, **form}
        if self.client_auth == "client_secret_basic":
            auth = http.BasicAuth(self.client_id, secret)
        else:
            form["client_id"] = self.client_id
            if secret:
                form["client_secret"] = secret
        if self.scope:
            form["scope"] = self.scope
        if self.audience:
            form["audience"] = self.audience
        headers = {"Accept": "application/json"}
        try:
            if self._client is not None:
                response = await self._client.post(
                    self.token_url, data=form, auth=auth, headers=headers, timeout=self.timeout
                )
            else:
                async with http.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(
                        self.token_url, data=form, auth=auth, headers=headers
                    )
        except http.HTTPError as exc:
            raise AuthError(
                f"the token endpoint {host} could not be reached ({type(exc).__name__}: "
                f"{self._clean(str(exc)) or 'no detail'}); check the token URL and that the "
                "server is up"
            ) from None
        return self._token_from(response, host)

    def _clean(self, text: str) -> str:
        # Masked before the cut: a secret cut in two would no longer be recognised.
        return one_line(redact(mask_url(text), self._secrets()), 200)

    def _token_from(self, response: httpx2.Response, host: str) -> AccessToken:
        status = response.status_code
        try:
            body: Any = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if status >= 400:
            raise AuthError(self._refusal(status, body, response.text, host), status) from None
        if not isinstance(body, Mapping):
            kind = response.headers.get("content-type") or "no content type"
            preview = self._clean(response.text) or "(empty body)"
            raise AuthError(
                f"the token endpoint {host} answered HTTP {status} with a body that is not a "
                f"JSON object ({kind}: {preview}); is the token URL the server's token "
                "endpoint?",
                status,
            ) from None
        if "access_token" not in body:
            fields = ", ".join(sorted(str(k) for k in body)) or "none"
            raise AuthError(
                f"the token endpoint {host} answered HTTP {status} without an access_token "
                f"(fields: {fields}); is the token URL the server's token endpoint?",
                status,
            ) from None
        try:
            answer = TokenResponse.model_validate(body)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
            )
            raise AuthError(
                f"the token endpoint {host} sent a token response that does not parse "
                f"({problems}); is the token URL the server's token endpoint?",
                status,
            ) from None
        token = answer.to_token(self._clock(), keep_refresh_token=self._kept_refresh_token())
        expiry = answer.expires_in
        lifetime = "no expiry" if expiry is None else f"expires in {expiry:g}s"
        logger.debug(
            "access token from %s (%s grant, %s)",
            host,
            self.grant,
            lifetime,
            extra={"token_endpoint": host, "grant": self.grant},
        )
        return token

    def _kept_refresh_token(self) -> SecretStr | None:
        return None

    def _refusal(self, status: int, body: Any, text: str, host: str) -> str:
        error = body.get("error") if isinstance(body, Mapping) else None
        description = body.get("error_description") if isinstance(body, Mapping) else None
        if isinstance(error, str):
            detail = error + (f": {description}" if isinstance(description, str) else "")
            advice = _ADVICE.get(error, "check the client id and secret, the scope and the URL")
        else:
            detail = text if text.strip() else "(empty body)"
            advice = (
                "the server failed; try again later or check its status"
                if status >= 500
                else "check the token URL, the client id and secret and the scope"
            )
        grant = self.grant.replace("_", " ")
        return (
            f"the token endpoint {host} refused the {grant} grant with HTTP {status} "
            f"({self._clean(detail)}); {advice.format(grant=grant)}"
        )


class ClientCredentialsProvider(_OAuth2Provider):
    """Tokens for this application itself (machine to machine): the client-credentials grant.

    ``refresh()`` simply asks again; ``revoke()`` forgets the cached token
    without a network call (RFC 7009 revocation is the server's business).
    """

    grant = "client_credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        **options: Any,
    ) -> None:
        if not client_secret or (
            isinstance(client_secret, SecretStr) and not client_secret.get_secret_value()
        ):
            raise ConfigurationError("the client-credentials grant needs a client secret")
        super().__init__(token_url, client_id, client_secret, **options)

    async def _fetch(self, current: AccessToken | None) -> AccessToken:
        return await self._request({})


class RefreshTokenProvider(_OAuth2Provider):
    """Tokens on a user's behalf, renewed with the refresh-token grant.

    Starts from a refresh token (and optionally an access token already held);
    a rotated refresh token in an answer replaces the old one, an answer without
    one keeps it. ``revoke()`` forgets both: until a new provider is made, every
    call raises an :class:`AuthError` saying there is no refresh token.
    ``client_secret`` may be omitted for a public client.
    """

    grant = "refresh_token"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        refresh_token: str | SecretStr,
        client_secret: str | SecretStr | None = None,
        *,
        access_token: AccessToken | None = None,
        **options: Any,
    ) -> None:
        super().__init__(token_url, client_id, client_secret, **options)
        secret = refresh_token if isinstance(refresh_token, SecretStr) else SecretStr(refresh_token)
        if not secret.get_secret_value():
            raise ConfigurationError("the refresh-token grant needs a refresh token")
        self._refresh: SecretStr | None = secret
        self._cached = access_token

    def _secrets(self) -> list[str]:
        return [*super()._secrets(), *([self._refresh.get_secret_value()] if self._refresh else [])]

    def _kept_refresh_token(self) -> SecretStr | None:
        return self._refresh

    async def _fetch(self, current: AccessToken | None) -> AccessToken:
        if self._refresh is None:
            raise AuthError(
                f"no refresh token for {_endpoint_host(self.token_url)} (it was revoked); "
                "sign in again and configure the new refresh token"
            )
        token = await self._request({"refresh_token": self._refresh.get_secret_value()})
        self._refresh = token.refresh_token or self._refresh
        return token

    async def revoke(self) -> None:
        async with self._lock:
            self._cached = None
            self._refresh = None
