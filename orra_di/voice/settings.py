"""The ``voice`` settings section (``ORRA_VOICE__...``) and the adapters it builds.

::

    ORRA_VOICE__STT_MODEL=gpt-4o-transcribe
    ORRA_VOICE__TTS_MODEL=gpt-4o-mini-tts
    ORRA_VOICE__VOICE=nova
    ORRA_VOICE__FORMAT=mp3

Where the audio API is: ``voice.base_url`` and ``voice.api_key`` when either is
set; otherwise, when the LLM is OpenAI (or an OpenAI-compatible server), the
``llm`` section's base URL, key and token provider; otherwise OpenAI with
``OPENAI_API_KEY``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

if TYPE_CHECKING:
    from orra_di.auth.tokens import TokenProvider
    from orra_di.settings import LLMSettings
    from orra_di.voice.openai import OpenAISpeechToText, OpenAITextToSpeech

__all__ = ["VoiceSettings", "make_speech_to_text", "make_text_to_speech"]


class VoiceSettings(BaseModel):
    """Speech-to-text and text-to-speech models, the voice, and where the API is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stt_model: str = "whisper-1"
    """The speech-to-text model (``orra-di ask --audio``)."""
    tts_model: str = "tts-1"
    """The text-to-speech model (``orra-di ask --speak``)."""
    voice: str = Field("alloy", description="a voice name such as alloy, echo, nova, shimmer")
    """The voice text-to-speech speaks with."""
    format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    """The speech format when a file's suffix does not say (``orra-di ask --speak``)."""
    speed: float = Field(1.0, ge=0.25, le=4.0)
    """How fast speech is spoken (1.0 is normal)."""
    language: str | None = Field(None, description="an ISO-639-1 code such as 'en', or unset")
    """The language spoken in recordings, to help transcription; unset to detect it."""
    base_url: str | None = Field(
        None, description="an http:// or https:// API root such as http://127.0.0.1:8000/v1"
    )
    """The audio API root; unset, the ``llm`` section's when it is OpenAI-compatible."""
    api_key: SecretStr | None = None
    """The audio API key; unset, the ``llm`` section's (see the module docstring)."""
    timeout: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Seconds one audio request may take."""
    max_retries: int = Field(2, ge=0)
    """Retries of a failed audio request (the SDK's own retry)."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return url
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ValueError(f"not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("not an http:// or https:// URL with a host")
        return url

    def connection(
        self, llm: LLMSettings
    ) -> tuple[SecretStr | None, str | None, TokenProvider | None]:
        """(api key, base URL, token provider) for the audio API, by the rule above."""
        if self.base_url or self.api_key:
            return self.api_key, self.base_url, None
        if llm.resolved_kind == "openai":
            tokens = llm.auth.token_provider() if llm.auth else None
            key = None if tokens else llm.api_key if llm.base_url else llm.resolved_api_key
            return key, llm.base_url, tokens
        return None, None, None


def make_speech_to_text(voice: VoiceSettings, llm: LLMSettings) -> OpenAISpeechToText:
    """The configured speech-to-text adapter (needs ``orra-di[voice]``)."""
    from orra_di.voice.openai import OpenAISpeechToText

    key, base_url, tokens = voice.connection(llm)
    return OpenAISpeechToText(
        key,
        model=voice.stt_model,
        base_url=base_url,
        timeout=voice.timeout,
        max_retries=voice.max_retries,
        token_provider=tokens,
    )


def make_text_to_speech(voice: VoiceSettings, llm: LLMSettings) -> OpenAITextToSpeech:
    """The configured text-to-speech adapter (needs ``orra-di[voice]``)."""
    from orra_di.voice.openai import OpenAITextToSpeech

    key, base_url, tokens = voice.connection(llm)
    return OpenAITextToSpeech(
        key,
        model=voice.tts_model,
        base_url=base_url,
        timeout=voice.timeout,
        max_retries=voice.max_retries,
        token_provider=tokens,
    )
