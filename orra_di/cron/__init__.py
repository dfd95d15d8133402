"""Scheduling: cron jobs that run agent turns, on every store, exactly once across replicas.

- :mod:`~orra_di.cron.schedule`: :class:`CronSchedule` (standard cron with a time
  zone, on ``cronsim``: ``pip install "orra-di[cron]"``) and a job's three schedule kinds;
- :mod:`~orra_di.cron.scheduler`: :class:`Scheduler`, in-process callbacks only;
- :mod:`~orra_di.cron.model`: :class:`CronJob` (orra's JSON shape) and :class:`CronRun`;
- :mod:`~orra_di.cron.stores`: :class:`CronStore` beside the sessions in every backend,
  with an atomic claim of due jobs (:func:`cron_store_for` picks it);
- :mod:`~orra_di.cron.service`: :class:`CronService`, which runs the jobs;
- :mod:`~orra_di.cron.tool`: the ``cron`` tool for the model.
"""

from orra_di.cron.model import (
    AgentTurnPayload,
    CronDelivery,
    CronJob,
    CronJobStatus,
    CronPayload,
    CronRun,
    SystemEventPayload,
)
from orra_di.cron.schedule import (
    AtSchedule,
    CronExpressionSchedule,
    CronSchedule,
    EverySchedule,
    Schedule,
)
from orra_di.cron.scheduler import JobInfo, Scheduler
from orra_di.cron.service import CronService, job_session
from orra_di.cron.stores import Claim, CronStore, cron_store_for
from orra_di.cron.tool import CronTool, register_tool

__all__ = [
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
    "Schedule",
    "Scheduler",
    "SystemEventPayload",
    "cron_store_for",
    "job_session",
    "register_tool",
]
