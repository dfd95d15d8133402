"""``orra-di``: chat with your agents, ask one question, inspect sessions and settings.

With no configuration it runs on the embedded SQLite store and the offline test
model, and says so in one line. Errors print one readable line and exit
non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import getpass
import importlib
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orra_di.containers import Container, lifespan
from orra_di.errors import ConfigurationError, OrraError
from orra_di.message import Message, Role
from orra_di.namespace import Namespace
from orra_di.provider import TextDelta
from orra_di.runtime import RunResult, ToolCallCompleted, ToolCallStarted
from orra_di.runtime_set import RuntimeMap
from orra_di.settings import describe
from orra_di.store import SessionStore

__all__ = ["app", "main"]

app = typer.Typer(
    name="orra-di",
    help="Run LLM agents with namespaced, persistent sessions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
sessions_app = typer.Typer(help="List, show and delete stored sessions.", no_args_is_help=True)
app.add_typer(sessions_app, name="sessions")
app.add_typer(importlib.import_module("orra_di.approvals.cli").approvals_app, name="approvals")

# emoji=False: rich would turn ":thumbs_up:" in a namespace key or a message into an emoji.
# soft_wrap=True: long messages are not cut into 80-column lines when piped (tables still fit).
out = Console(highlight=False, emoji=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, emoji=False)
_debug = False
T = TypeVar("T")

AgentOption = Annotated[
    str | None, typer.Option("--agent", "-a", help="Agent to talk to (default: the first).")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Session key, e.g. acme:alice (default: cli:<user>)."),
]


_container_path: str | None = None


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    container: Annotated[
        str | None,
        typer.Option(
            "--container",
            envvar="ORRA_CONTAINER",
            help="Your own container, as module:attribute (a Container subclass or a "
            "function returning one), e.g. to give the agents your application's tools.",
        ),
    ] = None,
) -> None:
    global _debug, _container_path
    _debug = debug
    _container_path = container


def _make_container() -> Container:
    """The default container, or the application's one named by ``--container``."""
    if not _container_path:
        return Container()
    module_name, _, attribute = _container_path.partition(":")
    if not attribute:
        raise ConfigurationError(
            f"--container {_container_path!r} must look like package.module:attribute"
        )
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load --container {_container_path!r}: {exc}") from None
    try:
        made = target()
    except OrraError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"--container {_container_path!r} failed to build a container: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(made, Container):
        raise ConfigurationError(
            f"--container {_container_path!r} gave {type(made).__name__}, not an "
            "orra_di.containers.Container"
        )
    return made


def _run(
    job: Callable[[Container], Awaitable[T]], *, open_resources: bool = True, talk: bool = False
) -> T:
    """Build the container, open its resources, run ``job``; errors become one line.

    ``talk`` marks the commands that send messages: they say when the offline
    test model stands in for a real one.
    """

    async def main() -> T:
        container = _make_container()
        if not open_resources:
            return await job(container)
        if talk:
            _notice_offline(container)
        async with lifespan(container):
            return await job(container)

    with _one_line_errors():
        return anyio.run(main)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Our errors (and a bad name or value) become ``error: ...`` and exit code 1."""
    try:
        yield
    except (OrraError, KeyError, ValueError) as exc:
        if _debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        err.print(f"[red]error:[/red] {escape(str(message))}", soft_wrap=True)
        raise typer.Exit(1) from None


def _notice_offline(container: Container) -> None:
    settings = container.settings()
    if settings.llm.kind is None and settings.llm.resolved_kind == "test":
        err.print(
            f"[dim]No LLM configured: offline test model, sessions in {settings.store.masked()}. "
            "Set ANTHROPIC_API_KEY or OPENAI_API_KEY (or ORRA_LLM__KIND) for a real model.[/dim]",
            soft_wrap=True,
        )


def _namespace(value: str | None) -> Namespace:
    with _one_line_errors():  # a bad --namespace is one error line, not a traceback
        return Namespace.parse(value) if value else Namespace("cli", getpass.getuser() or "user")


def _pick(runtimes: RuntimeMap, agent: str | None, text: str) -> tuple[str, str]:
    if agent:
        return runtimes.profile(agent).name, text
    return runtimes.route(text)


async def _stream_answer(runtimes: RuntimeMap, agent: str, ns: Namespace, text: str) -> RunResult:
    out.print(f"[bold cyan]{escape(agent)}[/bold cyan]: ", end="")
    async with runtimes[agent].run_streaming(ns, text) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                out.print(escape(event.text), end="")
            elif isinstance(event, ToolCallStarted):
                out.print(f"\n  [yellow]→ {escape(event.name)}[/yellow]", end="")
            elif isinstance(event, ToolCallCompleted):
                colour = "red" if event.result.is_error else "green"
                preview = event.result.content.replace("\n", " ")
                if len(preview) > 100:
                    preview = preview[:100] + "…"
                out.print(f"\n  [{colour}]← {escape(preview)}[/{colour}]\n", end="")
    out.print()
    if events.result is None:
        raise OrraError("the run ended without an answer")
    return events.result


@app.command()
def chat(agent: AgentOption = None, namespace: NamespaceOption = None) -> None:
    """Talk to an agent; the session is saved and resumed next time. /quit to leave."""
    ns = _namespace(namespace)

    async def job(container: Container) -> None:
        runtimes: RuntimeMap = container.runtimes()
        if agent:
            runtimes.profile(agent)  # an unknown --agent fails before the first message
        session = await container.store().load(ns)
        if session and session.messages:
            out.print(f"[dim]Resuming {ns} ({len(session.messages)} messages).[/dim]")
        else:
            out.print(f"[dim]New session {ns}.[/dim]")
        out.print(
            f"[dim]Agents: {', '.join(p.name for p in runtimes.profiles)}. "
            "Address one with @Name; /quit to leave.[/dim]"
        )
        while True:
            try:
                line = await anyio.to_thread.run_sync(lambda: input("you> "))
            except EOFError:
                out.print()
                return
            text = line.strip()
            if not text:
                continue
            if text in ("/quit", "/exit"):
                return
            name, content = _pick(runtimes, agent, text)
            try:
                from orra_di.approvals.cli import inline_approvals  # asks "[y/N]" while it runs

                async with inline_approvals(container, ns):
                    await _stream_answer(runtimes, name, ns, content)
            except OrraError as exc:
                err.print(f"[red]error:[/red] {escape(str(exc))}")

    _run(job, talk=True)


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="The message to send.")],
    agent: AgentOption = None,
    namespace: NamespaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Send one message and print the answer."""
    ns = _namespace(namespace)

    async def job(container: Container) -> tuple[str, RunResult]:
        runtimes: RuntimeMap = container.runtimes()
        name, content = _pick(runtimes, agent, text)
        return name, await runtimes[name].run(ns, content)

    name, result = _run(job, talk=True)
    if as_json:
        usage = result.total_usage
        payload: dict[str, Any] = {
            "agent": name,
            "namespace": ns.key,
            "answer": result.final_message.content,
            "turns": len(result.turns),
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        }
        sys.stdout.write(json.dumps(payload, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(result.final_message.content + "\n")


@sessions_app.command("list")
def sessions_list(
    prefix: Annotated[str | None, typer.Argument(help="Only this namespace and below.")] = None,
) -> None:
    """List stored sessions."""

    async def job(container: Container) -> list[Namespace]:
        store: SessionStore = container.store()
        return await store.list(Namespace.parse(prefix) if prefix else None)

    for ns in _run(job):
        out.print(escape(ns.key))


@sessions_app.command("show")
def sessions_show(namespace: Annotated[str, typer.Argument(help="Session key.")]) -> None:
    """Print a session's messages."""
    with _one_line_errors():
        ns = Namespace.parse(namespace)

    async def job(container: Container) -> list[Message]:
        store: SessionStore = container.store()
        session = await store.load(ns)
        if session is None:
            raise OrraError(f"no session {ns}; `orra-di sessions list` shows what is stored")
        return session.messages

    for message in _run(job):
        _print_message(message)


def _print_message(message: Message) -> None:
    label = {Role.USER: "user", Role.ASSISTANT: "assistant", Role.SYSTEM: "system"}[message.role]
    if message.content:
        out.print(f"[bold]{label}[/bold]: {escape(message.content)}")
    for call in message.tool_calls:
        out.print(f"  [yellow]→ {escape(call.name)} {escape(json.dumps(call.arguments))}[/yellow]")
    for result in message.tool_results:
        colour = "red" if result.is_error else "green"
        out.print(f"  [{colour}]← {escape(result.content)}[/{colour}]")


@sessions_app.command("delete")
def sessions_delete(
    namespace: Annotated[str, typer.Argument(help="Session key.")],
    tree: Annotated[bool, typer.Option("--tree", help="Also every session below it.")] = False,
) -> None:
    """Delete a session (or, with --tree, a whole namespace subtree)."""
    with _one_line_errors():
        ns = Namespace.parse(namespace)

    async def job(container: Container) -> int:
        store: SessionStore = container.store()
        return await store.delete_tree(ns) if tree else int(await store.delete(ns))

    count = _run(job)
    if not count:
        err.print(f"[red]error:[/red] no session {escape(ns.key)}")
        raise typer.Exit(1)
    out.print(f"deleted {count} session{'s' if count != 1 else ''}")


_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)(?P<unit>[smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(duration: str) -> float:
    """``30d``, ``12h``, ``90m``, ``45s`` or plain seconds (``3600``), as seconds."""
    match = _DURATION.fullmatch(duration.strip().lower())
    seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"]] if match else 0
    if seconds <= 0:
        raise ValueError(
            f"--idle {duration!r} is not a duration; use e.g. 30d, 12h, 90m or 3600 (seconds)"
        )
    return seconds


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@sessions_app.command("prune")
def sessions_prune(
    prefix: Annotated[
        str | None,
        typer.Argument(metavar="PREFIX", help="Trim only this namespace and below (--keep-last)."),
    ] = None,
    idle: Annotated[
        str | None,
        typer.Option(
            "--idle",
            metavar="DURATION",
            help="Delete sessions not written for this long: 30d, 12h, 90m or seconds "
            "(default: store.session_ttl). Applies to the whole store.",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last",
            min=0,
            metavar="N",
            help="Keep only the newest N messages of each session.",
        ),
    ] = None,
) -> None:
    """Delete idle sessions and trim long ones; prints what went."""
    with _one_line_errors():
        scope = Namespace.parse(prefix) if prefix else None
        idle_for = _seconds(idle) if idle is not None else None
        # A prefix scopes the command: the store-wide prune would reach past it.
        if scope is not None and idle_for is not None:
            raise ValueError(
                "--idle prunes the whole store and cannot be limited to a PREFIX; "
                "run it without PREFIX (PREFIX limits --keep-last)"
            )
        if scope is not None and keep_last is None:
            raise ValueError("PREFIX limits --keep-last; give --keep-last N")

    async def job(container: Container) -> tuple[int | None, int, int]:
        ttl = container.settings().store.session_ttl
        seconds = ttl if idle_for is None and scope is None else idle_for
        if seconds is None and keep_last is None:
            raise ConfigurationError(
                "nothing to prune: give --idle (or set store.session_ttl, "
                "ORRA_STORE__SESSION_TTL) or --keep-last"
            )
        store: SessionStore = container.store()
        pruned = None if seconds is None else await store.prune(seconds)
        trimmed = sessions = 0
        if keep_last is not None:
            for ns in await store.list(scope):
                removed = await store.trim(ns, keep_last)
                if removed:
                    trimmed += removed
                    sessions += 1
        return pruned, trimmed, sessions

    pruned, trimmed, sessions = _run(job)
    if pruned is not None:
        out.print(f"pruned {_plural(pruned, 'idle session')}")
    if keep_last is not None:
        out.print(f"trimmed {_plural(trimmed, 'message')} from {_plural(sessions, 'session')}")


@app.command()
def agents() -> None:
    """List the configured agents."""

    async def job(container: Container) -> tuple[RuntimeMap, str]:
        return container.runtimes(), container.settings().llm.model or ""

    runtimes, default_model = _run(job, open_resources=False)
    table = Table("agent", "personality", "model", "default")
    for profile in runtimes.profiles:
        default = "yes" if profile.name == runtimes.default_agent else ""
        table.add_row(profile.name, profile.personality, profile.model or default_model, default)
    out.print(table)


@app.command()
def config() -> None:
    """Show the effective settings (secrets masked) and where each value came from."""

    async def job(container: Container) -> list[tuple[str, str, str]]:
        return describe(container.settings())

    table = Table("setting", "value", "source")
    for column in table.columns:
        column.overflow = "fold"
    for name, value, source in _run(job, open_resources=False):
        table.add_row(escape(name), escape(value), escape(source))
    out.print(table)


def main() -> None:
    app()
