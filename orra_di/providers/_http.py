"""What every HTTP vendor adapter reads the same way off a failed response."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = ["endpoint", "one_line", "retry_after_ms"]


def endpoint(url: str) -> str:
    """``scheme://host:port/path`` of ``url``: where a request went, safe to show.

    Credentials, query and fragment are left out, and the port is always
    written, so "connection failed" says which server and port it tried.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return "the configured server"
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def one_line(text: str, limit: int = 300) -> str:
    """At most ``limit`` characters on one line: an HTML error page would be long."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def retry_after_ms(headers: Mapping[str, str]) -> int | None:
    """The server's wait hint: ``retry-after-ms``, else ``retry-after`` (seconds or a date)."""
    for name, scale in (("retry-after-ms", 1.0), ("retry-after", 1000.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0, round(float(value) * scale))
        except (ValueError, OverflowError):  # not a number, or "inf"
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, round((when.timestamp() - time.time()) * 1000))
