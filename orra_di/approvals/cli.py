"""``orra-di approvals list|approve|deny``, and the chat's inline "[y/N]" question.

Both answer through the approval store beside the sessions, so a request made by a
run in one process (a chat, a server) can be answered from another terminal; the
first answer wins and the other side is told. Imports stay light here: ``cli.py``
registers this Typer at start-up, and the container is only built by a command.
"""

from __future__ import annotations

import getpass
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

if TYPE_CHECKING:
    from orra_di.approvals.model import ApprovalRecord
    from orra_di.approvals.stores import ApprovalStore
    from orra_di.containers import Container
    from orra_di.namespace import Namespace

__all__ = ["announce_approvals", "approvals_app", "inline_approvals"]

approvals_app = typer.Typer(
    help="List and answer tool calls waiting for approval (ORRA_APPROVAL__ENABLED).",
    no_args_is_help=True,
)

By = Annotated[
    str | None,
    typer.Option("--by", help="Who decides, for the audit trail (default: your user name)."),
]
Reason = Annotated[str | None, typer.Option("--reason", help="Why; the model reads it.")]
RequestId = Annotated[str, typer.Argument(help="The request's id, from `orra-di approvals list`.")]


def _user() -> str:
    try:
        return getpass.getuser() or "cli"
    except (KeyError, OSError):  # no user name in a container: still say it was the CLI
        return "cli"


def _arguments(record: ApprovalRecord, width: int = 120) -> str:
    from orra_di.approvals.model import canonical_arguments

    text = canonical_arguments(record.arguments)
    return text if len(text) <= width else text[: width - 1] + "…"


@approvals_app.command("list")
def approvals_list(
    namespace: Annotated[str | None, typer.Argument(help="Only this namespace and below.")] = None,
    history: Annotated[
        bool, typer.Option("--history", help="Show the decided ones (the audit trail) instead.")
    ] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="With --history: how many.")] = 50,
) -> None:
    """List the requests waiting for an answer (or, with --history, the decisions)."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli

    async def job(container: Container) -> list[ApprovalRecord]:
        approvals: ApprovalStore = container.approval_store()
        if history:
            return await approvals.history(namespace, limit=limit)
        return await approvals.pending(namespace)

    records = cli._run(job)
    if not records:
        cli._out().print("no decisions recorded" if history else "no approval is pending")
        return
    columns = ["id", "namespace", "tool", "arguments"]
    columns += ["decision", "by", "when", "reason"] if history else ["asked", "expires"]
    table = Table(*columns)
    for column in table.columns:
        column.overflow = "fold"
    for r in records:
        row = [r.id, r.namespace, r.tool, _arguments(r)]
        if history:
            when = r.decided_at.isoformat(timespec="seconds") if r.decided_at else ""
            row += [r.status.value, r.decided_by or "", when, r.reason or ""]
        else:
            row += [
                r.requested_at.isoformat(timespec="seconds"),
                r.expires_at.isoformat(timespec="seconds"),
            ]
        table.add_row(*(Text(cell) for cell in row))  # stored text, never markup
    cli._out().print(table)


def _decide(request_id: str, approved: bool, by: str | None, reason: str | None) -> None:
    from rich.text import Text

    from orra_di import cli

    who = by or _user()

    async def job(container: Container) -> ApprovalRecord:
        approvals: ApprovalStore = container.approval_store()
        return await approvals.decide(request_id, approved=approved, by=who, reason=reason)

    record = cli._run(job)
    verb = "approved" if approved else "denied"
    if record.decided_by != who or record.approved != approved:
        cli._say(
            "red",
            "error:",
            f"{record.id} was already {record.status.value} by {record.decided_by or '?'}"
            + (f" ({record.reason})" if record.reason else ""),
        )
        raise typer.Exit(1)
    cli._out().print(Text(f"{verb}: {record.describe()} in {record.namespace}"))


@approvals_app.command("approve")
def approvals_approve(request_id: RequestId, by: By = None, reason: Reason = None) -> None:
    """Release a pending call: the waiting run goes on and the tool runs."""
    _decide(request_id, True, by, reason)


@approvals_app.command("deny")
def approvals_deny(request_id: RequestId, by: By = None, reason: Reason = None) -> None:
    """Refuse a pending call: the model gets an error result with the reason."""
    _decide(request_id, False, by, reason)


# -- the chat's inline question ------------------------------------------------------------


@asynccontextmanager
async def inline_approvals(
    container: Container,
    namespace: Namespace,
    ask: Callable[[str], str] = input,
    say: Callable[[str], object] = print,
) -> AsyncIterator[None]:
    """While the block runs, ask ``run `exec` with {...}? [y/N]`` for each request of
    ``namespace`` (and below) and answer it; nothing when approvals are off.

    A question on screen when the block ends (answered elsewhere, or timed out)
    waits for its line, so it never swallows the next prompt's input.
    """
    if not container.settings().approval.enabled:
        yield
        return
    approvals: ApprovalStore = container.approval_store()
    user = _user()

    asking = False

    async def watch() -> None:
        nonlocal asking
        seen: set[str] = set()
        while True:
            record = await approvals.next_pending(namespace, seen=seen)
            seen.add(record.id)
            asking = True
            try:
                line = await anyio.to_thread.run_sync(ask, f"{record.describe()}? [y/N] ")
            except EOFError:
                line = ""
            finally:
                asking = False
            approved = line.strip().lower() in ("y", "yes")
            reason = None if approved else f"{user} said no in the chat"
            final = await approvals.decide(record.id, approved=approved, by=user, reason=reason)
            if final.decided_by != user:
                say(f"(already {final.status.value} by {final.decided_by})")

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            yield
        finally:
            if asking:
                say("(the run went on without this answer; press Enter)")
            tg.cancel_scope.cancel()


@asynccontextmanager
async def announce_approvals(
    container: Container, namespace: Namespace, say: Callable[[str], object]
) -> AsyncIterator[None]:
    """While the block runs, ``say`` each call of ``namespace`` (and below) that waits
    for a person, with the command that answers it; nothing when approvals are off.

    ``orra-di ask`` cannot ask inline (its input may be a pipe, and its output a
    script's), so without this a call needing approval would look like a hang until
    the timeout denied it.
    """
    if not container.settings().approval.enabled:
        yield
        return
    approvals: ApprovalStore = container.approval_store()

    async def watch() -> None:
        seen: set[str] = set()
        while True:
            record = await approvals.next_pending(namespace, seen=seen)
            seen.add(record.id)
            until = record.expires_at.isoformat(timespec="seconds")
            say(
                f"waiting for approval: {record.describe()}; answer from another terminal "
                f"with `orra-di approvals approve {record.id}` (or deny) before {until}"
            )

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()
