"""Local-time calendar questions of the contact policy: quiet ranges, working hours, periods.

Pure functions over int epoch milliseconds and a ``LocalTime``. A time-of-day
range includes its start and excludes its end (LANGUAGE.md §2); a range that
wraps midnight belongs to the weekday it starts on, so ``quiet 22:00..08:00 on
fri`` covers Friday night until Saturday 08:00.
"""

from __future__ import annotations

import datetime as _dt

from kairos.engine._localtime import LocalTime
from kairos.plan import TimeRange

DAY_MS = 86_400_000
MINUTE_MS = 60_000


def _weekday(local_day: int) -> int:
    """ISO weekday of a local day number (days since 1970-01-01, a Thursday)."""
    return (local_day + 3) % 7 + 1


def occurrence_end(clock: LocalTime, ts: int, rng: TimeRange, days: frozenset[int] | None) -> int | None:
    """The end (epoch ms) of the occurrence of ``rng`` that ``ts`` falls in, or None."""
    local = clock.local_ms(ts)
    day = local // DAY_MS
    day0 = day * DAY_MS
    minute = (local - day0) // MINUTE_MS
    start, end = rng.start_min, rng.end_min
    if start < end:
        if start <= minute < end and (days is None or _weekday(day) in days):
            return clock.to_utc(day0 + end * MINUTE_MS)
        return None
    if minute >= start and (days is None or _weekday(day) in days):
        return clock.to_utc(day0 + DAY_MS + end * MINUTE_MS)
    if minute < end and (days is None or _weekday(day - 1) in days):
        return clock.to_utc(day0 + end * MINUTE_MS)
    return None


def next_opening(clock: LocalTime, ts: int, ranges: tuple[TimeRange, ...], days: frozenset[int] | None) -> int:
    """``ts`` if it lies in one of the ranges (on the days), else the next start of one."""
    for rng in ranges:
        if occurrence_end(clock, ts, rng, days) is not None:
            return ts
    day = clock.local_ms(ts) // DAY_MS
    for d in range(day, day + 9):
        if days is not None and _weekday(d) not in days:
            continue
        starts = [clock.to_utc(d * DAY_MS + r.start_min * MINUTE_MS) for r in ranges]
        later = [s for s in starts if s > ts]
        if later:
            return min(later)
    return ts  # no range on any day: the checker refuses such a rule


def period_of(clock: LocalTime, ts: int, days: int) -> int:
    """The number of the local calendar period of ``days`` whole days that ``ts`` is in."""
    return (clock.local_ms(ts) // DAY_MS) // days


def period_start(clock: LocalTime, period: int, days: int) -> int:
    """Epoch ms of local midnight opening period ``period``."""
    return clock.to_utc(period * days * DAY_MS)


def local_text(clock: LocalTime, ts: int) -> str:
    """``2026-11-23 Mon 08:00:00`` in local time (``.250`` appended for milliseconds)."""
    local = clock.local_ms(ts)
    when = _dt.datetime.fromtimestamp(local // 1000, _dt.UTC)
    text = when.strftime("%Y-%m-%d %a %H:%M:%S")
    return text if local % 1000 == 0 else f"{text}.{local % 1000:03d}"


def duration_text(ms: int) -> str:
    """The largest whole unit the language would write: ``7d``, ``90m``, ``500ms``."""
    for unit, size in (("d", DAY_MS), ("h", 3_600_000), ("m", MINUTE_MS), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def range_text(rng: TimeRange) -> str:
    """``22:00..08:00``, as a policy writes a time-of-day range."""
    return f"{rng.start_min // 60:02d}:{rng.start_min % 60:02d}..{rng.end_min // 60:02d}:{rng.end_min % 60:02d}"
