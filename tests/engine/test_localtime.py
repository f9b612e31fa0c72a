"""hour(ts), weekday(ts), day(ts) in the configured zone (LANGUAGE.md §3), around midnight.

Local midnight in Shanghai is 16:00 UTC of the day before, so the UTC date and
the local date differ for eight hours every day:

    UTC    2026-11-22 15:59:59.999 | 16:00:00.000 ........ 23:59:59.999 | 2026-11-23 00:00
    local  Sun 2026-11-22 23:59    | Mon 2026-11-23 00:00 ... 07:59     | Mon 08:00
"""

from __future__ import annotations

import datetime as _dt
from zoneinfo import ZoneInfo

import pytest

from kairos.engine._localtime import LocalTime

MONDAY = 1_795_363_200_000  # 2026-11-23 00:00 Asia/Shanghai = 2026-11-22 16:00 UTC
HOUR = 3_600_000


@pytest.mark.parametrize("ts, expected", [
    (MONDAY - 1, (23, 7, "2026-11-22")),
    (MONDAY, (0, 1, "2026-11-23")),
    (MONDAY + 8 * HOUR - 1, (7, 1, "2026-11-23")),  # UTC is still Sunday the 22nd
    (MONDAY + 8 * HOUR, (8, 1, "2026-11-23")),
])
def test_the_local_hour_weekday_and_date_change_at_local_midnight_not_utc(ts, expected):
    clock = LocalTime("Asia/Shanghai")
    assert expected == (clock.hour(ts), clock.weekday(ts), clock.day(ts))


def test_across_the_date_line_the_same_instant_is_already_the_next_day():
    """Kiritimati (UTC+14): Shanghai's Sunday 23:59 is Monday 05:59 there."""
    assert (5, 1, "2026-11-23") == tuple(f(MONDAY - 60_000) for f in (
        LocalTime("Pacific/Kiritimati").hour, LocalTime("Pacific/Kiritimati").weekday,
        LocalTime("Pacific/Kiritimati").day))


@pytest.mark.parametrize("value", [None, "2026-11-23", True, [1]])
def test_a_value_that_is_no_number_has_no_hour_weekday_or_date(value):
    clock = LocalTime("Asia/Shanghai")
    assert (None, None, None) == (clock.hour(value), clock.weekday(value), clock.day(value))


@pytest.mark.parametrize("value", [1e30, -1e30, 10**17, -1])
def test_a_number_outside_the_calendar_has_no_hour_weekday_or_date(value):
    """A tag holding a huge number is null, like any value that is no time, not a crash."""
    clock = LocalTime("Asia/Shanghai")
    assert (None, None, None) == (clock.hour(value), clock.weekday(value), clock.day(value))


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_the_first_and_last_times_have_a_date_in_every_zone(zone):
    clock = LocalTime(zone)
    assert [str, str] == [type(clock.day(0)), type(clock.day(253_402_214_399_999))]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_hour_weekday_and_date_match_the_zone_database_minute_by_minute_across_dst_changes(zone):
    # forward and backward through two years, in order and jumping back, so the cached span moves
    clock = LocalTime(zone)
    tz = ZoneInfo(zone)
    start = int(_dt.datetime(2024, 3, 1, tzinfo=_dt.UTC).timestamp() * 1000)
    step = 7 * 60_000 + 13_000  # 7 min 13 s: crosses every 15-minute bucket edge at varied points
    times = list(range(start, start + 2 * 366 * 86_400_000, step * 97))
    for ts in times + times[::-3]:
        for t in (ts, ts + step, ts - 86_400_000):
            local = _dt.datetime.fromtimestamp(t / 1000, tz)
            assert (clock.hour(t), clock.weekday(t), clock.day(t)) == (
                local.hour, local.isoweekday(), local.date().isoformat()), (zone, t)


def test_the_hour_around_the_berlin_spring_and_autumn_changes():
    clock = LocalTime("Europe/Berlin")
    spring = int(_dt.datetime(2025, 3, 30, 1, 0, tzinfo=_dt.UTC).timestamp() * 1000)  # 02:00 CET → 03:00 CEST
    autumn = int(_dt.datetime(2025, 10, 26, 1, 0, tzinfo=_dt.UTC).timestamp() * 1000)  # 03:00 CEST → 02:00 CET
    assert [clock.hour(spring - 1), clock.hour(spring)] == [1, 3]
    assert [clock.hour(autumn - 1), clock.hour(autumn)] == [2, 2]
    assert [clock.hour(autumn - 3_600_001), clock.hour(autumn + 3_600_000)] == [1, 3]


# --- local time → instant (LocalTime.to_utc): gaps, folds, and the local day's bounds


def _local_ms(*args: int) -> int:
    """A local wall time written as epoch ms (the form ``to_utc`` reads)."""
    return int(_dt.datetime(*args, tzinfo=_dt.UTC).timestamp() * 1000)


def _utc(*args: int) -> int:
    return int(_dt.datetime(*args, tzinfo=_dt.UTC).timestamp() * 1000)


@pytest.mark.parametrize("zone, wall, instant", [
    ("Asia/Shanghai", (2026, 11, 23), (2026, 11, 22, 16)),  # no DST
    ("Europe/Berlin", (2025, 6, 1, 12), (2025, 6, 1, 10)),
    ("Europe/Berlin", (2025, 3, 30, 2, 30), (2025, 3, 30, 1)),  # gap 02:00..03:00 → 03:00 CEST
    ("Europe/Berlin", (2025, 10, 26, 2, 30), (2025, 10, 26, 0, 30)),  # fold: 02:30 CEST, its first showing
    ("America/Santiago", (2024, 9, 8), (2024, 9, 8, 4)),  # midnight does not exist: 01:00 -03
    ("America/Santiago", (2024, 9, 8, 0, 30), (2024, 9, 8, 4)),
    ("America/Santiago", (2024, 9, 8, 1), (2024, 9, 8, 4)),  # the first time after the gap
    ("America/Santiago", (2024, 4, 6, 23, 30), (2024, 4, 7, 2, 30)),  # fold 23:00..24:00: -03 first
    ("America/Santiago", (2024, 4, 7), (2024, 4, 7, 4)),  # midnight after the fold: once, at -04
    ("America/Sao_Paulo", (2018, 11, 4), (2018, 11, 4, 3)),  # midnight gap: 01:00 -02
    ("Australia/Lord_Howe", (2024, 10, 6, 2, 15), (2024, 10, 5, 15, 30)),  # half-hour gap 02:00..02:30
    ("Australia/Lord_Howe", (2024, 4, 7, 1, 45), (2024, 4, 6, 14, 45)),  # half-hour fold: +11 first
])
def test_a_local_time_is_its_first_showing_and_a_time_in_a_gap_the_first_instant_after_it(zone, wall, instant):
    assert LocalTime(zone).to_utc(_local_ms(*wall)) == _utc(*instant)


@pytest.mark.parametrize("zone, day", [
    ("Europe/Berlin", (2025, 3, 30)), ("Europe/Berlin", (2025, 10, 26)), ("America/Santiago", (2024, 9, 8)),
    ("America/Santiago", (2024, 4, 6)), ("America/Sao_Paulo", (2018, 11, 4)), ("America/Sao_Paulo", (2019, 2, 16)),
    ("Australia/Lord_Howe", (2024, 10, 6)), ("Australia/Lord_Howe", (2024, 4, 7)), ("Asia/Shanghai", (2026, 11, 23)),
    ("Pacific/Apia", (2011, 12, 30)),  # Samoa skipped the whole day: it lasts no time at all
])
def test_every_local_time_of_a_change_day_is_the_first_instant_that_reaches_it(zone, day):
    """``to_utc(L)`` is the first instant whose local time is L or later, every quarter hour of the day."""
    clock, tz = LocalTime(zone), ZoneInfo(zone)
    start = _local_ms(*day)

    def wall_of(ts: int) -> int:
        return int(_dt.datetime.fromtimestamp(ts / 1000, tz).replace(tzinfo=_dt.UTC).timestamp() * 1000)

    for wall in range(start - HOUR, start + 25 * HOUR + 1, 900_000):
        got = clock.to_utc(wall)
        assert wall_of(got) >= wall, (zone, wall, got)
        # nothing earlier reaches it: not the minute before, nor a fold's first showing (up to 2 h back)
        assert all(wall_of(got - back) < wall for back in (60_000, *range(900_000, 2 * HOUR + 1, 900_000))), (
            zone, wall, got)
