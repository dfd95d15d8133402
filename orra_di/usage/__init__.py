"""Usage per namespace, rolled up to ancestors, and budgets checked before each model call.

See ``docs/usage-and-budgets.md``. :class:`UsageLedger` counts; :class:`UsageHook`
records each call and refuses one a budget cannot afford
(:class:`~orra_di.errors.BudgetExceededError`); :func:`usage_ledger_for` builds
the ledger that lives beside a session store.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.usage.hook import UsageHook
    from orra_di.usage.ledger import (
        Budget,
        Budgets,
        ModelPrice,
        Reservation,
        UsageBackend,
        UsageLedger,
        UsageTotals,
    )
    from orra_di.usage.stores import usage_backend_for, usage_ledger_for

_ORIGIN = {
    "UsageHook": "orra_di.usage.hook",
    "Budget": "orra_di.usage.ledger",
    "Budgets": "orra_di.usage.ledger",
    "ModelPrice": "orra_di.usage.ledger",
    "Reservation": "orra_di.usage.ledger",
    "UsageBackend": "orra_di.usage.ledger",
    "UsageLedger": "orra_di.usage.ledger",
    "UsageTotals": "orra_di.usage.ledger",
    "usage_backend_for": "orra_di.usage.stores",
    "usage_ledger_for": "orra_di.usage.stores",
}


def __getattr__(name: str) -> Any:
    """Imported on first use, so ``orra-di --help`` (which registers the usage verb) stays fast."""
    import importlib

    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module 'orra_di.usage' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Budget",
    "Budgets",
    "ModelPrice",
    "Reservation",
    "UsageBackend",
    "UsageHook",
    "UsageLedger",
    "UsageTotals",
    "usage_backend_for",
    "usage_ledger_for",
]
