"""A loopback server speaking OpenAI's audio wire format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

KEY = "sk-voice-test-0123456789abcdef"
AUDIO_IN = b"RIFF\x24\x00\x00\x00WAVEfmt fake-recording"
AUDIO_OUT = b"ID3\x04\x00fake-mp3-frames" + bytes(range(256))


@dataclass
class Upload:
    """One transcription request as the server read it off the multipart body."""

    form: dict[str, list[str]]
    filename: str | None
    content_type: str | None
    data: bytes
    headers: dict[str, str]


@dataclass
class AudioServer:
    """``/v1/audio/transcriptions`` (multipart in, JSON out) and ``/v1/audio/speech``
    (JSON in, audio bytes out); records what each received."""

    server: HTTPServer
    transcript: dict[str, Any] = field(default_factory=lambda: {"text": "What time is it?"})
    uploads: list[Upload] = field(default_factory=list)
    speech: list[dict[str, Any]] = field(default_factory=list)
    speech_headers: list[dict[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url_for("/v1")

    def transcribe(self, request: Request) -> Response:
        upload = request.files["file"]
        self.uploads.append(
            Upload(
                form={k: request.form.getlist(k) for k in request.form},
                filename=upload.filename,
                content_type=upload.content_type,
                data=upload.read(),
                headers=dict(request.headers),
            )
        )
        return Response(json.dumps(self.transcript), content_type="application/json")

    def speak(self, request: Request) -> Response:
        self.speech.append(request.get_json())
        self.speech_headers.append(dict(request.headers))
        return Response(AUDIO_OUT, content_type="audio/mpeg")


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> Iterator[HTTPServer]:
    yield httpserver_ipv4
    httpserver_ipv4.check_assertions()


@pytest.fixture
def audio_server(httpserver: HTTPServer) -> AudioServer:
    fake = AudioServer(httpserver)
    httpserver.expect_request("/v1/audio/transcriptions", method="POST").respond_with_handler(
        fake.transcribe
    )
    httpserver.expect_request("/v1/audio/speech", method="POST").respond_with_handler(fake.speak)
    return fake


@pytest.fixture(scope="session")
def empty_trust_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("no-certificates"))


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch, empty_trust_store: str) -> None:
    """No real key or proxy from the developer's shell; no CA bundle loaded (no TLS here)."""
    monkeypatch.setenv("SSL_CERT_DIR", empty_trust_store)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
