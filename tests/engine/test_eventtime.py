"""Event time for live input: ordering within the allowed lateness, late events reported, idle advance."""

from __future__ import annotations

from kairos.engine import Engine, Reference
from kairos.engine._events import Dpi, Usage
from kairos.engine._eventtime import EventTime
from tests.dsl.support import T0, compile_one

SEQ = compile_one('scenario s when dpi where category == "a" -> dpi where category == "b" within 10s then sms "s" end')
ABSENT = compile_one('scenario w when usage -> not dpi within 5s then sms "w" end')


def dpi(ms: int, category: str, m: str = "1") -> Dpi:
    return Dpi(ts=T0 + ms, msisdn=m, host="h", category=category)


def feed(plan, lateness: int, blocks: list[list]) -> tuple[list, list, EventTime]:
    sends: list = []
    late: list = []
    clock = EventTime(Engine(plan, Reference(), sink=sends.append), lateness,
                      on_late=lambda ev, now: late.append((ev.ts - T0, now - T0)))
    for block in blocks:
        clock.push(block)
    return sends, late, clock


def test_events_out_of_order_within_the_lateness_reach_the_engine_in_ts_order():
    #   arrival: b@2000  a@1000  x@9000   (lateness 5000)
    #   engine:  a@1000  b@2000           (x waits until something is 5 s newer)
    sends, late, clock = feed(SEQ, 5_000, [[dpi(2_000, "b")], [dpi(1_000, "a")], [dpi(9_000, "x")]])
    assert [T0 + 2_000] == [s.ts for s in sends]
    assert [] == late
    assert [T0 + 9_000] == [ev.ts for ev in clock.buffered()]


def test_an_event_behind_the_released_time_is_late_reported_and_not_processed():
    sends, late, clock = feed(SEQ, 1_000, [[dpi(0, "a"), dpi(5_000, "x")], [dpi(2_000, "b")]])
    assert [] == sends
    assert [(2_000, 4_000)] == late  # its ts, and the stream time it came after
    assert 1 == clock.late


def test_without_lateness_events_in_order_pass_straight_through():
    sends, late, clock = feed(SEQ, 0, [[dpi(0, "a"), dpi(1, "b")]])
    assert ([T0 + 1], [], []) == ([s.ts for s in sends], late, clock.buffered())


def test_advancing_time_without_events_releases_the_buffer_and_fires_deadlines():
    sends, _, clock = feed(ABSENT, 60_000, [[Usage(ts=T0, msisdn="1", pct=1)]])
    assert [] == sends
    clock.advance_to(T0 + 5_001)
    assert [T0 + 5_000] == [s.ts for s in sends]
