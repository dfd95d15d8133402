"""OpenAI's audio API on the official ``openai`` SDK (``pip install "orra-di[voice]"``).

:class:`OpenAISpeechToText` uploads audio to ``audio/transcriptions`` (``whisper-1``,
``gpt-4o-transcribe``, ``gpt-4o-mini-transcribe``, or a compatible server's model)
and :class:`OpenAITextToSpeech` posts text to ``audio/speech`` (``tts-1``,
``tts-1-hd``, ``gpt-4o-mini-tts``) and returns the encoded audio. The SDK is
imported here only. Every failure is a :class:`~orra_di.errors.VoiceError` that
says what failed and what to check, with the key scrubbed; a token provider
(:mod:`orra_di.auth`) may replace the key as it does for the chat providers.
"""

from __future__ import annotations

import math
import os
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from orra_di.errors import ConfigurationError, VoiceError
from orra_di.redaction import mask_url, redact
from orra_di.voice.types import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    SynthesizedAudio,
    SynthesizeOptions,
    TranscribeOptions,
    Transcription,
    VoiceInfo,
    WordTimestamp,
    sample_rate_for,
)

if TYPE_CHECKING:
    import openai

    from orra_di.auth.tokens import TokenProvider

__all__ = [
    "DEFAULT_STT_MODEL",
    "DEFAULT_TTS_MODEL",
    "OPENAI_VOICES",
    "OpenAISpeechToText",
    "OpenAITextToSpeech",
]

DEFAULT_STT_MODEL = "whisper-1"
DEFAULT_TTS_MODEL = "tts-1"
PLACEHOLDER_API_KEY = "not-needed"
"""Sent to a ``base_url`` server when no key is given (as the chat provider does)."""

OPENAI_VOICES = (
    VoiceInfo(id="alloy", name="Alloy", languages=["en"], description="Neutral and balanced"),
    VoiceInfo(id="echo", name="Echo", languages=["en"], description="Warm and engaging"),
    VoiceInfo(id="fable", name="Fable", languages=["en"], description="Expressive and dynamic"),
    VoiceInfo(id="onyx", name="Onyx", languages=["en"], description="Deep and authoritative"),
    VoiceInfo(id="nova", name="Nova", languages=["en"], description="Friendly and upbeat"),
    VoiceInfo(id="shimmer", name="Shimmer", languages=["en"], description="Clear and precise"),
)
"""orra's list of OpenAI voices (the API has more, e.g. ``ash``, ``coral``, ``sage``)."""


def _sdk() -> Any:
    try:
        import openai
    except ImportError:
        raise ConfigurationError(
            'voice needs the openai SDK: pip install "orra-di[voice]" '
            '(or pip install -e ".[voice]" from a checkout)'
        ) from None
    return openai


class _AudioClient:
    """The SDK client, its key, and the error mapping both directions share."""

    what = "audio"

    def __init__(
        self,
        api_key: str | SecretStr | None,
        *,
        model: str,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        client: Any | None,
        token_provider: TokenProvider | None,
    ) -> None:
        sdk = _sdk()
        self.model = model
        self._owns_client = client is None
        if client is not None:
            if (api_key, base_url, token_provider) != (None, None, None):
                raise ConfigurationError("give either client or api_key/base_url/token_provider")
            self._client: openai.AsyncOpenAI = client
            self._key = SecretStr(str(getattr(client, "api_key", "") or ""))
            return
        if base_url is not None:  # the API root, also from orra's full chat URL form
            base_url = base_url.rstrip("/").removesuffix("/chat/completions")
        http_client = None
        if token_provider is not None:
            if api_key is not None:
                raise ConfigurationError("give either api_key or token_provider, not both")
            from orra_di.auth.http import bearer_http_client

            self._key = SecretStr(PLACEHOLDER_API_KEY)
            http_client = bearer_http_client(sdk.DefaultAsyncHttpxClient, token_provider)
        else:
            self._key = _resolve_key(api_key, base_url)
        self._client = sdk.AsyncOpenAI(
            api_key=self._key.get_secret_value(),
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )

    def __repr__(self) -> str:
        base_url = mask_url(str(self._client.base_url))
        return f"{type(self).__name__}(model={self.model!r}, base_url={base_url!r})"

    async def aclose(self) -> None:
        """Close the SDK client if this object made it."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> _AudioClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _error(self, exc: Exception) -> VoiceError:
        """The SDK's exception as a :class:`VoiceError`, what to check included, key scrubbed."""
        sdk = _sdk()
        host = mask_url(str(self._client.base_url))
        if isinstance(exc, sdk.APITimeoutError):
            return VoiceError(f"{self.what} got no answer from {host} within the timeout")
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__
            reason = f"{type(cause).__name__}: {cause}" if cause else "connection failed"
            return VoiceError(
                self._redact(f"{self.what} cannot reach {host} ({reason}); check voice.base_url")
            )
        if isinstance(exc, sdk.APIStatusError):
            status = exc.status_code
            detail = exc.message or "(no message)"
            advice = {
                401: "; check the API key (ORRA_VOICE__API_KEY or OPENAI_API_KEY)",
                403: "; check that the key may use this model",
                404: f"; check the model name {self.model!r} and voice.base_url",
            }.get(status, "")
            return VoiceError(
                self._redact(f"{self.what} failed with HTTP {status}: {detail}{advice}"), status
            )
        return VoiceError(self._redact(f"{self.what} failed: {type(exc).__name__}: {exc}"))

    def _redact(self, text: str) -> str:
        return redact(mask_url(text), [self._key.get_secret_value()])


class OpenAISpeechToText(_AudioClient):
    """:class:`~orra_di.voice.types.SpeechToText` on ``audio/transcriptions``.

    Word timestamps ask for ``verbose_json`` with word granularity, which
    ``whisper-1`` supports; other models answer with the text only.
    """

    what = "transcription"

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_STT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        client: Any | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            model=model,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            client=client,
            token_provider=token_provider,
        )

    async def transcribe(
        self, audio: bytes, options: TranscribeOptions | None = None
    ) -> Transcription:
        options = options or TranscribeOptions()
        format = (options.format or "wav").lower()
        if format not in INPUT_FORMATS:
            raise VoiceError(
                f"unsupported audio format {format!r}: use one of {', '.join(INPUT_FORMATS)}"
            )
        if not audio:
            raise VoiceError("no audio to transcribe (0 bytes)")
        params: dict[str, Any] = {
            "model": self.model,
            "file": (f"audio.{format}", audio, f"audio/{format}"),
            "response_format": "verbose_json" if options.word_timestamps else "json",
        }
        if options.language:
            params["language"] = options.language
        if options.prompt:
            params["prompt"] = options.prompt
        if options.word_timestamps:
            params["timestamp_granularities"] = ["word"]
        sdk = _sdk()
        try:
            answer: Any = await self._client.audio.transcriptions.create(**params)
        except sdk.OpenAIError as exc:
            raise self._error(exc) from None
        except ValueError:  # a body that is not JSON
            raise VoiceError(
                f"{self.what}: the server's answer is not JSON; is voice.base_url an "
                "OpenAI-compatible API root (…/v1)?"
            ) from None
        return _transcription(answer)


class OpenAITextToSpeech(_AudioClient):
    """:class:`~orra_di.voice.types.TextToSpeech` on ``audio/speech``."""

    what = "speech synthesis"

    def __init__(
        self,
        api_key: str | SecretStr | None = None,
        *,
        model: str = DEFAULT_TTS_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        client: Any | None = None,
        token_provider: TokenProvider | None = None,
    ) -> None:
        super().__init__(
            api_key,
            model=model,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            client=client,
            token_provider=token_provider,
        )

    async def synthesize(
        self, text: str, options: SynthesizeOptions | None = None
    ) -> SynthesizedAudio:
        options = options or SynthesizeOptions()
        format = options.format.lower()
        if format not in OUTPUT_FORMATS:
            raise VoiceError(
                f"unsupported output format {format!r}: use one of {', '.join(OUTPUT_FORMATS)}"
            )
        if not text.strip():
            raise VoiceError("no text to speak")
        if not 0.25 <= options.speed <= 4.0:
            raise VoiceError(f"speed must be between 0.25 and 4.0, not {options.speed}")
        params: dict[str, Any] = {
            "model": self.model,
            "input": text,
            "voice": options.voice,
            "speed": options.speed,
            "response_format": format,
        }
        if options.instructions:
            params["instructions"] = options.instructions
        sdk = _sdk()
        try:
            response = await self._client.audio.speech.create(**params)
            data = response.content
        except sdk.OpenAIError as exc:
            raise self._error(exc) from None
        if not data:
            raise VoiceError(f"{self.what}: the server answered with no audio")
        return SynthesizedAudio(data=data, format=format, sample_rate=sample_rate_for(format))

    async def list_voices(self) -> list[VoiceInfo]:
        """orra's fixed list of OpenAI voices (the API has no listing endpoint)."""
        return list(OPENAI_VOICES)


def _resolve_key(api_key: str | SecretStr | None, base_url: str | None) -> SecretStr:
    """The explicit key; else a placeholder for a ``base_url`` server (which never receives
    ``OPENAI_API_KEY``); else ``OPENAI_API_KEY``."""
    if isinstance(api_key, SecretStr):
        return api_key
    if api_key:
        return SecretStr(api_key)
    if base_url is not None:
        return SecretStr(PLACEHOLDER_API_KEY)
    from_env = os.environ.get("OPENAI_API_KEY")
    if not from_env:
        raise ConfigurationError(
            "no OpenAI API key for voice: set ORRA_VOICE__API_KEY or OPENAI_API_KEY "
            "(or ORRA_VOICE__BASE_URL for a local OpenAI-compatible server)"
        )
    return SecretStr(from_env)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _transcription(answer: Any) -> Transcription:
    """Our :class:`Transcription` from the SDK's json or verbose_json answer.

    Read field by field: a compatible server may leave any of them out, and a
    word missing its timing is skipped rather than failing the whole answer.
    """
    text = getattr(answer, "text", None)
    if not isinstance(text, str):
        raise VoiceError(
            "transcription: the answer has no text; is voice.base_url an OpenAI-compatible "
            "API root (…/v1)?"
        )
    words = []
    for item in getattr(answer, "words", None) or ():
        word = getattr(item, "word", None)
        start, end = _number(getattr(item, "start", None)), _number(getattr(item, "end", None))
        if isinstance(word, str) and start is not None and end is not None:
            words.append(WordTimestamp(word=word, start_secs=start, end_secs=end))
    language = getattr(answer, "language", None)
    return Transcription(
        text=text,
        language=language if isinstance(language, str) else None,
        duration_secs=_number(getattr(answer, "duration", None)),
        words=words,
    )
