"""Round 9 review: docs/documents.md and `orra-di erase` from the command line.

Re-ingesting a changed file must leave nothing of the old text (every old chunk goes),
on SQLite through the CLI and on every document backend through the API; the erasure
reports a count per kind and asks before it erases.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from orra_di.cli import app
from orra_di.documents import Document, document_store_for
from orra_di.stores import InMemoryStore, SQLiteStore


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/sessions.db")
    monkeypatch.setenv("ORRA_DOCUMENTS__CHUNK_SIZE", "200")
    monkeypatch.setenv("ORRA_DOCUMENTS__CHUNK_OVERLAP", "20")
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(*args: str, input: str | None = None) -> Any:
        return runner.invoke(app, list(args), input=input)

    return run


def paragraphs(words: list[str]) -> str:
    return "\n\n".join(f"Paragraph about {w} and nothing else at all here." for w in words)


OLD = ["zeppelin", "marmalade", "quokka", "trombone", "glacier", "papyrus", "nebula"]


def test_a_changed_file_replaces_every_chunk_of_the_old_text(shell: Any, tmp_path: Path) -> None:
    handbook = tmp_path / "handbook.md"
    handbook.write_text("# Handbook\n\n" + paragraphs(OLD))
    added = shell("docs", "add", "handbook.md", "--namespace", "acme")
    assert added.exit_code == 0, added.output
    chunks = int(re.search(r"\((\d+) chunks?\)", added.output).group(1))  # type: ignore[union-attr]
    assert chunks >= 3  # the old text needed several chunks
    again = shell("docs", "add", "handbook.md", "--namespace", "acme")
    assert again.exit_code == 0 and "unchanged" in again.output
    handbook.write_text("# Handbook\n\nOnly a short text about bicycles now.")
    changed = shell("docs", "add", "handbook.md", "--namespace", "acme")
    assert changed.exit_code == 0 and "updated" in changed.output, changed.output
    for word in OLD:
        found = shell("docs", "search", word, "--namespace", "acme:alice")
        assert found.exit_code == 0
        assert "handbook.md" not in found.output, (word, found.output)
    found = shell("docs", "search", "bicycles", "--namespace", "acme:alice")
    assert "handbook.md" in found.output
    shown = shell("docs", "show", "handbook.md", "--namespace", "acme")
    assert "bicycles" in shown.output and "zeppelin" not in shown.output
    listed = shell("docs", "list")
    assert listed.output.count("handbook.md") == 2  # its id and its source, one row


def test_the_same_file_in_two_namespaces_is_two_documents(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text("# FAQ\n\nParking is free.")
    assert shell("docs", "add", "faq.md", "--namespace", "acme").exit_code == 0
    assert shell("docs", "add", "faq.md", "--namespace", "globex").exit_code == 0
    removed = shell("docs", "remove", "faq.md", "--namespace", "acme")
    assert removed.exit_code == 0
    assert "faq.md" in shell("docs", "search", "parking", "--namespace", "globex").output
    assert "faq.md" not in shell("docs", "search", "parking", "--namespace", "acme").output


def test_erase_asks_first_and_reports_a_count_per_kind(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "faq.md").write_text("# FAQ\n\nParking is free.")
    assert shell("docs", "add", "faq.md", "--namespace", "acme:alice").exit_code == 0
    assert shell("docs", "add", "faq.md", "--namespace", "acmeother").exit_code == 0
    stored = shell("memory", "add", "-n", "acme:alice", "alice likes green tea")
    assert stored.exit_code == 0
    refused = shell("erase", "acme", input="n\n")
    assert refused.exit_code == 1 and "nothing was erased" in refused.output
    assert "faq.md" in shell("docs", "search", "parking", "--namespace", "acme:alice").output
    erased = shell("erase", "acme", "--yes")
    assert erased.exit_code == 0, erased.output
    assert "erased under acme:" in erased.output
    assert "1 memories" in erased.output and "1 documents" in erased.output
    assert "faq.md" not in shell("docs", "search", "parking", "--namespace", "acme:alice").output
    assert "faq.md" in shell("docs", "search", "parking", "--namespace", "acmeother").output
    bad = shell("erase", "acme::x", "--yes")
    assert bad.exit_code != 0 and "Traceback" not in bad.output


@pytest.fixture(params=["memory", "sqlite"])
async def documents(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield document_store_for(InMemoryStore(), chunk_size=200, overlap=20)
    else:
        sessions = SQLiteStore(tmp_path / "d.db")
        yield document_store_for(sessions, chunk_size=200, overlap=20)
        await sessions.aclose()


@pytest.mark.anyio
async def test_upserting_a_shorter_version_leaves_no_stale_chunk(documents: Any) -> None:
    long = Document(id="h", namespace="acme", title="H", content=paragraphs(OLD))
    await documents.upsert(long)
    assert [r.document_id for r in await documents.search("nebula", ["acme"], limit=5)] == ["h"]
    await documents.upsert(Document(id="h", namespace="acme", title="H", content="bicycles only"))
    for word in OLD:
        assert await documents.search(word, ["acme"], limit=5) == [], word
    assert [r.document_id for r in await documents.search("bicycles", ["acme"], 5)] == ["h"]
    # ids are per namespace: the same id in another tenant is another document
    await documents.upsert(Document(id="h", namespace="globex", title="H", content=long.content))
    assert [r.document_id for r in await documents.search("nebula", ["globex"], 5)] == ["h"]
    assert await documents.search("nebula", ["acme"], limit=5) == []
    assert [r.document_id for r in await documents.search("bicycles", ["acme"], 5)] == ["h"]
