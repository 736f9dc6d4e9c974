"""`bindings.cron`: fire an event on a schedule, input only (Dapr's: components-contrib
`bindings/cron/cron.go`).

`parse_schedule` is the one reading of Dapr's cron dialect (dapr/kit `cron`, a robfig/cron
fork): five or six fields (a leading seconds field is optional), `dow` 0-6 with 0 = Sunday,
month and weekday names, `?` as `*`, the descriptors `@every <duration>`, `@hourly`,
`@daily`/`@midnight`, `@weekly`, `@monthly`, `@yearly`/`@annually`, and a `CRON_TZ=`/`TZ=`
zone prefix. It returns a `CronSchedule` that the cloud adapters translate into their own
schedule syntax, so every target fires at the same moments. croniter computes the next
moment; it is imported only when a schedule is run.

Each tick is one event: empty data, metadata `timeZone` and `readTimeUTC` (RFC 3339), built by
`event_for` on every target.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portabind.binding import Binding, InputBinding
from portabind.events import BindingEvent, Metadata, rfc3339
from portabind.metadata import BindingMetadata, field_validator, parse_duration, setting

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Field names, bounds and accepted names, seconds first (robfig's order).
FIELDS = ("second", "minute", "hour", "day_of_month", "month", "day_of_week")
BOUNDS = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day_of_month": (1, 31),
    "month": (1, 12),
    "day_of_week": (0, 6),
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NAMES = {
    "month": {name: number for number, name in enumerate(_MONTHS, start=1)},
    "day_of_week": {
        name: number
        for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
    },
}
#: Descriptors as robfig expands them (six fields, seconds first).
DESCRIPTORS = {
    "@yearly": "0 0 0 1 1 *",
    "@annually": "0 0 0 1 1 *",
    "@monthly": "0 0 0 1 * *",
    "@weekly": "0 0 0 * * 0",
    "@daily": "0 0 0 * * *",
    "@midnight": "0 0 0 * * *",
    "@hourly": "0 0 * * * *",
}
_GO_DURATION = re.compile(r"^[+-]?(?:[0-9]*\.?[0-9]+(?:ns|us|µs|μs|ms|s|m|h))+$|^0$")
#: What `timeZone` says when the schedule runs in the machine's zone (Dapr's Go `time.Local`).
LOCAL = "Local"


class ScheduleError(ValueError):
    """A schedule Dapr's parser would refuse; the message names the part that is wrong."""


@dataclass(frozen=True)
class CronSchedule:
    """A parsed Dapr schedule.

    Either `every` is set (`@every`: a fixed interval, whole seconds, counted from the start)
    or the six `fields` are: the text of each field, seconds first (`"0"` when the source had
    five fields), `?` replaced by `*`, names kept. `values` holds each field expanded to its
    numbers and `wildcard` which fields are unrestricted (`*`, `?`, `*/1`): as in cron, when
    both day fields are restricted a day matching either one fires. `timezone` is the IANA
    name of a `CRON_TZ=`/`TZ=` prefix, or None for the machine's zone.
    """

    source: str
    timezone: str | None
    every: timedelta | None = None
    descriptor: str | None = None
    fields: tuple[str, ...] = ()
    values: tuple[frozenset[int], ...] = ()
    wildcard: tuple[bool, ...] = ()
    has_seconds: bool = False

    def field(self, name: str) -> str:
        return self.fields[FIELDS.index(name)]

    def field_values(self, name: str) -> frozenset[int]:
        return self.values[FIELDS.index(name)]

    def normalized(self) -> str:
        """The six fields with every restricted field spelt as a sorted list of numbers and
        every wildcard as `*`: one unambiguous form for schedulers with other dialects."""
        return " ".join(
            "*" if star else ",".join(str(v) for v in sorted(values))
            for values, star in zip(self.values, self.wildcard, strict=True)
        )

    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone) if self.timezone else local_zone()

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (aware), in the schedule's zone."""
        moment = moment.astimezone(self.zone())
        if self.every is not None:
            return moment.replace(microsecond=0) + self.every
        from croniter import croniter

        following: datetime = croniter(
            self.normalized(), moment, second_at_beginning=True, day_or=True
        ).get_next(datetime)
        return following


def local_zone() -> tzinfo:
    """The machine's zone with its DST rules (`TZ`, else /etc/localtime), else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file)
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return timezone.utc


def _number(text: str, name: str, source: str) -> int:
    names = _NAMES.get(name, {})
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ScheduleError(f"failed to parse int from {text!r} in {source!r}")
    return int(text)


def _expand(text: str, name: str) -> tuple[frozenset[int], bool]:
    """One field's numbers and whether it is a wildcard, by robfig's `getRange` rules."""
    low, high = BOUNDS[name]
    values: set[int] = set()
    wildcard = False
    for part in text.split(","):
        range_and_step = part.split("/")
        if len(range_and_step) > 2:
            raise ScheduleError(f"too many slashes: {part!r}")
        bounds = range_and_step[0].split("-")
        if len(bounds) > 2:
            raise ScheduleError(f"too many hyphens: {part!r}")
        star = bounds[0] in ("*", "?")
        if star:
            if len(bounds) > 1:
                raise ScheduleError(f"failed to parse int from {bounds[1]!r} in {part!r}")
            start, end = low, high
        else:
            start = _number(bounds[0], name, part)
            end = _number(bounds[1], name, part) if len(bounds) == 2 else start
        step = 1
        if len(range_and_step) == 2:
            step = _number(range_and_step[1], "", part)
            if len(bounds) == 1 and not star:
                end = high  # "N/step" means "N-max/step"
        if start < low:
            raise ScheduleError(f"beginning of range ({start}) below minimum ({low}): {part!r}")
        if end > high:
            raise ScheduleError(f"end of range ({end}) above maximum ({high}): {part!r}")
        if start > end:
            raise ScheduleError(f"beginning of range ({start}) beyond end ({end}): {part!r}")
        if step == 0:
            raise ScheduleError(f"step of range should be a positive number: {part!r}")
        values.update(range(start, end + 1, step))
        wildcard = wildcard or (star and step == 1)
    return frozenset(values), wildcard


def _every(text: str, source: str) -> timedelta:
    if not _GO_DURATION.match(text):
        raise ScheduleError(f"failed to parse duration {source!r}: use e.g. @every 1h30m")
    interval = parse_duration(text)
    # robfig truncates to whole seconds and runs at least once a second.
    return max(timedelta(seconds=int(interval.total_seconds())), timedelta(seconds=1))


def parse_schedule(source: str) -> CronSchedule:
    """Parse a Dapr cron schedule; `ScheduleError` says what is wrong."""
    text = source.strip()
    if not text:
        raise ScheduleError("schedule not set")
    zone_name: str | None = None
    if text.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, text = text.partition(" ")
        zone_name = prefix.split("=", 1)[1]
        try:
            ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"provided bad location {zone_name}") from None
        text = text.strip()
    if text.startswith("@every "):
        every = _every(text.removeprefix("@every ").strip(), source)
        return CronSchedule(source, zone_name, every=every, descriptor="@every")
    descriptor = None
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {text}")
        descriptor, text = text, DESCRIPTORS[text]
    parts = text.split()
    if len(parts) not in (5, 6):
        raise ScheduleError(f"expected 5 to 6 fields, found {len(parts)}: {text}")
    has_seconds = len(parts) == 6
    if not has_seconds:
        parts.insert(0, "0")
    expanded = [_expand(part, name) for part, name in zip(parts, FIELDS, strict=True)]
    return CronSchedule(
        source,
        zone_name,
        descriptor=descriptor,
        fields=tuple(part.replace("?", "*") for part in parts),
        values=tuple(values for values, _ in expanded),
        wildcard=tuple(star for _, star in expanded),
        has_seconds=has_seconds or descriptor is not None,
    )


def event_for(name: str, schedule: CronSchedule, read_time: datetime | None = None) -> BindingEvent:
    """The event of one tick: no data; `timeZone` (the prefix zone, else Dapr's `Local`) and
    `readTimeUTC`, the moment the tick was read (now unless the platform gives it)."""
    moment = read_time or datetime.now(timezone.utc)
    return BindingEvent(
        name,
        b"",
        Metadata({"timeZone": schedule.timezone or LOCAL, "readTimeUTC": rfc3339(moment)}),
    )


class CronMetadata(BindingMetadata):
    binding_type = "bindings.cron"

    schedule: str = setting(
        "schedule", description='cron schedule, e.g. "@every 15m" or "0 30 * * * *"'
    )

    @field_validator("schedule")
    @classmethod
    def _valid(cls, value: str) -> str:
        try:
            parse_schedule(value)
        except ScheduleError as error:
            raise ValueError(f"invalid schedule format {value!r}: {error}") from None
        return value

    def parsed(self) -> CronSchedule:
        return parse_schedule(self.schedule)


class CronInput(InputBinding[CronMetadata]):
    """Fires on the real clock. As in Dapr, the handler's outcome changes nothing: a failed
    tick is logged and not retried, and the next tick fires on time. Ticks that fall while a
    handler is still running are skipped, not queued."""

    def listen(self, deliver: Callable[[BindingEvent], None], stop: threading.Event) -> None:
        schedule = self.metadata.parsed()
        following = schedule.next_after(datetime.now(timezone.utc))
        while not stop.is_set():
            delay = (following - datetime.now(timezone.utc)).total_seconds()
            if delay > 0 and stop.wait(delay):
                return
            try:
                deliver(event_for(self.name, schedule))
            except Exception as error:  # Dapr ignores the app's result: no retry
                log.warning("%s: cron handler failed (%s); not retried", self.name, error)
            following = schedule.next_after(max(following, datetime.now(timezone.utc)))


binding = Binding(metadata=CronMetadata, input=CronInput)
