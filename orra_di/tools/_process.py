"""Run a program in a process group of its own, with a deadline and bounded output.

orra's ``exec`` and ``claude_code`` left the child running when the timeout
fired (spec §5.6/25). Here the program starts a new session (so a new process
group), and the whole group is killed with SIGKILL when the deadline passes,
when the call is cancelled, and also when the program exits while something it
started in the background still runs: nothing outlives the call. Output is read
as it comes, so a chatty program cannot block on a full pipe, and only the
first ``max_bytes`` of each stream are kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import ByteReceiveStream

__all__ = ["ProcessOutcome", "kill_group", "run_process"]


@dataclass(frozen=True)
class ProcessOutcome:
    """What a run left: its output (each stream cut at ``max_bytes``), exit status and whether
    it was stopped by the deadline (``returncode`` is then ``None``)."""

    stdout: bytes
    stderr: bytes
    returncode: int | None
    timed_out: bool
    cut: bool


class _Capture:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.kept = 0
        self.cut = False

    async def drain(self, stream: ByteReceiveStream | None) -> None:
        if stream is None:
            return
        with contextlib.suppress(anyio.EndOfStream, anyio.ClosedResourceError):
            async for chunk in stream:
                room = self.limit - self.kept
                if room <= 0:
                    self.cut = True
                    continue  # keep reading so the program never blocks on a full pipe
                if len(chunk) > room:
                    chunk, self.cut = chunk[:room], True
                self.chunks.append(chunk)
                self.kept += len(chunk)

    def data(self) -> bytes:
        return b"".join(self.chunks)


def kill_group(pid: int) -> None:
    """SIGKILL to every process of the group ``pid`` leads (gone already: nothing)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str | None,
    env: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - the deadline is the process's, enforced here
    max_bytes: int,
) -> ProcessOutcome:
    """Run ``argv`` (no shell) in ``cwd`` with exactly ``env``; raises ``OSError`` if it
    cannot start."""
    # Shielded: the child runs before open_process returns (the pipes are connected after
    # the fork), and a cancellation in that window would leave asyncio killing the leader
    # only, its children orphaned. A cancellation waits for the try below, which kills all.
    with anyio.CancelScope(shield=True):
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    out, err = _Capture(max_bytes), _Capture(max_bytes)
    returncode: int | None = None
    try:
        with anyio.move_on_after(timeout) as scope:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(out.drain, process.stdout)
                tasks.start_soon(err.drain, process.stderr)
                returncode = await process.wait()
                # The program is done; whatever it left in the background goes with it
                # (and the pipes it held close, which ends the reads).
                kill_group(process.pid)
    finally:
        kill_group(process.pid)
        with anyio.CancelScope(shield=True):
            await process.wait()
            await process.aclose()
    timed_out = scope.cancelled_caught and returncode is None
    return ProcessOutcome(
        out.data(), err.data(), None if timed_out else returncode, timed_out, out.cut or err.cut
    )
