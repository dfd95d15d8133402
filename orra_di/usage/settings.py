"""The ``usage`` settings section: whether usage is recorded and how calls are reserved.

The budgets and prices themselves are the top-level tables ``budgets`` and
``prices`` of :class:`~orra_di.settings.OrraSettings` (``ORRA_BUDGETS``,
``ORRA_PRICES``), keyed like ``policies``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["UsageSettings"]


class UsageSettings(BaseModel):
    """Usage counted per namespace and its ancestors, in the session store."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Record every model call's usage in the store (always on while any budget is set)."""
    output_allowance: int = Field(1024, ge=0)
    """Answer tokens reserved for a call that sets no ``max_tokens``, when a budget applies."""
    reservation_ttl: float = Field(600.0, gt=0, allow_inf_nan=False)
    """Seconds a call's reservation counts against budgets if the call never reports back."""
