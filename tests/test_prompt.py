"""The system prompt builder: the crate's tests (src/prompt.rs) and the exact template."""

from __future__ import annotations

from datetime import date, datetime

from orra_di.agent import AgentProfile
from orra_di.message import JsonValue
from orra_di.prompt import CapabilityDescription, PromptBuilder
from orra_di.tool import ToolContext, ToolDefinition, ToolRegistry

TODAY = date(2026, 2, 22)


class DummyTool:
    def __init__(self, name: str, description: str) -> None:
        self._definition = ToolDefinition(name=name, description=description, input_schema={})

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        return "ok"


# -- the crate's tests ------------------------------------------------------


def test_basic_prompt_includes_name_and_personality() -> None:
    agent = AgentProfile(name="Atlas", personality="witty and warm")
    prompt = PromptBuilder().build(agent)
    assert "Atlas" in prompt
    assert "witty and warm" in prompt
    assert "AI assistant" in prompt


def test_custom_system_prompt_overrides() -> None:
    agent = AgentProfile(name="Atlas").with_system_prompt("You are a pirate.")
    builder = PromptBuilder().add_capability(CapabilityDescription("search", "Search the web"))
    builder.add_section("Extra rules.")
    # Verbatim: nothing is appended, not even capabilities.
    assert builder.build(agent) == "You are a pirate."


def test_empty_custom_prompt_falls_back_to_auto() -> None:
    agent = AgentProfile(name="Atlas", system_prompt="")
    prompt = PromptBuilder().build(agent, today=TODAY)
    assert prompt.startswith("You are Atlas, an AI assistant.")
    assert prompt == PromptBuilder().build(AgentProfile(name="Atlas"), today=TODAY)


def test_capabilities_included_in_prompt() -> None:
    builder = PromptBuilder()
    builder.add_capabilities(
        [
            CapabilityDescription("search", "Search the web for information"),
            CapabilityDescription("calc", "Do arithmetic"),
        ]
    )
    prompt = builder.build(AgentProfile(name="Atlas"))
    assert "Search the web for information" in prompt
    assert "Do arithmetic" in prompt
    assert "capabilities" in prompt


def test_channel_context_customizable() -> None:
    builder = PromptBuilder()
    builder.set_channel_context("a Discord server")
    prompt = builder.build(AgentProfile(name="Atlas"))
    assert "You are chatting in a Discord server." in prompt
    assert "a chat interface" not in prompt
    assert "a Slack channel" in PromptBuilder(channel_context="a Slack channel").build(
        AgentProfile(name="Atlas")
    )


def test_extra_sections_appended() -> None:
    builder = PromptBuilder().add_section("Section one.").add_section("Section two.")
    prompt = builder.build(AgentProfile(name="Atlas"), today=TODAY)
    assert prompt.endswith("making things up.\n\nSection one.\n\nSection two.")


def test_no_capabilities_no_section() -> None:
    prompt = PromptBuilder().build(AgentProfile(name="Atlas"))
    assert "capabilities" not in prompt


def test_capabilities_from_registry() -> None:
    registry = ToolRegistry([DummyTool("dummy", "A dummy tool for testing")])
    builder = PromptBuilder().add_capabilities_from_registry(registry)
    prompt = builder.build(AgentProfile(name="Atlas"))
    assert "dummy tool for testing" in prompt


# -- the exact template ----------------------------------------------------------------


def test_exact_template_for_a_fixed_day() -> None:
    agent = AgentProfile(name="Atlas")
    assert PromptBuilder().build(agent, today=TODAY) == (
        "You are Atlas, an AI assistant. Your personality is: friendly, helpful, and concise.\n"
        "Today is Sunday, February 22, 2026.\n"
        "\n"
        "You are chatting in a chat interface. Keep your responses concise and conversational. "
        "Use markdown formatting when appropriate.\n"
        "\n"
        "When a user asks you something, respond directly. If you need more information, use "
        "your tools to look it up before answering. If you're unsure about something, say so "
        "rather than making things up."
    )


def test_exact_template_with_capabilities_and_sections() -> None:
    builder = (
        PromptBuilder()
        .set_channel_context("a Discord server")
        .add_capability(CapabilityDescription("search", "Search the web"))
        .add_capability(CapabilityDescription("calc", "Do arithmetic"))
        .add_section("Be brief.")
    )
    prompt = builder.build(AgentProfile(name="CodeBot", personality="precise"), today=TODAY)
    assert prompt == (
        "You are CodeBot, an AI assistant. Your personality is: precise.\n"
        "Today is Sunday, February 22, 2026.\n"
        "\n"
        "You are chatting in a Discord server. Keep your responses concise and conversational. "
        "Use markdown formatting when appropriate.\n"
        "\n"
        "When a user asks you something, respond directly. If you need more information, use "
        "your tools to look it up before answering. If you're unsure about something, say so "
        "rather than making things up.\n"
        "\n"
        "You have access to the following capabilities:\n"
        "- Search the web\n"
        "- Do arithmetic\n"
        "\n"
        "Be brief."
    )


def test_day_of_month_is_zero_padded() -> None:
    prompt = PromptBuilder().build(AgentProfile(name="Atlas"), today=date(2026, 3, 5))
    assert "Today is Thursday, March 05, 2026.\n" in prompt


def test_today_defaults_to_the_local_date() -> None:
    before = datetime.now().date()
    prompt = PromptBuilder().build(AgentProfile(name="Atlas"))
    after = datetime.now().date()
    assert any(f"Today is {d.strftime('%A, %B %d, %Y')}." in prompt for d in {before, after})


def test_capabilities_use_descriptions_in_registry_order() -> None:
    registry = ToolRegistry(
        [
            DummyTool("zeta", "Zeta does z"),
            DummyTool("alpha", "Alpha does a"),
            DummyTool("mid", "Mid does m"),
        ]
    )
    prompt = (
        PromptBuilder()
        .add_capabilities_from_registry(registry)
        .build(AgentProfile(name="Atlas"), today=TODAY)
    )
    assert prompt.endswith(
        "\n\nYou have access to the following capabilities:\n"
        "- Zeta does z\n- Alpha does a\n- Mid does m"
    )
    # Names are not shown, only descriptions.
    assert "zeta" not in prompt
    assert "alpha" not in prompt


def test_capabilities_then_sections_order() -> None:
    builder = PromptBuilder()
    builder.add_section("Rules.")
    builder.add_capability(CapabilityDescription("a", "Does A"))
    prompt = builder.build(AgentProfile(name="Atlas"), today=TODAY)
    assert prompt.endswith("capabilities:\n- Does A\n\nRules.")


def test_builder_methods_chain() -> None:
    builder = PromptBuilder()
    assert builder.add_capability(CapabilityDescription("a", "A")) is builder
    assert builder.add_capabilities([]) is builder
    assert builder.add_section("s") is builder
    assert builder.set_channel_context("c") is builder
    assert builder.add_capabilities_from_registry(ToolRegistry()) is builder
    assert builder.capabilities == [CapabilityDescription("a", "A")]
    assert builder.extra_sections == ["s"]
    assert builder.channel_context == "c"
