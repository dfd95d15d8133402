"""ApprovalHook: a person approves a tool call before it runs, and anything else denies it.

orra's approval hook failed open (spec §5.2/12): a closed UI channel, a dropped
responder or a missing configuration auto-approved, and a run could wait
forever. Here every path that is not an explicit, matching approval denies:

- no answer within ``timeout`` seconds (finite; 300 by default);
- the approver raises, is closed, or drops the request;
- the answer is for another request (another call, or the same tool with
  other arguments): a :class:`~orra_di.approvals.model.Decision` carries the
  request id and the arguments' hash, and the stored record must match
  ``(namespace, call id, tool, arguments hash)`` of the call being released;
- the approval store fails.

The call is then refused with :class:`~orra_di.hook.ToolCallDenied`: the model
reads why in the error result, and the tool never runs.

Every request is persisted in an :class:`~orra_di.approvals.stores.ApprovalStore`
before anyone is asked, so it can be listed and answered from another process
(``orra-di approvals approve ID``), and the decision stays as the audit trail.
An in-process approver and the store race: the first answer wins, atomically.

Auto-approve ("chaos mode" in orra) is per session: ``run.state(AUTO_APPROVE_KEY)``
read on every call, never a field of the hook (spec §5.2/11).
"""

from __future__ import annotations

import logging
import math
import weakref
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from orra_di.approvals.model import SYSTEM, ApprovalRecord, Decision
from orra_di.approvals.stores import ApprovalStore, MemoryApprovalStore
from orra_di.errors import ApprovalError, ConfigurationError
from orra_di.hook import Hook, ToolCallDenied
from orra_di.message import ToolCall
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.run_context import STATE_KEY, maybe_current_run
from orra_di.store import SessionStore
from orra_di.tool import FunctionTool, tool

__all__ = [
    "AUTO_APPROVER",
    "AUTO_APPROVE_KEY",
    "AUTO_APPROVE_TOOL",
    "DEFAULT_TIMEOUT",
    "ApprovalHook",
    "Approver",
    "InProcessApprover",
    "PendingApproval",
    "StoreApprover",
    "auto_approve_tool",
    "set_auto_approve",
    "set_session_auto_approve",
]

log = logging.getLogger("orra_di.approvals")

DEFAULT_TIMEOUT = 300.0
AUTO_APPROVE_KEY = "approval.auto_approve"
"""The per-session state key (``run.state``) that switches auto-approve on."""
AUTO_APPROVE_TOOL = "set_auto_approve"
"""The name of :func:`auto_approve_tool`; switching auto-approve *on* always needs approval."""
AUTO_APPROVER = "auto-approve"
"""Who the audit trail says approved a call in a session with auto-approve on."""


@runtime_checkable
class Approver(Protocol):
    """Who is asked: returns a decision for the request, bound to it.

    Anything else — raising, never answering, answering another request —
    denies the call.
    """

    async def decide(self, request: ApprovalRecord) -> Decision: ...


# -- approvers ---------------------------------------------------------------------------


class PendingApproval:
    """A request handed to the application by :class:`InProcessApprover`.

    Call :meth:`approve` or :meth:`deny` once. Dropping it unanswered (letting
    it be garbage-collected) denies the call at once rather than leaving the
    run to its timeout.
    """

    def __init__(self, request: ApprovalRecord, slot: _Slot) -> None:
        self.request = request
        self._slot = slot
        weakref.finalize(self, slot.dropped)

    def approve(self, *, by: str, reason: str | None = None) -> None:
        self.respond(Decision.approve(self.request, by=by, reason=reason))

    def deny(self, *, by: str, reason: str | None = None) -> None:
        self.respond(Decision.deny(self.request, by=by, reason=reason))

    def respond(self, decision: Decision) -> None:
        """Answer with a decision built elsewhere (it must be for this request)."""
        self._slot.answer(decision)

    def __repr__(self) -> str:
        return f"PendingApproval({self.request.id}, {self.request.describe()})"


class _Slot:
    def __init__(self) -> None:
        self.event = anyio.Event()
        self.decision: Decision | None = None
        self.failure: str | None = None
        self.closed: str | None = None

    def answer(self, decision: Decision) -> None:
        if self.closed is not None:
            raise ApprovalError(f"too late: {self.closed}; the call was not released")
        if self.event.is_set():
            raise ApprovalError("this approval request was answered already")
        self.decision = decision
        self.event.set()

    def dropped(self) -> None:
        if not self.event.is_set():
            self.failure = "the approver dropped the request without answering"
            self.event.set()


class InProcessApprover:
    """Requests go to the application over an anyio memory stream.

    ``async for pending in approver.requests: pending.approve(by="alice")``.
    Closing either end (``aclose()``, or the application closing ``requests``)
    denies every call asked afterwards.
    """

    def __init__(self, max_buffer: int = 32) -> None:
        send, receive = anyio.create_memory_object_stream[PendingApproval](max_buffer)
        self._send: ObjectSendStream[PendingApproval] = send
        self.requests: ObjectReceiveStream[PendingApproval] = receive

    async def decide(self, request: ApprovalRecord) -> Decision:
        slot = _Slot()
        try:
            await self._send.send(PendingApproval(request, slot))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            raise ApprovalError("the approver is closed: nobody is there to answer") from None
        try:
            await slot.event.wait()
        finally:
            if not slot.event.is_set():
                slot.closed = "the run stopped waiting (no answer in time, or it was cancelled)"
        if slot.decision is None:
            raise ApprovalError(slot.failure or "no decision")
        return slot.decision

    async def aclose(self) -> None:
        """Stop asking: calls asked from now on are denied."""
        await self._send.aclose()
        await self.requests.aclose()

    async def __aenter__(self) -> InProcessApprover:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class StoreApprover:
    """The answer comes from the approval store: ``store.approve(id, by=...)`` from anywhere.

    The default of :class:`ApprovalHook` when it is given no approver.
    """

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store

    async def decide(self, request: ApprovalRecord) -> Decision:
        return Decision.of(await self.store.wait(request.id))

    async def approve(
        self, request_id: str, *, by: str, reason: str | None = None
    ) -> ApprovalRecord:
        return await self.store.approve(request_id, by=by, reason=reason)

    async def deny(self, request_id: str, *, by: str, reason: str | None = None) -> ApprovalRecord:
        return await self.store.deny(request_id, by=by, reason=reason)


# -- the hook ------------------------------------------------------------------------------

ToolSelector = Iterable[str] | Callable[[ToolCall], bool]


class ApprovalHook(Hook):
    """Asks before the calls ``tools`` selects; denies unless explicitly approved.

    ``tools``: tool names (``"*"`` for every tool) or a predicate on the call.
    ``approver``: who is asked; without one, the store's answer is awaited
    (:class:`StoreApprover`). ``store``: where requests and decisions are kept
    (default: in memory). Register it last, so that it approves the call as
    the other hooks left it.
    """

    def __init__(
        self,
        approver: Approver | None = None,
        *,
        store: ApprovalStore | None = None,
        tools: ToolSelector = ("*",),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not (isinstance(timeout, int | float) and timeout > 0 and math.isfinite(timeout)):
            raise ConfigurationError(
                f"the approval timeout must be a finite number of seconds above 0, got {timeout!r}"
            )
        self.store = store if store is not None else MemoryApprovalStore()
        self.approver: Approver = approver if approver is not None else StoreApprover(self.store)
        self.timeout = float(timeout)
        if callable(tools):
            self._selects: Callable[[ToolCall], bool] = tools
        else:
            names = frozenset(tools)
            if isinstance(tools, str):
                raise ConfigurationError(f"tools must be a list of names, not the string {tools!r}")
            self._selects = (
                (lambda call: True) if "*" in names else (lambda call: call.name in names)
            )

    def needs_approval(self, call: ToolCall) -> bool:
        if call.name == AUTO_APPROVE_TOOL and call.arguments.get("on") is not False:
            return True  # the model must not switch approvals off by itself
        return bool(self._selects(call))

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if not self.needs_approval(call):
            return None
        run = maybe_current_run()
        try:
            request = ApprovalRecord.for_call(
                namespace,
                call,
                timeout=self.timeout,
                agent=run.agent if run else None,
                run_id=run.run_id if run else None,
            )
            if run is not None and run.state(AUTO_APPROVE_KEY) is True:
                auto = request.decide(
                    approved=True, by=AUTO_APPROVER, reason="auto-approve is on for this session"
                )
                await self.store.add(auto)
                return None
            final = await self._ask(request)
        except ToolCallDenied:
            raise
        except Exception as exc:  # fail closed: whatever went wrong, the tool does not run
            log.warning("approval of %s failed: %s: %s", call.name, type(exc).__name__, exc)
            raise ToolCallDenied(
                f"Tool call '{call.name}' was denied: the approval could not be obtained "
                f"({type(exc).__name__}: {exc}); it did not run."
            ) from None
        if final.approved and final.id == request.id and final.binds(namespace, call):
            return None
        raise ToolCallDenied(_denial(call.name, final))

    async def _ask(self, request: ApprovalRecord) -> ApprovalRecord:
        """Persist ``request``, wait for the first answer, record and return the outcome."""
        await self.store.add(request)
        approved, by = False, SYSTEM
        reason: str | None = f"no answer within {self.timeout:g}s"
        try:
            with anyio.move_on_after(self.timeout):
                decision = await self._first_answer(request)
                if decision.answers(request):
                    approved, by, reason = decision.approved, decision.by, decision.reason
                else:
                    reason = "the answer given was for another call"
        except Exception as exc:
            reason = f"the approver failed ({type(exc).__name__}: {exc})"
        except BaseException:  # the run is cancelled: the request will never be answered
            with anyio.CancelScope(shield=True):
                try:
                    await self.store.deny(request.id, by=SYSTEM, reason="the run was cancelled")
                except Exception:
                    log.exception("could not record the cancelled approval %s", request.id)
            raise
        # The first decision stored wins: an answer given elsewhere just before our
        # timeout is what happened, and what the audit trail says.
        try:
            return await self.store.decide(request.id, approved=approved, by=by, reason=reason)
        except ApprovalError:
            if await self.store.get(request.id) is not None:
                raise
            # Erased while the run waited (a namespace erasure): the model reads this, so
            # it says what happened rather than which CLI command lists requests.
            raise ToolCallDenied(
                f"Tool call '{request.tool}' was denied: its approval request was erased "
                "before anyone decided it; it did not run."
            ) from None

    async def _first_answer(self, request: ApprovalRecord) -> Decision:
        if isinstance(self.approver, StoreApprover) and self.approver.store is self.store:
            return await self.approver.decide(request)
        outcome: list[Decision | Exception] = []
        async with anyio.create_task_group() as tg:

            async def from_approver() -> None:
                try:
                    outcome.append(await self.approver.decide(request))
                except Exception as exc:
                    outcome.append(exc)
                tg.cancel_scope.cancel()

            async def from_store() -> None:
                try:
                    outcome.append(Decision.of(await self.store.wait(request.id)))
                except Exception as exc:
                    outcome.append(exc)
                tg.cancel_scope.cancel()

            tg.start_soon(from_approver)
            tg.start_soon(from_store)
        result = outcome[0]
        if isinstance(result, Exception):
            raise result
        return result


def _denial(tool_name: str, record: ApprovalRecord) -> str:
    if record.decided_by == SYSTEM or record.decided_by is None:
        why = record.reason or "not approved"
        return f"Tool call '{tool_name}' was denied: {why}; it did not run."
    because = f": {record.reason}" if record.reason else "."
    return f"Tool call '{tool_name}' was denied by {record.decided_by}{because}"


# -- auto-approve, per session ---------------------------------------------------------------


def set_auto_approve(on: bool) -> None:
    """Switch auto-approve for the session of the current run (from a hook or a tool)."""
    from orra_di.run_context import current_run

    current_run().set_state(AUTO_APPROVE_KEY, True if on else None)


async def set_session_auto_approve(
    store: SessionStore, namespace: NamespaceLike, on: bool, *, busy_timeout: float | None = 30.0
) -> None:
    """Switch auto-approve for a session from outside a run (the application, a CLI).

    Written through the session store under the session's single-writer lock,
    so it waits for a run in progress (up to ``busy_timeout`` seconds, then
    ``SessionBusyError``) and is seen by the next run in every process.
    """
    ns = Namespace.coerce(namespace)
    async with store.lock(ns, timeout=busy_timeout):
        session = await store.load(ns)
        metadata = dict(session.metadata) if session is not None else {}
        state = metadata.get(STATE_KEY)
        state = dict(state) if isinstance(state, dict) else {}
        if on:
            state[AUTO_APPROVE_KEY] = True
        else:
            state.pop(AUTO_APPROVE_KEY, None)
        metadata[STATE_KEY] = state
        await store.append(ns, [], metadata=metadata)


def auto_approve_tool() -> FunctionTool:
    """A tool that lets the model switch auto-approve for its session.

    Switching it on is itself a call the :class:`ApprovalHook` always asks about,
    whatever its ``tools``; switching it off needs no approval.
    """

    @tool(name=AUTO_APPROVE_TOOL)
    def set_auto_approve_tool(on: bool) -> str:
        """Switch auto-approval of tool calls on or off for this conversation."""
        set_auto_approve(on)
        return f"auto-approve is {'on' if on else 'off'} for this session"

    return set_auto_approve_tool
