"""CronSchedule: orra's parser tests (spec §3, src/scheduler.rs) as behaviour, adapted where
standard cron differs (bug 35), plus time zones and both DST transitions in two zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from orra_di.cron import CronSchedule
from orra_di.errors import CronError

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_parse_every_minute() -> None:
    assert CronSchedule.parse("* * * * *").matches(at(2025, 6, 15, 10, 30))


def test_parse_specific_minute() -> None:
    s = CronSchedule.parse("30 * * * *")
    assert s.matches(at(2025, 6, 15, 10, 30))
    assert not s.matches(at(2025, 6, 15, 10, 15))


def test_parse_every_5_minutes() -> None:
    s = CronSchedule.parse("*/5 * * * *")
    assert s.matches(at(2025, 6, 15, 10, 0))
    assert s.matches(at(2025, 6, 15, 10, 5))
    assert not s.matches(at(2025, 6, 15, 10, 3))


def test_parse_range() -> None:
    s = CronSchedule.parse("0 9-17 * * *")
    assert s.matches(at(2025, 6, 15, 9, 0)) and s.matches(at(2025, 6, 15, 17, 0))
    assert not s.matches(at(2025, 6, 15, 8, 0))


def test_parse_comma_list() -> None:
    s = CronSchedule.parse("0 8,12,18 * * *")
    assert all(s.matches(at(2025, 6, 15, h, 0)) for h in (8, 12, 18))
    assert not s.matches(at(2025, 6, 15, 9, 0))


def test_parse_weekday() -> None:
    s = CronSchedule.parse("0 9 * * 1-5")
    assert s.matches(at(2025, 6, 16, 9, 0))  # Monday
    assert not s.matches(at(2025, 6, 15, 9, 0))  # Sunday


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("* * *", "expected 5 fields"),
        ("abc * * * *", "bad minute"),
        ("*/0 * * * *", "bad minute"),  # orra: "step cannot be 0"
        ("99 * * * *", "bad minute"),  # orra accepted 99 and never matched (bug 35)
        ("0 0 31 2 *", "bad day-of-month"),
        ("0 0 * * * *", "expected 5 fields"),  # seconds are not standard cron
        ("@reboot", "unknown alias"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, says: str) -> None:
    with pytest.raises(CronError, match=says):
        CronSchedule.parse(expression)


def test_expression_roundtrip() -> None:
    assert CronSchedule.parse("0 */2 * * 1-5").expression == "0 */2 * * 1-5"


def test_an_unknown_time_zone_is_refused_with_the_form_to_use() -> None:
    with pytest.raises(CronError, match=r"unknown time zone 'Mars/Olympus'.*IANA"):
        CronSchedule.parse("0 9 * * *", "Mars/Olympus")


# -- standard cron where orra differed (bug 35) ----------------------------------------


def test_step_on_day_of_month_counts_from_the_first_day() -> None:
    # orra: "value divisible by 2" (2, 4, ...); cron: 1, 3, 5, ...
    s = CronSchedule.parse("0 0 */2 * *")
    assert s.matches(at(2025, 6, 1, 0, 0)) and s.matches(at(2025, 6, 3, 0, 0))
    assert not s.matches(at(2025, 6, 2, 0, 0))


def test_day_of_month_and_day_of_week_are_ored() -> None:
    s = CronSchedule.parse("0 0 1 * MON")  # orra AND-ed them: only a Monday the 1st
    assert s.matches(at(2025, 6, 1, 0, 0))  # a Sunday, the 1st
    assert s.matches(at(2025, 6, 9, 0, 0))  # a Monday, the 9th


def test_seven_is_sunday_and_names_work() -> None:
    assert CronSchedule.parse("0 0 * * 7").matches(at(2025, 6, 15, 0, 0))
    assert CronSchedule.parse("0 0 * JUN SUN").matches(at(2025, 6, 15, 0, 0))
    assert CronSchedule.parse("0 0 1-10/3 * *").matches(at(2025, 6, 7, 0, 0))


def test_aliases() -> None:
    assert CronSchedule.parse("@daily").next_after(at(2025, 6, 15, 10, 30)) == at(2025, 6, 16)
    assert CronSchedule.parse("@hourly").next_after(at(2025, 6, 15, 10, 30)) == at(2025, 6, 15, 11)


def test_next_fire_is_a_whole_minute_strictly_after() -> None:
    # orra kept the seconds of "from" (bug 36): 10:30:15 gave 11:00:15
    s = CronSchedule.parse("0 * * * *")
    assert s.next_after(datetime(2025, 6, 15, 10, 30, 15, tzinfo=UTC)) == at(2025, 6, 15, 11)
    assert s.next_after(at(2025, 6, 15, 11)) == at(2025, 6, 15, 12)


def test_time_zone_of_the_schedule() -> None:
    s = CronSchedule.parse("0 9 * * MON-FRI", "Europe/Paris")
    # Friday 13 June 2025 18:00 UTC -> Monday 16 June 09:00 Paris = 07:00 UTC
    assert s.next_after(at(2025, 6, 13, 18)) == at(2025, 6, 16, 7)


# -- DST: the documented choice, in two zones -------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expression", "before", "fires"),
    [
        # Paris jumps from 02:00 to 03:00 on 30 March 2025: 02:30 does not exist.
        (PARIS, "30 2 * * *", datetime(2025, 3, 29, 12, tzinfo=PARIS), (2025, 3, 30, 3, 0)),
        # New York jumps from 02:00 to 03:00 on 9 March 2025.
        (NEW_YORK, "30 2 * * *", datetime(2025, 3, 8, 12, tzinfo=NEW_YORK), (2025, 3, 9, 3, 0)),
    ],
)
def test_a_time_that_does_not_exist_fires_once_just_after_the_gap(
    zone: ZoneInfo, expression: str, before: datetime, fires: tuple[int, ...]
) -> None:
    s = CronSchedule.parse(expression, zone.key)
    first = s.next_after(before)
    assert first == datetime(*fires, tzinfo=zone).astimezone(UTC)
    second = s.next_after(first)  # type: ignore[arg-type]
    assert second is not None
    local = second.astimezone(zone)
    assert (local.day, local.hour, local.minute) == (fires[2] + 1, 2, 30)  # back to normal


@pytest.mark.parametrize(
    ("zone", "day"),
    [(PARIS, datetime(2025, 10, 26, 0, 0)), (NEW_YORK, datetime(2025, 11, 2, 0, 0))],
)
def test_a_time_that_happens_twice_fires_once_at_the_first(zone: ZoneInfo, day: datetime) -> None:
    # Paris falls back 03:00 -> 02:00 (02:30 twice); New York 02:00 -> 01:00 (01:30 twice).
    hour = 2 if zone is PARIS else 1
    s = CronSchedule.parse(f"30 {hour} * * *", zone.key)
    start = day.replace(tzinfo=zone)
    first = s.next_after(start)
    assert first is not None
    assert first == day.replace(hour=hour, minute=30, tzinfo=zone, fold=0).astimezone(UTC)
    following = s.next_after(first)
    assert following is not None and following - first > (
        datetime(2025, 1, 2, tzinfo=UTC) - datetime(2025, 1, 1, 12, tzinfo=UTC)
    )  # the second 01:30/02:30 is not a fire time: the next is the following day


def test_an_interval_job_follows_elapsed_time_through_the_repeated_hour() -> None:
    s = CronSchedule.parse("*/30 * * * *", "Europe/Paris")
    moment = datetime(2025, 10, 26, 1, 40, tzinfo=PARIS).astimezone(UTC)
    fires = []
    for _ in range(5):
        moment = s.next_after(moment)  # type: ignore[assignment]
        fires.append(moment)
    # every 30 real minutes: both passes of 02:00-03:00 are there
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(fires)] == [1800.0] * 4
