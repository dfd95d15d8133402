"""Tokens, chunks and excerpts (orra's tokenize / extract_chunk tests, in characters)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orra_di.documents.text import Bm25, chunk_text, excerpt, query_terms, tokenize


def test_tokenize_splits_and_lowercases() -> None:
    assert tokenize("Hello, World! It's a test-case_2.") == [
        "hello", "world", "it", "s", "a", "test", "case", "2",
    ]  # fmt: skip
    assert query_terms("Hello, World! It's a test a") == ["hello", "world", "it", "test"]


def test_tokenize_folds_case_and_accents_of_other_languages() -> None:
    assert tokenize("Größe CAFÉ naïve") == ["grosse", "cafe", "naive"]
    # й loses its breve like é its accent: documents and queries alike, so "дней" finds it
    assert tokenize("Отпуск ДНЕЙ") == ["отпуск", "днеи"] == tokenize("отпуск дней")
    assert query_terms("日 本") == ["日", "本"]  # one-letter terms dropped only in ASCII
    assert tokenize("हिन्दी") != []  # spacing marks stay inside the word


def test_a_query_keeps_at_most_64_terms() -> None:
    page = " ".join(f"word{i}" for i in range(1000))
    assert query_terms(page) == [f"word{i}" for i in range(64)]


def test_operators_and_nul_are_separators() -> None:
    assert query_terms('a" OR b* NEAR(c d) \x00 -- ; DROP') == ["or", "near", "drop"]
    assert tokenize("x" * 101 + " ok") == ["ok"]  # over-long runs are no terms


def test_extract_chunk_short_content() -> None:
    assert excerpt("short text", ["text"], 100) == "short text"


def test_extract_chunk_centers_on_match() -> None:
    content = ("lorem ipsum dolor " * 20) + "the vacation policy applies " + ("sit amet " * 30)
    chunk = excerpt(content, ["vacation"], 100)
    assert "vacation" in chunk
    assert len(chunk) <= 120
    assert chunk.startswith("...") and chunk.endswith("...")


def test_excerpt_matches_whole_words() -> None:
    content = "concatenation " * 20 + "a cat appears " + "filler " * 30
    assert "a cat appears" in excerpt(content, ["cat"], 60)


def test_chunks_follow_headings_and_paragraphs() -> None:
    text = "# Intro\n\nFirst paragraph.\n\nSecond paragraph.\n\n## Details\n\nThe details."
    assert chunk_text(text, size=200, overlap=20) == [
        "# Intro\n\nFirst paragraph.\n\nSecond paragraph.",
        "## Details\n\nThe details.",
    ]


def test_chunks_overlap_and_bound() -> None:
    text = "\n\n".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_text(text, size=120, overlap=30)
    assert len(chunks) > 5
    assert all(len(c) <= 120 + 30 + 2 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        assert after.split("\n\n")[0] in before  # starts with the end of the one before


def test_a_long_paragraph_is_cut_at_sentences() -> None:
    text = " ".join(f"Sentence {i} ends here." for i in range(100))
    chunks = chunk_text(text, size=200, overlap=0)
    assert all(len(c) <= 200 for c in chunks)
    assert all(c.endswith(".") for c in chunks)
    assert " ".join(chunks) == text


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_bad_chunking_is_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        chunk_text("text", size, overlap)


WORDS = st.lists(
    st.tuples(
        st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=15),
        st.sampled_from([" ", "\n", "\n\n", ". ", "\n\n# "]),
    ),
    max_size=300,
).map(lambda pairs: "".join(word + sep for word, sep in pairs))


@settings(max_examples=60, deadline=None)
@given(WORDS, st.integers(20, 400), st.integers(0, 19))
def test_chunking_keeps_every_word(text: str, size: int, overlap: int) -> None:
    """Words shorter than a chunk are never cut: every term of the text is in a chunk."""
    chunks = chunk_text(text, size, overlap)
    assert set(tokenize(text)) <= {t for c in chunks for t in tokenize(c)}
    assert all(len(c) <= size + overlap + 2 for c in chunks)


def test_bm25_by_hand() -> None:
    docs = [["cat", "sat"], ["dog", "sat", "down"], ["bird"]]
    scores = Bm25(docs).scores(["cat"])
    average = 2.0
    idf = math.log((3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 1 * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * 2 / average))
    assert scores == [pytest.approx(expected), 0.0, 0.0]
    assert Bm25([]).scores(["x"]) == []
    # a term in every document still counts a little (FTS5's floor), never negatively
    assert all(s > 0 for s in Bm25([["a"], ["a"]]).scores(["a"]))


@settings(max_examples=100, deadline=None)
@given(st.text(st.characters(max_codepoint=127), max_size=300))
def test_the_ascii_shortcut_tokenizes_as_the_general_rule(text: str) -> None:
    # " é" sends the text down the general (non-ASCII) path and adds the term "e"
    assert tokenize(text + " é") == [*tokenize(text), "e"]
