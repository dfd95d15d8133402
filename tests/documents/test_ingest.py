"""Reading text, Markdown, HTML and PDF files, and refusing bad ones with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from orra_di.documents import DocumentError, MemoryDocumentStore
from orra_di.documents.ingest import add_paths, html_to_text, read_file

from .pdfs import make_pdf

pytestmark = pytest.mark.anyio


def test_markdown_title_is_its_first_heading(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("Intro line\n\n# Setup Guide\n\nInstall it.\n")
    got = read_file(tmp_path / "guide.md")
    assert (got.title, got.kind) == ("Setup Guide", "markdown")
    assert "Install it." in got.text


def test_plain_text_title_is_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("# not a heading in plain text\n", encoding="utf-8")
    assert read_file(tmp_path / "notes.txt").title == "notes"


def test_html_keeps_visible_text_and_structure() -> None:
    html = """<!doctype html><html><head><title>Leave  Policy</title>
    <style>p { color: red }</style><script>var secret = "password";</script></head>
    <body><nav>Home</nav><h1>Leave</h1><p>You get <b>25</b> days&nbsp;off &amp; more.</p>
    <ul><li>One</li><li>Two</li></ul><h2>Sick</h2><p>Tell your manager.<br>Early.</p>
    <!-- a comment --><noscript>enable js</noscript></body></html>"""
    title, text = html_to_text(html)
    assert title == "Leave Policy"
    assert text.split("\n\n") == [
        "Home",
        "# Leave",
        "You get 25 days\xa0off & more.".replace("\xa0", " "),
        "One",
        "Two",
        "## Sick",
        "Tell your manager.",
        "Early.",
    ]
    assert "secret" not in text and "color" not in text and "enable js" not in text


def test_pdf_text_of_every_page(tmp_path: Path) -> None:
    (tmp_path / "policy.pdf").write_bytes(
        make_pdf(["Vacation is 25 days.", "Parking is free."], title="Policy Book")
    )
    got = read_file(tmp_path / "policy.pdf")
    assert (got.title, got.kind, got.metadata) == ("Policy Book", "pdf", {"pages": "2"})
    assert got.text == "Vacation is 25 days.\n\nParking is free."


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("broken.pdf", b"%PDF-1.4\nthis is not a pdf at all", "not a readable PDF"),
        ("empty.pdf", make_pdf([""]), "no text layer"),
    ],
)
def test_bad_files_are_refused_with_a_reason(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DocumentError, match=reason) as caught:
        read_file(tmp_path / name)
    assert name in str(caught.value)


def test_a_file_over_the_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 2000)
    with pytest.raises(DocumentError, match="over the limit of 1000"):
        read_file(tmp_path / "big.txt", max_size=1000)


async def test_add_paths_reports_each_file_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nalpha text")
    (tmp_path / "bad.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("beta text")
    (tmp_path / "sub" / "skip.bin").write_bytes(b"\x00")  # unknown suffix in a directory
    store = MemoryDocumentStore()
    outcomes = await add_paths(
        store, [tmp_path / "a.md", tmp_path / "bad.bin", tmp_path / "sub"], "acme"
    )
    assert [(o.id, o.status) for o in outcomes] == [
        ("a.md", "added"),
        ("bad.bin", "failed"),
        ("sub/b.txt", "added"),
    ]
    assert [s.id for s in await store.list(["acme"])] == ["a.md", "sub/b.txt"]


async def test_re_adding_skips_unchanged_and_replaces_changed(tmp_path: Path) -> None:
    path = tmp_path / "faq.md"
    path.write_text("# FAQ\n\nThe office opens at nine.")
    store = MemoryDocumentStore()
    [first] = await add_paths(store, [path], "acme")
    [again] = await add_paths(store, [path], "acme")
    assert (first.status, again.status) == ("added", "unchanged")
    path.write_text("# FAQ\n\nThe office opens at ten.")
    [changed] = await add_paths(store, [path], "acme")
    assert changed.status == "updated"
    assert await store.search("nine", ["acme"]) == []
    assert [r.document_id for r in await store.search("ten", ["acme"])] == ["faq.md"]
