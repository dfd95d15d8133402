"""``orra-di``: chat with your agents, ask one question, inspect sessions and settings.

With no configuration it runs on the embedded SQLite store and the offline
model, and says so in one line. Errors print one readable line and exit
non-zero; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import functools
import getpass
import importlib
import json
import os
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from anyio import CancelScope
    from anyio.from_thread import BlockingPortal
    from rich.console import Console

    from orra_di.containers import Container
    from orra_di.message import Message
    from orra_di.namespace import Namespace
    from orra_di.runtime import RunResult
    from orra_di.runtime_set import RuntimeMap
    from orra_di.settings import OrraSettings

# Start-up time: this module imports only typer at load. Each command imports what
# it needs when it runs, so `orra-di --help` loads no settings, container or store
# (benchmarks/bench_startup.py measures it).

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

_debug = False
T = TypeVar("T")

AgentOption = Annotated[
    str | None, typer.Option("--agent", "-a", help="Agent to talk to (default: the first).")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", "-n", help="Session key, e.g. acme:alice (default: cli:<user>)."),
]


@cache
def _out() -> Console:
    """stdout. Text from models and stores is printed as rich ``Text``, never as markup."""
    from rich.console import Console

    # emoji=False: rich would turn ":thumbs_up:" in a namespace key or a message into an emoji.
    # soft_wrap=True: long messages are not cut into 80-column lines when piped.
    return Console(highlight=False, emoji=False, soft_wrap=True)


@cache
def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


def _say(style: str, label: str, text: str) -> None:
    """``label text`` on stderr, the label styled and the text verbatim."""
    from rich.text import Text

    _err().print(Text.assemble((label, style), " ", text))


_container_path: str | None = None


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    container: Annotated[
        str | None,
        typer.Option(
            "--container",
            envvar="ORRA_CONTAINER",
            help="Your own container, as module:attribute: a Container subclass (decorated "
            "with @containers.copy(Container) when it redefines a provider), an instance, or a "
            "function returning one; e.g. to give the agents your application's tools. "
            "The module is looked up in the working directory first.",
        ),
    ] = None,
) -> None:
    global _debug, _container_path
    _debug = debug
    _container_path = container
    # One pair of consoles per invocation: a console fixes its width from COLUMNS when
    # made, and a process may run several commands (tests, a host application).
    _out.cache_clear()
    _err.cache_clear()


def _make_container() -> Container:
    """The default container, or the application's one named by ``--container``.

    The settings are loaded here, so that their warnings (a misspelt variable)
    are printed once, before anything else happens.
    """
    from orra_di.containers import Container

    container = Container() if not _container_path else _application_container(_container_path)
    _load_settings(container)
    return container


def _application_container(path: str) -> Container:

    from orra_di.containers import Container
    from orra_di.errors import ConfigurationError, OrraError

    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"--container {path!r} must look like package.module:attribute")
    # `python -m` puts the working directory on sys.path, the console script does not:
    # an application's module beside the user must be found either way.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load --container {path!r}: {exc}") from None
    if _is_container(target):
        return target  # type: ignore[no-any-return]
    try:
        made = target()
    except OrraError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"--container {path!r} failed to build a container: {type(exc).__name__}: {exc}"
        ) from None
    if not _is_container(made):
        raise ConfigurationError(
            f"--container {path!r} gave {type(made).__name__}, not an instance of "
            f"{Container.__module__}.Container or of a subclass"
        )
    return made  # type: ignore[no-any-return]


def _is_container(value: object) -> bool:
    """A built orra-di container: dependency-injector builds a declarative container
    as a ``DynamicContainer`` whose ``declarative_parent`` is the class."""
    from orra_di.containers import Container

    parent = getattr(value, "declarative_parent", None)
    return isinstance(parent, type) and issubclass(parent, Container)


def _load_settings(container: Container) -> OrraSettings:
    """The container's settings; their warnings become ``warning: ...`` lines on stderr."""
    import warnings

    from orra_di.settings_names import SettingsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SettingsWarning)
        settings: OrraSettings = container.settings()
    for warning in caught:
        if issubclass(warning.category, SettingsWarning):
            _say("yellow", "warning:", str(warning.message))
        else:  # not ours: let the usual filters decide
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return settings


def _run(
    job: Callable[[Container], Awaitable[T]], *, open_resources: bool = True, talk: bool = False
) -> T:
    """Build the container, open its resources, run ``job``; errors become one line.

    ``talk`` marks the commands that send messages: they say when the offline
    model stands in for a real one.
    """
    import anyio

    from orra_di.containers import lifespan

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
    from orra_di.errors import OrraError

    try:
        yield
    except (OrraError, KeyError, ValueError) as exc:
        if _debug:
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        _say("red", "error:", _one_line(message))
        raise typer.Exit(1) from None


def _one_line(error: object) -> str:
    """``error`` as one line. A pydantic ``ValidationError`` (a value the CLI passed to a
    model) becomes ``field: reason``; its own text spans lines, links to pydantic's site
    and echoes the raw input, which may be a secret."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return str(error)
    problems = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        where = ".".join(str(part) for part in problem["loc"])
        reason = str(problem["msg"]).removeprefix("Value error, ")
        problems.append(f"{where}: {reason}" if where else reason)
    return "; ".join(problems)


def _notice_offline(container: Container) -> None:
    from rich.text import Text

    settings = container.settings()
    if settings.llm.kind is None and settings.llm.resolved_kind == "offline":
        notice = (
            f"No LLM configured: offline model, sessions in {settings.store.masked()}. "
            "Set ANTHROPIC_API_KEY or OPENAI_API_KEY (or ORRA_LLM__KIND) for a real model."
        )
        _err().print(Text(notice, style="dim"))


def _namespace(value: str | None) -> Namespace:

    from orra_di.namespace import Namespace

    with _one_line_errors():  # a bad --namespace is one error line, not a traceback
        return Namespace.parse(value) if value else Namespace("cli", getpass.getuser() or "user")


def _pick(runtimes: RuntimeMap, agent: str | None, text: str) -> tuple[str, str]:
    """The agent a message goes to, and the message without its ``@mention``.

    A leading ``@Name`` that names no agent is said out loud: the message then
    goes to the default agent, which is rarely what the user meant.
    """
    from orra_di.agent import detect_agent_mention

    if agent:
        return runtimes.profile(agent).name, text
    name, content = runtimes.route(text)
    mention = re.match(r"\s*@(\w[\w.-]*)", text)
    # The note is for a mention that named no agent, not for one of the default
    # agent ("@Code Bot ..." when "Code Bot" is the first agent: the regex sees "Code").
    named, _ = detect_agent_mention(text, [p.name for p in runtimes.profiles])
    if mention and named is None and mention[1].lower() not in runtimes:
        agents = ", ".join(p.name for p in runtimes.profiles)
        _say(
            "yellow", "note:", f"no agent is named {mention[1]} (agents: {agents}); {name} answers"
        )
    return name, content


async def _stream_answer(runtimes: RuntimeMap, agent: str, ns: Namespace, text: str) -> RunResult:
    from rich.text import Text

    from orra_di.errors import OrraError
    from orra_di.provider import TextDelta
    from orra_di.runtime import ToolCallCompleted, ToolCallStarted

    out = _out()
    out.print(Text.assemble((agent, "bold cyan"), ": "), end="")
    at_line_start = False  # a tool line starts on a line of its own, and leaves one open

    def tool_line(line: str, style: str) -> None:
        nonlocal at_line_start
        out.print(Text(("" if at_line_start else "\n") + line, style=style), end="\n")
        at_line_start = True

    async with runtimes[agent].run_streaming(ns, text) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                out.print(Text(event.text), end="")
                at_line_start = event.text.endswith("\n")
            elif isinstance(event, ToolCallStarted):
                tool_line(f"  → {event.name}", "yellow")
            elif isinstance(event, ToolCallCompleted):
                colour = "red" if event.result.is_error else "green"
                preview = event.result.content.replace("\n", " ")
                if len(preview) > 100:
                    preview = preview[:100] + "…"
                tool_line(f"  ← {preview}", colour)
    if not at_line_start:
        out.print()
    if events.result is None:
        raise OrraError("the run ended without an answer")
    return events.result


@app.command()
def chat(agent: AgentOption = None, namespace: NamespaceOption = None) -> None:
    """Talk to an agent; the session is saved and resumed next time. /quit or Ctrl-C to leave.

    Ctrl-C during an answer stops that answer and returns to the prompt.
    """
    from orra_di.containers import lifespan

    ns = _namespace(namespace)
    # The event loop runs in a thread of its own and the prompt in the main thread,
    # where Ctrl-C arrives: it interrupts input() at once, and during an answer it
    # cancels only that answer (the run saves what it did, as any cancelled run).
    with _one_line_errors(), _event_loop_thread() as portal:
        container = _make_container()
        _notice_offline(container)
        with portal.wrap_async_context_manager(lifespan(container)):
            runtimes = portal.call(_greet, container, ns, agent)
            try:
                while True:
                    text = input("you> ").strip()
                    if text in ("/quit", "/exit"):
                        return
                    if text:
                        name, content = _pick(runtimes, agent, text)
                        _answer_until_interrupted(portal, container, runtimes, name, ns, content)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D, or Ctrl-C outside an answer
                _out().print()


@contextmanager
def _event_loop_thread() -> Iterator[BlockingPortal]:
    """An event loop in a thread of its own, which Ctrl-C never goes to.

    The kernel hands SIGINT to any thread that does not block it; if that is not
    the main thread, the main thread's ``input()`` is not interrupted and waits
    for Enter. So the loop's thread (and the worker threads it starts, which
    inherit its mask) is started with SIGINT blocked.
    """
    import signal

    from anyio.from_thread import start_blocking_portal

    with ExitStack() as stack:
        if hasattr(signal, "pthread_sigmask"):  # POSIX; elsewhere Ctrl-C reaches input() anyway
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
            try:  # the thread starts with this thread's mask
                portal = stack.enter_context(start_blocking_portal())
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        else:
            portal = stack.enter_context(start_blocking_portal())
        yield portal


async def _greet(container: Container, ns: Namespace, agent: str | None) -> RuntimeMap:
    from rich.text import Text

    runtimes: RuntimeMap = container.runtimes()
    if agent:
        runtimes.profile(agent)  # an unknown --agent fails before the first message
    session = await container.store().load(ns)
    if session and session.messages:
        greeting = f"Resuming {ns} ({len(session.messages)} messages)."
    else:
        greeting = f"New session {ns}."
    _out().print(Text(greeting, style="dim"))
    agents = ", ".join(p.name for p in runtimes.profiles)
    hint = f"Agents: {agents}. Address one with @Name; /quit or Ctrl-C to leave."
    _out().print(Text(hint, style="dim"))
    return runtimes


def _answer_until_interrupted(
    portal: BlockingPortal,
    container: Container,
    runtimes: RuntimeMap,
    agent: str,
    ns: Namespace,
    text: str,
) -> None:
    """Stream one answer; Ctrl-C cancels it and returns, leaving the chat open.

    While the answer runs, Ctrl-C only raises a flag: a ``KeyboardInterrupt``
    thrown into the middle of a wait on the answer's future could leave that
    future's lock held and hang both threads. The flag is seen within 0.1 s and
    the answer's cancel scope is cancelled in the event loop's thread, where the
    run then saves what it did, as any cancelled run does.
    """
    import signal

    import anyio
    from rich.text import Text

    from orra_di.errors import OrraError

    interrupted = False

    def on_interrupt(signum: int, frame: object) -> None:
        nonlocal interrupted
        interrupted = True

    scopes: list[CancelScope] = []  # touched only in the event loop's thread
    stopped: list[bool] = []  # likewise: Ctrl-C before the task started

    async def answer() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            if stopped:
                scope.cancel()
            try:
                from orra_di.approvals.cli import inline_approvals  # asks "[y/N]" while it runs

                async with inline_approvals(container, ns):
                    await _stream_answer(runtimes, agent, ns, text)
            except OrraError as exc:
                _say("red", "error:", str(exc))
        if scope.cancelled_caught:
            _out().print(Text("\n(interrupted)", style="dim"))

    def stop() -> None:
        stopped.append(True)
        for scope in scopes:
            scope.cancel()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        future = portal.start_task_soon(answer)
        stopping = False
        while True:
            try:
                return future.result(timeout=0.1)
            except TimeoutError:
                pass
            if interrupted and not stopping:
                stopping = True
                portal.call(stop)
    finally:
        signal.signal(signal.SIGINT, previous)


@app.command()
def ask(
    text: Annotated[str | None, typer.Argument(help="The message (or give --audio).")] = None,
    agent: AgentOption = None,
    namespace: NamespaceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    audio: Annotated[
        Path | None,
        typer.Option("--audio", help="Send what is said in this recording (.wav, .mp3, ...)."),
    ] = None,
    speak: Annotated[
        Path | None,
        typer.Option("--speak", help="Also write the answer as speech (.mp3, .wav, ...)."),
    ] = None,
) -> None:
    """Send one message and print the answer; --audio and --speak need the voice extra."""

    ns = _namespace(namespace)
    if (text is None) == (audio is None):
        raise typer.BadParameter("give the message or --audio FILE, one of them")

    async def job(container: Container) -> tuple[str, RunResult]:
        runtimes: RuntimeMap = container.runtimes()

        async def send(message: str) -> tuple[str, RunResult]:
            from orra_di.approvals.cli import announce_approvals

            name, content = _pick(runtimes, agent, message)
            note = functools.partial(_say, "yellow", "note:")  # what waits for a person
            async with announce_approvals(container, ns, note):
                return name, await runtimes[name].run(ns, content)

        if audio is None and speak is None:
            assert text is not None
            return await send(text)
        from orra_di.voice.cli import ask_by_voice

        say = functools.partial(_err().print, soft_wrap=True)
        return await ask_by_voice(container, send, text, audio=audio, speak=speak, say=say)

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
    from orra_di.namespace import Namespace

    async def job(container: Container) -> list[Namespace]:
        return await container.store().list(Namespace.parse(prefix) if prefix else None)  # type: ignore[no-any-return]

    for ns in _run(job):
        _out().print(ns.key, markup=False)


@sessions_app.command("show")
def sessions_show(namespace: Annotated[str, typer.Argument(help="Session key.")]) -> None:
    """Print a session's messages."""
    from orra_di.errors import OrraError
    from orra_di.namespace import Namespace

    with _one_line_errors():
        ns = Namespace.parse(namespace)

    async def job(container: Container) -> list[Message]:
        session = await container.store().load(ns)
        if session is None:
            raise OrraError(f"no session {ns}; `orra-di sessions list` shows what is stored")
        return session.messages  # type: ignore[no-any-return]

    for message in _run(job):
        _print_message(message)


def _print_message(message: Message) -> None:

    from rich.text import Text

    from orra_di.message import Role

    out = _out()
    label = {Role.USER: "user", Role.ASSISTANT: "assistant", Role.SYSTEM: "system"}[message.role]
    if message.content:
        out.print(Text.assemble((label, "bold"), ": ", message.content))
    for call in message.tool_calls:
        out.print(Text(f"  → {call.name} {json.dumps(call.arguments)}", style="yellow"))
    for result in message.tool_results:
        out.print(Text(f"  ← {result.content}", style="red" if result.is_error else "green"))


@sessions_app.command("delete")
def sessions_delete(
    namespace: Annotated[str, typer.Argument(help="Session key.")],
    tree: Annotated[bool, typer.Option("--tree", help="Also every session below it.")] = False,
) -> None:
    """Delete a session (or, with --tree, a whole namespace subtree and its cron jobs)."""
    from orra_di.namespace import Namespace

    with _one_line_errors():
        ns = Namespace.parse(namespace)

    async def job(container: Container) -> tuple[int, int]:
        store = container.store()
        if not tree:
            return int(await store.delete(ns)), 0
        from orra_di.cron.service import erase_tenant  # jobs and history live beside

        return await erase_tenant(store, ns, container.cron_store())

    count, jobs = _run(job)
    if not count and not jobs:
        _say("red", "error:", f"no session {ns.key}")
        raise typer.Exit(1)
    also = f" and {_plural(jobs, 'cron job')} with their history" if jobs else ""
    _out().print(f"deleted {count} session{'s' if count != 1 else ''}{also}")


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
            help="Keep only the newest N messages of each session (a few fewer where "
            "the cut would keep a tool result without its call).",
        ),
    ] = None,
) -> None:
    """Delete idle sessions and trim long ones; prints what went."""
    from orra_di.errors import ConfigurationError
    from orra_di.namespace import Namespace

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
        store = container.store()
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
        _out().print(f"pruned {_plural(pruned, 'idle session')}")
    if keep_last is not None:
        _out().print(f"trimmed {_plural(trimmed, 'message')} from {_plural(sessions, 'session')}")


@app.command()
def agents() -> None:
    """List the configured agents, and the vendor and model they use."""
    from rich.table import Table
    from rich.text import Text

    from orra_di.providers.choice import LLMChoice

    async def job(container: Container) -> tuple[RuntimeMap, LLMChoice]:
        return container.runtimes(), await _llm_choice(container.settings())

    runtimes, choice = _run(job, open_resources=False)
    table = Table("agent", "personality", "model", "default")
    for profile in runtimes.profiles:
        default = "yes" if profile.name == runtimes.default_agent else ""
        model = profile.model or choice.model or ""
        table.add_row(Text(profile.name), Text(profile.personality), Text(model), default)
    _out().print(table)
    _out().print(Text(choice.summary(), style="dim"))


@app.command()
def config() -> None:
    """Show the effective settings (secrets masked) and where each value came from.

    An unset ``llm.kind`` or ``llm.model`` shows the vendor and model in use and
    what chose them.
    """

    from rich.table import Table
    from rich.text import Text

    from orra_di.settings import describe

    async def job(container: Container) -> list[tuple[str, str, str]]:
        settings = container.settings()
        rows = describe(settings)
        choice = await _llm_choice(settings)
        effective = {
            "llm.kind": (choice.kind, choice.kind_source),
            "llm.model": (choice.model, choice.model_source),
        }
        return [
            (name, json.dumps(effective[name][0]), effective[name][1])
            if name in effective and value == "null"
            else (name, value, source)
            for name, value, source in rows
        ]

    table = Table("setting", "value", "source")
    for column in table.columns:
        column.overflow = "fold"
    for name, value, source in _run(job, open_resources=False):
        table.add_row(Text(name), Text(value), Text(source))
    _out().print(table)


async def _llm_choice(settings: OrraSettings) -> Any:
    """The vendor and model in use; a server given only by URL is asked for its model."""
    from orra_di.providers.choice import choose_llm

    return await choose_llm(settings).ask_server()


# Capabilities with their own verbs (their modules import only typer at load).
from orra_di.plugins.cli import app as _plugins_app  # noqa: E402
from orra_di.projects.cli import app as _projects_app  # noqa: E402

app.add_typer(_plugins_app, name="plugins")
app.add_typer(_projects_app, name="projects")


app.command(name="usage")(importlib.import_module("orra_di.usage.cli").usage)
app.add_typer(importlib.import_module("orra_di.cron.cli").cron_app, name="cron")
app.add_typer(importlib.import_module("orra_di.gateway.cli").gateway_app, name="gateway")
app.command(name="serve")(importlib.import_module("orra_di.gateway.cli").serve)
app.add_typer(importlib.import_module("orra_di.channels.cli").channels_app, name="channels")
app.add_typer(importlib.import_module("orra_di.mcp.cli").mcp_app, name="mcp")
app.add_typer(importlib.import_module("orra_di.memory.cli").memory_app, name="memory")
app.command(name="erase")(importlib.import_module("orra_di.erasure").erase_command)
app.add_typer(importlib.import_module("orra_di.documents.cli").docs_app, name="docs")


def main() -> None:
    app()


if __name__ == "__main__":  # python -m orra_di.cli
    main()
