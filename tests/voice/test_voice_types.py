"""The voice value types and the OpenAI adapters' construction: orra's voice tests, as behaviour."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from orra_di import OrraError, VoiceError
from orra_di.voice import (
    OpenAISpeechToText,
    OpenAITextToSpeech,
    SpeechToText,
    SynthesizedAudio,
    SynthesizeOptions,
    TextToSpeech,
    TranscribeOptions,
    Transcription,
    VoiceInfo,
    WordTimestamp,
    sample_rate_for,
)
from orra_di.voice.types import OUTPUT_FORMATS, audio_format

pytestmark = pytest.mark.anyio


def test_transcription_basic() -> None:
    result = Transcription(text="Hello world", language="en", confidence=0.95)
    assert result.text == "Hello world"
    assert result.language == "en"
    assert result.confidence == 0.95
    assert result.duration_secs is None and result.words == []


def test_transcription_serialization_round_trips() -> None:
    result = Transcription(
        text="hi there",
        language="en",
        duration_secs=1.5,
        words=[WordTimestamp(word="hi", start_secs=0.0, end_secs=0.4)],
    )
    data = json.loads(result.model_dump_json())
    assert data["words"] == [{"word": "hi", "start_secs": 0.0, "end_secs": 0.4}]
    assert Transcription.model_validate(data) == result


def test_default_transcribe_options() -> None:
    options = TranscribeOptions()
    assert options.language is None and options.prompt is None and options.format is None
    assert options.word_timestamps is False


def test_default_synthesize_options() -> None:
    options = SynthesizeOptions()
    assert (options.voice, options.speed, options.format) == ("alloy", 1.0, "mp3")


def test_voice_info_serialization() -> None:
    info = VoiceInfo(id="nova", name="Nova", languages=["en"], description="Friendly")
    assert VoiceInfo.model_validate_json(info.model_dump_json()) == info


def test_synthesized_audio_basic() -> None:
    audio = SynthesizedAudio(data=b"\x00\x01\x02", format="mp3", sample_rate=24_000)
    assert len(audio.data) == 3
    assert repr(audio) == "SynthesizedAudio(3 bytes, mp3, 24000 Hz)"


def test_sample_rates_follow_the_format() -> None:
    assert [sample_rate_for(f) for f in ("opus", "aac", "flac", "mp3", "wav", "pcm")] == [
        48_000,
        44_100,
        44_100,
        24_000,
        24_000,
        24_000,
    ]


def test_voice_error_display() -> None:
    error = VoiceError("transcription failed with HTTP 500: boom", status=500)
    assert str(error) == "voice error: transcription failed with HTTP 500: boom"
    assert isinstance(error, OrraError) and error.status == 500
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.status) == (str(error), 500)


def test_an_unsupported_format_is_an_error_naming_the_accepted_ones() -> None:
    """orra declared UnsupportedFormat and never raised it (bug 41)."""
    assert audio_format(Path("answer.MP3"), OUTPUT_FORMATS) == "mp3"
    with pytest.raises(VoiceError, match=r"unsupported format 'txt' for answer\.txt.*\.mp3"):
        audio_format(Path("answer.txt"), OUTPUT_FORMATS)


async def test_whisper_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-0123456789")
    async with (
        OpenAISpeechToText() as default,
        OpenAISpeechToText("sk-0123456789", model="whisper-large-v3") as custom,
    ):
        assert default.model == "whisper-1"
        assert custom.model == "whisper-large-v3"
        assert isinstance(custom, SpeechToText)
        assert "sk-0123456789" not in repr(custom)


async def test_openai_tts_construction_and_voices() -> None:
    async with OpenAITextToSpeech("sk-0123456789", model="tts-1-hd") as tts:
        assert tts.model == "tts-1-hd"
        assert isinstance(tts, TextToSpeech)
        voices = await tts.list_voices()
    assert len(voices) == 6
    assert {"alloy", "nova"} <= {v.id for v in voices}
    assert all(v.languages == ["en"] and v.description for v in voices)


def test_no_key_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(OrraError, match="ORRA_VOICE__API_KEY or OPENAI_API_KEY"):
        OpenAISpeechToText()
