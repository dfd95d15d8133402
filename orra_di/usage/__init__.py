"""Usage per namespace, rolled up to ancestors, and budgets checked before each model call.

See ``docs/usage-and-budgets.md``. :class:`UsageLedger` counts; :class:`UsageHook`
records each call and refuses one a budget cannot afford
(:class:`~orra_di.errors.BudgetExceededError`); :func:`usage_ledger_for` builds
the ledger that lives beside a session store.
"""

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
