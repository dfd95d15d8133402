"""``orra-di docs add|list|search|show|remove``: a tenant's documents from the shell.

Documents live beside the sessions (the store URL decides where), so what is added here
is what the agents' ``search_documents`` tool finds. Imports stay light: ``cli.py``
registers this Typer at start-up, and the container is only built by a command.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.documents.ingest import Outcome
    from orra_di.documents.model import Document, DocumentSummary, SearchResult
    from orra_di.documents.stores import DocumentStore

__all__ = ["docs_app"]

docs_app = typer.Typer(
    help="A tenant's documents, searched by the agents (see docs/documents.md).",
    no_args_is_help=True,
)

NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", help="The tenant (or session) the documents are of.")
]


def _store(container: Container) -> DocumentStore:
    store: DocumentStore = container.document_store()
    return store


@docs_app.command("add")
def docs_add(
    paths: Annotated[
        list[Path], typer.Argument(help="Files (text, Markdown, HTML, PDF) or directories.")
    ],
    namespace: NamespaceOption,
) -> None:
    """Add files; a file added before is replaced if it changed, skipped if not.

    A file's id is its name (inside a directory given: the directory's name and the
    file's path there, e.g. policies/travel.md). A bad file
    (binary, too big, unreadable) is reported and the others are still added; the
    exit code is then 1.
    """
    import logging

    from rich.text import Text

    from orra_di import cli
    from orra_di.documents.ingest import add_paths
    from orra_di.namespace import Namespace

    # pypdf logs what it repairs ("EOF marker not found") before the clean error line this
    # command prints for a bad PDF; in the CLI that is a stray line, so only errors pass.
    logging.getLogger("pypdf").setLevel(logging.ERROR)

    async def job(container: Container) -> list[Outcome]:
        ns = Namespace.parse(namespace)
        limit = container.settings().documents.max_file_size
        return await add_paths(_store(container), paths, ns, max_size=limit)

    outcomes = cli._run(job)
    for o in outcomes:
        if o.status == "failed":
            cli._err().print(Text.assemble(("error:", "red"), " ", o.detail))
        elif o.status == "unchanged":
            cli._out().print(Text(f"unchanged {o.id} (skipped: {o.detail})"))
        else:
            chunks = f"{o.chunks} chunk" + ("" if o.chunks == 1 else "s")
            cli._out().print(Text(f"{o.status} {o.id} ({chunks}) from {o.path}"))
    if not outcomes:
        cli._err().print(Text("no files found in the paths given"))
        raise typer.Exit(1)
    if any(o.status == "failed" for o in outcomes):
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Only this namespace's documents.")
    ] = None,
) -> None:
    """List the documents: id, namespace, title, source."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli

    async def job(container: Container) -> list[DocumentSummary]:
        return await _store(container).list(None if namespace is None else [namespace])

    summaries = cli._run(job)
    if not summaries:
        cli._out().print("no documents")
        return
    table = Table("id", "namespace", "title", "kind", "updated", "source")
    for column in table.columns:
        column.overflow = "fold"
    for s in summaries:
        row = [s.id, s.namespace.key, s.title, s.metadata.get("kind", "")]
        row += [s.updated_at.isoformat(timespec="seconds"), s.source]
        table.add_row(*(Text(cell) for cell in row))
    cli._out().print(table)


@docs_app.command("search")
def docs_search(
    query: Annotated[str, typer.Argument(help="Words to look for.")],
    namespace: NamespaceOption,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="At most this many.")] = 5,
) -> None:
    """Search as an agent of NAMESPACE would: its documents and its ancestors'."""
    from rich.text import Text

    from orra_di import cli
    from orra_di.documents.model import visible_namespaces

    async def job(container: Container) -> list[SearchResult]:
        return await _store(container).search(query, visible_namespaces(namespace), limit)

    results = cli._run(job)
    if not results:
        cli._out().print(Text(f"No documents found matching '{query}'."))
        return
    for i, r in enumerate(results, start=1):
        head = f"{i}. [{r.document_id}] {r.title} ({r.namespace.key}, score {r.score:.3g})"
        cli._out().print(Text(head, style="bold"))
        cli._out().print(Text(r.chunk))
        cli._out().print()


@docs_app.command("show")
def docs_show(
    document_id: Annotated[str, typer.Argument(help="The document's id.")],
    namespace: NamespaceOption,
) -> None:
    """Print one document of exactly NAMESPACE."""
    from rich.text import Text

    from orra_di import cli
    from orra_di.documents.model import DocumentError

    async def job(container: Container) -> Document | None:
        return await _store(container).get(namespace, document_id)

    doc = cli._run(job)
    if doc is None:
        with cli._one_line_errors():
            raise DocumentError(
                f"no document {document_id!r} in {namespace}; `orra-di docs list` shows them"
            )
        return
    cli._out().print(Text(f"# {doc.title}\n(id: {doc.id}, {doc.content_hash})\n"))
    cli._out().print(Text(doc.content))


@docs_app.command("remove")
def docs_remove(
    document_ids: Annotated[list[str], typer.Argument(help="The documents' ids.")],
    namespace: NamespaceOption,
) -> None:
    """Remove documents of exactly NAMESPACE (exit code 1 if one was not there)."""
    from rich.text import Text

    from orra_di import cli

    async def job(container: Container) -> list[bool]:
        store = _store(container)
        return [await store.remove(namespace, doc_id) for doc_id in document_ids]

    removed = cli._run(job)
    for doc_id, gone in zip(document_ids, removed, strict=True):
        if gone:
            cli._out().print(Text(f"removed {doc_id}"))
        else:
            cli._err().print(Text.assemble(("error:", "red"), f" no document {doc_id!r} there"))
    if not all(removed):
        raise typer.Exit(1)
