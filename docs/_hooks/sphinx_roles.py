"""MkDocs hook: show the docstrings' Sphinx roles as plain code in the API reference.

The docstrings cross-reference with Sphinx roles (``:class:`~orra_di.errors.StoreError```),
which mkdocstrings renders literally as ``:class:`` followed by the code. This
drops the role and, as Sphinx does for a leading ``~``, keeps only the last
part of the dotted name.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|attr|mod|data|exc|obj):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """MkDocs event: rewrite every page's HTML once it is rendered."""
    return _ROLE.sub(_plain, html)
