"""``orra-di approvals list|approve|deny`` and the chat's inline question, through CliRunner."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner, Result

from orra_di.approvals import ApprovalRecord, ApprovalStatus, approval_store_for
from orra_di.cli import app
from orra_di.message import ToolCall
from orra_di.namespace import Namespace
from orra_di.stores import SQLiteStore


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_STORE__URL", f"sqlite:///{tmp_path}/s.sqlite3")
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("LOGNAME", "tester")
    monkeypatch.chdir(tmp_path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ask_for_approval(tmp_path: Path, namespace: str = "acme:alice", cmd: str = "ls") -> str:
    """A pending request, as a run in another process leaves it in the store; its id."""

    async def add() -> str:
        sessions = SQLiteStore(tmp_path / "s.sqlite3")
        try:
            call = ToolCall(id="c1", name="exec", arguments={"cmd": cmd})
            record = ApprovalRecord.for_call(Namespace.parse(namespace), call, timeout=300)
            await approval_store_for(sessions).add(record)
            return record.id
        finally:
            await sessions.aclose()

    return anyio.run(add)


def recorded(tmp_path: Path) -> list[ApprovalRecord]:
    async def read() -> list[ApprovalRecord]:
        sessions = SQLiteStore(tmp_path / "s.sqlite3")
        try:
            return await approval_store_for(sessions).history()
        finally:
            await sessions.aclose()

    return anyio.run(read)


def test_list_approve_and_the_trail(tmp_path: Path) -> None:
    assert run("approvals", "list").stdout.strip() == "no approval is pending"
    first = ask_for_approval(tmp_path, "acme:alice", "ls")
    second = ask_for_approval(tmp_path, "other:bob", "rm -rf /")
    listed = run("approvals", "list")
    assert listed.exit_code == 0 and first in listed.stdout and second in listed.stdout
    assert '{"cmd":"ls"}' in listed.stdout and "acme:alice" in listed.stdout
    only_acme = run("approvals", "list", "acme").stdout
    assert first in only_acme and second not in only_acme

    approved = run("approvals", "approve", first, "--by", "ops", "--reason", "routine")
    assert approved.exit_code == 0, approved.stderr
    assert approved.stdout.strip() == 'approved: run `exec` with {"cmd":"ls"} in acme:alice'
    denied = run("approvals", "deny", second)  # by the user name by default
    assert denied.exit_code == 0 and denied.stdout.startswith("denied: ")
    assert run("approvals", "list").stdout.strip() == "no approval is pending"

    trail = {r.id: (r.status, r.decided_by, r.reason) for r in recorded(tmp_path)}
    assert trail == {
        first: (ApprovalStatus.APPROVED, "ops", "routine"),
        second: (ApprovalStatus.DENIED, "tester", None),
    }
    history = run("approvals", "list", "--history").stdout
    assert "approved" in history and "routine" in history and "tester" in history


def test_a_second_answer_is_told_the_first(tmp_path: Path) -> None:
    request_id = ask_for_approval(tmp_path)
    assert run("approvals", "deny", request_id, "--by", "sec", "--reason", "no").exit_code == 0
    late = run("approvals", "approve", request_id, "--by", "ops")
    assert late.exit_code == 1
    assert late.stderr.strip() == f"error: {request_id} was already denied by sec (no)"
    (record,) = recorded(tmp_path)
    assert (record.status, record.decided_by) == (ApprovalStatus.DENIED, "sec")


@pytest.mark.parametrize(
    ("request_id", "message"),
    [
        ("../../etc/passwd", "is not an approval id (32 hex digits)"),
        ("0" * 32, "no approval request 00000000000000000000000000000000"),
    ],
)
def test_bad_ids_are_one_error_line(request_id: str, message: str) -> None:
    result = run("approvals", "approve", request_id)
    assert result.exit_code == 1 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ") and message in result.stderr


def test_chat_asks_inline_and_a_yes_runs_the_tool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    monkeypatch.setenv("ORRA_APPROVAL__POLL_INTERVAL", "0.02")
    result = run("chat", "-n", "acme:alice", input="What is 6*7?\ny\n/quit\n")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert 'run `calculate` with {"expression":"6*7"}? [y/N]' in result.stdout
    assert "6*7 = 42 (worked out by the calculate tool)" in result.stdout
    (record,) = recorded(tmp_path)
    assert (record.status, record.decided_by, record.tool) == (
        ApprovalStatus.APPROVED,
        "tester",
        "calculate",
    )
    assert "was denied" not in result.stdout


def test_chat_denies_on_anything_but_yes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    monkeypatch.setenv("ORRA_APPROVAL__POLL_INTERVAL", "0.02")
    result = run("chat", "-n", "acme:alice", input="What is 6*7?\nsure\n/quit\n")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "Tool call 'calculate' was denied by tester: tester said no in the chat" in result.stdout
    (record,) = recorded(tmp_path)
    assert record.status is ApprovalStatus.DENIED


def test_chat_without_approvals_asks_nothing(tmp_path: Path) -> None:
    result = run("chat", "-n", "acme:alice", input="What is 6*7?\n/quit\n")
    assert "6*7 = 42" in result.stdout  # the tool ran, unasked
    assert result.exit_code == 0 and "[y/N]" not in result.stdout
    assert recorded(tmp_path) == []
