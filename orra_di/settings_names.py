"""Spotting a misspelt ``ORRA_*`` variable, which pydantic-settings would silently ignore.

``ORRA_AGENT='[...]'`` (for ``ORRA_AGENTS``) or ``ORRA_LLM_MODEL`` (one underscore
where a level needs two) configure nothing, and the program runs on the
defaults with no sign of why. :func:`misspelt_variables` names, for each such
variable, the one that was probably meant; :class:`~orra_di.settings.OrraSettings`
turns each into a :class:`SettingsWarning`. Variables that resemble no setting
(``ORRA_GATEWAY_PORT``, another program's) are left alone: they may be someone
else's.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

__all__ = ["OTHER_VARIABLES", "SettingsWarning", "misspelt_variables"]

OTHER_VARIABLES = ("ORRA_CONFIG_FILE", "ORRA_SECRETS_DIR", "ORRA_CONTAINER")
"""Variables of ours that are not settings (read before the settings are)."""


class SettingsWarning(UserWarning):
    """A configuration that is probably not what was meant, though it is valid."""


def misspelt_variables(
    fields: Iterable[str], environ: Mapping[str, str], prefix: str = "ORRA_"
) -> list[str]:
    """One message per ``prefix`` variable that sets nothing but resembles a setting.

    ``fields`` are the top-level settings (``llm``, ``agents``, …); a variable
    sets one when its name, after ``prefix``, is the field or starts with the
    field and ``__``, in any case.
    """
    fields = [f.lower() for f in fields]
    others = [name.removeprefix(prefix).lower() for name in OTHER_VARIABLES]
    messages = []
    for variable in sorted(environ):
        if not variable.upper().startswith(prefix) or not environ[variable]:
            continue
        rest = variable[len(prefix) :].lower()
        top = rest.split("__", 1)[0]
        if top in fields or rest in others:
            continue
        meant = _meant(rest, top, fields, others)
        if meant is not None:
            messages.append(
                f"{variable} is not a setting and is ignored; did you mean {prefix}{meant.upper()}?"
            )
    return messages


def _meant(rest: str, top: str, fields: list[str], others: list[str]) -> str | None:
    # ORRA_LLM_MODEL: one underscore where a nested setting takes two.
    for field in fields:
        if top.startswith(field + "_") and len(top) > len(field) + 1:
            return f"{field}__{rest[len(field) + 1 :]}"
    close = difflib.get_close_matches(top, fields, n=1, cutoff=0.7)
    if close:
        return close[0] + rest[len(top) :]
    close = difflib.get_close_matches(rest, others, n=1, cutoff=0.7)
    return close[0] if close else None
