"""Per-namespace usage counters and budgets: the values, and the ledger over a backend.

Every model call adds its billed tokens, one model call, the tool calls it asked
for and, when the model's price is known, its cost, to the call's namespace
**and to every ancestor** (``acme:alice:support`` counts for ``acme:alice`` and
``acme``), in the UTC hour it happened. Counters only ever grow by atomic
increments, so many processes can share one ledger; totals for any window are a
sum of hour buckets.

A budget caps a namespace's tokens or cost per calendar hour, day or month (UTC).
Before a call, :meth:`UsageLedger.reserve` checks, **atomically** with every other
reservation on the same backend, that the window's usage plus the calls already
in flight plus this call's estimate fits every budget of the namespace and its
ancestors, and records the estimate as a reservation. After the call,
:meth:`UsageLedger.record` adds the billed usage and drops the reservation in the
same write. A reservation whose call never reported back (the process died, the
provider failed) stops counting when its TTL passes.

Costs are stored as integer nano-dollars so that increments stay exact integers
on every backend (Redis ``HINCRBY``, SQL ``x = x + ?``).
"""

from __future__ import annotations

import calendar
import hashlib
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from orra_di.errors import BudgetExceededError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.provider import Usage

__all__ = [
    "COUNTERS",
    "Budget",
    "BudgetCheck",
    "BudgetRefusal",
    "Budgets",
    "ModelPrice",
    "Reservation",
    "UsageBackend",
    "UsageLedger",
    "UsageTotals",
    "Window",
    "hour_of",
    "key_digest",
    "rollup_keys",
    "window_start",
]

Window = Literal["hour", "day", "month"]
WINDOWS: tuple[Window, ...] = ("hour", "day", "month")
NANOS_PER_USD = 1_000_000_000


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Counters summed over a namespace's subtree and a time window."""

    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    cost_nanousd: int = 0
    """Cost in billionths of a US dollar (exact integer sums on every backend)."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_usd(self) -> float:
        return self.cost_nanousd / NANOS_PER_USD

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(*(a + b for a, b in zip(self.values(), other.values(), strict=True)))

    def values(self) -> tuple[int, ...]:
        """The counters in :data:`COUNTERS` order (how backends store them)."""
        return (
            self.input_tokens,
            self.output_tokens,
            self.model_calls,
            self.tool_calls,
            self.cost_nanousd,
        )

    def as_dict(self) -> dict[str, int | float]:
        """The counters plus ``total_tokens`` and ``cost_usd`` (what ``--json`` prints)."""
        out: dict[str, int | float] = dict(zip(COUNTERS, self.values(), strict=True))
        out["total_tokens"] = self.total_tokens
        out["cost_usd"] = self.cost_usd
        return out


COUNTERS: tuple[str, ...] = tuple(f.name for f in fields(UsageTotals))
"""The stored counters, in the order backends keep them."""


class ModelPrice(BaseModel):
    """What a model costs, in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    """Dollars per million input tokens."""
    output_per_mtok: float = Field(ge=0)
    """Dollars per million output tokens."""

    def cost_nanousd(self, input_tokens: int, output_tokens: int) -> int:
        # $/Mtok x tokens = 1e-6 $ per token-price unit = 1e3 nano-dollars.
        return round(
            (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) * 1e3
        )


class Budget(BaseModel):
    """The limits of one namespace; each limit applies per calendar window (UTC).

    A namespace's budget covers its whole subtree: ``acme``'s limits count the
    usage of ``acme:alice``, ``acme:bob`` and their sessions.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens_per_hour: int | None = Field(None, ge=0)
    """Input + output tokens allowed per UTC hour."""
    tokens_per_day: int | None = Field(None, ge=0)
    """Input + output tokens allowed per UTC day."""
    tokens_per_month: int | None = Field(None, ge=0)
    """Input + output tokens allowed per UTC calendar month."""
    cost_per_hour: float | None = Field(None, ge=0)
    """US dollars allowed per UTC hour (needs the models' prices)."""
    cost_per_day: float | None = Field(None, ge=0)
    """US dollars allowed per UTC day (needs the models' prices)."""
    cost_per_month: float | None = Field(None, ge=0)
    """US dollars allowed per UTC calendar month (needs the models' prices)."""

    def limits(self) -> list[tuple[Window, int | None, int | None]]:
        """``(window, token limit, cost limit in nano-dollars)`` for each window with a limit."""
        out: list[tuple[Window, int | None, int | None]] = []
        for window in WINDOWS:
            tokens: int | None = getattr(self, f"tokens_per_{window}")
            cost: float | None = getattr(self, f"cost_per_{window}")
            if tokens is not None or cost is not None:
                nanos = None if cost is None else round(cost * NANOS_PER_USD)
                out.append((window, tokens, nanos))
        return out

    @property
    def has_cost_limit(self) -> bool:
        return any(cost is not None for _, _, cost in self.limits())


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One limit to check atomically: ``key``'s usage since ``since_hour`` (and in flight)."""

    key: str
    window: Window
    since_hour: int
    tokens: int | None
    cost_nanousd: int | None


@dataclass(frozen=True, slots=True)
class BudgetRefusal:
    """The first check that a reservation would break, with what it saw."""

    check: BudgetCheck
    used: UsageTotals
    reserved_tokens: int
    reserved_cost_nanousd: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """An admitted call's estimate, held against ``keys`` until recorded or expired."""

    id: str
    keys: tuple[str, ...]
    tokens: int
    cost_nanousd: int


class Budgets:
    """Budgets by namespace key; :meth:`checks_for` gives those that apply to a namespace."""

    def __init__(self, budgets: Mapping[str, Budget] | None = None) -> None:
        self._by_key = {Namespace.parse(k).key: b for k, b in (budgets or {}).items()}

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, namespace: NamespaceLike) -> Budget | None:
        return self._by_key.get(Namespace.coerce(namespace).key)

    def applying_to(self, namespace: NamespaceLike) -> list[tuple[str, Budget]]:
        """The namespace's own budget and its ancestors', root first."""
        keys = rollup_keys(Namespace.coerce(namespace))
        return [(k, self._by_key[k]) for k in reversed(keys) if k in self._by_key]

    def checks_for(self, namespace: NamespaceLike, now: float) -> list[BudgetCheck]:
        checks = []
        for key, budget in self.applying_to(namespace):
            for window, tokens, cost in budget.limits():
                since = hour_of(window_start(window, now).timestamp())
                checks.append(BudgetCheck(key, window, since, tokens, cost))
        return checks


class UsageBackend(Protocol):
    """Where a ledger keeps its counters; one per session-store backend.

    Every method is atomic with respect to every other caller of the same
    storage (other tasks, other processes).
    """

    async def add(
        self, keys: Sequence[str], hour: int, delta: UsageTotals, release: Reservation | None
    ) -> None:
        """Add ``delta`` to ``hour``'s bucket of every key; drop ``release`` in the same write."""

    async def totals(self, key: str, since_hour: int | None, until_hour: int | None) -> UsageTotals:
        """The sum of ``key``'s buckets with ``since_hour <= hour < until_hour`` (None: open)."""

    async def reserve(
        self, reservation: Reservation, checks: Sequence[BudgetCheck], now: float, expires: float
    ) -> BudgetRefusal | None:
        """Hold ``reservation`` on its keys if every check still fits, else say which does not.

        A check fits when the window's usage plus the unexpired reservations on
        its key plus this reservation stays within its limits.
        """

    async def release(self, reservation: Reservation) -> None:
        """Drop a reservation whose call will not be recorded."""


def hour_of(timestamp: float) -> int:
    """The UTC hour bucket (hours since the epoch) holding ``timestamp``."""
    return math.floor(timestamp / 3600)


def window_start(window: Window, now: float) -> datetime:
    """The start of the calendar window (UTC) holding ``now``."""
    at = datetime.fromtimestamp(now, UTC)
    if window == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if window == "day" else day.replace(day=1)


def window_end(window: Window, start: datetime) -> datetime:
    """When the window that began at ``start`` ends (the next one starts)."""
    if window == "hour":
        return start + timedelta(hours=1)
    if window == "day":
        return start + timedelta(days=1)
    days = calendar.monthrange(start.year, start.month)[1]
    return start + timedelta(days=days)


def rollup_keys(namespace: Namespace) -> list[str]:
    """The namespace's key and every ancestor's, most specific first."""
    return [namespace.key, *(a.key for a in namespace.ancestors())]


def key_digest(key: str) -> str:
    """SHA-256 of a namespace key: a fixed-size name for a key of up to 1,024 characters."""
    return hashlib.sha256(key.encode()).hexdigest()


class UsageLedger:
    """Usage per namespace, rolled up to ancestors, over one :class:`UsageBackend`.

    Build one for a session store with :func:`orra_di.usage.usage_ledger_for`;
    the container holds one as the ``usage_ledger`` Singleton.
    """

    def __init__(self, backend: UsageBackend, *, clock: Callable[[], float] | None = None) -> None:
        self.backend = backend
        self._clock = clock or time.time

    def __repr__(self) -> str:
        return f"UsageLedger({self.backend!r})"

    def now(self) -> float:
        return self._clock()

    async def record(
        self,
        namespace: NamespaceLike,
        usage: Usage | UsageTotals | None = None,
        *,
        model_calls: int = 0,
        tool_calls: int = 0,
        cost_nanousd: int = 0,
        at: float | None = None,
        reservation: Reservation | None = None,
    ) -> None:
        """Add to ``namespace`` and its ancestors, and drop ``reservation`` in the same write."""
        ns = Namespace.coerce(namespace)
        if isinstance(usage, UsageTotals):
            delta = usage
        else:
            usage = usage or Usage()
            delta = UsageTotals(
                usage.input_tokens, usage.output_tokens, model_calls, tool_calls, cost_nanousd
            )
        if any(v < 0 for v in delta.values()):
            raise ValueError(f"usage counters only grow; got {delta}")
        hour = hour_of(self.now() if at is None else at)
        await self.backend.add(rollup_keys(ns), hour, delta, reservation)

    async def totals(
        self,
        namespace: NamespaceLike,
        *,
        since: datetime | timedelta | None = None,
        until: datetime | None = None,
    ) -> UsageTotals:
        """What ``namespace`` and its subtree used since ``since`` (a time, or how long ago).

        Buckets are UTC hours: ``since`` counts from the start of its hour,
        ``until`` stops before the hour holding it. ``since=None`` is all time.
        """
        key = Namespace.coerce(namespace).key
        return await self.backend.totals(key, self._hour(since), self._hour(until))

    async def reserve(
        self,
        namespace: NamespaceLike,
        budgets: Budgets,
        *,
        tokens: int,
        cost_nanousd: int = 0,
        ttl: float = 600.0,
    ) -> Reservation | None:
        """Hold ``tokens`` (and cost) against every budget over ``namespace``, or raise.

        Returns ``None`` when no budget applies. Raises :class:`BudgetExceededError`
        naming the first budget the call would break.
        """
        ns = Namespace.coerce(namespace)
        now = self.now()
        checks = budgets.checks_for(ns, now)
        if not checks:
            return None
        keys = tuple(dict.fromkeys(c.key for c in checks))
        reservation = Reservation(secrets.token_hex(12), keys, tokens, cost_nanousd)
        refusal = await self.backend.reserve(reservation, checks, now, now + ttl)
        if refusal is not None:
            raise _exceeded(ns, refusal, reservation)
        return reservation

    async def release(self, reservation: Reservation) -> None:
        await self.backend.release(reservation)

    def _hour(self, when: datetime | timedelta | None) -> int | None:
        if when is None:
            return None
        if isinstance(when, timedelta):
            return hour_of(self.now() - when.total_seconds())
        if when.tzinfo is None:
            raise ValueError(f"give an aware datetime (UTC), got naive {when.isoformat()}")
        return hour_of(when.timestamp())


def _exceeded(
    ns: Namespace, refusal: BudgetRefusal, reservation: Reservation
) -> BudgetExceededError:
    check = refusal.check
    start = datetime.fromtimestamp(check.since_hour * 3600, UTC)
    resets = window_end(check.window, start)
    if check.tokens is not None and (
        refusal.used.total_tokens + refusal.reserved_tokens + reservation.tokens > check.tokens
    ):
        budget = f"{check.tokens:,} tokens per {check.window}"
        used = f"{refusal.used.total_tokens:,} tokens used"
        pending, needs = f"{refusal.reserved_tokens:,}", f"{reservation.tokens:,} tokens"
    else:
        limit = (check.cost_nanousd or 0) / NANOS_PER_USD
        budget = f"${limit:,.4f} per {check.window}"
        used = f"${refusal.used.cost_usd:,.4f} used"
        pending = f"${refusal.reserved_cost_nanousd / NANOS_PER_USD:,.4f}"
        needs = f"${reservation.cost_nanousd / NANOS_PER_USD:,.4f}"
    return BudgetExceededError(
        namespace=ns.key,
        budget_namespace=check.key,
        window=check.window,
        message=(
            f"budget exceeded for namespace {ns.key!r}: {check.key!r} allows {budget} and has "
            f"{used} this {check.window} (since {start:%Y-%m-%d %H:%M} UTC) with {pending} "
            f"reserved by calls in flight; this call needs about {needs}. Nothing was sent to "
            f"the model. The window resets at {resets:%Y-%m-%d %H:%M} UTC, or raise the budget."
        ),
    )


def fits(check: BudgetCheck, used: UsageTotals, tokens: int, cost: int) -> bool:
    """Whether ``tokens``/``cost`` (in flight plus this call) fit ``check`` after ``used``."""
    if check.tokens is not None and used.total_tokens + tokens > check.tokens:
        return False
    return check.cost_nanousd is None or used.cost_nanousd + cost <= check.cost_nanousd


def sum_totals(rows: Iterable[Sequence[int]]) -> UsageTotals:
    total = [0] * len(COUNTERS)
    for row in rows:
        for i, value in enumerate(row):
            total[i] += int(value or 0)
    return UsageTotals(*total)
