"""When a job fires: cron expressions with a time zone, fixed intervals, one-shot times.

:class:`CronSchedule` is standard (Vixie) cron on ``cronsim`` (``orra-di[cron]``),
replacing orra's hand-written parser (spec §5.7, bug 35):

- five fields, ``minute hour day-of-month month day-of-week``; ``*/n`` steps count
  from the field's first value (day-of-month ``*/2`` is 1, 3, 5, … as in cron, not
  orra's "divisible by 2"); ``a-b/n``, lists, names (``MON``, ``JAN``), ``7`` for
  Sunday, and cronsim's ``L``/``W``/``#`` extensions;
- day-of-month and day-of-week are OR-ed when both are restricted (``0 0 1 * MON``
  is "the 1st and every Monday"), AND-ed when either starts with ``*``;
- ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
  ``@hourly``; values out of range are refused, not silently never matched;
- evaluated in an IANA time zone (``Europe/Paris``), UTC by default.

Daylight-saving time, the documented choice (Debian cron's, which cronsim follows):

- a job at a fixed wall-clock time (minute and hour fields not starting with ``*``)
  whose time does not exist that day (02:30 when clocks jump from 02:00 to 03:00)
  fires once at the first minute after the gap (03:00); a time that happens twice
  (01:30 when clocks fall back) fires once, at its first occurrence;
- a job whose minute or hour field starts with ``*`` (``*/15 * * * *``) follows
  elapsed time: it fires at each matching clock reading that exists, so both
  passes of a repeated hour and none of a skipped one.

Every computed fire time is returned in UTC, whole minutes, strictly after the
instant it is computed from (bug 36: orra kept the seconds of "now").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import datetime as DateTime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from orra_di.errors import CronError, install_hint

__all__ = [
    "MAX_EVERY_MS",
    "AtSchedule",
    "CronExpressionSchedule",
    "CronSchedule",
    "EverySchedule",
    "Schedule",
    "check_timezone",
    "describe_schedule",
]

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def check_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Paris``, ``UTC``); CronError if unknown."""
    if not isinstance(name, str) or not name.strip():
        raise CronError("a time zone is required, e.g. 'UTC' or 'Europe/Paris'")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"unknown time zone {name!r}: use an IANA name such as 'UTC', 'Europe/Paris' "
            "or 'America/New_York' (on a system without zone data, pip install tzdata)"
        ) from None


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise CronError(f"{moment.isoformat()} has no time zone; give an aware datetime")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class CronSchedule:
    """A standard five-field cron expression evaluated in a time zone.

    ``CronSchedule.parse("0 9 * * MON-FRI", "Europe/Paris")`` raises
    :class:`~orra_di.errors.CronError` naming the bad field or zone.
    """

    expression: str
    timezone: str = "UTC"
    _expanded: str = field(default="", repr=False, compare=False)
    _zone: ZoneInfo = field(default=ZoneInfo("UTC"), repr=False, compare=False)

    @classmethod
    def parse(cls, expression: str, timezone: str = "UTC") -> CronSchedule:
        if not isinstance(expression, str):
            raise CronError(f"a cron expression is a string, got {type(expression).__name__}")
        text = " ".join(expression.split())
        zone = check_timezone(timezone)
        expanded = ALIASES.get(text.lower(), text)
        if text.startswith("@") and text.lower() not in ALIASES:
            raise CronError(
                f"invalid cron expression {expression!r}: unknown alias; use one of "
                + ", ".join(ALIASES)
            )
        fields = expanded.split()
        if len(fields) != 5:
            raise CronError(
                f"invalid cron expression {expression!r}: expected 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(fields)}"
            )
        try:
            from cronsim import CronSim, CronSimError
        except ImportError:  # pragma: no cover - the extra is part of dev
            raise CronError(f"cron expressions need cronsim: {install_hint('cron')}") from None
        try:
            CronSim(expanded, datetime(2000, 1, 1, tzinfo=UTC))
        except CronSimError as exc:
            raise CronError(
                f"invalid cron expression {expression!r}: {str(exc).lower()} "
                "(fields: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, "
                "day-of-week 0-7 or SUN-SAT)"
            ) from None
        return cls(text, zone.key, expanded, zone)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after ``moment`` (UTC), or None if it never fires."""
        from cronsim import CronSim

        local = _utc(moment).astimezone(self._zone)
        try:
            found = next(CronSim(self._expanded or self.expression, local))
        except StopIteration:
            return None
        return found.astimezone(UTC)

    def matches(self, moment: datetime) -> bool:
        """True when the schedule fires at ``moment``'s minute (orra's ``matches``)."""
        minute = _utc(moment).replace(second=0, microsecond=0)
        return self.next_after(minute - timedelta(seconds=1)) == minute


# -- the three kinds of schedule a job has (orra's CronScheduleType) --------------------


class _Kind(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AtSchedule(_Kind):
    """Fire once at ``datetime`` (orra's ``at``)."""

    type: Literal["at"] = "at"
    datetime: DateTime

    @field_validator("datetime")
    @classmethod
    def _aware(cls, value: DateTime) -> DateTime:
        if value.tzinfo is None:
            raise ValueError("an 'at' time needs a zone: '2025-06-15T09:00:00Z' or '...+02:00'")
        return value.astimezone(UTC)

    def next_after(self, moment: DateTime) -> DateTime | None:
        return self.datetime if self.datetime > _utc(moment) else None


MAX_EVERY_MS = 1000 * 366 * 86_400_000
"""The longest ``every`` interval: a thousand years, in milliseconds."""


class EverySchedule(_Kind):
    """Fire every ``interval_ms`` milliseconds (orra's ``every``)."""

    type: Literal["every"] = "every"
    # At most a thousand years: far longer overflows the next run's date (year 9999).
    interval_ms: int = Field(gt=0, le=MAX_EVERY_MS)

    def next_after(self, moment: datetime, anchor: datetime | None = None) -> datetime:
        """The next multiple of the interval after ``anchor`` (orra's fast-forward) that is
        strictly after ``moment``; from ``moment`` itself without an anchor."""
        step = timedelta(milliseconds=self.interval_ms)
        now = _utc(moment)
        if anchor is None:
            return now + step
        start = _utc(anchor)
        if start > now:
            return start
        periods = (now - start) // step + 1
        return start + periods * step


class CronExpressionSchedule(_Kind):
    """Fire by a cron expression in ``timezone`` (orra's ``cron``, plus the zone)."""

    type: Literal["cron"] = "cron"
    expression: str
    timezone: str = "UTC"

    _parsed: CronSchedule | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        # Parsed once; refuses a bad expression or zone as the job is built.
        self._parsed = CronSchedule.parse(self.expression, self.timezone)

    @property
    def cron(self) -> CronSchedule:
        assert self._parsed is not None
        return self._parsed

    def next_after(self, moment: datetime) -> datetime | None:
        return self.cron.next_after(moment)


Schedule = Annotated[
    AtSchedule | EverySchedule | CronExpressionSchedule, Field(discriminator="type")
]
"""A job's schedule, internally tagged by ``type`` as in orra's JSON."""


def describe_schedule(schedule: AtSchedule | EverySchedule | CronExpressionSchedule) -> str:
    """orra's list wording: ``at <time>``, ``every <n>ms``, ``cron: <expr>`` (+ zone)."""
    if isinstance(schedule, AtSchedule):
        return f"at {schedule.datetime.isoformat()}"
    if isinstance(schedule, EverySchedule):
        return f"every {schedule.interval_ms}ms"
    zone = "" if schedule.timezone == "UTC" else f" ({schedule.timezone})"
    return f"cron: {schedule.expression}{zone}"
