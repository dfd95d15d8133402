"""Keeping secrets out of text: URL passwords and API keys, masked before any output.

One place, so settings, store and provider reprs and error messages all mask the
same things the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["mask_url", "redact"]

# user:password@ up to the last "@" before any query or fragment, so an unescaped "@" or "/"
# in a password is masked too (over-masking a path is harmless), while an "@" in the query
# is not taken for one.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/?#\s\"']*):[^\s\"'?#]*@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|sslpassword|api[_-]?key|key|token|access[_-]?token|secret)=)"
    r"[^&#\s\"']*",
    re.IGNORECASE,
)
MASK = "***"


def mask_url(text: str) -> str:
    """Every URL password in ``text`` (userinfo, or a secret-looking query value) as ``***``."""
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    return _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with each secret (of 8 characters or more) replaced by ``***``.

    Vendors and proxies echo keys in error bodies; this runs on every message
    an adapter builds from one. Short values are left alone: replacing them
    would garble text without protecting anything.
    """
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, MASK)
    return text
