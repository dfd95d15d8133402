"""``orra-di usage NAMESPACE [--since 30d] [--json]``: what a namespace used, and its budgets.

Registered on the main app by ``orra_di/cli.py``; the CLI's helpers are imported
when the command runs, so this module stays cheap to import.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.namespace import Namespace
    from orra_di.usage.ledger import Budgets, UsageLedger, UsageTotals

__all__ = ["parse_since", "usage"]

_AGO = re.compile(r"(?P<n>\d+)\s*(?P<unit>[mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime | None:
    """``30d``, ``12h``, ``2w``, ``90m`` ago; an ISO date or time (UTC if no zone); ``all``."""
    text = text.strip().lower()
    if text == "all":
        return None
    ago = _AGO.fullmatch(text)
    if ago:
        try:
            return now - timedelta(**{_UNITS[ago["unit"]]: int(ago["n"])})
        except OverflowError:  # before year 1: datetime cannot say it
            raise ValueError(
                f"--since {text!r} reaches back before the year 1; use --since all for "
                "everything recorded"
            ) from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r} is not a duration or a date: give e.g. 30d, 12h, 2w, 90m, "
            "2026-12-01, 2026-12-01T08:00 or all"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def usage(
    namespace: Annotated[str, typer.Argument(help="Namespace, e.g. acme or acme:alice.")],
    since: Annotated[
        str, typer.Option("--since", help="30d, 12h, 2w, 90m, a date (UTC), or all.")
    ] = "30d",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Show the tokens, calls and cost of a namespace and its subtree, and its budgets."""
    from orra_di import cli
    from orra_di.namespace import Namespace
    from orra_di.usage.ledger import Budgets

    with cli._one_line_errors():
        ns = Namespace.parse(namespace)
        start = parse_since(since, datetime.now(UTC))
        if start is not None:  # the ledger counts whole UTC hours: show the hour it counts from
            start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)

    async def job(container: Container) -> tuple[UsageTotals, list[dict[str, Any]]]:
        ledger: UsageLedger = container.usage_ledger()
        total = await ledger.totals(ns, since=start)
        budgets = await _budget_rows(ledger, Budgets(container.settings().budgets), ns)
        return total, budgets

    total, budgets = cli._run(job)
    if as_json:
        payload = {
            "namespace": ns.key,
            "since": None if start is None else start.isoformat(),
            "usage": total.as_dict(),
            "budgets": budgets,
        }
        sys.stdout.write(json.dumps(payload) + "\n")
        return
    _print(cli, ns, start, total, budgets)


async def _budget_rows(
    ledger: UsageLedger, budgets: Budgets, ns: Namespace
) -> list[dict[str, Any]]:
    """Every limit over ``ns`` (its own and its ancestors'), with its current window's use."""
    from orra_di.usage.ledger import NANOS_PER_USD, window_start

    rows: list[dict[str, Any]] = []
    now = ledger.now()
    for key, budget in budgets.applying_to(ns):
        for window, tokens, cost in budget.limits():
            began = window_start(window, now)
            used = await ledger.totals(key, since=began)
            row: dict[str, Any] = {"namespace": key, "window": window, "since": began.isoformat()}
            if tokens is not None:
                row |= {"tokens_limit": tokens, "tokens_used": used.total_tokens}
            if cost is not None:
                row |= {"cost_limit_usd": cost / NANOS_PER_USD, "cost_used_usd": used.cost_usd}
            rows.append(row)
    return rows


def _print(
    cli: Any,
    ns: Namespace,
    start: datetime | None,
    total: UsageTotals,
    budgets: list[dict[str, Any]],
) -> None:
    from rich.table import Table
    from rich.text import Text

    window = "all time" if start is None else f"since {start:%Y-%m-%d %H:%M} UTC"
    table = Table(
        "namespace", "input", "output", "total tokens", "model calls", "tool calls", "cost"
    )
    table.title = f"usage {window} (hourly buckets)"
    table.add_row(
        Text(ns.key),
        f"{total.input_tokens:,}",
        f"{total.output_tokens:,}",
        f"{total.total_tokens:,}",
        f"{total.model_calls:,}",
        f"{total.tool_calls:,}",
        f"${total.cost_usd:,.4f}",
    )
    cli._out().print(table)
    if not budgets:
        cli._out().print(Text(f"no budget applies to {ns.key}"))
        return
    limits = Table("budget of", "per", "used", "limit", "left")
    for row in budgets:
        if "tokens_limit" in row:
            left = row["tokens_limit"] - row["tokens_used"]
            limits.add_row(
                Text(row["namespace"]),
                row["window"],
                f"{row['tokens_used']:,} tokens",
                f"{row['tokens_limit']:,} tokens",
                f"{max(left, 0):,} tokens",
            )
        if "cost_limit_usd" in row:
            left_usd = row["cost_limit_usd"] - row["cost_used_usd"]
            limits.add_row(
                Text(row["namespace"]),
                row["window"],
                f"${row['cost_used_usd']:,.4f}",
                f"${row['cost_limit_usd']:,.4f}",
                f"${max(left_usd, 0):,.4f}",
            )
    cli._out().print(limits)
