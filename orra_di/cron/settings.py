"""The ``cron`` settings section (``ORRA_CRON__*``), composed by ``OrraSettings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["CronSettings"]


class CronSettings(BaseModel):
    """Scheduled jobs: whether the service runs them here, and their defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Run due jobs inside long-lived commands (``orra-di serve``, the gateway);
    ``orra-di cron serve`` runs them whatever this says. Jobs can be managed (CLI, ``cron``
    tool) either way."""
    tool: bool = False
    """Give every agent the ``cron`` tool (create, list, pause, resume, delete, run jobs of
    its own conversation's namespace and below)."""
    default_timezone: str = "UTC"
    """IANA time zone of cron expressions that name none (``Europe/Paris``)."""
    missed_runs: Literal["skip", "run_once"] = "run_once"
    """New jobs' policy for due times that passed while no service ran: skip them, or
    run once on catch-up."""
    lease: float = Field(60.0, gt=0, allow_inf_nan=False)
    """Seconds a service holds a job it runs before another may take it over (renewed
    while the run goes on; a killed service's run is recorded as abandoned after it)."""
    poll_interval: float = Field(1.0, gt=0, le=60, allow_inf_nan=False)
    """Seconds between two looks at the store for jobs other processes added."""

    prune_every: float | None = Field(None, gt=0, allow_inf_nan=False)
    """Seconds between two prunes of the sessions idle for longer than
    ``store.session_ttl`` (which it needs), run by the cron service as the built-in job
    ``orra-prune-sessions``: retention on SQLite, files and PostgreSQL without an external
    cron. Unset: no such job (a service starting removes it)."""

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from orra_di.cron.schedule import check_timezone

        return check_timezone(value).key
