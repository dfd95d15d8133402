"""Round 18 security review: ids that name files in the file-backed stores.

The file cron store names a job's files after its id percent-encoded, which keeps
``.``; ``check_job_id`` refused ``/`` but let ``..`` and ``.`` through, so
``delete("..")`` removed the whole ``.cron`` directory (every tenant's jobs) once any
job had run, and ``delete(".")`` every job's run history. The memory store already
renamed such folders; the cron store now refuses the two ids, in every store alike.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orra_di.cron.model import AgentTurnPayload, CronJob, CronRun, EverySchedule
from orra_di.cron.stores import CronError, FileCronStore, MemoryCronStore

pytestmark = pytest.mark.anyio


def job(namespace: str) -> CronJob:
    schedule = EverySchedule(interval_ms=60_000)
    return CronJob.new("report", schedule, AgentTurnPayload(prompt="hi"), namespace)


@pytest.mark.parametrize("bad", [".", "..", "a\x00b", "line\nbreak"])
async def test_a_dot_job_id_is_refused_and_erases_no_tenants_jobs_or_history(
    bad: str, tmp_path: Path
) -> None:
    store = FileCronStore(tmp_path)
    alice, bob = await store.add(job("r18-acme:alice")), await store.add(job("r18-globex:bob"))
    now = datetime.now(UTC)
    run = CronRun(id="run-1", job_id=bob.id, namespace=bob.namespace, due_at=now, started_at=now)
    await store.record_run(run)
    for call in (store.delete(bad), store.get(bad), store.runs(bad)):
        with pytest.raises(CronError, match="is not a cron job id"):
            await call
    assert {j.id for j in await store.list()} == {alice.id, bob.id}
    assert [r.id for r in await store.runs(bob.id)] == ["run-1"]
    assert sorted(os.listdir(tmp_path / ".cron")) == [".lock", "jobs", "runs"]


@pytest.mark.parametrize("bad", [".", "..", "a\x00b", "line\nbreak"])
async def test_every_store_refuses_the_same_ids(bad: str) -> None:
    """An id one store takes and another refuses would break a move between them."""
    with pytest.raises(CronError):
        await MemoryCronStore().add(job("r18-acme:alice").model_copy(update={"id": bad}))
