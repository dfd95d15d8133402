"""Speech in and out: transcribe a recording, speak an answer.

- :mod:`orra_di.voice.types` — the :class:`SpeechToText` and :class:`TextToSpeech`
  protocols, :class:`Transcription`, the options and :class:`SynthesizedAudio` (pure);
- :mod:`orra_di.voice.openai` — :class:`OpenAISpeechToText` and
  :class:`OpenAITextToSpeech` on the ``openai`` SDK (``pip install "orra-di[voice]"``);
- :mod:`orra_di.voice.settings` — the ``voice`` settings section.

The OpenAI classes are imported on first use, so ``import orra_di.voice`` works
without the SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from orra_di.errors import VoiceError
from orra_di.voice.settings import VoiceSettings
from orra_di.voice.types import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
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

if TYPE_CHECKING:
    from orra_di.voice.openai import OpenAISpeechToText, OpenAITextToSpeech

__all__ = [
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
    "OpenAISpeechToText",
    "OpenAITextToSpeech",
    "SpeechToText",
    "SynthesizeOptions",
    "SynthesizedAudio",
    "TextToSpeech",
    "TranscribeOptions",
    "Transcription",
    "VoiceError",
    "VoiceInfo",
    "VoiceSettings",
    "WordTimestamp",
    "sample_rate_for",
]


def __getattr__(name: str) -> Any:
    if name in ("OpenAISpeechToText", "OpenAITextToSpeech"):
        from orra_di.voice import openai

        return getattr(openai, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
