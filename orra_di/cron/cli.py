"""``orra-di cron list|add|show|pause|resume|delete|run|history|serve``.

Jobs live beside the sessions (the store URL decides where), so a job added here is
run by whichever ``orra-di cron serve`` (or application with ``ORRA_CRON__ENABLED``)
shares that store, one of them per due time. Imports stay light: ``cli.py``
registers this Typer at start-up, and the container is only built by a command.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from orra_di.containers import Container
    from orra_di.cron.model import CronJob, CronRun
    from orra_di.cron.service import CronService
    from orra_di.errors import CronError

__all__ = ["cron_app"]

cron_app = typer.Typer(
    help="Scheduled jobs that run agent turns (see docs/cron.md).", no_args_is_help=True
)

# orra_di.cron.schedule.MAX_EVERY_MS (that module is not imported at start-up)
MAX_EVERY_MS = 1000 * 366 * 86_400_000

JobId = Annotated[str, typer.Argument(help="The job's id, from `orra-di cron list`.")]


def _service(container: Container) -> CronService:
    service: CronService = container.cron_service()
    return service


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@cron_app.command("list")
def cron_list(
    namespace: Annotated[str | None, typer.Argument(help="Only this namespace and below.")] = None,
) -> None:
    """List the jobs: schedule, status, next and last run, run count."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli
    from orra_di.cron.schedule import describe_schedule

    async def job(container: Container) -> list[CronJob]:
        return await _service(container).list_jobs(namespace)

    jobs = cli._run(job)
    if not jobs:
        cli._out().print("no cron jobs")
        return
    table = Table("id", "name", "namespace", "schedule", "status", "next", "last", "runs")
    for column in table.columns:
        column.overflow = "fold"
    for j in jobs:
        row = [j.id, j.name, j.namespace, describe_schedule(j.schedule), j.status.value]
        row += [_when(j.next_run), _when(j.last_run), str(j.run_count)]
        table.add_row(*(Text(cell) for cell in row))
    cli._out().print(table)


@cron_app.command("add")
def cron_add(
    namespace: Annotated[str, typer.Argument(help="The tenant/session the job belongs to.")],
    name: Annotated[str, typer.Option("--name", help="A name for the job.")],
    cron: Annotated[
        str | None, typer.Option("--cron", help="A 5-field cron expression, e.g. '0 9 * * 1-5'.")
    ] = None,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            help="Every this many seconds (at most 1000 years).",
            min=0.001,
            max=MAX_EVERY_MS / 1000,
        ),
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Once, at an ISO time with a zone.")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--tz", help="IANA zone of --cron (default: ORRA_CRON__DEFAULT_TIMEZONE)."),
    ] = None,
    prompt: Annotated[
        str | None, typer.Option("--prompt", help="Run the agent on this prompt.")
    ] = None,
    message: Annotated[
        str | None, typer.Option("--message", help="Append this system message instead.")
    ] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Which agent runs it.")] = None,
    silent: Annotated[
        bool, typer.Option("--silent", help="Keep the answer in the job's own session only.")
    ] = False,
) -> None:
    """Add a job: one of --cron/--every/--at, and one of --prompt/--message."""
    from orra_di import cli
    from orra_di.cron.model import (
        AgentTurnPayload,
        CronDelivery,
        CronJob,
        SystemEventPayload,
    )
    from orra_di.cron.schedule import AtSchedule, CronExpressionSchedule, EverySchedule
    from orra_di.errors import CronError

    if sum(x is not None for x in (cron, every, at)) != 1:
        raise typer.BadParameter("give exactly one of --cron, --every, --at")
    if (prompt is None) == (message is None):
        raise typer.BadParameter("give exactly one of --prompt, --message")

    async def job(container: Container) -> CronJob:
        settings = container.settings().cron
        schedule: Any
        try:
            if cron is not None:
                schedule = CronExpressionSchedule(
                    expression=cron, timezone=timezone or settings.default_timezone
                )
            elif every is not None:
                schedule = EverySchedule(interval_ms=max(int(every * 1000), 1))
            else:
                assert at is not None
                try:
                    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
                except ValueError:
                    raise CronError(
                        f"--at {at!r} is not an ISO time; give one with a zone, e.g. "
                        "'2025-06-15T09:00:00Z' or '2025-06-15T11:00:00+02:00'"
                    ) from None
                schedule = AtSchedule(datetime=moment)
        except ValueError as exc:
            raise CronError(_reason(exc)) from None
        payload: Any = (
            AgentTurnPayload(prompt=prompt)
            if prompt is not None
            else SystemEventPayload(message=message or "")
        )
        new = CronJob(
            name=name,
            schedule=schedule,
            payload=payload,
            namespace=namespace,
            agent=agent,
            missed=settings.missed_runs,
            delivery=CronDelivery.SILENT if silent else CronDelivery.ANNOUNCE,
        )
        return await _service(container).add_job(new)

    added = cli._run(job)
    cli._out().print(
        f"added {added.id} ({added.name}); next run {_when(added.next_run)}", markup=False
    )


def _reason(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return str(exc.errors()[0].get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def _no_job(job_id: str) -> CronError:
    """The one error every command gives for an id that names no job."""
    from orra_di.errors import CronError

    return CronError(f"no cron job {job_id}; `orra-di cron list` shows them")


def _one(job_id: str, action: str) -> Any:
    from orra_di import cli
    from orra_di.errors import CronError

    async def job(container: Container) -> Any:
        service = _service(container)
        found: Any
        if action == "show":
            found = await service.get_job(job_id)
        elif action == "run":
            found = await service.run_now(job_id)
            if found is None and await service.get_job(job_id) is not None:
                raise CronError(f"cron job {job_id} is being run by another service right now")
        elif action == "resume":  # the job as resumed: a completed one-shot stays completed
            found = await service.get_job(job_id) if await service.resume_job(job_id) else None
        else:
            found = await getattr(service, f"{action}_job")(job_id) or None
        if found is None:
            raise _no_job(job_id)
        return found

    return cli._run(job)


@cron_app.command("show")
def cron_show(job_id: JobId) -> None:
    """Print a job as JSON (orra's shape)."""
    from orra_di import cli

    cli._out().print_json(_one(job_id, "show").to_json())


@cron_app.command("pause")
def cron_pause(job_id: JobId) -> None:
    """Stop a job from firing until it is resumed."""
    from orra_di import cli

    _one(job_id, "pause")
    cli._out().print(f"paused {job_id}", markup=False)


@cron_app.command("resume")
def cron_resume(job_id: JobId) -> None:
    """Let a paused job fire again, from its next due time after now."""
    from orra_di import cli
    from orra_di.cron.model import CronJobStatus

    job: CronJob = _one(job_id, "resume")
    if job.status is CronJobStatus.COMPLETED:
        # resume_job leaves a completed one-shot as it is; "resumed" would say it fires again
        cli._out().print(
            f"{job_id} is completed: a one-shot job runs once and stays completed; "
            "add a new job to run it again",
            markup=False,
        )
        return
    cli._out().print(f"resumed {job_id}", markup=False)


@cron_app.command("delete")
def cron_delete(job_id: JobId) -> None:
    """Delete a job and its run history."""
    from orra_di import cli

    _one(job_id, "delete")
    cli._out().print(f"deleted {job_id}", markup=False)


@cron_app.command("run")
def cron_run(job_id: JobId) -> None:
    """Run a job now, here (its schedule is kept; a one-shot is then done); print the run."""
    from orra_di import cli

    run: CronRun = _one(job_id, "run")
    cli._out().print(
        json.dumps(run.model_dump(mode="json", exclude={"usage"}), indent=2, ensure_ascii=False),
        markup=False,
    )
    if run.outcome != "ok":
        raise typer.Exit(1)


@cron_app.command("history")
def cron_history(
    job_id: JobId,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many runs.")] = 20,
) -> None:
    """A job's runs, newest first: due time, outcome, error, tokens."""
    from rich.table import Table
    from rich.text import Text

    from orra_di import cli

    async def job(container: Container) -> list[CronRun]:
        service = _service(container)
        runs = await service.store.runs(job_id, limit)
        # A mistyped id must not read as "never ran" (deleting a job deletes its runs).
        if not runs and await service.get_job(job_id) is None:
            raise _no_job(job_id)
        return runs

    runs = cli._run(job)
    if not runs:
        cli._out().print("no runs recorded")
        return
    table = Table("due", "started", "outcome", "attempts", "tokens", "error / answer")
    for column in table.columns:  # as in `cron list`: a narrow terminal wraps, never cuts
        column.overflow = "fold"
    for r in runs:
        tokens = str(r.usage.input_tokens + r.usage.output_tokens)
        detail = (r.error or r.output or "").replace("\n", " ")[:200]
        row = [_when(r.due_at), _when(r.started_at), r.outcome, str(r.attempts), tokens, detail]
        table.add_row(*(Text(cell) for cell in row))
    cli._out().print(table)


@cron_app.command("serve")
def cron_serve() -> None:
    """Run due jobs in the foreground until Ctrl-C or SIGTERM; runs in flight finish first.

    ``orra-di serve`` runs them too (with ``cron.enabled``), beside the HTTP gateway.

    Start one per machine or several on one shared store (PostgreSQL, Redis, or a
    SQLite/file store on one machine): each due job runs on exactly one of them.
    """
    import signal

    import anyio

    from orra_di import cli

    async def job(container: Container) -> None:
        service = _service(container)
        # With ORRA_CRON__ENABLED the lifespan already serves; then only wait for the signal.
        in_lifespan = container.settings().cron.enabled
        where = container.settings().store.masked()
        cli._err().print(f"cron service {service.owner} running on {where}; Ctrl-C to stop")
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as received:
            async with anyio.create_task_group() as tg:

                async def signals() -> None:
                    async for _ in received:
                        service.stop()  # serve() returns once the runs in flight end
                        if in_lifespan:
                            tg.cancel_scope.cancel()  # the lifespan's exit stops its service
                        return

                tg.start_soon(signals)
                if not in_lifespan:
                    await service.serve()  # returns after stop(), runs in flight finished
                    tg.cancel_scope.cancel()

    cli._run(job)
