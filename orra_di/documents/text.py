"""Tokens, chunks, excerpts and BM25: the text rules every document backend shares.

One tokenizer decides what a term is, for the documents and for the queries, on every
backend (orra counted document frequency by substring and term frequency by token,
bug 30): text is case-folded, decomposed (NFKD) and stripped of combining accents
(``Mn``), then cut into runs of letters, digits and spacing marks (``Mc``, which Indic
scripts need inside words). Stores index the tokens joined by single spaces
(:func:`index_text`), so SQLite's FTS5 and PostgreSQL see exactly these terms.

A query keeps its distinct terms, dropping one-letter ASCII terms ("a", "I") as orra did;
every remaining term is optional (OR) and BM25 ranks the chunks. Operators, quotes,
``*``, ``NEAR``, SQL and NUL in a query are only separators here: nothing of the query
reaches a backend's query language but these terms.

BM25 (:class:`Bm25`) is Okapi BM25 with FTS5's constants and formula (``k1 = 1.2``,
``b = 0.75``, ``idf = ln((N - n + 0.5) / (n + 0.5))``, at least ``1e-6``), so the
in-memory and Redis stores score a chunk as SQLite's ``bm25()`` does over the same set.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "Bm25",
    "chunk_text",
    "excerpt",
    "index_text",
    "query_terms",
    "tokenize",
]

MAX_TOKEN = 100
"""Longer runs of letters (a hash, a base64 blob) are not terms: dropped everywhere."""
K1 = 1.2
B = 0.75
MIN_IDF = 1e-6


_ASCII_TOKEN = re.compile(r"[a-z0-9]+")


def _is_token_char(char: str) -> bool:
    return char.isalnum() or unicodedata.category(char) == "Mc"


def tokenize(text: str) -> list[str]:
    """The terms of ``text``, in order, duplicates kept (see the module docstring)."""
    if text.isascii():  # the same rule, quicker: ASCII letters and digits only
        return [t for t in _ASCII_TOKEN.findall(text.lower()) if len(t) <= MAX_TOKEN]
    folded = unicodedata.normalize("NFKD", text.casefold())
    tokens: list[str] = []
    current: list[str] = []
    for char in folded:
        if _is_token_char(char):
            current.append(char)
        elif unicodedata.category(char) == "Mn":
            continue  # an accent: part of the word, dropped
        elif current:
            if len(current) <= MAX_TOKEN:
                tokens.append("".join(current))
            current = []
    if current and len(current) <= MAX_TOKEN:
        tokens.append("".join(current))
    return tokens


def index_text(text: str) -> str:
    """``text``'s terms joined by single spaces: what the stores give their index."""
    return " ".join(tokenize(text))


MAX_QUERY_TERMS = 64
"""A query keeps its first 64 distinct terms: a pasted page is still one bounded query."""


def query_terms(query: str) -> list[str]:
    """The distinct terms of a query, in order (at most :data:`MAX_QUERY_TERMS`);
    one-letter ASCII terms are dropped."""
    seen: dict[str, None] = {}
    for token in tokenize(query):
        if len(token) >= 2 or not token.isascii():
            seen.setdefault(token, None)
            if len(seen) == MAX_QUERY_TERMS:
                break
    return list(seen)


# -- chunks ----------------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6}\s|\S.*\n[=-]{3,}\s*$)")
_BLOCKS = re.compile(r"\n[ \t]*\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


def _split_long(block: str, size: int) -> list[str]:
    """A block longer than ``size`` cut at sentence ends, else at spaces, else anywhere."""
    pieces: list[str] = []
    rest = block
    while len(rest) > size:
        window = rest[:size]
        cut = max((m.end() for m in _SENTENCE_END.finditer(window)), default=0)
        if cut < size // 2:
            space = max(window.rfind(" "), window.rfind("\n"), window.rfind("\t"))
            cut = space + 1 if space > 0 else size
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].lstrip()
    if rest.strip():
        pieces.append(rest.strip())
    return [p for p in pieces if p]


def _tail(text: str, overlap: int) -> str:
    """The last ``overlap`` characters of ``text``, starting at a word."""
    if overlap <= 0 or not text:
        return ""
    if len(text) <= overlap:
        return text
    tail = text[-overlap:]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail


def chunk_text(text: str, size: int = 1000, overlap: int = 150) -> list[str]:
    """Cut ``text`` into chunks of at most ``size + overlap`` characters.

    Blocks are the paragraphs (blank-line separated); a heading (Markdown ``#`` or an
    underlined line) always starts a new chunk, so a section's text stays with its
    heading. Blocks are packed into a chunk while it stays within ``size`` characters;
    a block longer than ``size`` is cut at sentence ends (else spaces). Each chunk after
    the first of a section starts with the last ``overlap`` characters (from a word
    start) of the chunk before it, so a sentence cut at a boundary is found whole in
    one of the two. Empty text gives no chunk.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1 character, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"overlap must be between 0 and the chunk size ({size}), got {overlap}")
    blocks = [b.strip() for b in _BLOCKS.split(text.replace("\r\n", "\n")) if b.strip()]
    chunks: list[str] = []
    current = ""
    carried = ""  # the overlap that began ``current``

    def flush() -> None:
        nonlocal current, carried
        if current and current != carried:
            chunks.append(current)
        current, carried = "", ""

    for block in blocks:
        if _HEADING.match(block):
            flush()
        for piece in _split_long(block, size) if len(block) > size else [block]:
            if current and len(current) - len(carried) + 2 + len(piece) > size:
                previous = current
                flush()
                carried = _tail(previous, overlap)
                current = carried
            current = f"{current}\n\n{piece}" if current else piece
    flush()
    return chunks


# -- excerpts --------------------------------------------------------------------------------


def excerpt(content: str, terms: Sequence[str], max_chars: int) -> str:
    """At most ``max_chars`` characters of ``content`` (plus "..." marks), around the
    first place any term occurs; the start when none does (orra's ``extract_chunk``,
    counted in characters and matched on terms rather than bytes and substrings)."""
    if len(content) <= max_chars:
        return content
    folded = content.casefold()
    position = len(content)
    for term in terms:
        match = re.search(rf"(?<!\w){re.escape(term)}(?!\w)", folded)
        if match is not None:
            position = min(position, match.start())
    if position == len(content):
        position = 0
    start = max(position - max_chars // 2, 0)
    end = min(start + max_chars, len(content))
    if end == len(content):
        start = max(end - max_chars, 0)
    if start > 0:
        space = content.find(" ", start, end)
        if space != -1:
            start = space + 1
    if end < len(content):
        space = content.rfind(" ", start, end)
        if space > start:
            end = space
    text = content[start:end]
    return ("..." if start > 0 else "") + text + ("..." if end < len(content) else "")


# -- BM25 ------------------------------------------------------------------------------------


def idf(n_chunks: int, having: int) -> float:
    """FTS5's inverse document frequency: ``ln((N - n + 0.5) / (n + 0.5))``, at least 1e-6."""
    return max(math.log((n_chunks - having + 0.5) / (having + 0.5)), MIN_IDF)


def term_score(weight: float, tf: int, length: int, average: float) -> float:
    """One term's BM25 share in a chunk of ``length`` terms holding it ``tf`` times."""
    return weight * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))


class Bm25:
    """Okapi BM25 over a set of chunks, with FTS5's constants (module docstring).

    Give it token lists, or (faster for a corpus searched many times) their term
    counts made once (:meth:`counts_of`, or a stored ``{term: count}``).
    """

    def __init__(self, documents: Sequence[Sequence[str] | Mapping[str, int]]) -> None:
        self.counts: list[Mapping[str, int]] = [
            d if isinstance(d, Mapping) else Counter(d) for d in documents
        ]
        self.lengths = [sum(c.values()) for c in self.counts]

    @staticmethod
    def counts_of(tokens: Iterable[str]) -> Counter[str]:
        return Counter(tokens)

    def scores(self, terms: Iterable[str]) -> list[float]:
        """One score per chunk for the (distinct) ``terms``; 0.0 where none occurs."""
        wanted = list(dict.fromkeys(terms))
        n_docs = len(self.counts)
        scores = [0.0] * n_docs
        if not wanted or n_docs == 0:
            return scores
        average = sum(self.lengths) / n_docs or 1.0
        for term in wanted:
            hits = [(i, c[term]) for i, c in enumerate(self.counts) if c.get(term)]
            if not hits:
                continue
            weight = idf(n_docs, len(hits))
            for i, tf in hits:
                scores[i] += term_score(weight, tf, self.lengths[i], average)
        return scores
