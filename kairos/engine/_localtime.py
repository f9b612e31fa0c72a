"""The configured local time zone: event-time ms → local minute, hour, weekday, day.

Offsets are cached per 15-minute UTC bucket (every tz transition falls on one),
so local-time questions on the hot path cost a dict probe and some arithmetic.
``hour``/``weekday``/``day`` go faster still: they keep the span of the current local day
whose offset is constant, so an event inside it costs one range check and a division.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TZ = "Asia/Shanghai"
_BUCKET_MS = 900_000
_DAY_MS = 86_400_000
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()


class LocalTime:
    """Local-time arithmetic for one time zone, on int epoch milliseconds."""

    __slots__ = ("zone", "_offsets", "_days", "_spans", "_lo", "_hi", "_off", "_date")

    def __init__(self, tz: str = DEFAULT_TZ) -> None:
        self.zone = ZoneInfo(tz)
        self._offsets: dict[int, int] = {}
        self._days: dict[int, str] = {}
        #: 15-minute bucket → (lo, hi, offset, date): the span of one local day around the
        #: bucket where the offset is constant; [_lo, _hi) is the last span used (empty at first)
        self._spans: dict[int, tuple[int, int, int, str]] = {}
        self._lo = self._hi = self._off = 0
        self._date = ""

    def offset_ms(self, ts: int) -> int:
        bucket = ts // _BUCKET_MS
        off = self._offsets.get(bucket)
        if off is None:
            when = _dt.datetime.fromtimestamp(bucket * (_BUCKET_MS // 1000), self.zone)
            off = self._offsets[bucket] = int(when.utcoffset().total_seconds()) * 1000  # type: ignore[union-attr]  # aware: has an offset
        return off

    def local_ms(self, ts: int) -> int:
        return ts + self.offset_ms(ts)

    def minute_of_day(self, ts: int) -> int:
        return (self.local_ms(ts) % _DAY_MS) // 60_000

    def weekday_of(self, ts: int) -> int:
        """ISO weekday, 1 (Monday) .. 7 (Sunday); 1970-01-01 was a Thursday."""
        return (self.local_ms(ts) // _DAY_MS + 3) % 7 + 1

    def date_of(self, ts: int) -> str:
        days = self.local_ms(ts) // _DAY_MS
        s = self._days.get(days)
        if s is None:
            s = self._days[days] = _dt.date.fromordinal(_EPOCH_ORDINAL + days).isoformat()
        return s

    def to_utc(self, local_ms: int) -> int:
        """The first epoch ms whose local time is ``local_ms`` or later: its first showing across a
        fold (clocks going back), the first instant after a gap (clocks going forward, where it
        does not exist: local midnight in Santiago on the day DST starts is 01:00).

        The offsets a day either side (the instant lies within 14 h of ``local_ms``) are the ones
        it may have; equal (no change near: nearly always), that is the answer. One change
        between them is assumed."""
        before = self.offset_ms(local_ms - _DAY_MS)
        after = self.offset_ms(min(local_ms + _DAY_MS, _LAST_MS))
        first = local_ms - before
        if before == after or self.offset_ms(first) == before:
            return first  # no change near, or before it (a fold: the earlier of its two showings)
        if self.offset_ms(local_ms - after) == after:
            return local_ms - after  # after the change
        # a gap: the change itself, on a 15-minute bucket edge after ``local_ms - after``
        t = (local_ms - after) // _BUCKET_MS * _BUCKET_MS + _BUCKET_MS
        while t < first and self.offset_ms(t) != after:
            t += _BUCKET_MS
        return min(t, first)

    # --- the language's hour(ts), weekday(ts), day(ts): null for a non-number or a number no time

    # The fast path: an int inside the current span [_lo, _hi) (within 1970..9999, one local
    # day, one offset) needs no call; anything else goes through _enter, which moves the span.

    def hour(self, ts: Any) -> int | None:
        if ts.__class__ is int and self._lo <= ts < self._hi:
            return (ts + self._off) // 3_600_000 % 24
        return None if not _is_num(ts) else (self._enter(int(ts)) % _DAY_MS) // 3_600_000

    def weekday(self, ts: Any) -> int | None:
        if ts.__class__ is int and self._lo <= ts < self._hi:
            return ((ts + self._off) // _DAY_MS + 3) % 7 + 1
        return None if not _is_num(ts) else (self._enter(int(ts)) // _DAY_MS + 3) % 7 + 1

    def day(self, ts: Any) -> str | None:
        if ts.__class__ is int and self._lo <= ts < self._hi:
            return self._date
        if not _is_num(ts):
            return None
        self._enter(int(ts))
        return self._date

    def _enter(self, ts: int) -> int:
        """Make the span holding ``ts`` current; returns ``ts``'s local ms."""
        bucket = ts // _BUCKET_MS
        span = self._spans.get(bucket)
        if span is None:
            span = self._spans[bucket] = self._span(ts)
        self._lo, self._hi, self._off, self._date = span
        return ts + self._off

    def _span(self, ts: int) -> tuple[int, int, int, str]:
        """The UTC ms range around ``ts`` in its local day with its offset (transitions fall on
        15-minute buckets, so walking buckets finds the edges), and that day's date."""
        off = self.offset_ms(ts)
        start = (ts + off) // _DAY_MS * _DAY_MS - off  # the local day's first ms, at this offset
        end = start + _DAY_MS
        b = ts // _BUCKET_MS
        while b * _BUCKET_MS > start and self.offset_ms((b - 1) * _BUCKET_MS) == off:
            b -= 1
        lo = max(b * _BUCKET_MS, start, 0)
        b = ts // _BUCKET_MS + 1
        while b * _BUCKET_MS < min(end, _LAST_MS) and self.offset_ms(b * _BUCKET_MS) == off:
            b += 1
        hi = min(b * _BUCKET_MS, end, _LAST_MS + 1)
        return lo, hi, off, self.date_of(ts)


#: The last ms of 9999-12-30 UTC, so the local date is in 9999 in every zone; times run
#: from 1970 to here (an event's ts too).
_LAST_MS = 253_402_214_399_999


def _is_num(x: Any) -> bool:
    """A number that is a time: a huge or negative tag value gets null, not an OverflowError."""
    return isinstance(x, (int, float)) and x.__class__ is not bool and 0 <= x <= _LAST_MS
