"""ApprovalHook through the real Runtime: the tool runs only on an explicit, matching approval.

orra's tests (spec §3, hooks::approval) are ported as behaviour; where orra failed
open (bug 12: a closed channel or dropped responder auto-approved, no timeout),
the test asserts the opposite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from orra_di import InMemoryStore, Namespace, Runtime, ToolCall, ToolResult, tool
from orra_di.approvals import (
    AUTO_APPROVE_TOOL,
    AUTO_APPROVER,
    SYSTEM,
    ApprovalHook,
    ApprovalRecord,
    ApprovalStatus,
    ApprovalStore,
    Decision,
    InProcessApprover,
    PendingApproval,
    approval_store_for,
    auto_approve_tool,
    set_session_auto_approve,
)
from orra_di.errors import ApprovalError, ConfigurationError, StoreError
from orra_di.run_context import STATE_KEY
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

BOUND = 30  # seconds: keeps a broken hook from hanging the suite; never asserted on
ALICE = Namespace("acme", "alice")


class Ran:
    """What the tools really did."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []


@pytest.fixture
def ran() -> Ran:
    return Ran()


@pytest.fixture
def sessions() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def approvals(sessions: InMemoryStore) -> ApprovalStore:
    return approval_store_for(sessions)


@pytest.fixture
async def approver() -> AsyncIterator[InProcessApprover]:
    async with InProcessApprover() as approver:
        yield approver


class Nobody:
    """An approver that is never reached (for configuration errors)."""

    async def decide(self, request: ApprovalRecord) -> Decision:
        raise AssertionError("not asked")


def agent(
    sessions: InMemoryStore,
    hook: ApprovalHook,
    ran: Ran,
    *calls: ToolCall,
) -> Runtime:
    """A runtime whose model makes ``calls`` (one turn), then answers "done"."""

    @tool(name="exec")
    def exec_(cmd: str) -> str:
        """Run a shell command."""
        ran.calls.append(("exec", {"cmd": cmd}))
        return f"ran {cmd}"

    @tool
    def read_file(path: str) -> str:
        """Read a file."""
        ran.calls.append(("read_file", {"path": path}))
        return "contents"

    def script(request: Any) -> Any:
        if request.messages[-1].tool_results:
            return reply("done")
        return tool_calls(*calls)

    return Runtime(
        ScriptedProvider(script),
        sessions,
        tools=[exec_, read_file, auto_approve_tool()],
        hooks=[hook],
    )


async def run_answering(
    runtime: Runtime,
    approver: InProcessApprover,
    answer: Callable[[PendingApproval], Any],
    namespace: Namespace = ALICE,
) -> tuple[tuple[ToolResult, ...], list[PendingApproval]]:
    """Run one message while ``answer`` handles every request the approver gets."""
    asked: list[PendingApproval] = []
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                async for pending in approver.requests:
                    asked.append(pending)
                    answer(pending)

            tg.start_soon(serve)
            result = await runtime.run(namespace, "go")
            tg.cancel_scope.cancel()
    return result.turns[0].tool_results, asked


# -- orra's tests, as behaviour --------------------------------------------------------------


async def test_approval_approved(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals)
    runtime = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}, id="c1"))
    results, asked = await run_answering(runtime, approver, lambda p: p.approve(by="alice"))
    assert [(p.request.tool, p.request.call_id) for p in asked] == [("exec", "c1")]
    assert (
        asked[0].request.arguments == {"cmd": "ls"} and asked[0].request.namespace == "acme:alice"
    )
    assert [(r.content, r.is_error) for r in results] == [("ran ls", False)]
    assert ran.calls == [("exec", {"cmd": "ls"})]


async def test_approval_denied(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals)
    runtime = agent(sessions, hook, ran, call("exec", {"cmd": "rm -rf /"}, id="c1"))
    results, _ = await run_answering(
        runtime, approver, lambda p: p.deny(by="alice", reason="too risky")
    )
    assert results[0].is_error
    assert results[0].content == "Tool call 'exec' was denied by alice: too risky"
    assert ran.calls == []


async def test_a_closed_approver_denies(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    """orra: closed_channel_auto_approves. Failing open was bug 12: now it denies."""
    await approver.aclose()
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    result = await runtime.run(ALICE, "go")
    denial = result.turns[0].tool_results[0]
    assert denial.is_error and "denied" in denial.content and "approver is closed" in denial.content
    assert ran.calls == []
    (record,) = await approvals.history()
    assert (record.status, record.decided_by) == (ApprovalStatus.DENIED, SYSTEM)


async def test_an_approver_whose_listener_went_away_denies(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    approver.requests.close()  # the application stopped listening
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    result = await runtime.run(ALICE, "go")
    assert "denied" in result.turns[0].tool_results[0].content
    assert ran.calls == []


async def test_a_dropped_request_denies_at_once(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    """orra auto-approved when the responder was dropped; here the timeout is not even needed."""
    hook = ApprovalHook(approver, store=approvals, timeout=3600)
    runtime = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}))

    async def drop() -> None:
        await approver.requests.receive()  # and let it go, unanswered

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(drop)
            result = await runtime.run(ALICE, "go")
    assert "dropped the request" in result.turns[0].tool_results[0].content
    assert ran.calls == []


async def test_chaos_mode_auto_approves(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    await set_session_auto_approve(sessions, ALICE, True)
    result = await runtime.run(ALICE, "go")
    assert result.turns[0].tool_results[0].content == "ran ls"
    (record,) = await approvals.history()
    assert (record.status, record.decided_by) == (ApprovalStatus.APPROVED, AUTO_APPROVER)
    assert record.arguments == {"cmd": "ls"} and record.namespace == ALICE.key


async def test_chaos_mode_reads_from_session(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    """Off, on, off as the session's state changes; another session never inherits it (bug 11)."""
    hook = ApprovalHook(approver, store=approvals)
    runtime = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}))
    bob = Namespace("acme", "bob")

    async def outcome(namespace: Namespace) -> tuple[str, int]:
        results, asked = await run_answering(
            runtime, approver, lambda p: p.deny(by="ops"), namespace
        )
        return ("ran" if not results[0].is_error else "denied"), len(asked)

    assert await outcome(ALICE) == ("denied", 1)
    await set_session_auto_approve(sessions, ALICE, True)
    assert await outcome(ALICE) == ("ran", 0)
    assert await outcome(bob) == ("denied", 1)  # alice's switch is alice's only
    assert await outcome(ALICE) == ("ran", 0)
    await set_session_auto_approve(sessions, ALICE, False)
    assert await outcome(ALICE) == ("denied", 1)
    stored = await sessions.load(ALICE)
    assert stored is not None and stored.metadata[STATE_KEY] == {}


async def test_a_discord_namespace_is_asked_like_any_other(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    """orra: non_discord_namespace_uses_ui_channel, and its discord root auto-approved
    without a Discord config (bug 12); here every namespace goes to the approver."""
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    for namespace in (
        Namespace("discord", "g", "c", "u"),
        Namespace("discord"),
        Namespace("web", "x"),
    ):
        results, asked = await run_answering(
            runtime, approver, lambda p: p.deny(by="ops"), namespace
        )
        assert len(asked) == 1 and results[0].is_error
    assert ran.calls == []


# -- failing closed --------------------------------------------------------------------------


async def test_no_answer_in_time_denies(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals, timeout=0.05)
    runtime = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}))
    kept: list[PendingApproval] = []
    results, _ = await run_answering(runtime, approver, kept.append)  # kept, never answered
    assert (
        results[0].content == "Tool call 'exec' was denied: no answer within 0.05s; it did not run."
    )
    assert ran.calls == []
    with pytest.raises(ApprovalError, match="too late: the run stopped waiting"):
        kept[0].approve(by="late")
    (record,) = await approvals.history()
    assert (record.status, record.decided_by) == (ApprovalStatus.DENIED, SYSTEM)


async def test_an_approver_that_raises_denies(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    class Broken:
        async def decide(self, request: ApprovalRecord) -> Decision:
            raise RuntimeError("the approval service is down")

    runtime = agent(
        sessions, ApprovalHook(Broken(), store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    result = await runtime.run(ALICE, "go")
    content = result.turns[0].tool_results[0].content
    assert "denied" in content and "RuntimeError: the approval service is down" in content
    assert ran.calls == []
    (record,) = await approvals.history()
    assert record.status is ApprovalStatus.DENIED and "approver failed" in (record.reason or "")


async def test_a_request_erased_while_waiting_is_denied_in_words_for_the_model(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran
) -> None:
    """A namespace erasure while the run waits removes the request: the tool does not run,
    and the model reads what happened, not which CLI command lists requests."""

    class ErasedMeanwhile:
        async def decide(self, request: ApprovalRecord) -> Decision:
            await approvals.delete_tree(request.namespace)
            return Decision.approve(request, by="alice")

    runtime = agent(
        sessions, ApprovalHook(ErasedMeanwhile(), store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    result = await runtime.run(ALICE, "go")
    content = result.turns[0].tool_results[0].content
    assert content == (
        "Tool call 'exec' was denied: its approval request was erased before anyone "
        "decided it; it did not run."
    )
    assert "orra-di" not in content
    assert ran.calls == []


async def test_a_failing_approval_store_denies(
    sessions: InMemoryStore, ran: Ran, approver: InProcessApprover
) -> None:
    class Unreachable(type(approval_store_for(InMemoryStore()))):  # type: ignore[misc]
        async def _insert(self, record: ApprovalRecord) -> None:
            raise StoreError("record approval request failed: connection refused")

    runtime = agent(
        sessions, ApprovalHook(approver, store=Unreachable()), ran, call("exec", {"cmd": "ls"})
    )
    result = await runtime.run(ALICE, "go")
    content = result.turns[0].tool_results[0].content
    assert "denied" in content and "connection refused" in content and ran.calls == []


async def test_a_cancelled_run_leaves_no_pending_request(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(runtime.run, ALICE, "go")
            pending = await approver.requests.receive()
            tg.cancel_scope.cancel()
    assert await approvals.pending() == []
    (record,) = await approvals.history()
    assert record.id == pending.request.id and record.reason == "the run was cancelled"
    assert ran.calls == []


# -- a decision releases its own call only ------------------------------------------------


async def test_an_answer_for_call_a_does_not_release_call_b(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals)
    runtime = agent(
        sessions,
        hook,
        ran,
        call("exec", {"cmd": "ls"}, id="a"),
        call("exec", {"cmd": "rm -rf /"}, id="b"),
    )
    asked: dict[str, PendingApproval] = {}
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: _collect(approver, asked, 2))
            result = await runtime.run(ALICE, "go")
    # (answered inside _collect: B got A's approval replayed)
    a, b = result.turns[0].tool_results
    assert (a.content, a.is_error) == ("ran ls", False)
    assert b.is_error and "answer given was for another call" in b.content
    assert ran.calls == [("exec", {"cmd": "ls"})]


async def _collect(
    approver: InProcessApprover, asked: dict[str, PendingApproval], count: int
) -> None:
    async for pending in approver.requests:
        asked[pending.request.call_id] = pending
        if len(asked) == count:
            break
    for_a = Decision.approve(asked["a"].request, by="alice")
    asked["a"].respond(for_a)
    asked["b"].respond(for_a)  # a replay: A's approval offered for B


async def test_an_approval_in_the_store_releases_no_other_call(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran
) -> None:
    """Same namespace, same call id, same tool, other arguments: A's approval is A's only."""
    hook = ApprovalHook(store=approvals, timeout=0.2)  # answered through the store only
    first = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}, id="c1"))
    second = agent(sessions, hook, ran, call("exec", {"cmd": "rm -rf /"}, id="c1"))
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:

            async def approve_first() -> None:
                pending = await approvals.next_pending()
                await approvals.approve(pending.id, by="alice")

            tg.start_soon(approve_first)
            released = await first.run(ALICE, "go")
    assert released.turns[0].tool_results[0].content == "ran ls"
    (approved,) = await approvals.history()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:

            async def replay() -> None:
                await approvals.next_pending(seen={approved.id})
                assert (await approvals.approve(approved.id, by="mallory")) == approved  # no change
                assert [p.arguments for p in await approvals.pending()] == [{"cmd": "rm -rf /"}]

            tg.start_soon(replay)
            refused = await second.run(ALICE, "go")
    assert "no answer within 0.2s" in refused.turns[0].tool_results[0].content
    assert ran.calls == [("exec", {"cmd": "ls"})]


async def test_an_answer_through_the_store_releases_an_in_process_wait(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    """The chat asks inline, but `orra-di approvals approve` elsewhere may answer first."""
    runtime = agent(
        sessions, ApprovalHook(approver, store=approvals), ran, call("exec", {"cmd": "ls"})
    )

    def answer_elsewhere(pending: PendingApproval) -> None:
        kept.append(pending)  # the in-process answer never comes

    kept: list[PendingApproval] = []
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                pending = await approver.requests.receive()
                answer_elsewhere(pending)
                await approvals.approve(pending.request.id, by="ops")

            tg.start_soon(serve)
            result = await runtime.run(ALICE, "go")
    assert result.turns[0].tool_results[0].content == "ran ls"
    (record,) = await approvals.history()
    assert record.decided_by == "ops"


# -- which calls, and the auto-approve switch ------------------------------------------------


async def test_only_selected_tools_are_asked_about(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    for tools in (["exec"], lambda c: c.name == "exec" and "rm" in c.arguments.get("cmd", "")):
        hook = ApprovalHook(approver, store=approvals, tools=tools)
        runtime = agent(
            sessions,
            hook,
            ran,
            call("read_file", {"path": "a"}, id="r"),
            call("exec", {"cmd": "rm x"}, id="e"),
        )
        results, asked = await run_answering(runtime, approver, lambda p: p.deny(by="ops"))
        assert [p.request.tool for p in asked] == ["exec"]
        assert [r.is_error for r in results] == [False, True]
    assert ran.calls == [("read_file", {"path": "a"})] * 2


async def test_switching_auto_approve_on_is_itself_asked_about(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals, tools=["exec"])
    switch_on = agent(sessions, hook, ran, call(AUTO_APPROVE_TOOL, {"on": True}))
    results, asked = await run_answering(switch_on, approver, lambda p: p.deny(by="ops"))
    assert [p.request.tool for p in asked] == [AUTO_APPROVE_TOOL] and results[0].is_error
    stored = await sessions.load(ALICE)
    assert stored is not None and stored.metadata.get(STATE_KEY, {}) == {}

    results, _ = await run_answering(switch_on, approver, lambda p: p.approve(by="ops"))
    assert results[0].content == "auto-approve is on for this session"
    exec_ls = agent(sessions, hook, ran, call("exec", {"cmd": "ls"}))
    results, asked = await run_answering(exec_ls, approver, lambda p: p.deny(by="ops"))
    assert results[0].content == "ran ls" and asked == []

    switch_off = agent(sessions, hook, ran, call(AUTO_APPROVE_TOOL, {"on": False}))
    results, asked = await run_answering(switch_off, approver, lambda p: p.deny(by="ops"))
    assert asked == [] and results[0].content == "auto-approve is off for this session"
    results, asked = await run_answering(exec_ls, approver, lambda p: p.deny(by="ops"))
    assert results[0].is_error and len(asked) == 1


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan")])
def test_the_timeout_is_finite_and_positive(timeout: float) -> None:
    with pytest.raises(ConfigurationError, match="finite number of seconds"):
        ApprovalHook(Nobody(), timeout=timeout)


def test_tools_must_be_names_not_one_string() -> None:
    with pytest.raises(ConfigurationError, match="list of names"):
        ApprovalHook(Nobody(), tools="exec")


async def test_the_audit_trail_says_who_decided_what_when_for_which_call(
    sessions: InMemoryStore, approvals: ApprovalStore, ran: Ran, approver: InProcessApprover
) -> None:
    hook = ApprovalHook(approver, store=approvals, timeout=0.05)
    runtime = agent(
        sessions,
        hook,
        ran,
        call("exec", {"cmd": "ls"}, id="ok"),
        call("exec", {"cmd": "rm"}, id="no"),
        call("exec", {"cmd": "wait"}, id="late"),
    )

    def answer(pending: PendingApproval) -> None:
        if pending.request.call_id == "ok":
            pending.approve(by="alice", reason="fine")
        elif pending.request.call_id == "no":
            pending.deny(by="bob", reason="destructive")
        else:
            kept.append(pending)

    kept: list[PendingApproval] = []
    await run_answering(runtime, approver, answer)
    trail = {r.call_id: r for r in await approvals.history()}
    assert {k: (r.status, r.decided_by, r.reason) for k, r in trail.items()} == {
        "ok": (ApprovalStatus.APPROVED, "alice", "fine"),
        "no": (ApprovalStatus.DENIED, "bob", "destructive"),
        "late": (ApprovalStatus.DENIED, SYSTEM, "no answer within 0.05s"),
    }
    for record in trail.values():
        assert record.namespace == "acme:alice" and record.tool == "exec"
        assert record.decided_at is not None and record.requested_at <= record.decided_at
        assert record.run_id is not None
