"""``orra-di ask --audio FILE --speak FILE``: transcribe, ask, speak, against the loopback
audio server; bad files fail before the agent runs, and a missing extra is named."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app

from .conftest import AUDIO_IN, AUDIO_OUT, KEY, AudioServer

OFFLINE = "You said: "  # the offline model repeats the transcript


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", "[]")
    monkeypatch.setenv("ORRA_VOICE__MAX_RETRIES", "0")
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "question.wav"
    path.write_bytes(AUDIO_IN)
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def error_line(result: Result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return next(x for x in result.stderr.splitlines() if x.startswith("error: "))


def test_ask_with_audio_sends_the_transcript_and_speaks_the_answer(
    audio_server: AudioServer, monkeypatch: pytest.MonkeyPatch, recording: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", audio_server.url)
    monkeypatch.setenv("ORRA_VOICE__API_KEY", KEY)
    monkeypatch.setenv("ORRA_VOICE__VOICE", "nova")
    monkeypatch.setenv("ORRA_VOICE__LANGUAGE", "en")
    out = tmp_path / "answer.wav"
    result = run("ask", "--json", "--audio", str(recording), "--speak", str(out))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    answer = json.loads(result.stdout)["answer"]
    assert answer.startswith(OFFLINE + "What time is it?\n")  # no tools: no current_time
    assert audio_server.uploads[0].data == AUDIO_IN
    assert audio_server.uploads[0].form["language"] == ["en"]
    assert audio_server.speech[0]["input"] == answer
    assert audio_server.speech[0]["voice"] == "nova"
    assert audio_server.speech[0]["response_format"] == "wav"  # from the file's suffix
    assert out.read_bytes() == AUDIO_OUT
    assert f"({len(AUDIO_OUT)} bytes)" in result.stderr
    assert KEY not in result.stdout + result.stderr


def test_voice_uses_the_llm_sections_server_by_default(
    audio_server: AudioServer, monkeypatch: pytest.MonkeyPatch, recording: Path
) -> None:
    monkeypatch.setenv("ORRA_LLM__BASE_URL", audio_server.url)
    monkeypatch.setenv("ORRA_LLM__KIND", "openai")
    monkeypatch.setenv("ORRA_LLM__API_KEY", KEY)
    monkeypatch.setenv("ORRA_LLM__MODEL", "gpt-4o")  # a base URL alone would ask GET /models
    chat = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Noon."},
                "finish_reason": "stop",
            }
        ],
    }
    audio_server.server.expect_request("/v1/chat/completions").respond_with_json(chat)
    result = run("ask", "--audio", str(recording))
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stdout == "Noon.\n"
    assert audio_server.uploads[0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_speak_file_of_an_unknown_format_fails_before_the_agent_runs(
    audio_server: AudioServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", audio_server.url)
    result = run("ask", "hello", "--speak", str(tmp_path / "answer.txt"))
    assert "unsupported format 'txt' for answer.txt" in error_line(result)
    assert run("sessions", "list").stdout == ""  # the agent never ran
    assert audio_server.speech == []


def test_a_recording_that_cannot_be_read_is_one_error_line(tmp_path: Path) -> None:
    result = run("ask", "--audio", str(tmp_path / "missing.wav"))
    assert "cannot read" in error_line(result) and "missing.wav" in result.stderr


def test_a_message_or_audio_is_required_but_not_both(recording: Path) -> None:
    assert run("ask").exit_code == 2
    both = run("ask", "hi", "--audio", str(recording))
    assert both.exit_code == 2
    assert "give the message or --audio FILE" in both.stderr


def test_a_missing_voice_extra_names_it_both_ways(
    monkeypatch: pytest.MonkeyPatch, recording: Path
) -> None:
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setitem(sys.modules, "openai", None)
    line = error_line(run("ask", "--audio", str(recording)))
    assert 'pip install "orra-di[voice]"' in line
    assert 'pip install -e ".[voice]"' in line


def test_a_failed_synthesis_leaves_an_existing_file_untouched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_VOICE__BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens
    out = tmp_path / "answer.mp3"
    out.write_bytes(b"previous answer")
    line = error_line(run("ask", "hello", "--speak", str(out)))
    assert "cannot reach" in line
    assert out.read_bytes() == b"previous answer"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
