"""The OpenAI voice adapters: the real SDK against a loopback server that speaks the audio
API's wire format (a multipart upload in, JSON out; JSON in, audio bytes out)."""

from __future__ import annotations

import sys

import pytest
from pytest_httpserver import HTTPServer

from orra_di import ConfigurationError, VoiceError
from orra_di.auth import StaticTokenProvider
from orra_di.voice import (
    OpenAISpeechToText,
    OpenAITextToSpeech,
    SynthesizeOptions,
    TranscribeOptions,
)

from .conftest import AUDIO_IN, AUDIO_OUT, KEY, AudioServer

pytestmark = pytest.mark.anyio


def stt(server: AudioServer, **options: object) -> OpenAISpeechToText:
    options.setdefault("api_key", KEY)
    return OpenAISpeechToText(base_url=server.url, max_retries=0, **options)  # type: ignore[arg-type]


def tts(server: AudioServer, **options: object) -> OpenAITextToSpeech:
    options.setdefault("api_key", KEY)
    return OpenAITextToSpeech(base_url=server.url, max_retries=0, **options)  # type: ignore[arg-type]


async def test_transcribe_uploads_the_audio_as_multipart(audio_server: AudioServer) -> None:
    async with stt(audio_server, model="gpt-4o-transcribe") as client:
        result = await client.transcribe(
            AUDIO_IN, TranscribeOptions(language="en", prompt="Orra, Atlas", format="wav")
        )
    assert result.text == "What time is it?"
    (upload,) = audio_server.uploads
    assert upload.data == AUDIO_IN
    assert upload.filename == "audio.wav"
    assert upload.content_type == "audio/wav"
    assert upload.form == {
        "model": ["gpt-4o-transcribe"],
        "language": ["en"],
        "prompt": ["Orra, Atlas"],
        "response_format": ["json"],
    }
    assert upload.headers["Authorization"] == f"Bearer {KEY}"


async def test_word_timestamps_ask_for_verbose_json_and_keep_the_well_formed_words(
    audio_server: AudioServer,
) -> None:
    audio_server.transcript = {
        "task": "transcribe",
        "text": "Hello there",
        "language": "english",
        "duration": 1.25,
        "words": [
            {"word": "Hello", "start": 0.0, "end": 0.5},
            {"word": "lost", "start": 0.5},  # no end: skipped, as orra did
            {"word": "there", "start": 0.6, "end": 1.1},
        ],
    }
    async with stt(audio_server) as client:
        result = await client.transcribe(AUDIO_IN, TranscribeOptions(word_timestamps=True))
    assert audio_server.uploads[0].form["response_format"] == ["verbose_json"]
    assert audio_server.uploads[0].form["timestamp_granularities[]"] == ["word"]
    assert audio_server.uploads[0].form["model"] == ["whisper-1"]
    assert result.language == "english" and result.duration_secs == 1.25
    assert [(w.word, w.start_secs, w.end_secs) for w in result.words] == [
        ("Hello", 0.0, 0.5),
        ("there", 0.6, 1.1),
    ]


async def test_synthesize_posts_json_and_returns_the_audio_bytes(
    audio_server: AudioServer,
) -> None:
    async with tts(audio_server, model="gpt-4o-mini-tts") as client:
        audio = await client.synthesize(
            "It is noon.",
            SynthesizeOptions(voice="nova", speed=1.25, format="opus", instructions="calm"),
        )
    assert audio.data == AUDIO_OUT
    assert (audio.format, audio.sample_rate) == ("opus", 48_000)
    assert audio_server.speech == [
        {
            "model": "gpt-4o-mini-tts",
            "input": "It is noon.",
            "voice": "nova",
            "speed": 1.25,
            "response_format": "opus",
            "instructions": "calm",
        }
    ]


async def test_an_api_error_is_a_voice_error_with_status_and_advice_and_no_key(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/v1/audio/transcriptions").respond_with_json(
        {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "invalid_request"}},
        status=401,
    )
    async with OpenAISpeechToText(KEY, base_url=httpserver.url_for("/v1"), max_retries=0) as c:
        with pytest.raises(VoiceError) as caught:
            await c.transcribe(AUDIO_IN)
    assert caught.value.status == 401
    assert "transcription failed with HTTP 401" in str(caught.value)
    assert "check the API key (ORRA_VOICE__API_KEY or OPENAI_API_KEY)" in str(caught.value)
    assert KEY not in str(caught.value)
    assert caught.value.__cause__ is None


async def test_an_unknown_model_says_to_check_its_name(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/audio/speech").respond_with_json(
        {"error": {"message": "The model `tts-9` does not exist", "type": "invalid_request"}},
        status=404,
    )
    async with OpenAITextToSpeech(
        KEY, model="tts-9", base_url=httpserver.url_for("/v1"), max_retries=0
    ) as client:
        with pytest.raises(VoiceError, match="check the model name 'tts-9'") as caught:
            await client.synthesize("hi")
    assert caught.value.status == 404


async def test_an_unreachable_server_is_a_voice_error(audio_server: AudioServer) -> None:
    audio_server.server.stop()
    try:
        async with stt(audio_server) as client:
            with pytest.raises(VoiceError, match=r"cannot reach .*check voice\.base_url"):
                await client.transcribe(AUDIO_IN)
    finally:
        audio_server.server.start()


async def test_bad_input_fails_before_any_request(audio_server: AudioServer) -> None:
    async with stt(audio_server) as client:
        with pytest.raises(VoiceError, match="unsupported audio format 'aiff'"):
            await client.transcribe(AUDIO_IN, TranscribeOptions(format="aiff"))
        with pytest.raises(VoiceError, match="0 bytes"):
            await client.transcribe(b"")
    async with tts(audio_server) as client:
        with pytest.raises(VoiceError, match="unsupported output format 'ogg'"):
            await client.synthesize("hi", SynthesizeOptions(format="ogg"))
        with pytest.raises(VoiceError, match="speed must be between"):
            await client.synthesize("hi", SynthesizeOptions(speed=9))
        with pytest.raises(VoiceError, match="no text"):
            await client.synthesize("  ")
    assert audio_server.uploads == [] and audio_server.speech == []


async def test_a_token_provider_replaces_the_key(audio_server: AudioServer) -> None:
    tokens = StaticTokenProvider("gw-token-0123456789")
    async with tts(audio_server, api_key=None, token_provider=tokens) as client:
        await client.synthesize("hi")
    assert audio_server.speech_headers[0]["Authorization"] == "Bearer gw-token-0123456789"


def test_without_the_sdk_the_error_names_the_extra_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ConfigurationError) as caught:
        OpenAISpeechToText(KEY)
    assert 'pip install "orra-di[voice]"' in str(caught.value)
    assert 'pip install -e ".[voice]"' in str(caught.value)
