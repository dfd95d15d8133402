"""The bearer token on every vendor request: an ``httpx2.Auth`` over a token provider.

The Anthropic and OpenAI SDKs are built on ``httpx2`` and take an
``http_client=``; a client made by :func:`bearer_http_client` runs
:class:`BearerAuth`'s flow on each request the SDK sends (retries included), so
every request carries ``Authorization: <type> <token>`` from the provider's
cache, refreshed before it expires. Imported only by the vendor adapters, when
a token provider is configured.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import httpx2

from orra_di.auth.tokens import AccessToken, TokenProvider
from orra_di.errors import ConfigurationError

__all__ = ["BearerAuth", "bearer_http_client", "sent_tokens"]


class BearerAuth(httpx2.Auth):
    """Sets ``Authorization`` from ``provider``; on a 401 asks it for a new token and retries once.

    The retry covers a token the server revoked before its expiry. A provider
    that cannot renew (a static key) returns the same token, and the 401 stands.
    """

    def __init__(self, provider: TokenProvider) -> None:
        self.provider = provider
        self._sent: deque[str] = deque(maxlen=4)

    def sent(self) -> list[str]:
        """The latest token values put on a request: the adapters redact them from the
        errors they build, since a gateway may quote the token it refused."""
        return list(self._sent)

    def _use(self, request: httpx2.Request, token: AccessToken) -> None:
        value = token.value.get_secret_value()
        if value not in self._sent:
            self._sent.append(value)
        request.headers["Authorization"] = token.authorization_header()

    def __repr__(self) -> str:
        return f"BearerAuth({self.provider!r})"

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        token = await self.provider.token()
        self._use(request, token)
        response = yield request
        if response.status_code != 401:
            return
        renewed = await self.provider.refresh()
        if renewed.value.get_secret_value() == token.value.get_secret_value():
            return
        self._use(request, renewed)
        yield request

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response]:
        raise ConfigurationError(
            "BearerAuth fetches tokens asynchronously: use it with an httpx2.AsyncClient"
        )
        yield request  # pragma: no cover - makes this a generator, as httpx2 expects


def bearer_http_client(
    client_class: Callable[..., Any] | None, provider: TokenProvider, **options: Any
) -> Any:
    """An async HTTP client for an SDK's ``http_client=`` that authenticates with ``provider``.

    ``client_class`` is the SDK's ``DefaultAsyncHttpxClient`` (its pool limits,
    timeouts and redirect policy); ``None`` means a plain ``httpx2.AsyncClient``.
    """
    make = client_class or httpx2.AsyncClient
    return make(auth=BearerAuth(provider), **options)


def sent_tokens(sdk_client: Any) -> list[str]:
    """The bearer tokens a vendor SDK client sent through a :class:`BearerAuth`, if it has
    one (the Anthropic and OpenAI SDKs keep their HTTP client as ``_client``); else none."""
    auth = getattr(getattr(sdk_client, "_client", None), "auth", None)
    return auth.sent() if isinstance(auth, BearerAuth) else []
