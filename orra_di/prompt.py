"""The standard system prompt built from an agent profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from orra_di.agent import AgentProfile
from orra_di.tool import ToolRegistry

__all__ = ["CapabilityDescription", "PromptBuilder"]


@dataclass(frozen=True, slots=True)
class CapabilityDescription:
    name: str
    description: str


class PromptBuilder:
    """Builds orra's prompt template; a profile's own non-empty prompt wins verbatim."""

    def __init__(self, channel_context: str = "a chat interface") -> None:
        self.capabilities: list[CapabilityDescription] = []
        self.extra_sections: list[str] = []
        self.channel_context = channel_context

    def add_capability(self, capability: CapabilityDescription) -> PromptBuilder:
        self.capabilities.append(capability)
        return self

    def add_capabilities(self, capabilities: Iterable[CapabilityDescription]) -> PromptBuilder:
        self.capabilities.extend(capabilities)
        return self

    def add_capabilities_from_registry(self, registry: ToolRegistry) -> PromptBuilder:
        """One capability per tool, in the registry's (registration) order."""
        return self.add_capabilities(
            CapabilityDescription(d.name, d.description) for d in registry.definitions()
        )

    def add_section(self, text: str) -> PromptBuilder:
        self.extra_sections.append(text)
        return self

    def set_channel_context(self, text: str) -> PromptBuilder:
        self.channel_context = text
        return self

    def build(self, agent: AgentProfile, today: date | None = None) -> str:
        if agent.system_prompt:
            return agent.system_prompt
        day = today or datetime.now().date()
        prompt = (
            f"You are {agent.name}, an AI assistant. Your personality is: {agent.personality}.\n"
            f"Today is {day.strftime('%A, %B %d, %Y')}.\n\n"
            f"You are chatting in {self.channel_context}. Keep your responses concise and "
            "conversational. Use markdown formatting when appropriate.\n\n"
            "When a user asks you something, respond directly. If you need more information, "
            "use your tools to look it up before answering. If you're unsure about something, "
            "say so rather than making things up."
        )
        if self.capabilities:
            prompt += "\n\nYou have access to the following capabilities:\n- " + "\n- ".join(
                c.description for c in self.capabilities
            )
        if self.extra_sections:
            prompt += "\n\n" + "\n\n".join(self.extra_sections)
        return prompt
