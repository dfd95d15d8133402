"""``orra-di docs ...`` through CliRunner, and the settings/container wiring."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from orra_di.cli import app
from orra_di.containers import Container
from orra_di.documents import Document
from orra_di.errors import ConfigurationError
from orra_di.settings import OrraSettings
from orra_di.tool import ToolContext

from .pdfs import make_pdf


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_add_search_show_list_remove(tmp_path: Path) -> None:
    (tmp_path / "handbook.md").write_text("# Handbook\n\nWe get 25 vacation days.\n")
    (tmp_path / "policy.pdf").write_bytes(make_pdf(["Passwords need encryption."], "Policy"))
    (tmp_path / "page.html").write_text("<title>Parking</title><p>Parking is free.</p>")
    added = run("docs", "add", "handbook.md", "policy.pdf", "page.html", "-n", "acme")
    assert added.exit_code == 0, added.output
    assert "added handbook.md (1 chunk)" in added.output
    assert "added policy.pdf" in added.output and "added page.html" in added.output

    found = run("docs", "search", "vacation", "-n", "acme:alice")
    assert found.exit_code == 0, found.output
    assert found.output.startswith("1. [handbook.md] Handbook (acme, score ")
    assert "25 vacation days" in found.output
    assert "[policy.pdf]" in run("docs", "search", "encryption", "-n", "acme").output
    nothing = run("docs", "search", "vacation", "-n", "globex")
    assert nothing.output.strip() == "No documents found matching 'vacation'."

    shown = run("docs", "show", "policy.pdf", "-n", "acme")
    assert shown.exit_code == 0 and "Passwords need encryption." in shown.output
    listed = run("docs", "list")
    assert [line.split()[1] for line in listed.output.splitlines()[3:6]] == [
        "handbook.md",
        "page.html",
        "policy.pdf",
    ]
    removed = run("docs", "remove", "page.html", "ghost", "-n", "acme")
    assert removed.exit_code == 1
    assert "removed page.html" in removed.output and "no document 'ghost'" in removed.output
    assert "page.html" not in run("docs", "list", "-n", "acme").output
    missing = run("docs", "show", "page.html", "-n", "acme")
    assert missing.exit_code == 1 and "no document 'page.html' in acme" in missing.output


def test_re_adding_reports_unchanged_and_updated(tmp_path: Path) -> None:
    (tmp_path / "faq.txt").write_text("The office opens at nine.")
    assert run("docs", "add", "faq.txt", "-n", "acme").exit_code == 0
    again = run("docs", "add", "faq.txt", "-n", "acme")
    assert "unchanged faq.txt (skipped: same content hash)" in again.output
    (tmp_path / "faq.txt").write_text("The office opens at ten.")
    assert "updated faq.txt" in run("docs", "add", "faq.txt", "-n", "acme").output
    assert "No documents found" in run("docs", "search", "nine", "-n", "acme").output


def test_bad_files_fail_alone(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("fine words")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    result = run("docs", "add", "blob.bin", "good.md", "broken.pdf", "nope.txt", "-n", "acme")
    assert result.exit_code == 1
    assert "added good.md" in result.output
    assert "blob.bin: a binary file" in result.output
    assert "broken.pdf: not a readable PDF" in result.output
    assert "nope.txt: cannot read it" in result.output
    assert "good.md" in run("docs", "list").output


def test_a_bad_namespace_is_one_line() -> None:
    result = run("docs", "search", "x", "-n", "a::b")
    assert result.exit_code == 1 and result.output.startswith("error:")


def test_max_file_size_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORRA_DOCUMENTS__MAX_FILE_SIZE", "10")
    (tmp_path / "long.txt").write_text("more than ten bytes")
    result = run("docs", "add", "long.txt", "-n", "acme")
    assert result.exit_code == 1 and "over the limit of 10" in result.output


def test_overlap_must_be_less_than_the_chunk_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_DOCUMENTS__CHUNK_SIZE", "200")
    monkeypatch.setenv("ORRA_DOCUMENTS__CHUNK_OVERLAP", "200")
    with pytest.raises(ConfigurationError, match="chunk_overlap"):
        OrraSettings()


@pytest.mark.anyio
async def test_agents_get_the_tools_when_the_settings_say_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = Container()
    runtime = container.runtimes()[container.runtimes().default_agent]
    assert "search_documents" not in runtime.tools.names()

    monkeypatch.setenv("ORRA_DOCUMENTS__TOOLS", "true")
    monkeypatch.setenv("ORRA_DOCUMENTS__CHUNK_SIZE", "300")
    container = Container()
    runtime = container.runtimes()[container.runtimes().default_agent]
    names = runtime.tools.names()
    assert {"search_documents", "read_document", "list_documents"} <= set(names)
    store = container.document_store()
    assert store.chunk_size == 300
    await store.upsert(Document(id="d", namespace="acme", title="T", content="zebra facts"))
    search = runtime.tools.get("search_documents")
    assert search is not None
    out = await search.execute({"query": "zebra"}, ToolContext("acme:alice"))
    assert out.startswith("1. [d] T (score: ")


def test_a_broken_pdf_is_one_error_line_without_pypdf_chatter(tmp_path: Path) -> None:
    """pypdf logs what it tries to repair; the command prints its own one line instead."""
    import subprocess
    import sys

    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    done = subprocess.run(
        [sys.executable, "-m", "orra_di", "docs", "add", "bad.pdf", "--namespace", "acme"],
        cwd=tmp_path,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.pdf: not a readable PDF" in lines[0], lines
