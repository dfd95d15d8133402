"""Round 12 review: ``orra-di ask --audio ... --speak ...`` (README "Voice") against a
loopback server speaking OpenAI's audio API: bad recordings refused before anything is
sent, the speech file written like any other file the user asks for, a server error.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from typer.testing import CliRunner, Result
from werkzeug import Request, Response

from orra_di.cli import app

AUDIO_OUT = b"ID3\x04\x00speech" + bytes(range(64))


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    httpd = HTTPServer(host="127.0.0.1", port=0)
    httpd.start()
    try:
        yield httpd
    finally:
        httpd.clear()
        if httpd.is_running():
            httpd.stop()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: HTTPServer) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("ORRA_VOICE__MAX_RETRIES", "0")
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", server.url_for("/v1"))
    monkeypatch.setenv("ORRA_VOICE__API_KEY", "sk-voice-round12-0123456789")
    monkeypatch.chdir(tmp_path)


def serve_audio(server: HTTPServer, *, speech_status: int = 200) -> None:
    def transcribe(request: Request) -> Response:
        return Response(json.dumps({"text": "what time is it"}), content_type="application/json")

    def speak(request: Request) -> Response:
        if speech_status != 200:
            body = {"error": {"message": "speech is down", "type": "server_error"}}
            return Response(json.dumps(body), status=speech_status, mimetype="application/json")
        return Response(AUDIO_OUT, content_type="audio/mpeg")

    server.expect_request("/v1/audio/transcriptions", method="POST").respond_with_handler(
        transcribe
    )
    server.expect_request("/v1/audio/speech", method="POST").respond_with_handler(speak)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return next(x for x in result.stderr.splitlines() if x.startswith("error: "))


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.wav", b"", "0 bytes"),
        ("notes.txt", b"hello", "unsupported format"),
    ],
)
def test_a_bad_recording_is_one_error_line_and_nothing_is_sent(
    server: HTTPServer, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    serve_audio(server)
    (tmp_path / name).write_bytes(content)
    line = error_line(run("ask", "--audio", name))
    assert expected in line
    assert server.log == []  # the audio service was never asked
    assert not (tmp_path / "s.sqlite3").exists() or "acme" not in run("sessions", "list").stdout


def test_a_recording_that_is_a_directory_is_one_error_line(
    server: HTTPServer, tmp_path: Path
) -> None:
    serve_audio(server)
    (tmp_path / "take.wav").mkdir()
    assert "cannot read" in error_line(run("ask", "--audio", "take.wav"))
    assert server.log == []


def test_the_speech_file_gets_the_permissions_of_any_new_file(
    server: HTTPServer, tmp_path: Path
) -> None:
    serve_audio(server)
    old = os.umask(0o022)
    try:
        result = run("ask", "hello", "--speak", "answer.mp3")
    finally:
        os.umask(old)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = tmp_path / "answer.mp3"
    assert out.read_bytes() == AUDIO_OUT
    # like `> answer.mp3` or open(..., "wb"): readable by others under umask 022
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_an_existing_speech_file_keeps_its_permissions(server: HTTPServer, tmp_path: Path) -> None:
    serve_audio(server)
    out = tmp_path / "answer.mp3"
    out.write_bytes(b"old")
    out.chmod(0o640)
    result = run("ask", "hello", "--speak", "answer.mp3")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert out.read_bytes() == AUDIO_OUT
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_a_speech_server_error_keeps_the_answer_and_names_the_status(
    server: HTTPServer, tmp_path: Path
) -> None:
    serve_audio(server, speech_status=500)
    result = run("ask", "-n", "acme:alice", "hello", "--speak", "answer.mp3")
    line = error_line(result)
    assert "HTTP 500" in line and "speech is down" in line
    assert "sk-voice-round12-0123456789" not in result.stdout + result.stderr
    assert not (tmp_path / "answer.mp3").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    shown = run("sessions", "show", "acme:alice")
    assert "hello" in shown.stdout  # the run happened and was stored
