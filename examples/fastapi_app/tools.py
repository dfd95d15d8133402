"""The application's own tool, handed to every agent through ``Container.tool_factory``."""

from __future__ import annotations

from collections.abc import Sequence

from orra_di import AgentProfile, Tool, ToolContext, ToolError, tool

__all__ = ["ORDERS", "app_tools", "order_status"]

ORDERS: dict[str, dict[str, str]] = {
    "acme": {"A-1001": "shipped on 2 May", "A-1002": "waiting for payment"},
    "globex": {"G-7": "delivered"},
}
"""Orders by company: the first segment of the session's namespace."""


@tool
def order_status(order_id: str, context: ToolContext) -> str:
    """Look up the status of one of the caller's company's orders by its id."""
    # The runtime supplies the context, so the model cannot ask for another tenant's orders.
    company = context.namespace.segments[0]
    status = ORDERS.get(company, {}).get(order_id)
    if status is None:
        raise ToolError(f"{company} has no order {order_id!r}")
    return f"order {order_id}: {status}"


def app_tools(profile: AgentProfile) -> Sequence[Tool]:
    """The container's ``tool_factory``: which tools an agent gets (here, all agents alike)."""
    return [order_status]
