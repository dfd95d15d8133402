"""What the approval process tests run in worker processes (``spawn``: fresh interpreters,
as other replicas or a restarted CLI would be), so their targets live at module level."""

from __future__ import annotations

import multiprocessing.synchronize
from typing import Any

import anyio

from orra_di.approvals import approval_store_for
from orra_di.stores import open_store


def answer_pending(
    url: str,
    options: dict[str, Any],
    namespace: str,
    by: str,
    picked: multiprocessing.synchronize.Event,
    hang: bool,
) -> None:
    """Wait for a pending request under ``namespace``, then approve it as ``by``.

    With ``hang``, set ``picked`` and never answer: the parent kills this process,
    as an approver that died (or was restarted) while a request was pending.
    """

    async def main() -> None:
        sessions = open_store(url, **options)
        try:
            approvals = approval_store_for(sessions, poll_interval=0.05)
            with anyio.fail_after(60):
                pending = await approvals.next_pending(namespace)
            picked.set()
            if hang:
                await anyio.sleep(3600)
            await approvals.approve(pending.id, by=by, reason="from another process")
        finally:
            await sessions.aclose()

    anyio.run(main)
