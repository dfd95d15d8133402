"""Round 15 review: docs/approvals.md's table of outcomes, its audit trail and its settings.

'lets the call through only on an explicit approval of exactly that call, given in time.
Everything else denies it' — each row of the page's table is run here, with the text the
model reads and what the audit trail records.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers
from typer.testing import CliRunner, Result

from orra_di import ConfigurationError, Hook, InMemoryStore, Namespace, Runtime, ToolCall, tool
from orra_di.approvals import ApprovalHook, InProcessApprover, approval_store_for
from orra_di.approvals.hook import auto_approve_tool
from orra_di.approvals.model import ApprovalRecord, Decision
from orra_di.cli import app
from orra_di.containers import Container
from orra_di.errors import ApprovalError
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.settings import load_settings
from orra_di.stores import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ran: list[str] = []


@tool(name="exec")
def run_command(cmd: str) -> str:
    """Run a shell command."""
    ran.append(cmd)
    return f"ran {cmd}"


def _once(*calls: ToolCall | Any) -> Any:
    """A model that makes ``calls`` once, then answers with the first result."""

    def model(request: CompletionRequest) -> CompletionResponse:
        last = request.messages[-1]
        if last.tool_results:
            return reply(last.tool_results[0].content)
        return tool_calls(*calls)

    return model


class Raising:
    async def decide(self, request: ApprovalRecord) -> Decision:
        raise RuntimeError("the pager is down")


class Elsewhere:
    """Answers with an approval of another request (a replayed answer)."""

    async def decide(self, request: ApprovalRecord) -> Decision:
        other = ApprovalRecord.for_call(
            request.namespace, ToolCall(id="other", name="exec", arguments={"cmd": "ls"}), timeout=5
        )
        return Decision.approve(other, by="mallory")


async def _closed() -> InProcessApprover:
    approver = InProcessApprover()
    await approver.aclose()
    return approver


@pytest.mark.parametrize(
    ("make_approver", "says"),
    [
        (lambda: Raising(), "the approver failed (RuntimeError: the pager is down)"),
        (lambda: Elsewhere(), "the answer given was for another call"),
    ],
)
async def test_a_failing_or_misdirected_approver_denies_and_the_trail_says_why(
    make_approver: Any, says: str
) -> None:
    sessions = InMemoryStore()
    approvals = approval_store_for(sessions)
    hook = ApprovalHook(make_approver(), store=approvals, timeout=5)
    model = ScriptedProvider(_once(call("exec", {"cmd": "ls"})))
    runtime = Runtime(model, sessions, tools=[run_command], hooks=[hook])
    before = len(ran)
    result = await runtime.run("acme:alice", "go")

    (denied,) = result.turns[0].tool_results
    assert denied.is_error
    assert denied.content == f"Tool call 'exec' was denied: {says}; it did not run."
    assert len(ran) == before  # the tool never ran
    (record,) = await approvals.history("acme:alice")
    assert (record.status.value, record.decided_by, record.reason) == ("denied", "orra-di", says)


async def test_a_closed_approver_denies_the_call() -> None:
    sessions = InMemoryStore()
    hook = ApprovalHook(await _closed(), store=approval_store_for(sessions), timeout=5)
    model = ScriptedProvider(_once(call("exec", {"cmd": "ls"})))
    runtime = Runtime(model, sessions, tools=[run_command], hooks=[hook])
    result = await runtime.run("acme:bob", "go")
    (denied,) = result.turns[0].tool_results
    assert denied.is_error and "the approver is closed" in denied.content


async def test_a_person_denying_without_a_reason_is_named_and_the_call_is_not_run() -> None:
    """'a person denies it | error result `Tool call 'exec' was denied by alice: <reason>`';
    without a reason the sentence ends at the name."""
    sessions = InMemoryStore()
    async with InProcessApprover() as approver:
        hook = ApprovalHook(approver, store=approval_store_for(sessions), tools=["exec"])
        model = ScriptedProvider(_once(call("exec", {"cmd": "rm -rf /"})))
        runtime = Runtime(model, sessions, tools=[run_command], hooks=[hook])

        async def answer() -> None:
            async for pending in approver.requests:
                assert pending.request.arguments == {"cmd": "rm -rf /"}
                pending.deny(by="alice")

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            result = await runtime.run("acme:carol", "go")
            tg.cancel_scope.cancel()
    assert result.turns[0].tool_results[0].content == "Tool call 'exec' was denied by alice."


async def test_a_cancelled_run_records_its_request_as_denied() -> None:
    """'the run is cancelled while it waits | the request is recorded as denied'."""
    sessions = InMemoryStore()
    approvals = approval_store_for(sessions)
    hook = ApprovalHook(store=approvals, timeout=60)
    model = ScriptedProvider(_once(call("exec", {"cmd": "ls"})))
    runtime = Runtime(model, sessions, tools=[run_command], hooks=[hook])

    async with anyio.create_task_group() as tg:
        tg.start_soon(runtime.run, "acme:dan", "go")
        waiting = await approvals.next_pending("acme:dan")
        assert [r.id for r in await approvals.pending("acme")] == [waiting.id]
        tg.cancel_scope.cancel()

    (record,) = await approvals.history("acme:dan")
    assert record.id == waiting.id
    assert (record.status.value, record.decided_by) == ("denied", "orra-di")
    assert record.reason == "the run was cancelled"
    assert await approvals.pending("acme") == []


async def test_switching_auto_approve_on_is_always_asked_and_off_is_not() -> None:
    """'the model can be given auto_approve_tool(), whose call to switch it *on* is always
    asked about, whatever `tools` says.'"""
    sessions = InMemoryStore()
    approvals = approval_store_for(sessions)
    hook = ApprovalHook(store=approvals, tools=["exec"], timeout=0.05)
    switch = auto_approve_tool()
    name = switch.definition.name
    model = ScriptedProvider(_once(call(name, {"on": False}), call(name, {"on": True})))
    runtime = Runtime(model, sessions, tools=[switch], hooks=[hook])
    result = await runtime.run("acme:erin", "go")

    off, on = result.turns[0].tool_results
    assert not off.is_error and off.content == "auto-approve is off for this session"
    assert on.is_error and "no answer within 0.05s" in on.content
    (asked,) = await approvals.history("acme:erin")
    assert asked.tool == name and asked.arguments == {"on": True}
    session = await sessions.load("acme:erin")
    assert session is not None and "approval.auto_approve" not in session.metadata.get("state", {})


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"timeout": float("inf")}, "the approval timeout must be a finite number of seconds"),
        ({"timeout": 0}, "the approval timeout must be a finite number of seconds above 0"),
        ({"tools": "exec"}, "tools must be a list of names, not the string 'exec'"),
    ],
)
def test_the_hook_refuses_an_unbounded_wait_or_a_string_of_tools(
    kwargs: dict[str, Any], says: str
) -> None:
    """'nobody answers within `timeout` (300 s by default, always finite)'."""
    with pytest.raises(ConfigurationError, match=says.replace("(", r"\(")):
        ApprovalHook(**kwargs)
    assert ApprovalHook().timeout == 300.0


def test_the_settings_refuse_an_infinite_timeout_and_a_bare_tool_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_APPROVAL__TIMEOUT", "inf")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "approval.timeout (ORRA_APPROVAL__TIMEOUT)" in str(caught.value)
    assert "finite" in str(caught.value)
    monkeypatch.delenv("ORRA_APPROVAL__TIMEOUT")
    monkeypatch.setenv("ORRA_APPROVAL__TOOLS", "exec")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert "approval.tools (ORRA_APPROVAL__TOOLS)" in str(caught.value)
    assert "JSON in an environment variable" in str(caught.value)
    monkeypatch.delenv("ORRA_APPROVAL__TOOLS")
    defaults = load_settings().approval
    assert (defaults.enabled, defaults.tools, defaults.timeout) == (False, ["*"], 300.0)


async def test_an_expired_request_is_not_pending_and_approving_it_records_a_denial() -> None:
    """'requests past their timeout are left out, and approving one of them records a
    denial'."""
    approvals = approval_store_for(InMemoryStore())
    record = ApprovalRecord.for_call(
        "acme:finn", ToolCall(id="c1", name="exec", arguments={"cmd": "ls"}), timeout=60
    )
    stale = record.model_copy(update={"expires_at": record.requested_at - timedelta(seconds=1)})
    await approvals.add(stale)
    assert await approvals.pending("acme") == []
    decided = await approvals.approve(stale.id, by="ops")
    assert decided.status.value == "denied"
    (trail,) = await approvals.history("acme:finn")
    assert trail.status.value == "denied"


class Rewrites(Hook):
    """A hook of the application's that changes the command before it runs."""

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        return call.model_copy(update={"arguments": {"cmd": call.arguments["cmd"] + " --dry-run"}})


async def test_the_container_asks_about_the_call_as_the_hook_factory_hooks_left_it() -> None:
    """'The container composes the hook from ORRA_APPROVAL__* …, after your hook_factory's
    hooks'; a person is asked about the call that will run, not the model's original."""
    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        tools=[],
        approval={"enabled": True, "tools": ["exec"], "timeout": 0.05},
    )
    container.settings.override(providers.Object(settings))
    container.tool_factory.override(providers.Object(lambda profile: [run_command]))
    container.hook_factory.override(providers.Object(lambda profile: [Rewrites()]))
    container.llm.override(providers.Object(ScriptedProvider(_once(call("exec", {"cmd": "ls"})))))

    result = await container.runtimes().default.run("acme:gil", "go")
    assert "no answer within 0.05s" in result.final_message.content
    (asked,) = await container.approval_store().history("acme:gil")
    assert asked.arguments == {"cmd": "ls --dry-run"}


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    database = tmp_path / "orra.db"
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{database}")
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.chdir(tmp_path)
    return database


def _cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


async def test_the_cli_lists_and_approves_a_call_a_run_in_another_process_waits_for(
    cli_env: Path,
) -> None:
    """'From another terminal (…, as long as the run waits): orra-di approvals list
    [NAMESPACE] / approve ID [--by NAME] [--reason TEXT] / list --history'."""
    sessions = SQLiteStore(cli_env)
    approvals = approval_store_for(sessions)
    hook = ApprovalHook(store=approvals, tools=["exec"], timeout=30)
    model = ScriptedProvider(_once(call("exec", {"cmd": "uptime"})))
    runtime = Runtime(model, sessions, tools=[run_command], hooks=[hook])
    out: dict[str, Any] = {}

    async def run() -> None:
        out["result"] = await runtime.run("acme:hal", "go")

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            waiting = await approvals.next_pending("acme")
            listed = await anyio.to_thread.run_sync(_cli, "approvals", "list", "acme")
            assert listed.exit_code == 0, listed.output
            assert waiting.id in listed.output and '{"cmd":"uptime"}' in listed.output
            elsewhere = await anyio.to_thread.run_sync(_cli, "approvals", "list", "globex")
            assert "no approval is pending" in elsewhere.output
            approved = await anyio.to_thread.run_sync(
                _cli, "approvals", "approve", waiting.id, "--by", "ops", "--reason", "fine"
            )
            assert approved.exit_code == 0, approved.output
    finally:
        await sessions.aclose()

    assert out["result"].turns[0].tool_results[0].content == "ran uptime"
    history = await anyio.to_thread.run_sync(_cli, "approvals", "list", "--history", "--limit", "1")
    assert history.exit_code == 0, history.output
    assert waiting.id in history.output and "approved" in history.output
    assert "ops" in history.output and "fine" in history.output
    again = await anyio.to_thread.run_sync(_cli, "approvals", "deny", waiting.id, "--by", "late")
    assert "approved" in again.output  # 'a later one is told what was decided'


def test_the_cli_refuses_a_malformed_namespace_or_an_unknown_id_in_one_line(
    cli_env: Path,
) -> None:
    bad = _cli("approvals", "list", "acme::x")
    assert bad.exit_code != 0
    assert bad.stderr.strip().startswith("error: ") and "Traceback" not in bad.output
    unknown = _cli("approvals", "approve", "0" * 32)
    assert unknown.exit_code != 0
    assert unknown.stderr.strip().startswith("error: ") and "Traceback" not in unknown.output


def test_approval_error_is_an_orra_error() -> None:
    from orra_di import OrraError

    assert issubclass(ApprovalError, OrraError)
