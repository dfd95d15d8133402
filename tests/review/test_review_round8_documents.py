"""Outside review of docs/documents.md and the erasure of documents, as a user meets them.

The command line runs through typer's runner on a SQLite file; the Python API on the
memory and SQLite stores. PDF files are written by hand (no PDF writer needed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.documents import Document, document_store_for
from orra_di.documents.tool import document_tools
from orra_di.errors import ToolExecutionError
from orra_di.stores import InMemoryStore, SQLiteStore
from orra_di.tool import ToolContext


def tiny_pdf(text: str, title: str) -> bytes:
    """A one-page PDF with one line of Helvetica text (ASCII)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        f"<< /Title ({title}) >>".encode(),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size 7 /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args))

    return run


def write_corpus(root: Path) -> None:
    (root / "handbook.md").write_text(
        "# Employee Handbook\n\nEveryone gets 25 vacation days a year.\n"
    )
    (root / "policies").mkdir()
    (root / "policies" / "travel.md").write_text("# Travel\n\nBook trains, not planes.\n")
    (root / "faq.html").write_text(
        "<html><head><title>FAQ</title><style>.x{color:red}</style>"
        "<script>var secretword = 'zebra';</script></head>"
        "<body><h1>Questions</h1><p>Parking is free on weekends.</p></body></html>"
    )
    (root / "security.pdf").write_bytes(tiny_pdf("Badges open the lobby doors", "Security"))


def test_the_command_line_walkthrough_of_the_page(shell: Any, tmp_path: Path) -> None:
    write_corpus(tmp_path)
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    added = shell(
        "docs", "add", "handbook.md", "policies/", "faq.html", "blob.txt", "security.pdf",
        "--namespace", "acme",
    )  # fmt: skip
    assert added.exit_code == 1  # the binary file, and only it, failed
    assert "blob.txt" in added.stderr
    for name in ("handbook.md", "faq.html", "security.pdf"):
        assert f"added {name}" in added.stdout
    # the page's example: policies/ gives the id policies/travel.md
    shown = shell("docs", "show", "policies/travel.md", "--namespace", "acme")
    assert shown.exit_code == 0, shown.output
    assert "Book trains" in shown.stdout

    again = shell("docs", "add", "handbook.md", "--namespace", "acme")
    assert again.exit_code == 0 and "unchanged handbook.md" in again.stdout
    (tmp_path / "handbook.md").write_text("# Employee Handbook\n\nNow 30 holidays.\n")
    changed = shell("docs", "add", "handbook.md", "--namespace", "acme")
    assert changed.exit_code == 0 and "updated handbook.md" in changed.stdout
    old = shell("docs", "search", "vacation", "--namespace", "acme:alice")
    assert "handbook.md" not in old.stdout  # the old chunks went with the old text
    new = shell("docs", "search", "holidays", "--namespace", "acme:alice")
    assert "[handbook.md]" in new.stdout

    found = shell("docs", "search", "parking weekends", "--namespace", "acme:alice")
    assert "[faq.html] FAQ" in found.stdout
    hidden = shell("docs", "search", "zebra secretword color", "--namespace", "acme")
    assert "faq.html" not in hidden.stdout  # scripts and styles are not text
    pdf = shell("docs", "search", "badges lobby", "--namespace", "acme")
    assert "[security.pdf] Security" in pdf.stdout

    listed = shell("docs", "list")
    for column in ("id", "namespace", "title", "kind", "source"):
        assert column in listed.stdout
    assert "pdf" in listed.stdout and "html" in listed.stdout

    removed = shell("docs", "remove", "faq.html", "--namespace", "acme")
    assert removed.exit_code == 0
    assert "faq.html" not in shell("docs", "list").stdout
    twice = shell("docs", "remove", "faq.html", "--namespace", "acme")
    assert twice.exit_code == 1


def test_two_directories_with_a_file_of_one_name_do_not_replace_each_other(
    shell: Any, tmp_path: Path
) -> None:
    for folder, text in (("policies", "Expenses need receipts."), ("legal", "Contracts last.")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "index.md").write_text(text)
    first = shell("docs", "add", "policies/", "--namespace", "acme")
    second = shell("docs", "add", "legal/", "--namespace", "acme")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "added legal/index.md" in second.stdout, second.stdout  # policies' is kept
    assert "[policies/index.md]" in shell("docs", "search", "receipts", "-n", "acme").stdout
    here = shell("docs", "add", ".", "--namespace", "t")  # "." is named as its folder
    assert f"added {tmp_path.name}/legal/index.md" in here.stdout, here.stdout


def test_a_bad_namespace_or_the_file_store_is_one_clear_error(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.md").write_text("text")
    bad = shell("docs", "add", "a.md", "--namespace", "acme::x")
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "segment" in bad.output
    monkeypatch.setenv("ORRA_STORE__URL", f"file://{tmp_path}/files")
    files = shell("docs", "list")
    assert files.exit_code == 1 and "Traceback" not in files.output
    assert "file" in files.output.lower()


# -- the Python API ---------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        yield document_store_for(InMemoryStore(), chunk_size=300, overlap=30)
        return
    sessions = SQLiteStore(tmp_path / "s.db")
    try:
        yield document_store_for(sessions, chunk_size=300, overlap=30)
    finally:
        await sessions.aclose()


CORPUS = [
    ("acme", "handbook", "Handbook", "Everyone gets 25 vacation days. Größe matters at the café."),
    ("acme:alice", "notes", "Alice notes", "My vacation plan is Lisbon."),
    ("acme:alice", "handbook", "Alice's handbook", "Alice keeps her own vacation handbook."),
    ("acme:bob", "bob", "Bob", "Bob's vacation secret is Oslo."),
    ("acme:alice:drafts", "draft", "Draft", "A vacation draft below alice."),
    ("globex", "salaries", "Salaries", "Globex vacation salaries are confidential."),
    ("acmeother", "other", "Other", "Acmeother vacation data."),
]


async def fill(store: Any) -> None:
    for namespace, doc_id, title, content in CORPUS:
        await store.upsert(Document(id=doc_id, namespace=namespace, title=title, content=content))


@pytest.mark.anyio
async def test_a_conversation_sees_its_own_and_its_ancestors_documents_only(store: Any) -> None:
    await fill(store)
    search, read, listing = document_tools(store)
    alice = ToolContext("acme:alice")
    found = await search.execute({"query": "vacation"}, alice)
    for seen in ("notes", "handbook"):
        assert f"[{seen}]" in found
    for unseen in ("bob", "draft", "salaries", "other", "Oslo", "Globex"):
        assert unseen not in found, unseen
    listed = await listing.execute({}, alice)
    assert "bob" not in listed and "salaries" not in listed and "draft" not in listed
    nearer = await read.execute({"id": "handbook"}, alice)
    assert "Alice keeps her own" in nearer
    with pytest.raises(ToolExecutionError) as missing:
        await read.execute({"id": "never-was"}, alice)
    for guess in ("bob", "salaries", "draft", "other"):
        with pytest.raises(ToolExecutionError) as caught:
            await read.execute({"id": guess}, alice)
        # exactly what a missing id says: nothing tells that it exists elsewhere
        assert str(caught.value) == str(missing.value).replace("never-was", guess)
    # a model cannot widen the search by naming a namespace
    sneaky = await search.execute({"query": "vacation", "namespace": "globex"}, alice)
    assert "salaries" not in sneaky


@pytest.mark.anyio
@pytest.mark.parametrize(
    "query",
    [
        '"vacation',
        "vacation*",
        "vacation NEAR days",
        "vacation AND NOT days",
        "-vacation",
        "vacation'; DROP TABLE documents; --",
        "vacation\x00days",
        "vacation) OR (1=1",
        "{vacation}^2 ~ : / \\",
        "vacation " * 5000,
    ],
)
async def test_hostile_queries_are_only_words(store: Any, query: str) -> None:
    await fill(store)
    results = await store.search(query, ["acme:alice", "acme"], limit=10)
    assert {r.document_id for r in results} == {"notes", "handbook"}
    assert {r.namespace.key for r in results} <= {"acme", "acme:alice"}


@pytest.mark.anyio
@pytest.mark.parametrize("query", ["", "   ", '"*"', "a", "\x00", "NEAR AND OR"])
async def test_a_query_with_no_usable_words_finds_nothing_and_raises_nothing(
    store: Any, query: str
) -> None:
    await fill(store)
    results = await store.search(query, ["acme"], limit=5)
    assert all(r.namespace.key == "acme" for r in results)


@pytest.mark.anyio
async def test_terms_fold_case_and_accents_match_whole_words_and_are_not_stemmed(
    store: Any,
) -> None:
    await store.upsert(
        Document(id="d", namespace="t", title="T", content="GROSSE cafe concatenate passwords")
    )
    assert [r.document_id for r in await store.search("größe", ["t"], 5)] == ["d"]
    assert [r.document_id for r in await store.search("café", ["t"], 5)] == ["d"]
    assert await store.search("cat", ["t"], 5) == []
    assert await store.search("password", ["t"], 5) == []


@pytest.mark.anyio
async def test_erasing_a_tenant_removes_its_documents_by_whole_segments(store: Any) -> None:
    await fill(store)
    assert await store.delete_tree("acme") == 5
    assert await store.search("vacation", ["acme", "acme:alice", "acme:bob"], 10) == []
    left = {r.document_id for r in await store.search("vacation", ["acmeother", "globex"], 10)}
    assert left == {"other", "salaries"}


# -- erasure ----------------------------------------------------------------------------------


def test_orra_di_erase_takes_the_documents_with_everything_else(shell: Any, tmp_path: Path) -> None:
    write_corpus(tmp_path)
    for namespace in ("acme", "acme:alice", "acmeother"):
        assert shell("docs", "add", "handbook.md", "-n", namespace).exit_code == 0
    assert shell("docs", "add", "policies/", "-n", "acme:alice:x").exit_code == 0
    chat = shell("ask", "-n", "acme:alice", "hello")
    assert chat.exit_code == 0, chat.output
    erased = shell("erase", "acme", "--yes")
    assert erased.exit_code == 0, erased.output
    assert "3 documents" in erased.stdout and "1 sessions" in erased.stdout
    listed = shell("docs", "list")
    assert "acmeother" in listed.stdout
    assert "acme:alice" not in listed.stdout and "policies/travel.md" not in listed.stdout
    gone = shell("docs", "search", "vacation", "-n", "acme:alice")
    assert "handbook.md" not in gone.stdout
    again = shell("erase", "acme", "--yes")  # safe to run again: nothing left
    assert again.exit_code == 0 and "0 documents" in again.stdout


def test_erase_on_the_file_store_says_documents_were_not_reached(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_STORE__URL", f"file://{tmp_path}/files")
    erased = shell("erase", "acme", "--yes")
    assert erased.exit_code == 0, erased.output
    assert "not reached" in erased.stdout and "documents" in erased.stdout


def test_each_kind_of_unusable_file_is_reported_and_the_rest_added(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pypdf import PdfReader, PdfWriter

    (tmp_path / "good.md").write_text("# Good\n\nfine words")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "damaged.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf\n%%EOF")
    blank = PdfWriter()
    blank.add_blank_page(width=200, height=200)
    with (tmp_path / "scanned.pdf").open("wb") as out:
        blank.write(out)
    locked = PdfWriter(clone_from=PdfReader(tmp_path / "scanned.pdf"))
    locked.encrypt("pw")
    with (tmp_path / "locked.pdf").open("wb") as out:
        locked.write(out)
    (tmp_path / "big.txt").write_text("x" * 5000)
    monkeypatch.setenv("ORRA_DOCUMENTS__MAX_FILE_SIZE", "4096")
    files = ["latin1.txt", "damaged.pdf", "scanned.pdf", "locked.pdf", "big.txt", "missing.md"]
    added = shell("docs", "add", *files, "good.md", "-n", "acme")
    assert added.exit_code == 1
    assert "added good.md" in added.stdout
    assert "Traceback" not in added.output
    for name in files:
        assert name in added.stderr, name
    assert added.stderr.count("error:") == len(files)
    assert shell("docs", "list", "-n", "acme").stdout.count("acme") == 1


def test_without_pypdf_a_pdf_is_reported_and_the_other_files_still_added(
    shell: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    (tmp_path / "a.md").write_text("alpha words")
    (tmp_path / "x.pdf").write_bytes(tiny_pdf("Badges open doors", "Security"))
    (tmp_path / "b.md").write_text("beta words")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # the extra is not installed
    added = shell("docs", "add", "a.md", "x.pdf", "b.md", "-n", "acme")
    assert added.exit_code == 1
    assert "added a.md" in added.stdout and "added b.md" in added.stdout
    assert "x.pdf" in added.stderr and 'pip install "orra-di[documents]"' in added.stderr


def test_a_file_whose_name_cannot_be_an_id_is_one_failed_file(shell: Any, tmp_path: Path) -> None:
    deep = tmp_path / "deep" / ("d" * 120) / ("e" * 90)
    deep.mkdir(parents=True)
    (deep / "long.md").write_text("too deep to name")
    (tmp_path / "deep" / "ok.md").write_text("fine words")
    (tmp_path / " lead.md").write_text("a leading space")
    (tmp_path / "z.md").write_text("last words")
    added = shell("docs", "add", "deep", " lead.md", "z.md", "-n", "acme")
    assert added.exit_code == 1
    assert isinstance(added.exception, SystemExit)  # an exit code, not a crash
    assert "added deep/ok.md" in added.stdout and "added z.md" in added.stdout
    assert "long.md" in added.stderr and "lead.md" in added.stderr
