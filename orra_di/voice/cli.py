"""What ``orra-di ask --audio FILE --speak FILE`` does, kept out of cli.py.

The command imports this module only when one of the two options is given, so
the CLI starts without the voice extra; the adapters come from the container
(``speech_to_text`` and ``text_to_speech``), so an application's container can
swap them.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from rich.markup import escape

from orra_di.errors import VoiceError
from orra_di.runtime import RunResult
from orra_di.voice.types import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    SpeechToText,
    SynthesizeOptions,
    TextToSpeech,
    TranscribeOptions,
    audio_format,
)

__all__ = ["ask_by_voice", "speak_answer", "speech_format", "transcribe_question"]

T = TypeVar("T", bound=tuple[str, RunResult])


async def ask_by_voice(
    container: Any,
    send: Callable[[str], Awaitable[T]],
    text: str | None,
    *,
    audio: Path | None,
    speak: Path | None,
    say: Callable[[str], object],
) -> T:
    """``send`` the message (``text``, or what ``audio`` says) and speak the answer to ``speak``.

    A ``speak`` file of a format no voice service writes, or that cannot be
    written, fails before anything is sent. ``send`` returns (agent name, run
    result), as the ``ask`` command's does; ``say`` tells the user where the speech went.
    """
    if speak is not None:
        speech_format(speak, container.settings().voice.format)
        _check_writable(speak)
    message = await transcribe_question(container, audio) if audio is not None else text
    if message is None:
        raise VoiceError("nothing to send: give a message or a recording")
    sent = await send(message)
    if speak is not None:
        size = await speak_answer(container, sent[1].final_message.content, speak)
        say(f"[dim]Wrote the answer as speech to {escape(str(speak))} ({size} bytes).[/dim]")
    return sent


def speech_format(path: Path, default: str) -> str:
    """The format to write ``path`` in: its suffix's, or ``default`` when it has none.

    Called before the agent runs, so a suffix no voice service writes fails first.
    """
    return default if not path.suffix else audio_format(path, OUTPUT_FORMATS)


async def transcribe_question(container: Any, audio: Path) -> str:
    """The text spoken in ``audio``, through the container's ``speech_to_text``."""
    format = audio_format(audio, INPUT_FORMATS)
    try:
        data = await anyio.Path(audio).read_bytes()
    except OSError as exc:
        raise VoiceError(f"cannot read {audio}: {exc.strerror or exc}") from None
    settings = container.settings().voice
    stt: SpeechToText = container.speech_to_text()
    try:
        result = await stt.transcribe(
            data, TranscribeOptions(language=settings.language, format=format)
        )
    finally:
        await _close(stt)
    if not result.text.strip():
        raise VoiceError(f"no speech found in {audio}")
    return result.text


async def speak_answer(container: Any, text: str, out: Path) -> int:
    """Write ``text`` as speech to ``out``; returns the number of bytes written.

    The file is written whole or not at all (a temporary file renamed into
    place), so a failed synthesis never leaves a truncated file behind, nor
    destroys an existing one.
    """
    settings = container.settings().voice
    options = SynthesizeOptions(
        voice=settings.voice, speed=settings.speed, format=speech_format(out, settings.format)
    )
    tts: TextToSpeech = container.text_to_speech()
    try:
        audio = await tts.synthesize(text, options)
    finally:
        await _close(tts)
    await anyio.to_thread.run_sync(_write_whole, out, audio.data)
    return len(audio.data)


def _check_writable(path: Path) -> None:
    """Refuse a speech file that cannot be written before the run and the synthesis
    are paid for: a directory, or a file in a directory that is missing or read-only."""
    directory = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise VoiceError(f"cannot write {path}: it is a directory; give a file name")
    if not directory.is_dir():
        raise VoiceError(f"cannot write {path}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise VoiceError(f"cannot write {path}: the directory {directory} is not writable")


def _write_whole(path: Path, data: bytes) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = _temporary_beside(path, directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise VoiceError(f"cannot write {path}: {exc.strerror or exc}") from None


async def _close(adapter: object) -> None:
    close = getattr(adapter, "aclose", None)
    if close is not None:
        await close()


def _temporary_beside(path: Path, directory: Path) -> tuple[int, str]:
    """A new temporary file in ``directory`` with the permissions ``path`` will keep.

    ``mkstemp`` makes files readable by their owner only, and the rename would give
    ``path`` that mode: an existing file keeps its own mode, a new one gets what any
    new file gets (0666 less the umask), as ``open(path, "wb")`` would give it.
    """
    try:
        mode: int | None = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = None
    for _ in range(100):
        temporary = str(directory / f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                os.fchmod(fd, mode)
            except OSError:
                os.close(fd)
                Path(temporary).unlink(missing_ok=True)
                raise
        return fd, temporary
    raise FileExistsError(f"no free temporary name beside {path}")
