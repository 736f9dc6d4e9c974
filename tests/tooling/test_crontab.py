"""Dapr schedules → NCRONTAB (Azure timer trigger) and unix-cron (Cloud Scheduler): exact
expressions, the same firings as Dapr's own reading, and a clear refusal otherwise."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from croniter import croniter

from portabind.bindings.cron import parse_schedule
from portabind.tooling.crontab import Untranslatable, ncrontab, unix_cron

#: Dapr schedule → (NCRONTAB, unix-cron).
TABLE = [
    ("*/5 * * * *", "0 */5 * * * *", "*/5 * * * *"),
    ("0 30 9 * * 1-5", "0 30 9 * * 1-5", "30 9 * * 1-5"),
    ("0 15 10 ? * MON-FRI", "0 15 10 * * 1-5", "15 10 * * 1-5"),
    ("5 4 * * sun", "0 5 4 * * 0", "5 4 * * 0"),
    ("0 0 12 1 JAN,jul *", "0 0 12 1 1,7 *", "0 12 1 1,7 *"),
    ("0 0 1,15 * *", "0 0 0 1,15 * *", "0 0 1,15 * *"),
    ("0 0 0 */2 * *", "0 0 0 */2 * *", "0 0 */2 * *"),
    ("0 10/20 * * * *", "0 10-50/20 * * * *", "10-50/20 * * * *"),
    ("0 0-30/3 8-17 * * *", "0 0-30/3 8-17 * * *", "0-30/3 8-17 * * *"),
    ("0 1,2,3,5 * * * *", "0 1,2,3,5 * * * *", "1,2,3,5 * * * *"),
    # Both day fields restricted, but one covers every day: robfig fires every day.
    ("0 0 0 1-31 * 1", "0 0 0 * * *", "0 0 * * *"),
    ("0 0 0 5 * 0-6", "0 0 0 * * *", "0 0 * * *"),
    ("@yearly", "0 0 0 1 1 *", "0 0 1 1 *"),
    ("@annually", "0 0 0 1 1 *", "0 0 1 1 *"),
    ("@monthly", "0 0 0 1 * *", "0 0 1 * *"),
    ("@weekly", "0 0 0 * * 0", "0 0 * * 0"),
    ("@daily", "0 0 0 * * *", "0 0 * * *"),
    ("@midnight", "0 0 0 * * *", "0 0 * * *"),
    ("@hourly", "0 0 * * * *", "0 * * * *"),
    ("@every 1m", "0 * * * * *", "* * * * *"),
    ("@every 15m", "0 */15 * * * *", "*/15 * * * *"),
    ("@every 2h", "0 0 */2 * * *", "0 */2 * * *"),
    ("@every 1h0m0s", "0 0 * * * *", "0 * * * *"),
    ("@every 24h", "0 0 0 * * *", "0 0 * * *"),
    ("CRON_TZ=Europe/Paris 0 9 * * *", "0 0 9 * * *", "0 9 * * *"),
]
#: Only NCRONTAB has seconds.
AZURE_ONLY = [
    ("*/10 * * * * *", "*/10 * * * * *"),
    ("30 0 9 * * *", "30 0 9 * * *"),
    ("@every 30s", "*/30 * * * * *"),
    ("@every 1s", "* * * * * *"),
    ("15,45 */2 * * * *", "15,45 */2 * * * *"),
]


@pytest.mark.parametrize(("dapr", "azure", "gcp"), TABLE)
def test_translation_table(dapr: str, azure: str, gcp: str) -> None:
    schedule = parse_schedule(dapr)
    assert ncrontab(schedule) == azure
    assert unix_cron(schedule) == gcp


@pytest.mark.parametrize(("dapr", "azure"), AZURE_ONLY)
def test_seconds_translate_to_ncrontab_only(dapr: str, azure: str) -> None:
    schedule = parse_schedule(dapr)
    assert ncrontab(schedule) == azure
    with pytest.raises(Untranslatable, match="whole minutes"):
        unix_cron(schedule)


@pytest.mark.parametrize(
    ("dapr", "message"),
    [
        ("@every 7m", "@every 420s does not divide"),
        ("@every 90s", "@every 90s does not divide"),
        ("@every 1h30m", "@every 5400s does not divide"),
        ("@every 48h", "@every 172800s does not divide"),
        ("0 0 0 1 * 1", "both restricted"),
        ("0 0 12 */2 * MON", "both restricted"),
    ],
)
def test_untranslatable_schedules_are_refused_on_both(dapr: str, message: str) -> None:
    schedule = parse_schedule(dapr)
    with pytest.raises(Untranslatable, match=message):
        ncrontab(schedule)
    with pytest.raises(Untranslatable, match=message):
        unix_cron(schedule)


@pytest.mark.parametrize(
    "dapr", [row[0] for row in TABLE if not row[0].startswith(("@every", "CRON_TZ"))]
)
def test_translations_fire_when_dapr_fires(dapr: str) -> None:
    """The next 40 firings from Dapr's reading equal those of the translated expressions:
    NCRONTAB requires both day fields to match (day_or=False), unix-cron is vixie cron."""
    schedule = parse_schedule(dapr)
    start = datetime(2026, 1, 30, 23, 58, tzinfo=timezone.utc)
    expected, moment = [], start
    for _ in range(40):
        moment = schedule.next_after(moment)
        expected.append(moment)
    azure = croniter(ncrontab(schedule), start, second_at_beginning=True, day_or=False)
    gcp = croniter(unix_cron(schedule), start)
    assert [azure.get_next(datetime) for _ in range(40)] == expected
    assert [gcp.get_next(datetime) for _ in range(40)] == expected
