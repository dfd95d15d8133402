"""Reading files into documents: text, Markdown, HTML and PDF.

- ``.txt``, ``.md``, ``.markdown``, ``.rst`` and any other file that is valid UTF-8 without
  NUL characters: read as it is; the title is the first Markdown heading, else the file name.
- ``.html``, ``.htm``: the visible text, through the standard library's
  :class:`html.parser.HTMLParser` (scripts, styles and the head left out; headings
  become Markdown headings so chunks follow sections); the title is ``<title>``.
- ``.pdf``: the text of every page, through ``pypdf`` (``pip install "orra-di[documents]"``);
  the title is the PDF's own when it has one. A PDF without text (scanned pages), an
  encrypted or damaged one is refused.

A file over ``max_size`` bytes, a binary file or an unreadable one raises
:class:`~orra_di.documents.model.DocumentError` naming the file and what to do;
:func:`add_paths` records that and goes on with the other files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Literal

from orra_di.documents.model import Document, DocumentError, content_hash
from orra_di.documents.stores import DocumentStore
from orra_di.errors import ConfigurationError, install_hint
from orra_di.namespace import NamespaceLike

__all__ = ["Extracted", "Outcome", "add_paths", "expand_paths", "html_to_text", "read_file"]

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
KNOWN_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


@dataclass(frozen=True)
class Extracted:
    """A file's text, its title and what kind of file it was."""

    title: str
    text: str
    kind: Literal["text", "markdown", "html", "pdf"]
    metadata: dict[str, str] = field(default_factory=dict)


# -- HTML ------------------------------------------------------------------------------------

_SKIPPED = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "ul",
    "ol", "dl", "dt", "dd", "table", "tr", "blockquote", "pre", "figure", "figcaption", "form",
    "br", "hr", "address", "details", "summary",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.skipping = 0
        self.in_title = False
        self.title: list[str] = []

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag in _SKIPPED:
            self.skipping += 1
        elif tag in _HEADINGS:
            self._flush()
            self.current.append("#" * _HEADINGS[tag] + " ")
        elif tag in _BLOCKS:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _HEADINGS or tag in _BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
        elif not self.skipping:
            self.current.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """``(title, text)`` of an HTML page: its visible text, a paragraph per block."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    parser._flush()
    blocks = [b for b in parser.blocks if b.strip("# ")]
    return " ".join("".join(parser.title).split()), "\n\n".join(blocks)


# -- PDF -------------------------------------------------------------------------------------


def pdf_to_text(data: bytes, name: str) -> tuple[str, str, int]:
    """``(title, text, pages)`` of a PDF's bytes."""
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:
        raise ConfigurationError(
            f"reading PDF files needs pypdf: {install_hint('documents')}"
        ) from None
    import io

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DocumentError(f"{name}: the PDF is encrypted; give a decrypted copy")
        # some fonts' text comes out with NUL characters: not binary, just noise
        pages = [(page.extract_text() or "").replace("\x00", "").strip() for page in reader.pages]
        title = ""
        meta = reader.metadata
        if meta is not None and meta.title:
            title = str(meta.title).replace("\x00", "").strip()
    except DocumentError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DocumentError(f"{name}: not a readable PDF ({exc or type(exc).__name__})") from None
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise DocumentError(
            f"{name}: the PDF has no text layer (scanned pages?); run OCR on it first"
        )
    return title, text, len(pages)


# -- files -----------------------------------------------------------------------------------

_MD_TITLE = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _decode(data: bytes, name: str) -> str:
    if b"\x00" in data:
        raise DocumentError(f"{name}: a binary file; give text, Markdown, HTML or PDF")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DocumentError(
            f"{name}: not UTF-8 text (a binary file?); convert it to UTF-8 or give a PDF"
        ) from None
    return text


def read_file(path: str | Path, max_size: int = 10_000_000) -> Extracted:
    """The text and title of one file (module docstring for the kinds)."""
    p = Path(path)
    name = str(p)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise DocumentError(f"{name}: not a file")
        if size > max_size:
            raise DocumentError(
                f"{name}: {size} bytes, over the limit of {max_size} "
                "(documents.max_file_size); split it or raise the limit"
            )
        data = p.read_bytes()
    except OSError as exc:
        raise DocumentError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    suffix = p.suffix.lower()
    if suffix in PDF_SUFFIXES or data.startswith(b"%PDF-"):
        title, text, pages = pdf_to_text(data, name)
        return Extracted(title or p.stem, text, "pdf", {"pages": str(pages)})
    if suffix in HTML_SUFFIXES:
        title, text = html_to_text(_decode(data, name))
        return Extracted(title or p.stem, text, "html")
    text = _decode(data, name)
    kind: Literal["text", "markdown"] = "markdown" if suffix in {".md", ".markdown"} else "text"
    heading = _MD_TITLE.search(text)
    title = heading.group(1) if heading and kind == "markdown" else p.stem
    return Extracted(title, text, kind)


def expand_paths(paths: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """``(file, id)`` pairs: a file is its own name; a directory gives its files with a
    known suffix (recursively), each named by the directory's name and its path there
    (``policies/travel.md``), so that two directories' ``index.md`` stay two documents."""
    found: list[tuple[Path, str]] = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            folder = p.resolve().name  # "policies" for policies/, ./policies or "." inside it
            for child in sorted(p.rglob("*")):
                if child.is_file() and child.suffix.lower() in KNOWN_SUFFIXES:
                    inside = child.relative_to(p).as_posix()
                    found.append((child, f"{folder}/{inside}" if folder else inside))
        else:
            found.append((p, p.name))
    return found


@dataclass(frozen=True)
class Outcome:
    """What happened to one file: ``added``, ``updated``, ``unchanged`` or ``failed``."""

    path: str
    id: str
    status: Literal["added", "updated", "unchanged", "failed"]
    detail: str = ""
    chunks: int = 0


async def add_paths(
    store: DocumentStore,
    paths: Sequence[str | Path],
    namespace: NamespaceLike,
    *,
    max_size: int = 10_000_000,
) -> list[Outcome]:
    """Read each file and store it in ``namespace``; one outcome per file, in order.

    A file whose id exists with the same content hash is left alone (``unchanged``);
    with another hash it is replaced (``updated``: old chunks gone). A bad file is a
    ``failed`` outcome with the reason; the other files are still added.
    """
    outcomes: list[Outcome] = []
    seen: set[str] = set()
    for path, doc_id in expand_paths(paths):
        shown = str(path)
        try:
            if doc_id in seen:
                raise DocumentError(
                    f"{shown}: another file of this run is named {doc_id!r} already; "
                    "add it separately to another namespace, or rename it"
                )
            seen.add(doc_id)
            extracted = read_file(path, max_size)
            digest = content_hash(extracted.text)
            existing = await store.get(namespace, doc_id)
            if existing is not None and existing.content_hash == digest:
                outcomes.append(Outcome(shown, doc_id, "unchanged", "same content hash"))
                continue
            document = Document(
                id=doc_id,
                namespace=namespace,
                title=extracted.title[:1000],
                content=extracted.text,
                source=str(path.resolve())[:1000],
                metadata={"kind": extracted.kind, **extracted.metadata},
            )
            chunks = await store.upsert(document)
            status: Literal["added", "updated"] = "added" if existing is None else "updated"
            outcomes.append(Outcome(shown, doc_id, status, chunks=chunks))
        except DocumentError as exc:
            outcomes.append(Outcome(shown, doc_id, "failed", str(exc)))
        except ConfigurationError as exc:  # a PDF without the extra: the others go on
            outcomes.append(Outcome(shown, doc_id, "failed", f"{shown}: {exc}"))
    return outcomes
