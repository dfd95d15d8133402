"""The ``cron`` tool: the model creates, lists and manages jobs of its own session's tenant.

orra's tool (spec §2C.2) took the namespace from the model's arguments, so any
session could schedule work in any other (bug 34). Here the namespace is the
calling session's (:class:`~orra_di.tool.ToolContext`); a ``namespace`` argument is
accepted only at or below it, and ``list``/``get``/``pause``/``resume``/``delete``/
``run`` see only the jobs of the caller's subtree (another tenant's job is "not
found"). Outputs and error texts are orra's; ``cron`` schedules take a
``timezone`` (default: the tool's ``default_timezone``), new jobs get the tool's
``missed`` policy (the container's ``cron.missed_runs``), and ``run`` runs a job now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from orra_di.cron.model import AgentTurnPayload, CronJob, CronJobStatus, SystemEventPayload
from orra_di.cron.schedule import (
    AtSchedule,
    CronExpressionSchedule,
    EverySchedule,
    describe_schedule,
)
from orra_di.cron.service import CronService
from orra_di.errors import CronError, NamespaceError, ToolExecutionError, ToolInputError
from orra_di.message import JsonValue
from orra_di.namespace import Namespace
from orra_di.tool import ToolContext, ToolDefinition, ToolRegistry

__all__ = ["CronTool", "register_tool"]

ACTIONS = ("create", "list", "get", "pause", "resume", "delete", "run")

DESCRIPTION = """Manage scheduled (cron) jobs for this conversation.

Actions: create, list, get, pause, resume, delete, run (run a job now).

Schedule types:
- at: run once at an ISO-8601 datetime with a zone, e.g. "2025-06-15T09:00:00Z"
- every: run every interval_ms milliseconds, e.g. 3600000 for hourly
- cron: a standard 5-field cron expression, e.g. "0 9 * * MON-FRI", in `timezone`

Payload types:
- agent_turn: Run a fresh AI turn with the given prompt (best for reminders, reports)
- system_event: Inject a message into the session (best for notifications)"""


def _schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "id": {"type": "string", "description": "The job id (all actions but create/list)"},
            "name": {"type": "string", "description": "A name for the job (create)"},
            "schedule": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["at", "every", "cron"]},
                    "datetime": {"type": "string"},
                    "interval_ms": {"type": "integer"},
                    "expression": {"type": "string"},
                    "timezone": {"type": "string", "description": "IANA zone for cron"},
                },
            },
            "payload": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "enum": ["agent_turn", "system_event"]},
                    "prompt": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
            "namespace": {
                "type": "string",
                "description": "Optional: a namespace at or below this conversation's",
            },
        },
        "required": ["action"],
    }


class CronTool:
    """orra's ``CronTool`` over a :class:`CronService`, bound to the caller's namespace."""

    def __init__(
        self,
        service: CronService,
        *,
        default_timezone: str = "UTC",
        missed: Literal["skip", "run_once"] = "run_once",
    ) -> None:
        self.service = service
        self.default_timezone = default_timezone
        self.missed: Literal["skip", "run_once"] = missed
        self._definition = ToolDefinition(
            name="cron", description=DESCRIPTION, input_schema=_schema()
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        args = arguments if isinstance(arguments, dict) else {}
        action = args.get("action")
        if not isinstance(action, str) or not action:
            raise ToolInputError("missing 'action'")
        if action not in ACTIONS:
            raise ToolInputError(f"unknown action: '{action}'. Use: {', '.join(ACTIONS)}")
        try:
            if action == "create":
                return await self._create(args, context)
            if action == "list":
                return await self._list(context)
            return await self._one(action, args, context)
        except CronError as exc:
            raise ToolInputError(str(exc)) from None

    # -- create ----------------------------------------------------------------------------

    def _namespace(self, args: dict[str, Any], context: ToolContext) -> str:
        given = args.get("namespace")
        if given is None or given == "":
            return context.namespace.key
        try:
            wanted = Namespace.parse(str(given))
        except NamespaceError as exc:
            raise ToolInputError(f"invalid namespace {given!r}: {exc}") from None
        if not context.namespace.contains(wanted):
            raise ToolInputError(
                f"namespace {wanted.key!r} is outside this conversation's "
                f"({context.namespace.key!r}); jobs can only be created at or below it"
            )
        return wanted.key

    def _schedule(self, raw: Any) -> AtSchedule | EverySchedule | CronExpressionSchedule:
        if not isinstance(raw, dict):
            raise ToolInputError("missing 'schedule' for create")
        kind = raw.get("type")
        if not kind:
            raise ToolInputError("missing 'schedule.type'")
        if kind == "at":
            text = raw.get("datetime")
            if not isinstance(text, str):
                raise ToolInputError("missing 'schedule.datetime' for 'at' type")
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                return AtSchedule(datetime=moment)
            except (ValueError, ValidationError) as exc:
                raise ToolInputError(f"invalid datetime '{text}': {_first(exc)}") from None
        if kind == "every":
            interval = raw.get("interval_ms")
            if interval is None:
                raise ToolInputError("missing 'schedule.interval_ms' for 'every' type")
            if not isinstance(interval, int) or isinstance(interval, bool) or interval <= 0:
                raise ToolInputError("interval_ms must be greater than 0")
            return EverySchedule(interval_ms=interval)
        if kind == "cron":
            expression = raw.get("expression")
            if not isinstance(expression, str):
                raise ToolInputError("missing 'schedule.expression' for 'cron' type")
            zone = raw.get("timezone") or self.default_timezone
            try:
                return CronExpressionSchedule(expression=expression, timezone=str(zone))
            except (CronError, ValidationError) as exc:
                raise ToolInputError(_first(exc)) from None
        raise ToolInputError(f"unknown schedule type '{kind}'. Use: at, every, cron")

    @staticmethod
    def _payload(raw: Any) -> AgentTurnPayload | SystemEventPayload:
        if not isinstance(raw, dict):
            raise ToolInputError("missing 'payload' for create")
        kind = raw.get("type")
        if not kind:
            raise ToolInputError("missing 'payload.type'")
        if kind == "agent_turn":
            prompt = raw.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise ToolInputError("missing 'payload.prompt' for 'agent_turn' type")
            return AgentTurnPayload(prompt=prompt)
        if kind == "system_event":
            message = raw.get("message")
            if not isinstance(message, str) or not message.strip():
                raise ToolInputError("missing 'payload.message' for 'system_event' type")
            return SystemEventPayload(message=message)
        raise ToolInputError(f"unknown payload type '{kind}'. Use: agent_turn, system_event")

    async def _create(self, args: dict[str, Any], context: ToolContext) -> str:
        name = args.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolInputError("missing 'name' for create")
        namespace = self._namespace(args, context)
        schedule = self._schedule(args.get("schedule"))
        payload = self._payload(args.get("payload"))
        try:
            job = CronJob(
                name=name.strip(),
                schedule=schedule,
                payload=payload,
                namespace=namespace,
                missed=self.missed,
            )
        except ValidationError as exc:
            raise ToolInputError(_first(exc)) from None
        try:
            job = await self.service.add_job(job)
        except CronError:
            raise
        except Exception as exc:
            raise ToolExecutionError(f"could not store the job: {exc}") from exc
        following = job.next_run.isoformat() if job.next_run else "none"
        return f"Created cron job '{job.name}' (id: {job.id}). Next run: {following}"

    # -- the others ------------------------------------------------------------------------

    async def _list(self, context: ToolContext) -> str:
        jobs = await self.service.list_jobs(context.namespace)
        if not jobs:
            return "No cron jobs configured."
        return "\n".join(
            f"- {j.name} (id: {j.id}) [{j.status.value.capitalize()}] "
            f"schedule: {describe_schedule(j.schedule)} | "
            f"next: {j.next_run.isoformat() if j.next_run else 'none'} | runs: {j.run_count}"
            for j in jobs
        )

    async def _one(self, action: str, args: dict[str, Any], context: ToolContext) -> str:
        job_id = args.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise ToolInputError(f"missing 'id' for {action}")
        job = await self.service.get_job(job_id)
        if job is None or not context.namespace.contains(Namespace.parse(job.namespace)):
            return f"Job not found: {job_id}"
        if action == "get":
            return job.to_json(indent=2)
        if action == "pause":
            await self.service.pause_job(job_id)
            return f"Paused job {job_id}."
        if action == "resume":
            if job.status is CronJobStatus.COMPLETED:  # resume_job leaves it completed
                return f"Job {job_id} is completed: a one-shot job runs once; create a new one."
            await self.service.resume_job(job_id)
            return f"Resumed job {job_id}."
        if action == "delete":
            await self.service.delete_job(job_id)
            return f"Deleted job {job_id}."
        run = await self.service.run_now(job_id)
        if run is None:
            return f"Job {job_id} is already running elsewhere."
        detail = run.output if run.outcome == "ok" else run.error
        return f"Ran job {job_id}: {run.outcome}" + (f". {detail}" if detail else "")


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return str(error.get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def register_tool(registry: ToolRegistry, service: CronService, **options: Any) -> None:
    """orra's ``register_tool``: add the ``cron`` tool to ``registry``."""
    registry.register(CronTool(service, **options))
