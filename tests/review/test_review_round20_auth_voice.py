"""Round 20: the README's ``llm.auth`` and voice sections, from the settings inward.

Each test sets documented ``ORRA_*`` variables (or a secrets-directory file), loads
the settings as an application would, and checks what reaches a loopback token
endpoint or audio server: the claims are about configuration, so they are tested
through it rather than by building the providers by hand.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di.auth import DEFAULT_SKEW, AccessToken, AuthError, AuthSettings, StaticTokenProvider
from orra_di.errors import ConfigurationError, ProviderAuthError
from orra_di.message import Message
from orra_di.provider import CompletionRequest
from orra_di.settings import load_settings
from orra_di.voice.settings import VoiceSettings, make_speech_to_text, make_text_to_speech
from orra_di.voice.types import SynthesizeOptions

pytest.importorskip("httpx2")
pytestmark = pytest.mark.anyio

SECRET = "cs-round20-secret-value-9876"
TOKEN_PATH = "/oauth2/token"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    """A loopback server; every expectation set on it must have been met."""
    yield httpserver_ipv4
    httpserver_ipv4.check_assertions()


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No .env, orra.toml, secrets directory, vendor key or CA bundle from the host."""
    monkeypatch.chdir(tmp_path)
    secrets = tmp_path_factory.mktemp("secrets")
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path_factory.mktemp("no-certificates")))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ORRA_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


class TokenEndpoint:
    """Answers every token request with a new token valid ``expires_in`` seconds."""

    def __init__(self, server: HTTPServer, expires_in: int = 3600) -> None:
        self.server = server
        self.expires_in = expires_in
        self.forms: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        server.expect_request(TOKEN_PATH, method="POST").respond_with_handler(self.answer)

    @property
    def url(self) -> str:
        return self.server.url_for(TOKEN_PATH)

    def answer(self, request: Request) -> Response:
        self.forms.append(dict(parse_qsl(request.get_data(as_text=True))))
        self.headers.append(dict(request.headers))
        body = {
            "access_token": f"token-{len(self.forms)}",
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        return Response(json.dumps(body), content_type="application/json")


def _client_credentials_env(monkeypatch: pytest.MonkeyPatch, token_url: str) -> None:
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "client_credentials")
    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN_URL", token_url)
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_ID", "orra-agents")


# -- llm.auth -----------------------------------------------------------------------


def test_the_default_skew_is_thirty_seconds() -> None:
    """README: the token is "renewed 30 s (`SKEW`) before it expires"."""
    assert DEFAULT_SKEW == 30
    settings = AuthSettings(kind="static", token=SecretStr("t"))
    assert settings.skew == 30


async def test_the_client_secret_can_come_from_the_secrets_directory(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: `CLIENT_SECRET=...  # or a file in the secrets directory`; the file is
    named like the variable in lower case (docs/reference/settings.md)."""
    endpoint = TokenEndpoint(server)
    _client_credentials_env(monkeypatch, endpoint.url)
    secrets = Path(os.environ["ORRA_SECRETS_DIR"])
    (secrets / "orra_llm__auth__client_secret").write_text(SECRET + "\n")
    settings = load_settings()
    assert settings.llm.auth is not None
    assert settings.llm.auth.client_secret is not None
    assert settings.llm.auth.client_secret.get_secret_value() == SECRET
    token = await settings.llm.auth.token_provider().token()
    assert token.value.get_secret_value() == "token-1"
    assert endpoint.forms[0]["client_secret"] == SECRET


async def test_scope_and_audience_from_the_environment_reach_the_token_endpoint(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: `SCOPE` (optional; also `AUDIENCE`...) are asked for."""
    endpoint = TokenEndpoint(server)
    _client_credentials_env(monkeypatch, endpoint.url)
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("ORRA_LLM__AUTH__SCOPE", "llm.invoke llm.read")
    monkeypatch.setenv("ORRA_LLM__AUTH__AUDIENCE", "https://llm-gateway.example.com")
    auth = load_settings().llm.auth
    assert auth is not None
    await auth.token_provider().token()
    form = endpoint.forms[0]
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "llm.invoke llm.read"
    assert form["audience"] == "https://llm-gateway.example.com"


async def test_client_auth_basic_from_the_environment_sends_the_secret_in_the_header(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: `CLIENT_AUTH` is settable; `client_secret_basic` is HTTP Basic, so the
    secret is not also in the form."""
    endpoint = TokenEndpoint(server)
    _client_credentials_env(monkeypatch, endpoint.url)
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_AUTH", "client_secret_basic")
    auth = load_settings().llm.auth
    assert auth is not None
    await auth.token_provider().token()
    header = endpoint.headers[0]["Authorization"]
    assert header.startswith("Basic ")
    user, _, password = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
    assert (user, password) == ("orra-agents", SECRET)
    assert "client_secret" not in endpoint.forms[0]


async def test_a_token_is_renewed_skew_seconds_before_it_expires(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: renewed `SKEW` seconds before expiry. A token valid 100 s with a skew of
    120 s is already due, so every use fetches a new one; with the default skew it is
    cached. No clock is moved: the arithmetic decides."""
    endpoint = TokenEndpoint(server, expires_in=100)
    _client_credentials_env(monkeypatch, endpoint.url)
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    monkeypatch.setenv("ORRA_LLM__AUTH__SKEW", "120")
    auth = load_settings().llm.auth
    assert auth is not None and auth.skew == 120
    provider = auth.token_provider()
    first = await provider.token()
    second = await provider.token()
    assert first.value.get_secret_value() != second.value.get_secret_value()
    assert len(endpoint.forms) == 2

    monkeypatch.delenv("ORRA_LLM__AUTH__SKEW")
    cached_auth = load_settings().llm.auth
    assert cached_auth is not None
    cached = cached_auth.token_provider()
    await cached.token()
    await cached.token()
    assert len(endpoint.forms) == 3


def test_the_auth_secrets_are_in_no_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """README: "the secret appears in no error, log or repr"."""
    _client_credentials_env(monkeypatch, "https://login.example.com/oauth2/token")
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.llm)
    assert SECRET not in settings.model_dump_json()
    provider = settings.llm.auth.token_provider() if settings.llm.auth else None
    assert SECRET not in repr(provider)


def test_orra_di_config_does_not_print_the_client_secret(tmp_path: Path) -> None:
    """README: the secret appears in no output; `orra-di config` shows the settings
    (run as a user runs it, in a subprocess with its own HOME)."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=str(ROOT),
        COLUMNS="400",
        ORRA_STORE__URL="memory://",
        ORRA_LLM__KIND="openai",
        ORRA_LLM__BASE_URL="http://127.0.0.1:9/v1",
        ORRA_LLM__AUTH__KIND="client_credentials",
        ORRA_LLM__AUTH__TOKEN_URL="https://login.example.com/oauth2/token",
        ORRA_LLM__AUTH__CLIENT_ID="orra-agents",
        ORRA_LLM__AUTH__CLIENT_SECRET=SECRET,
    )
    done = subprocess.run(
        [sys.executable, "-m", "orra_di", "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "login.example.com" in done.stdout
    assert SECRET not in done.stdout + done.stderr


async def test_a_refused_client_names_the_host_not_the_secret(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: a token endpoint that refuses the client is an `AuthError` (a
    `ProviderAuthError`) naming the endpoint's host; the secret is in no error."""
    server.expect_request(TOKEN_PATH, method="POST").respond_with_json(
        {"error": "invalid_client", "error_description": "bad secret " + SECRET}, status=401
    )
    _client_credentials_env(monkeypatch, server.url_for(TOKEN_PATH))
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    auth = load_settings().llm.auth
    assert auth is not None
    with pytest.raises(AuthError) as caught:
        await auth.token_provider().token()
    assert isinstance(caught.value, ProviderAuthError)
    assert "127.0.0.1" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_a_token_url_that_is_not_http_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """`TOKEN_URL=https://...`: a scheme the endpoint cannot be reached with is a
    ConfigurationError naming the setting, not a failure at the first request."""
    _client_credentials_env(monkeypatch, "ftp://login.example.com/token")
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_SECRET", SECRET)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "token_url" in str(caught.value)
    assert SECRET not in str(caught.value)


# -- voice --------------------------------------------------------------------------


def test_voice_defaults_are_the_documented_ones() -> None:
    """README: `STT_MODEL` default `whisper-1`, `TTS_MODEL` default `tts-1`, `VOICE`
    default `alloy`."""
    voice = load_settings().voice
    assert (voice.stt_model, voice.tts_model, voice.voice) == ("whisper-1", "tts-1", "alloy")


def test_voice_follows_an_openai_llm_with_its_token_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: unless voice's own BASE_URL/API_KEY is set, voice uses the `llm`
    section's server, key and token provider when the LLM is OpenAI."""
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "static")
    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN", "static-bearer-token")
    settings = load_settings()
    key, base_url, tokens = settings.voice.connection(settings.llm)
    assert key is None
    assert base_url == "http://127.0.0.1:9/v1"
    assert isinstance(tokens, StaticTokenProvider)


def test_voice_own_base_url_takes_over_and_drops_the_llm_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: the llm section is used only *unless* `ORRA_VOICE__BASE_URL` or
    `ORRA_VOICE__API_KEY` is set: then the LLM's token is not sent elsewhere."""
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "static")
    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN", "static-bearer-token")
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", "http://127.0.0.1:8/v1")
    settings = load_settings()
    key, base_url, tokens = settings.voice.connection(settings.llm)
    assert (key, base_url, tokens) == (None, "http://127.0.0.1:8/v1", None)


def test_voice_with_an_anthropic_llm_is_openai_with_openai_api_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: "and OpenAI with `OPENAI_API_KEY` otherwise": the Anthropic key and
    server are not lent to OpenAI's audio API."""
    monkeypatch.setenv("ORRA_LLM__KIND", "anthropic")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "sk-ant-not-for-openai")
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9")
    settings = load_settings()
    assert settings.voice.connection(settings.llm) == (None, None, None)


def test_voice_with_an_openai_compatible_server_uses_its_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """README: "...when the LLM is OpenAI or OpenAI-compatible": a base URL alone makes
    the LLM OpenAI-compatible, and its key and server are the audio API's."""
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_LLM__API_KEY", "local-key")
    settings = load_settings()
    key, base_url, tokens = settings.voice.connection(settings.llm)
    assert key is not None and key.get_secret_value() == "local-key"
    assert (base_url, tokens) == ("http://127.0.0.1:9/v1", None)


async def test_the_configured_voice_and_model_reach_the_speech_api(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: `ORRA_VOICE__TTS_MODEL` and `ORRA_VOICE__VOICE` choose the speech."""
    sent: list[dict[str, object]] = []

    def speak(request: Request) -> Response:
        sent.append(request.get_json())
        return Response(b"ID3fake", content_type="audio/mpeg")

    server.expect_request("/v1/audio/speech", method="POST").respond_with_handler(speak)
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", server.url_for("/v1"))
    monkeypatch.setenv("ORRA_VOICE__API_KEY", "voice-key")
    monkeypatch.setenv("ORRA_VOICE__TTS_MODEL", "gpt-4o-mini-tts")
    monkeypatch.setenv("ORRA_VOICE__VOICE", "nova")
    settings = load_settings()
    tts = make_text_to_speech(settings.voice, settings.llm)
    audio = await tts.synthesize("hello", SynthesizeOptions(voice=settings.voice.voice))
    assert audio.data == b"ID3fake"
    assert sent[0]["model"] == "gpt-4o-mini-tts"
    assert sent[0]["voice"] == "nova"
    assert sent[0]["input"] == "hello"


async def test_the_configured_stt_model_reaches_the_transcription_api(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer
) -> None:
    """README: the recording is transcribed with `ORRA_VOICE__STT_MODEL`
    (`gpt-4o-transcribe` works too)."""
    models: list[str] = []

    def transcribe(request: Request) -> Response:
        models.append(request.form["model"])
        return Response(json.dumps({"text": "hi there"}), content_type="application/json")

    server.expect_request("/v1/audio/transcriptions", method="POST").respond_with_handler(
        transcribe
    )
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", server.url_for("/v1"))
    monkeypatch.setenv("ORRA_VOICE__API_KEY", "voice-key")
    monkeypatch.setenv("ORRA_VOICE__STT_MODEL", "gpt-4o-transcribe")
    settings = load_settings()
    stt = make_speech_to_text(settings.voice, settings.llm)
    result = await stt.transcribe(b"RIFF\x24\x00\x00\x00WAVEfmt fake")
    assert result.text == "hi there"
    assert models == ["gpt-4o-transcribe"]


@pytest.mark.parametrize("suffix", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_each_documented_suffix_is_the_speech_format(suffix: str) -> None:
    """README: the format comes from the file's suffix: mp3, opus, aac, flac, wav or pcm."""
    from orra_di.voice.cli import speech_format

    assert speech_format(Path(f"answer.{suffix}"), "mp3") == suffix
    assert speech_format(Path(f"ANSWER.{suffix.upper()}"), "mp3") == suffix


def test_a_file_without_a_suffix_is_spoken_in_the_configured_format() -> None:
    """VoiceSettings.format: "the speech format when a file's suffix does not say"."""
    from orra_di.voice.cli import speech_format

    assert speech_format(Path("answer"), VoiceSettings(format="flac").format) == "flac"


async def test_a_refused_refresh_token_from_the_secrets_directory_is_in_no_error_or_log(
    monkeypatch: pytest.MonkeyPatch, server: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """README: `refresh_token` is a kind; "the secret appears in no error, log or repr",
    even when the token endpoint echoes it back in its refusal."""
    refresh = "rt-round20-refresh-secret-1234"
    server.expect_request(TOKEN_PATH, method="POST").respond_with_json(
        {"error": "invalid_grant", "error_description": f"refresh token {refresh} expired"},
        status=400,
    )
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ORRA_LLM__AUTH__KIND", "refresh_token")
    monkeypatch.setenv("ORRA_LLM__AUTH__TOKEN_URL", server.url_for(TOKEN_PATH))
    monkeypatch.setenv("ORRA_LLM__AUTH__CLIENT_ID", "orra-agents")
    (Path(os.environ["ORRA_SECRETS_DIR"]) / "orra_llm__auth__refresh_token").write_text(refresh)
    auth = load_settings().llm.auth
    assert auth is not None and auth.refresh_token is not None
    assert auth.refresh_token.get_secret_value() == refresh
    provider = auth.token_provider()
    assert refresh not in repr(provider)
    with pytest.raises(AuthError) as caught:
        await provider.token()
    assert "127.0.0.1" in str(caught.value)
    assert refresh not in str(caught.value) + repr(caught.value)
    assert refresh not in caplog.text


class _OwnTokens:
    """A token provider of the application's own: no base class, only the three
    methods README names (`token()`, `refresh()`, `revoke()`)."""

    def __init__(self) -> None:
        self.issued = 0
        self.refreshes = 0

    async def token(self) -> AccessToken:
        if self.issued == 0:
            self.issued = 1
        return AccessToken(value=SecretStr(f"own-{self.issued}"))

    async def refresh(self) -> AccessToken:
        self.refreshes += 1
        self.issued += 1
        return AccessToken(value=SecretStr(f"own-{self.issued}"))

    async def revoke(self) -> None:
        self.issued = 0


def _answer(vendor: str) -> dict[str, object]:
    if vendor == "openai":
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1730000000,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-5-5",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 2},
    }


def _vendor(vendor: str, server: HTTPServer, tokens: object) -> tuple[Any, str]:
    from orra_di.providers.anthropic import AnthropicProvider
    from orra_di.providers.openai import OpenAIProvider

    if vendor == "openai":
        llm: Any = OpenAIProvider(
            base_url=server.url_for("/v1"), max_retries=0, token_provider=tokens
        )
        return llm, "/v1/chat/completions"
    llm = AnthropicProvider(base_url=server.url_for(""), max_retries=0, token_provider=tokens)
    return llm, "/v1/messages"


def _refusal(vendor: str) -> Response:
    body = (
        {"error": {"message": "token revoked", "type": "invalid_request_error"}}
        if vendor == "openai"
        else {"type": "error", "error": {"type": "authentication_error", "message": "revoked"}}
    )
    return Response(json.dumps(body), status=401, content_type="application/json")


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_an_own_token_provider_is_renewed_once_on_a_401(
    server: HTTPServer, vendor: str
) -> None:
    """README: "your own class with `token()`, `refresh()` and `revoke()`", and "a 401
    from the vendor renews it once"."""
    tokens = _OwnTokens()
    llm, path = _vendor(vendor, server, tokens)
    answers = [
        _refusal(vendor),
        Response(json.dumps(_answer(vendor)), content_type="application/json"),
    ]
    server.expect_request(path).respond_with_handler(lambda _: answers.pop(0))
    try:
        result = await llm.complete(CompletionRequest(messages=[Message.user("hi")]))
    finally:
        await llm.aclose()
    assert result.message.content == "ok"
    sent = [
        dict(request.headers)["Authorization"] for request, _ in server.log if request.path == path
    ]
    assert sent == ["Bearer own-1", "Bearer own-2"]
    assert tokens.refreshes == 1


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
async def test_a_token_refused_twice_is_not_renewed_a_second_time(
    server: HTTPServer, vendor: str
) -> None:
    """README: a 401 renews the token *once*: a vendor that refuses the renewed token
    too is a ProviderAuthError after two requests, not a loop of renewals."""
    tokens = _OwnTokens()
    llm, path = _vendor(vendor, server, tokens)
    server.expect_request(path).respond_with_handler(lambda _: _refusal(vendor))
    try:
        with pytest.raises(ProviderAuthError):
            await llm.complete(CompletionRequest(messages=[Message.user("hi")]))
    finally:
        await llm.aclose()
    assert len([r for r, _ in server.log if r.path == path]) == 2
    assert tokens.refreshes == 1
