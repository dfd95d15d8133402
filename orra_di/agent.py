"""Agent profiles and ``@AgentName`` routing."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = [
    "DEFAULT_AGENT_NAME",
    "DEFAULT_PERSONALITY",
    "AgentProfile",
    "detect_agent_mention",
    "resolve_agents",
]

DEFAULT_AGENT_NAME = "Atlas"
DEFAULT_PERSONALITY = "friendly, helpful, and concise"


class AgentProfile(BaseModel):
    """A named agent: personality, an optional fixed system prompt and model."""

    model_config = ConfigDict(frozen=True)

    name: str
    personality: str = DEFAULT_PERSONALITY
    system_prompt: str | None = None
    model: str | None = None

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("agent name must not be blank")
        return value

    @property
    def key(self) -> str:
        """The lower-cased name agents are looked up by."""
        return self.name.lower()

    def with_personality(self, personality: str) -> AgentProfile:
        return self.model_copy(update={"personality": personality})

    def with_system_prompt(self, system_prompt: str) -> AgentProfile:
        return self.model_copy(update={"system_prompt": system_prompt})

    def with_model(self, model: str) -> AgentProfile:
        return self.model_copy(update={"model": model})


def resolve_agents(
    agents: Sequence[AgentProfile],
    legacy_name: str | None = None,
    legacy_personality: str | None = None,
    legacy_system_prompt: str | None = None,
) -> list[AgentProfile]:
    """The explicit list if any, else one agent from the legacy single-agent settings."""
    if agents:
        return list(agents)
    return [
        AgentProfile(
            name=legacy_name or DEFAULT_AGENT_NAME,
            personality=legacy_personality or DEFAULT_PERSONALITY,
            system_prompt=legacy_system_prompt,
        )
    ]


def detect_agent_mention(content: str, agent_names: Sequence[str]) -> tuple[str | None, str]:
    """Find the first ``@name`` (case-insensitive) and return it with the text minus it.

    Names are tried in list order. A match must end the word: the next
    character is absent or not an ASCII letter or digit. Matching works on
    characters of the original text, so non-ASCII content is never misaligned.
    """
    for name in agent_names:
        # (?-i:...): under IGNORECASE, [A-Za-z] would also match "K" (Kelvin), "ı", "İ", "ſ".
        pattern = re.compile("@" + re.escape(name) + "(?-i:(?![A-Za-z0-9]))", re.IGNORECASE)
        found = pattern.search(content)
        if found:
            return name, content[: found.start()] + content[found.end() :]
    return None, content
