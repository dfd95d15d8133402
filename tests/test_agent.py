"""Agent profiles and @mentions: the crate's tests (src/agent.rs) and the doc-test."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orra_di.agent import (
    DEFAULT_AGENT_NAME,
    DEFAULT_PERSONALITY,
    AgentProfile,
    detect_agent_mention,
    resolve_agents,
)

# -- the crate's tests ------------------------------------------------------


def test_agent_profile_builder() -> None:
    agent = (
        AgentProfile(name="CodeBot")
        .with_personality("precise and technical")
        .with_model("claude-opus")
    )
    assert agent.name == "CodeBot"
    assert agent.personality == "precise and technical"
    assert agent.model == "claude-opus"
    assert agent.system_prompt is None


def test_agent_profile_with_system_prompt() -> None:
    agent = AgentProfile(name="Pirate").with_system_prompt("You are a pirate.")
    assert agent.system_prompt == "You are a pirate."
    assert agent.personality == DEFAULT_PERSONALITY


def test_agent_profile_defaults() -> None:
    agent = AgentProfile(name="Atlas")
    assert agent.name == "Atlas"
    assert agent.personality == "friendly, helpful, and concise"
    assert agent.system_prompt is None
    assert agent.model is None
    assert DEFAULT_AGENT_NAME == "Atlas"


def test_resolve_agents_uses_explicit_list() -> None:
    agents = [AgentProfile(name="Atlas"), AgentProfile(name="CodeBot")]
    resolved = resolve_agents(agents, "Legacy", "snarky", "ignored")
    assert [a.name for a in resolved] == ["Atlas", "CodeBot"]
    assert resolved == agents
    assert resolved is not agents


def test_resolve_agents_falls_back_to_legacy() -> None:
    resolved = resolve_agents([], "MyBot", "snarky", "You are snarky.")
    assert resolved == [
        AgentProfile(name="MyBot", personality="snarky", system_prompt="You are snarky.")
    ]
    assert resolved[0].model is None


def test_resolve_agents_uses_defaults_when_no_legacy() -> None:
    resolved = resolve_agents([])
    assert len(resolved) == 1
    assert resolved[0].name == "Atlas"
    assert resolved[0].personality == "friendly, helpful, and concise"
    assert resolved[0].system_prompt is None


def test_agent_profile_serialization_roundtrip() -> None:
    agent = AgentProfile(name="CodeBot", personality="terse", system_prompt="Be terse.", model="m")
    restored = AgentProfile.model_validate_json(agent.model_dump_json())
    assert restored == agent
    # The personality defaults when absent, like orra's serde default.
    assert AgentProfile.model_validate_json('{"name": "X"}').personality == DEFAULT_PERSONALITY


def test_mention_finds_match() -> None:
    agent, rest = detect_agent_mention("@Atlas what is 2+2?", ["Atlas", "CodeBot"])
    assert agent == "Atlas"
    assert rest == " what is 2+2?"


def test_mention_case_insensitive() -> None:
    agent, rest = detect_agent_mention("@codebot help me", ["Atlas", "CodeBot"])
    # The name comes back as spelled in the list.
    assert agent == "CodeBot"
    assert rest == " help me"


def test_mention_no_match() -> None:
    assert detect_agent_mention("hello everyone", ["Atlas", "CodeBot"]) == (None, "hello everyone")
    assert detect_agent_mention("@Nobody hi", ["Atlas"]) == (None, "@Nobody hi")


def test_mention_empty_agents() -> None:
    assert detect_agent_mention("@Atlas hello", []) == (None, "@Atlas hello")


def test_mention_word_boundary() -> None:
    assert detect_agent_mention("@Atlas123 hello", ["Atlas"]) == (None, "@Atlas123 hello")
    assert detect_agent_mention("@Atlas hello", ["Atlas"]) == ("Atlas", " hello")


def test_mention_mid_sentence() -> None:
    agent, rest = detect_agent_mention("Hey @CodeBot, explain this", ["Atlas", "CodeBot"])
    assert agent == "CodeBot"
    assert rest == "Hey , explain this"


def test_mention_at_end() -> None:
    assert detect_agent_mention("hello @Atlas", ["Atlas"]) == ("Atlas", "hello ")


def test_detect_agent_mention_doc_example() -> None:
    agents = ["Atlas", "CodeBot"]
    assert detect_agent_mention("@CodeBot help me", agents) == ("CodeBot", " help me")


# -- non-ASCII text (§5.6/26: orra sliced the original with the lower-cased offsets) --


@pytest.mark.parametrize(
    ("content", "names", "expected"),
    [
        ("İstanbul @Atlas hi", ["Atlas"], ("Atlas", "İstanbul  hi")),
        ("ÄÖÜ @codebot x", ["CodeBot"], ("CodeBot", "ÄÖÜ  x")),
        ("ẞtraße @ATLAS!", ["Atlas"], ("Atlas", "ẞtraße !")),
        ("日本語 @Atlas、こんにちは", ["Atlas"], ("Atlas", "日本語 、こんにちは")),
        ("🙂🙂 @Atlas 🙂", ["Atlas"], ("Atlas", "🙂🙂  🙂")),
        ("@Zoë hallo", ["Zoë"], ("Zoë", " hallo")),
        ("@ZOË hallo", ["Zoë"], ("Zoë", " hallo")),
    ],
)
def test_mention_is_character_safe_with_non_ascii_text(
    content: str, names: list[str], expected: tuple[str, str]
) -> None:
    assert detect_agent_mention(content, names) == expected


def test_non_ascii_letter_after_the_name_is_a_boundary() -> None:
    # orra checks only for an ASCII letter or digit after the name.
    assert detect_agent_mention("@Atlasé hi", ["Atlas"]) == ("Atlas", "é hi")
    # Under IGNORECASE, [A-Za-z] would also match the Kelvin sign and dotless i.
    assert detect_agent_mention("@Atlas\u212a hi", ["Atlas"]) == ("Atlas", "\u212a hi")
    assert detect_agent_mention("@Atlası hi", ["Atlas"]) == ("Atlas", "ı hi")


@pytest.mark.parametrize("after", ["_", ".", ",", "!", "?", "-", ":", "\n", "'"])
def test_punctuation_and_underscore_end_the_name(after: str) -> None:
    assert detect_agent_mention(f"@Atlas{after}x", ["Atlas"]) == ("Atlas", f"{after}x")


# -- order and the rest of the behaviour --------------------------------------------


def test_names_are_tried_in_list_order() -> None:
    content = "@CodeBot and @Atlas"
    assert detect_agent_mention(content, ["Atlas", "CodeBot"]) == ("Atlas", "@CodeBot and ")
    assert detect_agent_mention(content, ["CodeBot", "Atlas"]) == ("CodeBot", " and @Atlas")


def test_only_the_first_mention_is_removed() -> None:
    assert detect_agent_mention("@Atlas hi @Atlas", ["Atlas"]) == ("Atlas", " hi @Atlas")


def test_a_failed_boundary_does_not_hide_a_later_mention() -> None:
    # Deliberate difference: orra gave up on a name after its first occurrence
    # failed the boundary check; here the first occurrence that ends a word wins.
    assert detect_agent_mention("@Atlas123 then @Atlas hi", ["Atlas"]) == (
        "Atlas",
        "@Atlas123 then  hi",
    )


def test_a_longer_name_before_a_prefix_name() -> None:
    # "@Atlas" inside "@AtlasPro" fails the boundary, so "AtlasPro" is found next.
    assert detect_agent_mention("@AtlasPro go", ["Atlas", "AtlasPro"]) == ("AtlasPro", " go")


def test_regex_characters_in_names_are_literal() -> None:
    assert detect_agent_mention("@C++ compile", ["C++"]) == ("C++", " compile")
    assert detect_agent_mention("@a.b hi", ["a.b"]) == ("a.b", " hi")
    assert detect_agent_mention("@axb hi", ["a.b"]) == (None, "@axb hi")


def test_name_without_at_sign_is_not_a_mention() -> None:
    assert detect_agent_mention("Atlas, help", ["Atlas"]) == (None, "Atlas, help")


def test_blank_agent_name_is_rejected() -> None:
    with pytest.raises(ValidationError, match="must not be blank"):
        AgentProfile(name="   ")


def test_profile_key_is_lower_case_name() -> None:
    assert AgentProfile(name="CodeBot").key == "codebot"


def test_profile_is_frozen_and_builders_copy() -> None:
    base = AgentProfile(name="Atlas")
    changed = base.with_personality("grumpy")
    assert base.personality == DEFAULT_PERSONALITY
    assert changed.personality == "grumpy"
    with pytest.raises(ValidationError):
        base.name = "Other"  # type: ignore[misc]


def test_resolve_agents_with_partial_legacy() -> None:
    resolved = resolve_agents([], legacy_personality="dry")
    assert resolved == [AgentProfile(name="Atlas", personality="dry")]
