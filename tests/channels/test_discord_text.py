"""Discord text rules: orra's strip_mention / namespace / mention tests, and the 2,000 split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orra_di.channels.discord_text import (
    discord_namespace,
    leading_agent,
    split_message,
    strip_mention,
)


def test_strip_mention_removes_bot_id() -> None:
    assert strip_mention("<@123456> hello there", "123456") == " hello there"


def test_strip_mention_handles_nick_format() -> None:
    assert strip_mention("<@!123456> hello", 123456) == " hello"


def test_strip_mention_preserves_other_mentions() -> None:
    assert strip_mention("<@123456> ask <@999>", "123456") == " ask <@999>"


def test_strip_mention_no_mention() -> None:
    assert strip_mention("just text", "123456") == "just text"


def test_namespace_from_message_and_dm_fallback() -> None:
    assert discord_namespace("discord", "guild123", "chan456", "user789").key == (
        "discord:guild123:chan456:user789"
    )
    assert discord_namespace("discord", None, 456, 789).key == "discord:dm:456:789"


def test_leading_agent_finds_match_case_insensitively() -> None:
    assert leading_agent("@Atlas what is 2+2?", ["Atlas", "CodeBot"]) == ("Atlas", "what is 2+2?")
    assert leading_agent("  @codebot help me", ["Atlas", "CodeBot"]) == ("CodeBot", "help me")


def test_leading_agent_no_match_and_empty_agents() -> None:
    assert leading_agent("@Nobody hi", ["Atlas"]) == (None, "@Nobody hi")
    assert leading_agent("@Atlas hi", []) == (None, "@Atlas hi")


def test_leading_agent_word_boundary() -> None:
    assert leading_agent("@Atlas123 hello", ["Atlas"]) == (None, "@Atlas123 hello")
    assert leading_agent("@Atlas hello", ["At"]) == (None, "@Atlas hello")
    assert leading_agent("@Atlas, hello", ["Atlas"]) == ("Atlas", ", hello")


def test_leading_agent_only_at_the_start_and_longest_name_wins() -> None:
    assert leading_agent("hey @Atlas", ["Atlas"]) == (None, "hey @Atlas")
    assert leading_agent("@Code Bot go", ["Code", "Code Bot"]) == ("Code Bot", "go")


def test_leading_agent_non_ascii_names() -> None:
    assert leading_agent("@ÉLODIE bonjour", ["Élodie"]) == ("Élodie", "bonjour")


def test_split_prefers_lines_then_words_then_anything() -> None:
    assert split_message("short") == ["short"]
    assert split_message("") == []
    assert split_message("aaa\nbbb ccc", limit=8) == ["aaa", "bbb ccc"]
    assert split_message("aaa bbb ccc", limit=8) == ["aaa bbb", "ccc"]
    assert split_message("abcdefghij", limit=4) == ["abcd", "efgh", "ij"]


def test_split_counts_characters_not_bytes() -> None:
    text = "é" * 2000  # 4,000 bytes: one part all the same
    assert split_message(text) == [text]
    assert split_message("😀" * 2001) == ["😀" * 2000, "😀"]


def test_split_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        split_message("x", limit=0)


@given(st.text(alphabet=st.sampled_from("ab é\n😀"), max_size=300), st.integers(1, 40))
def test_split_parts_fit_and_keep_every_word(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in parts)
    assert "".join(text.split()) == "".join("".join(parts).split())
