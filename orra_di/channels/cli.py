"""``orra-di channels run|status``.

``run`` serves the configured channels (the Discord bot) with the configured
agents until Ctrl-C or SIGTERM, inside the container's lifespan; ``status``
says which channels the settings configure, without connecting. Imports stay
light: ``cli.py`` registers this Typer at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container

__all__ = ["channels_app"]

channels_app = typer.Typer(
    help="Channels that bring messages to the agents: Discord (see docs/channels.md).",
    no_args_is_help=True,
)


@channels_app.command("run")
def channels_run() -> None:
    """Serve the configured channels until Ctrl-C or SIGTERM; runs in flight finish first
    (up to channels.shutdown_timeout seconds)."""
    import signal

    import anyio

    from orra_di import cli
    from orra_di.channels.service import channels_running

    async def job(container: Container) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async with channels_running(container) as running:
                names = ", ".join(running.managers)
                agents = ", ".join(p.name for p in container.runtimes().profiles)
                cli._err().print(f"channels running: {names} (agents: {agents}); Ctrl-C to stop")
                async for _ in received:
                    break
            cli._err().print("channels stopped")

    cli._run(job, talk=True)


@channels_app.command("status")
def channels_status() -> None:
    """Show the channels the settings configure and how messages are handled."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli
    from orra_di.channels.service import configured_channels

    async def job(container: Container) -> None:
        settings = container.settings()
        section = settings.channels
        found = configured_channels(settings)
        out = cli._out()
        if not found:
            out.print(Text("no channel configured (set ORRA_CHANNELS__DISCORD__TOKEN)"))
        else:
            table = Table("channel", "settings")
            for channel in found:
                shown = ", ".join(f"{k}={v}" for k, v in channel.details.items())
                table.add_row(Text(channel.name), Text(shown))
            out.print(table)
        line = (
            f"max_concurrency={section.max_concurrency} on_busy={section.on_busy} "
            f"max_waiting={section.max_waiting} max_message_chars={section.max_message_chars} "
            f"shutdown_timeout={section.shutdown_timeout:g}s"
        )
        out.print(Text(line))

    cli._run(job, open_resources=False)
