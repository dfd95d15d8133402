"""Keeping secrets out of text: URL passwords and API keys, masked before any output.

One place, so settings, store and provider reprs and error messages all mask the
same things the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote

from orra_di.errors import ConfigurationError

__all__ = ["check_password_parsed", "mask_url", "redact", "written_password"]

_SCHEME = r"[A-Za-z][A-Za-z0-9+.-]*://"
# user:password@ up to the last "@" before any query or fragment, so an unescaped "@" or "/"
# in a password is masked too (over-masking a path is harmless), while an "@" in the query
# is not taken for one.
_URL_PASSWORD = re.compile(rf"(?P<head>{_SCHEME}[^:@/?#\s\"']*):(?P<pw>[^\s\"'?#]*)@")
# Then a password holding an unescaped "?" or "#" (before any "@"): to the last "@". This
# also takes "host:port/db?x=a@b" for one, over-masking it: the price of never showing
# such a password.
_URL_PASSWORD_QUERYLIKE = re.compile(
    rf"(?P<head>{_SCHEME}[^:@/?#\s\"']*):(?P<pw>[^\s\"'@?#]*[?#][^\s\"']*)@"
)
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|sslpassword|api[_-]?key|key|token|access[_-]?token|secret)=)"
    r"[^&#\s\"']*",
    re.IGNORECASE,
)
MASK = "***"
_PASSWORD_QUERY = re.compile(r"[?&]password=", re.IGNORECASE)


def mask_url(text: str, passwords: Iterable[str | None] = ()) -> str:
    """Every URL password in ``text`` (userinfo, or a secret-looking query value) as ``***``.

    ``passwords`` are the ones a driver parsed from the URL: they are masked where they
    stand as a userinfo password (``:<password>@``, as written or percent-encoded) even
    when they hold a character the pattern stops at (``?``, ``#``). This is the one way
    a URL is shown: settings, store reprs and errors, the CLI.
    """
    for password in passwords:
        if password:
            for form in {password, quote(password, safe="")}:
                text = text.replace(f":{form}@", f":{MASK}@")
    text = _URL_PASSWORD.sub(rf"\g<head>:{MASK}@", text)
    text = _URL_PASSWORD_QUERYLIKE.sub(rf"\g<head>:{MASK}@", text)
    return _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)


def written_password(url: str) -> str | None:
    """The userinfo password of ``url`` as :func:`mask_url` reads it (up to the last ``@``,
    so an unescaped ``/``, ``@``, ``?`` or ``#`` is part of it), as written."""
    match = _URL_PASSWORD.match(url) or _URL_PASSWORD_QUERYLIKE.match(url)
    return None if match is None else match["pw"]


def check_password_parsed(url: str, parsed: str | None, *, what: str) -> None:
    """Refuse a URL whose driver read another password than the one written in it.

    An unescaped ``/``, ``@``, ``?`` or ``#`` in a password makes a driver cut the URL
    elsewhere: it would connect to a host named after part of the password, and echo
    that part in its errors. ``parsed`` is ``None`` when the driver could not parse the
    URL at all. The message never shows the password.
    """
    written = written_password(url)
    if written is None or _PASSWORD_QUERY.search(url):
        return
    if parsed is not None and unquote(written) == parsed:
        return
    if parsed is None and not set(written) & set("/?#"):
        return
    raise ConfigurationError(
        f"the password in the {what} URL {mask_url(url, [parsed])} holds a character that "
        "ends it early ('/', '@', '?' or '#'); percent-encode the password, e.g. with "
        "urllib.parse.quote(password, safe='') ('/' becomes %2F, '@' %40)"
    )


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
