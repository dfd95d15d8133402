"""Scheduling: cron jobs that run agent turns, on every store, exactly once across replicas.

- :mod:`~orra_di.cron.schedule`: :class:`CronSchedule` (standard cron with a time
  zone, on ``cronsim``: ``pip install "orra-di[cron]"``) and a job's three schedule kinds;
- :mod:`~orra_di.cron.scheduler`: :class:`Scheduler`, in-process callbacks only;
- :mod:`~orra_di.cron.model`: :class:`CronJob` (orra's JSON shape) and :class:`CronRun`;
- :mod:`~orra_di.cron.stores`: :class:`CronStore` beside the sessions in every backend,
  with an atomic claim of due jobs (:func:`cron_store_for` picks it);
- :mod:`~orra_di.cron.service`: :class:`CronService`, which runs the jobs;
- :mod:`~orra_di.cron.tool`: the ``cron`` tool for the model.


Names are imported on first use (PEP 562), so reading the settings (which import
:mod:`orra_di.cron.settings`) does not load the stores and the service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.cron.model import (
        AgentTurnPayload,
        CronDelivery,
        CronJob,
        CronJobStatus,
        CronPayload,
        CronRun,
        PruneSessionsPayload,
        SystemEventPayload,
    )
    from orra_di.cron.schedule import (
        AtSchedule,
        CronExpressionSchedule,
        CronSchedule,
        EverySchedule,
        Schedule,
    )
    from orra_di.cron.scheduler import (
        JobInfo,
        Scheduler,
    )
    from orra_di.cron.service import (
        PRUNE_JOB_ID,
        CronService,
        erase_tenant,
        job_session,
    )
    from orra_di.cron.stores import (
        Claim,
        CronStore,
        cron_store_for,
    )
    from orra_di.cron.tool import (
        CronTool,
        register_tool,
    )

_WHERE = {
    "AgentTurnPayload": "orra_di.cron.model",
    "AtSchedule": "orra_di.cron.schedule",
    "Claim": "orra_di.cron.stores",
    "CronDelivery": "orra_di.cron.model",
    "CronExpressionSchedule": "orra_di.cron.schedule",
    "CronJob": "orra_di.cron.model",
    "CronJobStatus": "orra_di.cron.model",
    "CronPayload": "orra_di.cron.model",
    "CronRun": "orra_di.cron.model",
    "CronSchedule": "orra_di.cron.schedule",
    "CronService": "orra_di.cron.service",
    "CronStore": "orra_di.cron.stores",
    "CronTool": "orra_di.cron.tool",
    "EverySchedule": "orra_di.cron.schedule",
    "JobInfo": "orra_di.cron.scheduler",
    "PRUNE_JOB_ID": "orra_di.cron.service",
    "PruneSessionsPayload": "orra_di.cron.model",
    "Schedule": "orra_di.cron.schedule",
    "Scheduler": "orra_di.cron.scheduler",
    "SystemEventPayload": "orra_di.cron.model",
    "cron_store_for": "orra_di.cron.stores",
    "erase_tenant": "orra_di.cron.service",
    "job_session": "orra_di.cron.service",
    "register_tool": "orra_di.cron.tool",
}

__all__ = [
    "PRUNE_JOB_ID",
    "AgentTurnPayload",
    "AtSchedule",
    "Claim",
    "CronDelivery",
    "CronExpressionSchedule",
    "CronJob",
    "CronJobStatus",
    "CronPayload",
    "CronRun",
    "CronSchedule",
    "CronService",
    "CronStore",
    "CronTool",
    "EverySchedule",
    "JobInfo",
    "PruneSessionsPayload",
    "Schedule",
    "Scheduler",
    "SystemEventPayload",
    "cron_store_for",
    "erase_tenant",
    "job_session",
    "register_tool",
]


def __getattr__(name: str) -> Any:
    try:
        module = _WHERE[name]
    except KeyError:
        raise AttributeError(f"module 'orra_di.cron' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
