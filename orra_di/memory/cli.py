"""``orra-di memory list|add|search|forget --namespace NS``.

Memories live beside the sessions (the store URL decides where); these commands act as
the given namespace would through the tools: ``list`` and ``search`` show what it sees
(its own memories and, by ``memory.ancestors``, its ancestors'), ``forget`` deletes only
inside its subtree. Imports stay light: the container is built by a command only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.memory.manager import MemoryManager
    from orra_di.memory.model import MemoryEntry, MemorySearchResult

__all__ = ["memory_app"]

memory_app = typer.Typer(
    help="Long-term memories of a namespace (see docs/memory.md).", no_args_is_help=True
)

NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", help="Act as this namespace (e.g. acme:alice).")
]


def _manager(container: Container) -> MemoryManager:
    manager: MemoryManager = container.memory()
    return manager


def _print(entries: list[MemoryEntry], scores: list[float] | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli

    if not entries:
        cli._out().print("no memories")
        return
    heads = ["id", "namespace", "created", *(["score"] if scores else []), "tags", "content"]
    table = Table(*heads)
    for column in table.columns:
        column.overflow = "fold"
    for i, e in enumerate(entries):
        row = [e.id, e.namespace, e.created_at.isoformat(timespec="seconds")]
        row += [f"{scores[i]:.2f}"] if scores else []
        row += [", ".join(e.tags), e.content if len(e.content) <= 500 else e.content[:500] + "…"]
        table.add_row(*(Text(cell) for cell in row))
    cli._out().print(table)


@memory_app.command("list")
def memory_list(
    namespace: NamespaceOption,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
) -> None:
    """The memories the namespace sees, newest first."""
    from orra_di import cli

    async def job(container: Container) -> list[MemoryEntry]:
        return await _manager(container).list(namespace, limit)

    found = cli._run(job)
    _print(found)


@memory_app.command("add")
def memory_add(
    namespace: NamespaceOption,
    content: Annotated[str, typer.Argument(help="The fact to remember.")],
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
) -> None:
    """Remember a fact for the namespace (embedded if an embedder is configured)."""
    from orra_di import cli

    async def job(container: Container) -> str:
        return await _manager(container).remember(namespace, content, tag or [])

    memory_id = cli._run(job)
    cli._out().print(f"stored memory {memory_id}")


@memory_app.command("search")
def memory_search(
    namespace: NamespaceOption,
    query: Annotated[str, typer.Argument(help="Words (or, with an embedder, a meaning).")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 5,
) -> None:
    """Recall the memories most relevant to the query, as the namespace's tools would."""
    from orra_di import cli

    async def job(container: Container) -> list[MemorySearchResult]:
        return await _manager(container).recall(namespace, query, limit)

    found = cli._run(job)
    _print([r.entry for r in found], [r.score for r in found])


@memory_app.command("forget")
def memory_forget(
    namespace: NamespaceOption,
    memory_id: Annotated[str, typer.Argument(metavar="ID", help="The memory's id.")],
) -> None:
    """Delete one memory of the namespace's subtree."""
    from orra_di import cli

    async def job(container: Container) -> bool:
        return await _manager(container).forget(namespace, memory_id)

    done = cli._run(job)
    if not done:
        cli._say("red", "error:", f"no memory {memory_id} under {namespace}")
        raise typer.Exit(1)
    cli._out().print(f"deleted memory {memory_id}")
