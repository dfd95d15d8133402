"""``orra-di serve`` (the gateway on uvicorn, with cron when ``cron.enabled``) and
``orra-di gateway new-key``.

Imports stay light: ``cli.py`` registers these at start-up; Starlette and uvicorn are
imported only when the server starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.errors import ConfigurationError

__all__ = ["cannot_listen", "gateway_app", "listen", "serve"]

gateway_app = typer.Typer(
    help="The HTTP gateway's API keys (the server itself is `orra-di serve`).",
    no_args_is_help=True,
)


@gateway_app.command("new-key")
def new_key(
    name: Annotated[str, typer.Argument(help="Who gets the key (shown in audit trails).")],
    tenant: Annotated[
        str | None,
        typer.Option(help="Namespace prefix the key is bound to; omit for an operator key."),
    ] = None,
) -> None:
    """Make an API key: the key once on stdout, the settings entry (its digest) on stderr."""
    from rich.text import Text

    from orra_di import cli
    from orra_di.gateway.auth import hash_api_key, new_api_key
    from orra_di.gateway.settings import ApiKeySettings

    with cli._one_line_errors():
        entry = ApiKeySettings(name=name, digest="sha256:" + "0" * 64, tenant=tenant)
    key = new_api_key()
    digest = hash_api_key(key)
    cli._out().print(Text(key))
    toml = f'[[gateway.api_keys]]\nname = {json.dumps(entry.name)}\ndigest = "{digest}"\n' + (
        f"tenant = {json.dumps(entry.tenant)}\n" if entry.tenant else ""
    )
    cli._err().print(
        Text(
            "Keep the key above secret; the server stores only its digest. Add to orra.toml:\n\n"
            + toml
            + "\n(or ORRA_GATEWAY__API_KEYS='"
            + json.dumps([{"name": entry.name, "digest": digest, "tenant": entry.tenant}])
            + "')"
        )
    )


def serve(
    host: Annotated[str | None, typer.Option(help="Address (default: gateway.host).")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port (default: gateway.port).")
    ] = None,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(
            "--allow-unauthenticated",
            help="Serve a non-loopback address without API keys (everyone sees everything).",
        ),
    ] = False,
) -> None:
    """Serve the agents over HTTP (REST, SSE, WebSocket, OpenAI API, chat page) until
    Ctrl-C or SIGTERM, with the configured channels (Discord); with cron.enabled, run due
    cron jobs too (`orra-di cron serve` runs only those). See docs/gateway.md."""
    from orra_di import cli

    async def job(container: Container) -> None:
        await serve_gateway(
            container, host=host, port=port, allow_unauthenticated=allow_unauthenticated
        )

    cli._run(job, talk=True)


async def serve_gateway(
    container: Container,
    *,
    host: str | None = None,
    port: int | None = None,
    allow_unauthenticated: bool = False,
) -> None:
    """Run the gateway on uvicorn inside an open ``lifespan(container)`` until a signal."""
    import contextlib
    import signal

    import anyio

    from orra_di import cli
    from orra_di.errors import ConfigurationError, install_hint
    from orra_di.gateway.auth import is_loopback

    try:
        import uvicorn
    except ImportError as exc:
        raise ConfigurationError(f"orra-di serve needs uvicorn: {install_hint('gateway')}") from exc
    from orra_di.gateway.app import create_app

    settings = container.settings().gateway
    host = host or settings.host
    port = settings.port if port is None else port
    open_door = allow_unauthenticated or settings.allow_unauthenticated
    if not settings.api_keys and not is_loopback(host) and not open_door:
        raise ConfigurationError(
            f"refusing to serve {host} without API keys: anyone who reaches it could read "
            "every session. Add keys (`orra-di gateway new-key NAME --tenant PREFIX`), or "
            "serve 127.0.0.1, or pass --allow-unauthenticated"
        )
    app = create_app(container, settings)
    gateway = app.state.gateway
    if container.settings().cron.enabled:
        announce_over_the_gateway(container, gateway)
    server = uvicorn.Server(uvicorn_config(app, settings, host, port))

    @contextlib.contextmanager
    def no_signal_capture() -> Iterator[None]:  # the signals are ours (below), not re-raised
        yield

    server.capture_signals = no_signal_capture  # type: ignore[method-assign]

    stopping: list[float] = []
    async with anyio.create_task_group() as tg:

        async def signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
                async for _ in received:
                    if server.should_exit:
                        server.force_exit = True  # a second signal: stop waiting
                    server.should_exit = True
                    stopping.append(anyio.current_time())

        tg.start_soon(signals)

        def announce(where: str) -> None:
            agents = ", ".join(p.name for p in container.runtimes().profiles)
            cron = " and cron jobs" if container.settings().cron.enabled else ""
            cli._err().print(
                f"gateway listening on http://{where} (agents: {agents}{cron}; store "
                f"{container.settings().store.masked()}); Ctrl-C to stop",
                markup=False,
            )

        from orra_di.channels.service import channels_running

        async with channels_running(container, required=False):  # Discord etc. if configured
            listened = await listen(server, announce)
        if listened:
            # runs outlive their requests: give them what is left of the grace, then cancel
            spent = anyio.current_time() - stopping[0] if stopping else 0.0
            left = await gateway.drain(max(settings.shutdown_grace - spent, 0.0))
            if left:
                cli._err().print(f"{left} run(s) cancelled at shutdown; recorded as interrupted")
        tg.cancel_scope.cancel()
    if not listened:  # raised outside the task group, which would wrap it in an ExceptionGroup
        raise cannot_listen(host, port)


async def listen(server: Any, announce: Callable[[str], None]) -> bool:
    """Run ``server`` (a ``uvicorn.Server``) until it stops; False if it could not listen.

    ``announce`` gets the address once the server listens (``host:port``, the port the
    system chose for port 0), never before: a server that cannot bind must not have said
    it was up. uvicorn says why it could not bind on its own log line, then raises
    ``SystemExit``, which would end the process with uvicorn's exit code and no word of
    what to do; the caller raises ``cannot_listen`` instead, outside any task group.
    """
    import anyio

    async def announce_once_listening() -> None:
        while not server.started:  # uvicorn has no "listening" callback
            if server.should_exit:  # stopped (a signal) before it listened
                return
            await anyio.sleep(0.02)
        bound = server.servers[0].sockets[0].getsockname()
        announce(f"{bound[0]}:{bound[1]}" if ":" not in bound[0] else f"[{bound[0]}]:{bound[1]}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(announce_once_listening)
        try:
            await server.serve()
        except SystemExit:  # uvicorn's way to say it could not bind (it logged why)
            return False
        finally:
            tg.cancel_scope.cancel()
    return True


def cannot_listen(host: str, port: int) -> ConfigurationError:
    """The one-line error of a server that could not bind ``host:port``, and what to do."""
    from orra_di.errors import ConfigurationError

    return ConfigurationError(
        f"cannot listen on {host}:{port} (see the line above: in use, or not an "
        "address of this machine); choose another --port or --host"
    )


def uvicorn_config(app: Any, settings: Any, host: str, port: int) -> Any:
    """How ``orra-di serve`` configures uvicorn for ``app``.

    The protocol reads WebSocket frames of up to twice ``max_body_bytes``, so that a
    message over the limit reaches the gateway and is answered with an ``error`` (the
    connection stays open); a frame larger than that is not read at all (close 1009).
    """
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="off",  # the container's lifespan is open around the server
        log_level="warning",
        timeout_graceful_shutdown=settings.shutdown_grace,
        ws_max_size=2 * settings.max_body_bytes,
        ws="websockets-sansio",
    )


def announce_over_the_gateway(container: Container, gateway: Any) -> None:
    """Cron announcements also reach WebSocket subscribers, on every replica.

    Only when the application gave the cron service no ``deliver`` of its own: the
    answer still goes into the job's home session, as without a gateway.
    """
    from orra_di.message import Message
    from orra_di.namespace import Namespace

    service = container.cron_service()
    if service.deliver is not None:
        return

    async def deliver(job: Any, run: Any, text: str) -> None:
        home = Namespace.parse(job.namespace)
        async with service.sessions.lock(home):
            await service.sessions.append(home, [Message.assistant(text)])
        bus = gateway.bus(service.sessions)
        await bus.publish(
            {
                "namespace": home.key,
                "run": run.id,
                "replica": bus.replica,
                "event": "announcement",
                "data": {"job_id": job.id, "job_name": job.name, "message": text},
            }
        )

    service.deliver = deliver
