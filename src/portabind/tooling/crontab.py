"""Dapr's cron dialect → the crontab dialects of Azure Functions and Cloud Scheduler, exactly
or not at all.

`portabind.bindings.cron.parse_schedule` reads the Dapr schedule (robfig/cron rules); this
module writes what it parsed: `ncrontab` gives Azure's NCRONTAB (six fields, seconds first),
`unix_cron` Cloud Scheduler's five-field unix-cron. Each field is written from its expanded
values, not its text, so month and weekday names, `?`, `N/step` and descriptors come out in
one spelling every parser reads alike (`*`, `a-b`, `a-b/s`, `*/s`, lists of numbers).

What a target cannot fire at the same moments raises `Untranslatable`, naming the part:
- both day fields restricted: robfig fires on a day matching either; NCrontab requires both,
  and Cloud Scheduler does not document which it does;
- on Cloud Scheduler, a seconds field other than `0` (it fires on whole minutes);
- an `@every` interval that does not divide the minute, hour or day evenly (a crontab
  restarts its steps at each minute, hour or day). An interval that does divide it fires at
  the same period, aligned to the clock; Dapr counts it from the listener's start instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The parser's own field bounds, so a field is "full" exactly when robfig reads it so.
from portabind.bindings.cron import BOUNDS, FIELDS

if TYPE_CHECKING:
    from portabind.bindings.cron import CronSchedule


class Untranslatable(ValueError):
    """A Dapr schedule a target cannot fire at the same moments; says which part."""


def field_text(name: str, values: frozenset[int]) -> str:
    """One field's values in the common crontab spelling."""
    low, high = BOUNDS[name]
    ordered = sorted(values)
    if len(ordered) == high - low + 1:
        return "*"
    if len(ordered) >= 3:
        step = ordered[1] - ordered[0]
        if ordered == list(range(ordered[0], ordered[-1] + 1, step)):
            if step == 1:
                return f"{ordered[0]}-{ordered[-1]}"
            if ordered[0] == low and ordered[-1] + step > high:
                return f"*/{step}"
            return f"{ordered[0]}-{ordered[-1]}/{step}"
    return ",".join(str(value) for value in ordered)


def day_fields(schedule: CronSchedule, target: str) -> tuple[str, str]:
    """(day-of-month, day-of-week) with robfig's rule: when either field is a wildcard a day
    must match both, otherwise it may match either."""
    star = dict(zip(FIELDS, schedule.wildcard, strict=True))
    day_of_month = schedule.field_values("day_of_month")
    day_of_week = schedule.field_values("day_of_week")
    if not star["day_of_month"] and not star["day_of_week"]:
        every_day = len(day_of_month) == 31 or len(day_of_week) == 7
        if not every_day:
            raise Untranslatable(
                f"day-of-month {schedule.field('day_of_month')!r} and day-of-week "
                f"{schedule.field('day_of_week')!r} are both restricted, so Dapr fires on days "
                f"matching either; {target} cannot express that: use one of them, or split "
                "the schedule into two components"
            )
        return "*", "*"
    return (
        "*" if star["day_of_month"] else field_text("day_of_month", day_of_month),
        "*" if star["day_of_week"] else field_text("day_of_week", day_of_week),
    )


#: Units an `@every` interval may divide: (seconds in one, how many fit the next unit,
#: position of its field, seconds first).
_UNITS = ((1, 60, 0), (60, 60, 1), (3600, 24, 2))


def _every(seconds: int, target: str) -> list[str]:
    """Six fields (seconds first) firing every `seconds`, when it divides its unit evenly."""
    for size, limit, position in _UNITS:
        count, rest = divmod(seconds, size)
        if rest == 0 and count < limit and limit % count == 0:
            fields = ["0"] * position + ["*" if count == 1 else f"*/{count}"]
            return fields + ["*"] * (6 - len(fields))
    if seconds == 86400:
        return ["0", "0", "0", "*", "*", "*"]
    raise Untranslatable(
        f"@every {seconds}s does not divide a minute, an hour or a day evenly; {target} "
        "cannot repeat at that interval (use a cron expression instead)"
    )


def _fields(schedule: CronSchedule, target: str) -> list[str]:
    """The six fields, seconds first."""
    if schedule.every is not None:
        return _every(int(schedule.every.total_seconds()), target)
    day_of_month, day_of_week = day_fields(schedule, target)
    return [
        *(field_text(n, schedule.field_values(n)) for n in ("second", "minute", "hour")),
        day_of_month,
        field_text("month", schedule.field_values("month")),
        day_of_week,
    ]


def ncrontab(schedule: CronSchedule) -> str:
    """Azure Functions' `timer_trigger` schedule (NCRONTAB, seconds first)."""
    return " ".join(_fields(schedule, "an Azure timer trigger (NCRONTAB)"))


def unix_cron(schedule: CronSchedule) -> str:
    """Cloud Scheduler's schedule (five-field unix-cron, whole minutes)."""
    target = "Cloud Scheduler (unix-cron)"
    fields = _fields(schedule, target)
    if fields[0] != "0":
        what = (
            f"@every {int(schedule.every.total_seconds())}s"
            if schedule.every is not None
            else f"seconds field {schedule.field('second')!r}"
        )
        raise Untranslatable(
            f"{what} fires within the minute; {target} fires on whole minutes only "
            "(use 0 for the seconds, or a five-field schedule)"
        )
    return " ".join(fields[1:])
