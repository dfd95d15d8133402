"""Speech in and out: the protocols, their options and results (pure, no SDK).

An application hands audio bytes to a :class:`SpeechToText` and gets a
:class:`Transcription`; it hands text to a :class:`TextToSpeech` and gets
:class:`SynthesizedAudio`. The OpenAI implementations are in
:mod:`orra_di.voice.openai`; anything with the same two methods plugs in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from orra_di.errors import VoiceError

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "SpeechToText",
    "SynthesizeOptions",
    "SynthesizedAudio",
    "TextToSpeech",
    "TranscribeOptions",
    "Transcription",
    "VoiceInfo",
    "WordTimestamp",
    "audio_format",
    "sample_rate_for",
]

INPUT_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
"""Audio formats speech-to-text accepts (OpenAI's list)."""
OUTPUT_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
"""Audio formats text-to-speech can produce."""


def audio_format(path: Path, accepted: tuple[str, ...]) -> str:
    """The format a file's suffix names, or a :class:`VoiceError` listing what is accepted.

    Checked before any request is sent, so ``--speak answer.txt`` fails before the
    agent runs rather than after (orra declared ``UnsupportedFormat`` and never
    raised it, bug 41).
    """
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in accepted:
        raise VoiceError(
            f"unsupported format {suffix or '(no suffix)'!r} for {path.name}: "
            f"use a file ending in one of .{', .'.join(accepted)}"
        )
    return suffix


def sample_rate_for(format: str) -> int:
    """The sample rate OpenAI's speech comes at, by format: opus 48 kHz, aac/flac 44.1, else 24."""
    return {"opus": 48_000, "aac": 44_100, "flac": 44_100}.get(format, 24_000)


class WordTimestamp(BaseModel):
    """One word and when it is spoken, in seconds from the start."""

    word: str
    start_secs: float
    end_secs: float


class Transcription(BaseModel):
    """What was said; the optional fields are filled when the service reports them."""

    text: str
    language: str | None = None
    confidence: float | None = None
    duration_secs: float | None = None
    words: list[WordTimestamp] = []


class VoiceInfo(BaseModel):
    """A voice a text-to-speech service offers."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    languages: list[str] = []
    description: str | None = None


@dataclass(frozen=True)
class TranscribeOptions:
    """``format`` is the audio's (``wav`` when unset); ``prompt`` steers spelling and style."""

    language: str | None = None
    prompt: str | None = None
    word_timestamps: bool = False
    format: str | None = None


@dataclass(frozen=True)
class SynthesizeOptions:
    """orra's defaults: the ``alloy`` voice at normal speed, as MP3."""

    voice: str = "alloy"
    speed: float = 1.0
    format: str = "mp3"
    instructions: str | None = None
    """How to speak (tone, pace), for the models that take it (gpt-4o-mini-tts)."""


@dataclass(frozen=True)
class SynthesizedAudio:
    """Encoded audio bytes in ``format``, at ``sample_rate`` Hz."""

    data: bytes
    format: str
    sample_rate: int

    def __repr__(self) -> str:
        return f"SynthesizedAudio({len(self.data)} bytes, {self.format}, {self.sample_rate} Hz)"


@runtime_checkable
class SpeechToText(Protocol):
    """Turns recorded speech into text."""

    async def transcribe(
        self, audio: bytes, options: TranscribeOptions | None = None
    ) -> Transcription:
        """The text of ``audio``; a :class:`~orra_di.errors.VoiceError` if it cannot be had."""
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    """Turns text into speech."""

    async def synthesize(
        self, text: str, options: SynthesizeOptions | None = None
    ) -> SynthesizedAudio:
        """``text`` spoken; a :class:`~orra_di.errors.VoiceError` if it cannot be."""
        ...

    async def list_voices(self) -> list[VoiceInfo]:
        """The voices ``SynthesizeOptions.voice`` may name."""
        ...
