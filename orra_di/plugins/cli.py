"""``orra-di plugins list``: the installed plugins, which are enabled, and how they start.

Imports only typer at load (the ``orra-di`` command registers this module at
start-up); the rest is imported when the command runs.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container

__all__ = ["app"]

app = typer.Typer(
    help="The plugins installed (entry points 'orra_di.plugins') and enabled (ORRA_PLUGINS).",
    no_args_is_help=True,
)


@app.command("list")
def plugins_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List installed plugins: enabled or not, and whether each one starts.

    The enabled plugins are really started (and stopped again), so a plugin that
    fails to load or to initialise shows as failed, with why.
    """
    from orra_di import cli

    async def job(container: Container) -> list[dict[str, Any]]:
        return await _rows(container)

    rows = cli._run(job, open_resources=False)
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("plugin", "version", "distribution", "enabled", "status", "details")
    for row in rows:
        colour = {"running": "green", "failed": "red"}.get(row["status"], "")
        table.add_row(
            Text(row["name"]),
            Text(row["version"] or ""),
            Text(row["distribution"] or ""),
            "yes" if row["enabled"] else "no",
            Text(row["status"], style=colour),
            Text(row["error"] or row["description"] or ""),
        )
    if not rows:
        Console(stderr=True).print(
            "No plugin installed: a distribution declares one as an entry point in the "
            "group 'orra_di.plugins'.",
            highlight=False,
        )
        return
    Console(highlight=False, emoji=False).print(table)


async def _rows(container: Container) -> list[dict[str, Any]]:
    """One row per plugin, installed or enabled, after starting the enabled ones."""
    from orra_di.plugins.registry import discover

    installed = {d.name: d for d in discover()}
    registry = container.plugins()
    await registry.start()
    try:
        infos = {info.name: info for info in registry.list()}
    finally:
        await registry.shutdown()
    rows = []
    for name in sorted(set(installed) | set(infos)):
        found, info = installed.get(name), infos.get(name)
        rows.append(
            {
                "name": name,
                "version": info.version if info and info.version else found and found.version,
                "distribution": found.distribution if found else None,
                "enabled": info is not None and info.enabled,
                "status": "not enabled" if info is None else _status(info.state, info.error),
                "description": info.description if info else None,
                "error": info.error if info else None,
            }
        )
    return rows


def _status(state: str, error: str | None) -> str:
    return "failed" if error else str(state)
