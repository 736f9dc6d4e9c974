"""Dapr cron schedules → EventBridge Scheduler expressions: exact, or a clear refusal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from portabind.adapters.aws.schedule import Untranslatable, translate
from portabind.bindings.cron import parse_schedule


@pytest.mark.parametrize(
    ("dapr", "expression", "zone"),
    [
        # descriptors, as robfig expands them
        ("@hourly", "cron(0 * * * ? *)", None),
        ("@daily", "cron(0 0 * * ? *)", None),
        ("@midnight", "cron(0 0 * * ? *)", None),
        ("@weekly", "cron(0 0 ? * 1 *)", None),
        ("@monthly", "cron(0 0 1 * ? *)", None),
        ("@yearly", "cron(0 0 1 1 ? *)", None),
        ("@annually", "cron(0 0 1 1 ? *)", None),
        # @every in the largest whole unit
        ("@every 1m", "rate(1 minute)", None),
        ("@every 5m", "rate(5 minutes)", None),
        ("@every 120s", "rate(2 minutes)", None),
        ("@every 2h30m", "rate(150 minutes)", None),
        ("@every 1h", "rate(1 hour)", None),
        ("@every 24h", "rate(1 day)", None),
        ("@every 48h", "rate(2 days)", None),
        # five fields (no seconds) and six fields with second 0
        ("*/5 * * * *", "cron(0/5 * * * ? *)", None),
        ("0 */15 * * * *", "cron(0/15 * * * ? *)", None),
        ("0 30 * * * *", "cron(30 * * * ? *)", None),
        ("0 0 9-17 * * *", "cron(0 9-17 * * ? *)", None),
        ("0 5-20/5 * * * *", "cron(5,10,15,20 * * * ? *)", None),
        ("0 10/20 * * * *", "cron(10/20 * * * ? *)", None),
        # day of week: robfig 0 = Sunday, EventBridge 1 = Sunday; names as numbers
        ("0 30 9 * * MON-FRI", "cron(30 9 ? * 2-6 *)", None),
        ("0 0 9 * * 0,6", "cron(0 9 ? * 1,7 *)", None),
        ("0 0 1 * * SUN", "cron(0 1 ? * 1 *)", None),
        ("0 0 12 ? * */2", "cron(0 12 ? * 1,3,5,7 *)", None),
        # day of month, months by name, `?` as a wildcard
        ("0 0 8 1,15 * *", "cron(0 8 1,15 * ? *)", None),
        ("0 0 0 1 JAN,jul ?", "cron(0 0 1 1,7 ? *)", None),
        ("0 0 6 1-3 1 *", "cron(0 6 1-3 1 ? *)", None),
        ("0 0 0 1 */3 *", "cron(0 0 1 1/3 ? *)", None),
        ("*/1 * * * *", "cron(* * * * ? *)", None),
        # both day fields restricted, one of them every day: robfig fires every day
        ("0 0 0 1-31 * MON", "cron(0 0 * * ? *)", None),
        ("0 0 0 1 * 0-6", "cron(0 0 * * ? *)", None),
        # the zone prefix becomes ScheduleExpressionTimezone
        ("CRON_TZ=Europe/Paris 0 30 9 * * MON-FRI", "cron(30 9 ? * 2-6 *)", "Europe/Paris"),
        ("TZ=Asia/Tokyo @daily", "cron(0 0 * * ? *)", "Asia/Tokyo"),
        ("CRON_TZ=America/New_York @every 10m", "rate(10 minutes)", "America/New_York"),
    ],
)
def test_translation_is_exact(dapr: str, expression: str, zone: str | None) -> None:
    translated = translate(parse_schedule(dapr))
    assert translated.expression == expression
    assert translated.timezone == zone


@pytest.mark.parametrize(
    ("dapr", "message"),
    [
        ("30 * * * * *", "seconds field '30'"),
        ("*/10 * * * * *", "seconds field '\\*/10'"),
        ("* * * * * *", "seconds field '\\*'"),
        ("@every 30s", "@every 30s is not a whole number of minutes"),
        ("@every 90s", "@every 90s is not a whole number of minutes"),
        ("@every 1m30s", "@every 90s"),
        ("0 0 0 1 * 1", "day-of-month '1' and day-of-week '1' are both restricted"),
        ("0 0 0 1-7 * MON", "both restricted"),
    ],
)
def test_untranslatable_schedules_are_refused(dapr: str, message: str) -> None:
    with pytest.raises(Untranslatable, match=message):
        translate(parse_schedule(dapr))


def _eventbridge_fires(expression: str, start: datetime, count: int) -> list[datetime]:
    """The moments an EventBridge cron expression fires, computed with croniter after undoing
    EventBridge's dialect (`?` → `*`, day-of-week 1-7 → 0-6, no year)."""
    from croniter import croniter

    fields = expression.removeprefix("cron(").removesuffix(")").split()[:5]
    fields = [f.replace("?", "*") for f in fields]
    if fields[4] != "*":
        fields[4] = ",".join(str(int(d) - 1) for d in _expand_days(fields[4]))
    iterator = croniter(" ".join(fields), start)
    return [iterator.get_next(datetime) for _ in range(count)]


def _expand_days(field: str) -> list[int]:
    days: list[int] = []
    for part in field.split(","):
        low, _, high = part.partition("-")
        days.extend(range(int(low), int(high or low) + 1))
    return days


@pytest.mark.parametrize(
    "dapr",
    ["0 30 9 * * MON-FRI", "0 0 12 ? * */2", "0 10/20 * * * *", "0 0 8 1,15 * *", "@weekly"],
)
def test_translated_schedules_fire_at_the_same_moments(dapr: str) -> None:
    schedule = parse_schedule(f"CRON_TZ=UTC {dapr}")  # croniter below counts in UTC
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    expected, moment = [], start
    for _ in range(40):
        moment = schedule.next_after(moment)
        expected.append(moment)
    fired = _eventbridge_fires(translate(schedule).expression, start, 40)
    assert fired == expected
    assert fired[-1] - fired[0] > timedelta(0)
