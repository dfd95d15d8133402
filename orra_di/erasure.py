"""One erasure for everything a namespace subtree left behind (the right to erasure).

:func:`erase` deletes, under a namespace and everything below it (whole segments:
``acme`` never reaches ``acmeother``), in every store beside the sessions:

1. cron jobs and their run history (first, so none fires into a half-erased tenant);
2. pending and decided approval requests (a run still waiting learns it is gone);
3. long-term memories;
4. documents (their chunks and search index with them);
5. usage counters and reservations of the erased keys (an ancestor's rolled-up totals
   stay: they are the tenant's aggregate, with no trace of whose calls they were);
6. any extra erasable store given (anything with ``async delete_tree(namespace) -> int``,
   e.g. an app's own table of per-user data);
7. the sessions, last (the record that the tenant existed goes when everything else has).

Each kind is counted in the :class:`ErasureReport`. A kind whose store cannot be built
(a custom session store with no cron backend, say) is skipped and named in
``report.skipped``; a store error stops the erasure and propagates, and running
:func:`erase` again finishes the job (every step is idempotent).

``orra-di erase acme:alice`` runs it from the command line, asking first unless ``--yes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from orra_di.errors import ConfigurationError

if TYPE_CHECKING:  # imported where used: `orra-di --help` loads this module, not pydantic
    from orra_di.containers import Container
    from orra_di.namespace import NamespaceLike
    from orra_di.store import SessionStore

__all__ = ["Erasable", "ErasureReport", "erase", "erase_command"]


class Erasable(Protocol):
    """A store that can delete everything of a namespace subtree."""

    async def delete_tree(self, namespace: NamespaceLike) -> int: ...


@dataclass
class ErasureReport:
    """What :func:`erase` deleted, per kind (``counts``), and the kinds it could not reach."""

    namespace: str
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __str__(self) -> str:
        parts = [f"{n} {kind}" for kind, n in self.counts.items()]
        text = f"erased under {self.namespace}: " + (", ".join(parts) or "nothing")
        if self.skipped:
            text += "; not reached: " + ", ".join(f"{k} ({why})" for k, why in self.skipped.items())
        return text


async def erase(
    container_or_sessions: Container | SessionStore,
    namespace: NamespaceLike,
    *,
    extra: Sequence[tuple[str, Erasable]] = (),
) -> ErasureReport:
    """Erase everything stored under ``namespace`` and below; see the module docstring.

    Give the container (its stores are used, overrides included) or a bare session store
    (the stores beside it are used). ``extra`` adds ``(kind, store)`` pairs erased before
    the sessions, such as a document store.
    """
    from orra_di.namespace import Namespace

    ns = Namespace.coerce(namespace)
    report = ErasureReport(ns.key)
    sessions, builders = _parts(container_or_sessions)
    for kind, build in builders:
        try:
            store = build()
        except ConfigurationError as exc:
            report.skipped[kind] = str(exc)
            continue
        report.counts[kind] = await store.delete_tree(ns)
    for kind, store in extra:
        report.counts[kind] = await store.delete_tree(ns)
    report.counts["sessions"] = await sessions.delete_tree(ns)
    return report


class _UsageEraser:
    def __init__(self, backend: Any) -> None:
        self.backend = backend

    async def delete_tree(self, namespace: NamespaceLike) -> int:
        from orra_di.namespace import Namespace

        if not hasattr(self.backend, "delete_tree"):
            raise ConfigurationError(f"{self.backend!r} cannot erase usage")
        count: int = await self.backend.delete_tree(Namespace.coerce(namespace).key)
        return count


def _parts(target: Any) -> tuple[SessionStore, list[tuple[str, Any]]]:
    from orra_di.approvals.stores import approval_store_for
    from orra_di.cron.stores import cron_store_for
    from orra_di.documents.stores import document_store_for
    from orra_di.memory.stores import memory_store_for
    from orra_di.usage.stores import usage_backend_for

    if hasattr(target, "store") and hasattr(target, "settings"):  # the container
        sessions = target.store()

        def usage() -> _UsageEraser:
            ledger = target.usage_ledger()
            return _UsageEraser(ledger.backend)

        return sessions, [
            ("cron jobs", target.cron_store),
            ("approvals", target.approval_store),
            ("memories", target.memory_store),
            ("documents", target.document_store),
            ("usage keys", usage),
        ]
    sessions = target
    return sessions, [
        ("cron jobs", lambda: cron_store_for(sessions)),
        ("approvals", lambda: approval_store_for(sessions)),
        ("memories", lambda: memory_store_for(sessions)),
        ("documents", lambda: document_store_for(sessions)),
        ("usage keys", lambda: _UsageEraser(usage_backend_for(sessions))),
    ]


def erase_command(
    namespace: Annotated[str, typer.Argument(help="Erase this namespace and everything below.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase everything stored under a namespace: sessions, memories, documents, cron jobs
    and their runs, approvals, usage (GDPR erasure). Asks first unless --yes."""
    from orra_di import cli
    from orra_di.namespace import Namespace

    with cli._one_line_errors():
        ns = Namespace.parse(namespace)
    question = (
        f"Erase everything under {ns.key} (sessions, memories, documents, cron jobs, "
        "approvals, usage)? "
        "This cannot be undone"
    )
    if not yes and not typer.confirm(question, default=False):
        cli._say("yellow", "cancelled:", "nothing was erased")
        raise typer.Exit(1)

    async def job(container: Container) -> ErasureReport:
        return await erase(container, ns)

    report = cli._run(job)
    from rich.text import Text

    cli._out().print(Text(str(report)))
