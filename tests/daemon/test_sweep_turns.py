"""A schedule instant's sweep in a daemon unit goes on in turns that give way to events (LANGUAGE.md §9.1):
with no block of events since its last turn a turn runs ``SWEEP_TURN_S``; while blocks keep coming it runs
only the share of their time they earned (``SWEEP_SHARE``). Time is a fake clock here, so the turns'
sizes are exact whatever the machine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import kairos._units as units
from kairos._units import SWEEP_CHUNK, Unit
from kairos.engine import Engine, Reference
from kairos.engine._events import Login
from kairos.plan import Plan, Schedule
from tests.engine.builders import scenario

SH = ZoneInfo("Asia/Shanghai")
NINE = int(dt.datetime(2024, 5, 1, 9, tzinfo=SH).timestamp() * 1000)
H = 3_600_000
ROWS = 10_000


class FakeClock:
    """``perf_counter`` that moves on by ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture
def swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Unit, list, FakeClock]:
    """A unit whose engine has crossed a daily 10:00 instant over ``ROWS`` tags-only subscribers; the unit's
    clock moves 1 ms at each reading."""
    sends: list = []
    ref = Reference(tags={f"139{i:08d}": {} for i in range(ROWS)})
    engine = Engine(Plan((scenario("d", Schedule("day", 0, 600, None)),)), ref, sink=sends.append,
                    tz="Asia/Shanghai", sliced=True)
    unit = Unit("all", tmp_path / "snapshot.bin", engine, 0, on_late=lambda _ev, _late: None)
    clock = FakeClock(0.001)
    monkeypatch.setattr(units, "perf_counter", clock)
    unit.push([Login(ts=NINE, msisdn="13800000001", channel="app")])
    unit.push([Login(ts=NINE + 2 * H, msisdn="13800000001", channel="app")])
    assert unit.sweeping
    return unit, sends, clock


def test_a_turn_after_a_block_takes_the_share_the_block_earned_and_an_idle_turn_a_whole_turn(swept):
    unit, _, _ = swept
    # the block took 1 ms (one reading before, one after): a tenth of it is earned, less than one
    # chunk's time, so the turn after it visits one chunk and stops
    assert unit.sweep() == SWEEP_CHUNK
    # no block since: a whole turn of 2 ms, a chunk per 1 ms reading
    assert unit.sweep() == 2 * SWEEP_CHUNK
    assert unit.sweep() == 2 * SWEEP_CHUNK
    # blocks again: each earns a tenth of its millisecond, and the turn after it visits one chunk
    for _ in range(3):
        unit.push([])
        assert unit.sweep() == SWEEP_CHUNK


def test_the_turn_after_a_long_block_lasts_a_tenth_of_the_block(swept):
    unit, _, clock = swept
    unit.sweep()
    clock.step = 2**-7  # a block of 7.8 ms earns 0.78 ms of sweep (a third would earn the 2 ms cap)
    unit.push([])
    clock.step = 2**-12  # 0.24 ms a reading: four chunks pass 0.78 ms
    assert unit.sweep() == 4 * SWEEP_CHUNK


def test_turns_visit_every_member_once_and_then_stop(swept):
    unit, sends, _ = swept
    visited = 0
    while unit.sweeping:
        visited += unit.sweep()
    assert visited == ROWS + 1  # the tags-only rows and the subscriber of the events
    assert len({s.msisdn for s in sends}) == len(sends) == ROWS + 1
    assert unit.sweep() == 0
