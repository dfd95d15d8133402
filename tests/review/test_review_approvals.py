"""Approvals as the docs describe them, with the answers a product gets: late, twice,
for a run whose process is gone.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orra_di.approvals import ApprovalRecord, ApprovalStatus, approval_store_for
from orra_di.message import ToolCall
from orra_di.namespace import Namespace
from orra_di.stores import SQLiteStore

pytestmark = pytest.mark.anyio


def request(cmd: str, timeout: float) -> ApprovalRecord:
    call = ToolCall(id=f"call-{cmd}", name="exec", arguments={"cmd": cmd})
    return ApprovalRecord.for_call(Namespace("acme", "alice"), call, timeout=timeout)


async def test_a_request_past_its_timeout_is_not_listed_and_approving_it_records_a_denial(
    tmp_path: Path,
) -> None:
    sessions = SQLiteStore(tmp_path / "s.db")
    try:
        approvals = approval_store_for(sessions)
        late, waiting = request("ls", 0.05), request("pwd", 300)
        await approvals.add(late)
        await approvals.add(waiting)
        await anyio.sleep(0.1)
        assert [r.id for r in await approvals.pending("acme")] == [waiting.id]
        decided = await approvals.approve(late.id, by="ops")
        assert decided.status is ApprovalStatus.DENIED and decided.decided_by == "orra-di"
        assert "expired" in (decided.reason or "")
        again = await approvals.deny(waiting.id, by="ops", reason="no")
        twice = await approvals.approve(waiting.id, by="eve")  # the first answer stands
        assert (twice.status, twice.decided_by) == (again.status, "ops")
    finally:
        await sessions.aclose()


async def test_a_request_whose_process_died_stays_listed_until_its_timeout(
    tmp_path: Path,
) -> None:
    """A run's process that dies leaves its request pending: nothing in the store says
    that nobody waits any more, so it is listed (and can be answered, to no effect)
    until its timeout (as docs/approvals.md now says; it said requests whose run
    stopped waiting were left out)."""
    first = SQLiteStore(tmp_path / "s.db")
    orphan = request("deploy", 300)
    await approval_store_for(first).add(orphan)
    await first.aclose()  # the process is gone; the request stays

    restarted = SQLiteStore(tmp_path / "s.db")
    try:
        approvals = approval_store_for(restarted)
        assert [r.id for r in await approvals.pending()] == [orphan.id]
    finally:
        await restarted.aclose()
