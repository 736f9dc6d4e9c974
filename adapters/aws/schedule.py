"""Dapr's cron dialect → EventBridge Scheduler schedule expressions, exactly or not at all.

`portabind.bindings.cron.parse_schedule` reads the Dapr schedule; this module writes what
it parsed in EventBridge's dialect: `cron(minutes hours day-of-month month day-of-week year)`
(no seconds field, a year field, `?` in one of the day fields, day-of-week 1-7 with 1 =
Sunday) or `rate(N minutes|hours|days)`. Each field is written from its expanded values, not
its text, so names, `?`, `N/step` and descriptors all come out in one spelling EventBridge
reads the same way robfig does.

A schedule whose firings EventBridge cannot reproduce raises `Untranslatable` (the one the
other targets' translations in `portabind.tooling.crontab` raise) naming the part at fault, never an
approximation: a seconds field other than `0` (EventBridge fires on whole minutes), an
`@every` interval that is not whole minutes, and both day fields restricted (robfig fires on
a day matching either; EventBridge accepts only one of them), which `crontab` decides for
every target alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from portabind.bindings.cron import FIELDS
from portabind.tooling.crontab import Untranslatable, day_fields

if TYPE_CHECKING:
    from portabind.bindings.cron import CronSchedule

#: Seconds in a day, an hour, a minute: the units `rate()` takes, largest first.
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))
#: EventBridge fields that accept `start/step`; day-of-week does not.
_STEPPED = frozenset({"minute", "hour", "day_of_month", "month"})
_HIGH = {"minute": 59, "hour": 23, "day_of_month": 31, "month": 12, "day_of_week": 7}


@dataclass(frozen=True)
class Expression:
    """An EventBridge Scheduler `ScheduleExpression` and its zone (None: the platform's)."""

    expression: str
    timezone: str | None


def _rate(seconds: int) -> str:
    for size, unit in _UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"rate({count} {unit}{'' if count == 1 else 's'})"
    raise Untranslatable(
        f"@every {seconds}s is not a whole number of minutes; EventBridge's shortest "
        "interval is rate(1 minute)"
    )


def _ranges(values: list[int]) -> str:
    """`1,2,3,7` → `1-3,7`: consecutive runs of three or more as ranges."""
    parts: list[str] = []
    start = previous = values[0]
    for value in [*values[1:], None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        if previous - start >= 2:
            parts.append(f"{start}-{previous}")
        else:
            parts.extend(str(v) for v in range(start, previous + 1))
        if value is not None:
            start = previous = value
    return ",".join(parts)


def _field(name: str, values: frozenset[int]) -> str:
    ordered = sorted(values)
    if name in _STEPPED and len(ordered) > 2:
        step = ordered[1] - ordered[0]
        progression = list(range(ordered[0], _HIGH[name] + 1, step))
        if step > 1 and ordered == progression:
            return f"{ordered[0]}/{step}"
    return _ranges(ordered)


def translate(schedule: CronSchedule) -> Expression:
    """The EventBridge Scheduler expression firing when `schedule` fires."""
    if schedule.every is not None:
        return Expression(_rate(int(schedule.every.total_seconds())), schedule.timezone)
    if schedule.field_values("second") != frozenset({0}):
        raise Untranslatable(
            f"seconds field {schedule.field('second')!r} fires within the minute; EventBridge "
            "fires on whole minutes only (use 0 for the seconds, or a 5-field schedule)"
        )
    star = dict(zip(FIELDS, schedule.wildcard, strict=True))

    def written(name: str) -> str:
        return "*" if star[name] else _field(name, schedule.field_values(name))

    # robfig's day rule, decided once for every target: "*" marks a field matching any day.
    day_of_month, day_of_week = day_fields(schedule, "EventBridge Scheduler")
    if day_of_week == "*":
        day_of_week = "?"
        if day_of_month != "*":
            day_of_month = written("day_of_month")
    else:  # robfig: 0 = Sunday; EventBridge: 1 = Sunday
        day_of_month = "?"
        sunday_one = frozenset(v + 1 for v in schedule.field_values("day_of_week"))
        day_of_week = _field("day_of_week", sunday_one)
    fields = [written("minute"), written("hour"), day_of_month, written("month"), day_of_week]
    return Expression(f"cron({' '.join(fields)} *)", schedule.timezone)
