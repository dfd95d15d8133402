"""A loopback OAuth2 token endpoint and a clock the tests move by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

CLIENT_ID = "orra-agents"
CLIENT_SECRET = "cs-very-secret-0123456789"
REFRESH_TOKEN = "rt-very-secret-abcdefghij"
TOKEN_PATH = "/oauth2/token"


@dataclass
class Clock:
    """``time.monotonic`` stand-in: tokens expire when a test says so, never by sleeping."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class TokenEndpoint:
    """Issues ``token-1``, ``token-2``, ... valid ``expires_in`` seconds; records every form."""

    server: HTTPServer
    expires_in: int = 3600
    forms: list[dict[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url_for(TOKEN_PATH)

    def issued(self) -> int:
        return len(self.forms)

    def handle(self, request: Request) -> Response:
        self.forms.append(dict(parse_qsl(request.get_data(as_text=True))))
        self.headers.append(dict(request.headers))
        body = {
            "access_token": f"token-{len(self.forms)}",
            "token_type": "bearer",
            "expires_in": self.expires_in,
            "scope": "llm.invoke llm.read",
        }
        return Response(json.dumps(body), content_type="application/json")


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    """pytest-httpserver on 127.0.0.1; fails the test if a request found no handler."""
    yield httpserver_ipv4
    httpserver_ipv4.check_assertions()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoint(httpserver: HTTPServer) -> TokenEndpoint:
    endpoint = TokenEndpoint(httpserver)
    httpserver.expect_request(TOKEN_PATH, method="POST").respond_with_handler(endpoint.handle)
    return endpoint


@pytest.fixture(scope="session")
def empty_trust_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("no-certificates"))


@pytest.fixture(autouse=True)
def _no_vendor_environment(monkeypatch: pytest.MonkeyPatch, empty_trust_store: str) -> None:
    """A developer's real keys must not reach a loopback fake (or hide a missing token).

    No test speaks TLS: an empty trust store spares each client loading the CA bundle.
    """
    monkeypatch.setenv("SSL_CERT_DIR", empty_trust_store)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
