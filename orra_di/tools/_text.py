"""Text helpers shared by the built-in tools: decoding what programs and servers send,
and cutting it to a size on characters (orra cut on bytes, and panicked mid-character:
spec §5.6/26)."""

from __future__ import annotations

from orra_di.message import storable_text

__all__ = ["clean", "decode", "truncate"]


def decode(data: bytes, encoding: str | None = None) -> str:
    """``data`` as text; bytes that are not valid in ``encoding`` (default UTF-8) become U+FFFD."""
    try:
        return data.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", errors="replace")


def clean(text: str) -> str:
    """``text`` without lone surrogates (U+FFFD instead) or NUL characters."""
    text = storable_text(text)
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def truncate(text: str, limit: int, marker: str) -> str:
    """``text`` cut to ``limit`` characters, then ``marker`` (formatted with ``shown`` and
    ``total``), or ``text`` itself when it fits."""
    if len(text) <= limit:
        return text
    return text[:limit] + marker.format(shown=limit, total=len(text))
