"""The hook that counts every model call and refuses the ones a budget cannot afford.

``before_provider_call`` estimates the request (the context window's estimate of
its messages and tools, corrected by the per-model calibration the runtime
learns, plus ``max_tokens`` or an output allowance for the answer) and reserves
it against every budget over the run's namespace: if one would be exceeded, it
raises :class:`~orra_di.errors.BudgetExceededError` and the runtime sends
nothing. ``after_provider_call`` records what the provider billed (tokens, one
model call, the tool calls asked for, the cost at the model's price) to the
namespace and its ancestors, dropping the reservation in the same write.

The reservation between the two points is per call, not per session: it is
kept in a context variable of the run's task (hooks are awaited in that task),
never on the hook. A call that fails leaves its reservation to expire after
``reservation_ttl`` seconds; the next call of the same task drops it at once.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from orra_di.context import CharEstimator, ContextWindow
from orra_di.errors import ConfigurationError
from orra_di.hook import Hook
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.run_context import maybe_current_run
from orra_di.usage.ledger import Budgets, ModelPrice, Reservation, UsageLedger

__all__ = ["UsageHook"]

log = logging.getLogger("orra_di.usage")


@dataclass(frozen=True, slots=True)
class _InFlight:
    model: str
    reservation: Reservation | None


_in_flight: contextvars.ContextVar[_InFlight | None] = contextvars.ContextVar(
    "orra_di_usage_in_flight", default=None
)


class UsageHook(Hook):
    """Records usage per namespace in ``ledger`` and enforces ``budgets`` before each call.

    ``prices`` maps model names to :class:`ModelPrice` (cost is recorded only
    for priced models; a cost budget over an unpriced model is a
    :class:`ConfigurationError`). ``default_model`` names the model of a
    request that names none (the provider's default). ``window`` estimates
    requests; share the runtime's so the calibration it learns applies.
    """

    def __init__(
        self,
        ledger: UsageLedger,
        *,
        budgets: Budgets | None = None,
        prices: Mapping[str, ModelPrice] | None = None,
        default_model: str | None = None,
        window: ContextWindow | None = None,
        output_allowance: int = 1024,
        reservation_ttl: float = 600.0,
        free: bool = False,
    ) -> None:
        """``free``: the provider's calls cost nothing (the offline and test models), so
        a cost budget has nothing to price and only token budgets apply."""
        self.ledger = ledger
        self.free = free
        self.budgets = budgets or Budgets()
        self.prices = dict(prices or {})
        self.default_model = default_model or ""
        self.window = window or ContextWindow(CharEstimator())
        self.output_allowance = output_allowance
        self.reservation_ttl = reservation_ttl

    def __repr__(self) -> str:
        return f"UsageHook({self.ledger!r}, budgets={len(self.budgets)})"

    def estimate(self, request: CompletionRequest) -> tuple[int, int]:
        """Input and output tokens the call may use.

        Input: the window's estimate of the messages and tools, times the
        calibration the runtime learned for the model (the key it uses).
        Output: ``max_tokens``, else ``output_allowance``.
        """
        window = self.window
        tokens = window.estimate_total_tokens(request.messages) + window.estimate_tools_tokens(
            request.tools
        )
        answer = request.max_tokens or self.output_allowance
        return math.ceil(tokens * window.scale(request.model or "")), answer

    async def before_provider_call(self, request: CompletionRequest) -> None:
        run = maybe_current_run()
        if run is None:
            return
        stale = _in_flight.get()
        if stale is not None and stale.reservation is not None:
            _in_flight.set(None)
            await self.ledger.release(stale.reservation)  # the previous call never reported
        model = request.model or self.default_model
        reservation = None
        applying = self.budgets.applying_to(run.namespace)
        if applying:
            prompt, answer = self.estimate(request)
            price = self.prices.get(model)
            cost = 0
            if price is not None:
                cost = price.cost_nanousd(prompt, answer)
            elif not self.free and any(budget.has_cost_limit for _, budget in applying):
                key = next(k for k, b in applying if b.has_cost_limit)
                if not model:  # no price can name it: the price table is keyed by model
                    raise ConfigurationError(
                        f"namespace {key!r} has a cost budget but the model in use has no "
                        "name to price: set ORRA_LLM__MODEL (or the agent's model) and give "
                        "that model a price in ORRA_PRICES, e.g. "
                        '\'{"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}}\''
                    )
                raise ConfigurationError(
                    f"namespace {key!r} has a cost budget but model {model!r} "
                    "has no price: add it to ORRA_PRICES, e.g. "
                    "'{\"" + model + '": {"input_per_mtok": 2.5, '
                    '"output_per_mtok": 10}}\''
                )
            reservation = await self.ledger.reserve(
                run.namespace,
                self.budgets,
                tokens=prompt + answer,
                cost_nanousd=cost,
                ttl=self.reservation_ttl,
            )
        _in_flight.set(_InFlight(model, reservation))

    async def after_provider_call(self, response: CompletionResponse) -> None:
        run = maybe_current_run()
        if run is None:
            return
        flight = _in_flight.get()
        _in_flight.set(None)
        model = flight.model if flight else self.default_model
        usage = response.usage
        price = self.prices.get(model)
        cost = price.cost_nanousd(usage.input_tokens, usage.output_tokens) if price else 0
        try:
            await self.ledger.record(
                run.namespace,
                usage,
                model_calls=1,
                tool_calls=len(response.message.tool_calls),
                cost_nanousd=cost,
                reservation=flight.reservation if flight else None,
            )
        except Exception:
            # The answer is paid for: losing it would be worse than an uncounted call.
            # The reservation stays until it expires, so budgets still see the call.
            log.exception("could not record the usage of a call in %s", run.namespace.key)
