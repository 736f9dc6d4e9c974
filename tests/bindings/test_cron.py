"""bindings.cron: Dapr's schedule dialect, and the listener on the real clock."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from portabind.bindings.cron import (
    CronInput,
    CronMetadata,
    ScheduleError,
    binding,
    event_for,
    parse_schedule,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from portabind.events import BindingEvent

pytest.importorskip("croniter")

UTC = timezone.utc


class Listening:
    """A listener of `schedule` on the real clock, in a thread from now until `stop`."""

    def __init__(
        self, schedule: str, handler: Callable[[BindingEvent], None] | None = None
    ) -> None:
        self.received: list[tuple[float, BindingEvent]] = []
        self._handler = handler
        self._stop = threading.Event()
        listener = CronInput("tick", CronMetadata.model_validate({"schedule": schedule}))
        self._thread = threading.Thread(
            target=listener.listen, args=(self._deliver, self._stop), daemon=True
        )
        self._thread.start()

    def _deliver(self, event: BindingEvent) -> None:
        self.received.append((time.time(), event))
        if self._handler is not None:
            self._handler(event)

    def stop(self) -> list[tuple[float, BindingEvent]]:
        """Stop the listener; the (arrival, event) pairs it delivered."""
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "the listener must return soon after stop is set"
        return self.received


def _listen(schedule: str, seconds: float) -> list[tuple[float, BindingEvent]]:
    """Run the listener for `seconds` of real time; return (arrival, event) pairs."""
    listening = Listening(schedule)
    time.sleep(seconds)
    return listening.stop()


def _fail(event: BindingEvent) -> None:
    raise RuntimeError("handler broke")


@pytest.fixture(scope="module")
def ticks() -> dict[str, list[tuple[float, BindingEvent]]]:
    """What the listeners that wait for several ticks received: each listens for seconds of
    real time, so they listen side by side, each for as long as it did alone."""
    started = time.monotonic()
    every_second = Listening("@every 1s")
    kolkata = Listening("CRON_TZ=Asia/Kolkata */1 * * * * ?")
    failing = Listening("@every 1s", _fail)
    time.sleep(2.6)
    received = {"kolkata": kolkata.stop(), "failing": failing.stop()}
    time.sleep(max(0.0, started + 3.6 - time.monotonic()))
    received["every second"] = every_second.stop()
    return received


def test_every_second_fires_empty_events_with_time_zone_and_read_time(
    ticks: dict[str, list[tuple[float, BindingEvent]]],
) -> None:
    received = ticks["every second"]

    assert 3 <= len(received) <= 4
    arrivals = [arrival for arrival, _ in received]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(0.8 < gap < 1.3 for gap in gaps), gaps
    for arrival, event in received:
        assert event.name == "tick"
        assert event.data == b""
        assert set(event.metadata) == {"timeZone", "readTimeUTC"}
        assert event.metadata["timeZone"] == "Local"
        read = datetime.fromisoformat(event.metadata["readTimeUTC"].replace("Z", "+00:00"))
        assert read.tzinfo is not None and read.utcoffset() == timedelta(0)
        assert abs(read.timestamp() - arrival) < 0.5


def test_six_field_schedule_fires_on_whole_seconds_in_the_prefix_zone(
    ticks: dict[str, list[tuple[float, BindingEvent]]],
) -> None:
    received = ticks["kolkata"]

    assert len(received) >= 2
    for arrival, event in received:
        assert event.metadata["timeZone"] == "Asia/Kolkata"
        assert arrival % 1 < 0.5  # fired at the start of a second (with slack for a busy CI)


def test_a_failing_handler_is_not_retried_and_the_schedule_goes_on(
    ticks: dict[str, list[tuple[float, BindingEvent]]],
) -> None:
    received = ticks["failing"]  # its handler raises at every tick

    arrivals = [arrival for arrival, _ in received]
    assert 2 <= len(arrivals) <= 3  # the schedule went on after a failure
    # one delivery per tick: a failed tick is not delivered again before the next one
    assert all(b - a > 0.8 for a, b in itertools.pairwise(arrivals)), arrivals


def test_stop_ends_a_listener_waiting_for_a_distant_tick() -> None:
    started = time.monotonic()
    assert _listen("@yearly", 0.2) == []
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("source", "fields", "has_seconds"),
    [
        ("0 30 * * * *", ("0", "30", "*", "*", "*", "*"), True),
        ("30 4 * * mon-fri", ("0", "30", "4", "*", "*", "mon-fri"), False),
        ("0 0 12 ? JAN,jul sun", ("0", "0", "12", "*", "JAN,jul", "sun"), True),
        ("@daily", ("0", "0", "0", "*", "*", "*"), True),
        ("@midnight", ("0", "0", "0", "*", "*", "*"), True),
        ("@weekly", ("0", "0", "0", "*", "*", "0"), True),
        ("@annually", ("0", "0", "0", "1", "1", "*"), True),
        ("@hourly", ("0", "0", "*", "*", "*", "*"), True),
    ],
)
def test_parse_gives_six_fields_seconds_first(
    source: str, fields: tuple[str, ...], has_seconds: bool
) -> None:
    schedule = parse_schedule(source)

    assert schedule.fields == fields
    assert schedule.has_seconds is has_seconds
    assert schedule.every is None
    assert schedule.timezone is None


def test_parse_expands_names_ranges_and_steps() -> None:
    schedule = parse_schedule("TZ=Europe/Paris */20 5/15 1-3 * jan,dec mon-wed")

    assert schedule.timezone == "Europe/Paris"
    assert schedule.field_values("second") == {0, 20, 40}
    assert schedule.field_values("minute") == {5, 20, 35, 50}
    assert schedule.field_values("hour") == {1, 2, 3}
    assert schedule.field_values("month") == {1, 12}
    assert schedule.field_values("day_of_week") == {1, 2, 3}
    assert schedule.wildcard == (False, False, False, True, False, False)
    assert schedule.normalized() == "0,20,40 5,20,35,50 1,2,3 * 1,12 1,2,3"


def test_every_is_an_interval_in_whole_seconds() -> None:
    assert parse_schedule("@every 1h30m").every == timedelta(minutes=90)
    assert parse_schedule("@every 1500ms").every == timedelta(seconds=1)
    assert parse_schedule("@every 100ms").every == timedelta(seconds=1)
    assert parse_schedule("CRON_TZ=UTC @every 15s").timezone == "UTC"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "schedule not set"),
        ("* * * *", "expected 5 to 6 fields, found 4"),
        ("0 0 0 * * * *", "expected 5 to 6 fields, found 7"),
        ("0 0 * * 7", "above maximum (6)"),
        ("60 * * * * *", "above maximum (59)"),
        ("0 0 0 * * *-1", "failed to parse int"),
        ("*/0 * * * *", "positive number"),
        ("5-1 * * * *", "beyond end"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("0 0 0 0 * *", "below minimum (1)"),
        ("@fortnightly", "unrecognized descriptor"),
        ("@every 5", "failed to parse duration"),
        ("CRON_TZ=Mars/Olympus 0 * * * *", "bad location"),
        ("0 0 * foo *", "failed to parse int"),
    ],
)
def test_parse_refuses_what_dapr_refuses(source: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule(source)


def test_a_bad_schedule_fails_component_validation_with_daprs_message() -> None:
    with pytest.raises(ValueError, match="invalid schedule format '0 0 \\* \\* 7'"):
        CronMetadata.model_validate({"schedule": "0 0 * * 7"})
    with pytest.raises(ValueError, match="schedule"):
        CronMetadata.model_validate({})


def test_next_after_follows_cron_day_rules_and_the_zone() -> None:
    start = datetime(2024, 1, 1, 0, 0, 0, tzinfo=UTC)  # a Monday
    # Both day fields restricted: a day matching either fires (the 15th, or any Friday).
    either = parse_schedule("TZ=UTC 0 0 15 * fri")
    assert either.next_after(start) == datetime(2024, 1, 5, tzinfo=UTC)
    # Weekday restricted, day of month a wildcard: only Fridays.
    fridays = parse_schedule("TZ=UTC 0 0 * * 5")
    assert fridays.next_after(datetime(2024, 1, 5, tzinfo=UTC)) == datetime(2024, 1, 12, tzinfo=UTC)
    # 04:30 in New York is 09:30 UTC in winter.
    new_york = parse_schedule("CRON_TZ=America/New_York 0 30 04 * * *")
    assert new_york.next_after(start) == datetime(
        2024, 1, 1, 4, 30, tzinfo=ZoneInfo("America/New_York")
    )
    assert new_york.next_after(start).astimezone(UTC).hour == 9
    # Seconds field.
    assert parse_schedule("TZ=UTC 15 * * * * *").next_after(start) == start + timedelta(seconds=15)
    assert parse_schedule("@every 90s").next_after(
        start.replace(microsecond=5)
    ) == start + timedelta(seconds=90)


def test_event_for_is_the_one_tick_shape_on_every_target() -> None:
    moment = datetime(2024, 1, 2, 15, 4, 5, 123000, tzinfo=UTC)

    event = event_for("nightly", parse_schedule("CRON_TZ=Europe/Berlin @daily"), moment)

    assert event.data == b""
    assert dict(event.metadata) == {
        "timeZone": "Europe/Berlin",
        "readTimeUTC": "2024-01-02T15:04:05.123000Z",
    }
    assert binding.directions == {"input"}
