"""An exception raised while the engine processes one event or fires one deadline is caught, counted
(``Engine.faults``), handed to ``on_fault`` with the scenario's place, and the engine goes on."""

from __future__ import annotations

import pytest

from kairos.engine import Engine
from kairos.engine import _engine as _engine_module
from kairos.engine._engine import TimeJump
from kairos.engine._events import Dpi, Topup, Usage

from tests.dsl.support import T0, compile_one

HUGE = " * ".join(["bytes"] * 40)  # past any float for a 10**12-byte record: ``/ 3`` raises OverflowError
WHERE = f'scenario big\n  when dpi where category == "video" and {HUGE} / 3 > 1\n  then sms "t"\nend\n'
#: the same product in a ``with`` value: a call of the compiled expression, not a line pasted into the route
WITH = ('scenario big\n  when dpi where category == "video"\n'
        f'  then sms "t" with {{n: {" * ".join(["last.bytes"] * 40)} / 3}}\nend\n')
ABSENT = ('scenario no_topup\n  when usage as u where pct >= 90 -> not topup within 1m\n'
          f'  then sms "t" with {{mb: {" * ".join(["u.used_mb"] * 40)} / 3}}\nend\n')
OVERFLOW = "OverflowError: integer division result too large for a float"


def _video(i: int, m: str, size: int = 10) -> Dpi:
    return Dpi(ts=T0 + i * 1_000, msisdn=m, host="h", category="video", bytes=size)


def _built(text: str, pasted: bool = True, **kw) -> Engine:
    """An engine whose feed loop pastes the DPI route (``pasted``) or calls it: one template, both ways."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_engine_module, "FUSED_FEED", pasted)
        return Engine(compile_one(text), **kw)


def _engine(text: str, pasted: bool = True, **kw) -> tuple[Engine, list, list]:
    sends: list = []
    faults: list = []
    engine = _built(text, pasted, sink=sends.append, **kw)
    engine.on_fault = lambda i, ev, exc: faults.append((i, ev, engine.describe_fault(exc)))
    return engine, sends, faults


@pytest.mark.parametrize("pasted", [True, False], ids=["dpi route pasted", "dpi route called"])
@pytest.mark.parametrize("text, line", [(WHERE, 2), (WITH, 3)], ids=["where", "with"])
def test_an_event_that_raises_is_counted_reported_with_its_place_and_the_next_events_are_processed(
        pasted, text, line):
    engine, sends, faults = _engine(text, pasted)
    feed = engine.feed
    events = [_video(0, "1"), _video(1, "2", 10**12), _video(2, "3")]
    feed(events)
    feed([_video(3, "4")])
    assert [(1, events[1], f"processing failed in t.kairos:{line}: {OVERFLOW}")] == faults
    assert ["1", "3", "4"] == [s.msisdn for s in sends]
    assert (1, 0, 4) == (engine.faults, engine.deadline_faults, engine.events_in)  # events_in: taken, failed or not


def test_on_event_reports_a_failing_event_and_goes_on():
    engine, sends, faults = _engine(WHERE)
    bad = _video(1, "2", 10**12)
    assert engine.on_event(bad)
    engine.on_event(_video(2, "3"))
    assert ([(0, bad)], ["3"]) == ([f[:2] for f in faults], [s.msisdn for s in sends])


def test_a_time_jump_is_not_taken_for_a_fault():
    engine, sends, faults = _engine(WHERE)
    engine.feed([_video(0, "1")])
    engine.guard_jumps(3_600_000)
    with pytest.raises(TimeJump):
        engine.feed([_video(1, "2"), Dpi(ts=T0 + 86_400_000, msisdn="3", host="h", category="video", bytes=10)])
    assert ([], 0) == (faults, engine.faults)


def test_with_duplicate_skipping_the_index_is_the_callers():
    engine, sends, faults = _engine(WHERE, dedup_window_ms=60_000)
    first = _video(0, "1")
    events = [first, Dpi(ts=first.ts, msisdn="1", host="h", category="video", bytes=10), _video(1, "2", 10**12)]
    engine.feed(events)
    assert [(2, events[2])] == [f[:2] for f in faults]
    assert (["1"], 1) == ([s.msisdn for s in sends], engine.duplicates)


def test_a_deadline_that_raises_is_counted_and_later_deadlines_still_fire():
    """Subscriber 1's wait ends at T0+60s and its send's value raises; 2's and 3's waits end later
    and send. The fault names no event (None, None) but the scenario's place."""
    engine, sends, faults = _engine(ABSENT)
    engine.feed([Usage(ts=T0, msisdn="1", pct=95, used_mb=10**9), Usage(ts=T0 + 1_000, msisdn="2", pct=95, used_mb=10),
                 Usage(ts=T0 + 2_000, msisdn="3", pct=95, used_mb=10)])
    engine.feed([Topup(ts=T0 + 300_000, msisdn="9", amount=10)])
    assert [(None, None, f"processing failed in t.kairos:3: {OVERFLOW}")] == faults
    assert [("2", T0 + 61_000), ("3", T0 + 62_000)] == [(s.msisdn, s.ts) for s in sends]
    assert (1, 1) == (engine.faults, engine.deadline_faults)


SIMPLE = 'scenario big\n  when dpi where category == "video"\n  then sms "t"\nend\n'


@pytest.mark.parametrize("pasted", [True, False], ids=["dpi route pasted", "dpi route called"])
def test_a_sink_that_fails_stops_the_feed_instead_of_losing_the_send_as_an_event_fault(pasted):
    """A full disk under the outbox's journal is not one event's fault: skipping the event would lose its
    send while the state counts it sent. The run stops (a restart from the snapshot decides it again)."""
    from kairos.engine._engine import SinkError

    sends: list = []

    def sink(send) -> None:
        if send.msisdn == "2":
            raise OSError(28, "No space left on device")
        sends.append(send)

    engine = _built(SIMPLE, pasted, sink=sink)
    faults: list = []
    engine.on_fault = lambda i, ev, exc: faults.append(exc)
    feed = engine.feed
    with pytest.raises(SinkError, match="No space left on device"):
        feed([_video(0, "1"), _video(1, "2"), _video(2, "3")])
    assert (["1"], [], 0) == ([s.msisdn for s in sends], faults, engine.faults)
