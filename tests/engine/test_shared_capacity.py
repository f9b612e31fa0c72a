"""A channel capacity shared by several engines (partitions, workers): one count for all, exact after a restore.

Each engine here stands for one partition; they share a ``GrantFolder`` (the
store the daemon and ``--workers`` give them). A "crash" is a new engine and a
new store object on the same folder, restored from an older snapshot, fed the
events after it again. Times are offsets from T0 (see ``test_policy``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kairos.adapters import GrantFolder, read_grants
from kairos.engine import Engine, Send, SinkError, decode_snapshot, encode_snapshot, restore_snapshot
from kairos.engine._workers import _check_partitionable
from kairos.plan import Action, Capacity, Hours, Origin, Plan, Policy, TimeRange
from tests.engine.test_policy import D, H, M, T0, at, on_host

CALL = (Action("call", "offer.call"),)
PLAN = Plan((on_host("a", "h", actions=CALL),),
            Policy(origin=Origin("<test>", 1, 1), capacity=(Capacity("call", 1, 1),)))


def _partition(folder: Path, sends: list[Send], plan: Plan = PLAN) -> Engine:
    return Engine(plan, None, sink=sends.append, capacity=GrantFolder(folder))


def _restarted(older: bytes, folder: Path, sends: list[Send]) -> Engine:
    engine = _partition(folder, sends)
    restore_snapshot(engine, decode_snapshot(older).engine)
    return engine


def _granted(folder: Path) -> list[list[str]]:
    return list(read_grants(folder).values())


def test_two_engines_share_one_place_a_day_and_the_other_trigger_waits_for_the_next(tmp_path):
    one: list[Send] = []
    two: list[Send] = []
    p0, p1 = _partition(tmp_path, one), _partition(tmp_path, two)
    p0.on_event(at(10 * H, "1"))
    p1.on_event(at(11 * H, "2"))  # Monday's place went to partition 0
    p1.on_event(at(D + 8 * H, "9", host="zz"))  # Tuesday: the place opens at local midnight
    assert [("1", 10 * H)] == [(s.msisdn, s.send_at - T0) for s in one]
    assert [("2", D)] == [(s.msisdn, s.send_at - T0) for s in two]
    assert [[f"a:1:{T0 + 10 * H}"], [f"a:2:{T0 + 11 * H}"]] == _granted(tmp_path)


def test_a_trigger_decided_again_after_a_restore_from_an_older_snapshot_finds_its_place(tmp_path):
    """Partition 0 snapshots, then sends to subscriber 1 and crashes. Restored from that snapshot it
    decides the same trigger again: it gets its own place back (the outbox drops the repeat by id),
    and no second place is taken — partition 1's trigger that day still waits."""
    sent: list[Send] = []
    p0 = _partition(tmp_path, sent)
    p0.on_event(at(9 * H, "0", host="zz"))
    older = encode_snapshot(p0)
    p0.on_event(at(10 * H, "1"))
    again: list[Send] = []
    p0 = _restarted(older, tmp_path, again)
    p0.on_event(at(10 * H, "1"))
    other: list[Send] = []
    p1 = _partition(tmp_path, other)
    p1.on_event(at(11 * H, "2"))
    assert [s.id for s in sent] == [s.id for s in again] == [f"a:1:{T0 + 10 * H}"]
    assert ([], 1) == (other, p1.policy.held())  # type: ignore[union-attr]
    assert [[f"a:1:{T0 + 10 * H}"]] == _granted(tmp_path)


def test_a_trigger_that_waited_is_granted_the_same_later_place_when_decided_again(tmp_path):
    """Subscriber 2 waits in partition 1's queue (Monday is full); partition 1 snapshots, is released
    on Tuesday, sends, crashes. Restored, the queue is released again: the same Tuesday place, none more."""
    first: list[Send] = []
    p0 = _partition(tmp_path, [])
    p0.on_event(at(10 * H, "1"))
    p1 = _partition(tmp_path, first)
    p1.on_event(at(11 * H, "2"))
    older = encode_snapshot(p1)
    p1.on_event(at(D + 8 * H, "9", host="zz"))
    again: list[Send] = []
    p1 = _restarted(older, tmp_path, again)
    p1.on_event(at(D + 8 * H, "9", host="zz"))
    p0.on_event(at(D + 9 * H, "3"))  # Tuesday's place is taken: subscriber 3 waits for Wednesday
    assert [(s.id, s.send_at - T0) for s in first] == [(s.id, s.send_at - T0) for s in again] == [
        (f"a:2:{T0 + 11 * H}", D)]
    assert 1 == p0.policy.held()  # type: ignore[union-attr]
    assert [[f"a:1:{T0 + 10 * H}"], [f"a:2:{T0 + 11 * H}"]] == _granted(tmp_path)


@pytest.mark.parametrize(("tz", "second"), [("Asia/Shanghai", [D + 7 * H]), ("UTC", [])])
def test_the_period_is_a_day_of_the_engines_local_calendar(tmp_path, tz, second):
    """Monday 23:00 and Tuesday 07:00 in Shanghai are both Monday in UTC (15:00 and 23:00):
    two periods for a Shanghai engine, one (whose place is gone) for a UTC one."""
    one: list[Send] = []
    two: list[Send] = []
    Engine(PLAN, None, sink=one.append, tz=tz, capacity=GrantFolder(tmp_path)).on_event(at(23 * H, "1"))
    Engine(PLAN, None, sink=two.append, tz=tz, capacity=GrantFolder(tmp_path)).on_event(at(D + 7 * H, "2"))
    assert ([23 * H], second) == ([s.send_at - T0 for s in one], [s.send_at - T0 for s in two])


def test_working_hours_move_the_send_and_the_place_is_taken_in_the_period_of_the_send(tmp_path):
    hours = Hours("call", (TimeRange(9 * 60, 20 * 60),), frozenset(range(1, 8)))
    plan = Plan(PLAN.scenarios, Policy(origin=Origin("<test>", 1, 1), capacity=PLAN.policy.capacity,  # type: ignore[union-attr]
                                       hours=(hours,)))
    one: list[Send] = []
    two: list[Send] = []
    _partition(tmp_path, one, plan).on_event(at(21 * H, "1"))  # Monday 21:00: sent Tuesday 09:00
    _partition(tmp_path, two, plan).on_event(at(D + 10 * H, "2"))  # Tuesday's place is gone
    assert ([D + 9 * H], []) == ([s.send_at - T0 for s in one], [s.send_at - T0 for s in two])


def test_engines_counting_apart_are_refused_where_the_subscribers_are_split():
    with pytest.raises(ValueError, match="share only through a capacity store given to every engine"):
        _check_partitionable(Engine(PLAN, None, sink=lambda s: None))


def test_engines_given_a_shared_store_may_be_split(tmp_path):
    _check_partitionable(_partition(tmp_path, []))


def test_a_plan_without_capacity_never_touches_the_store(tmp_path):
    plan = Plan(PLAN.scenarios, Policy(origin=Origin("<test>", 1, 1)))
    sends: list[Send] = []
    engine = _partition(tmp_path / "grants", sends, plan)
    engine.on_event(at(10 * H, "1"))
    engine.on_event(at(10 * H + M, "2"))
    assert 2 == len(sends)
    assert not (tmp_path / "grants").exists()


def test_a_store_that_cannot_answer_stops_the_run_instead_of_losing_the_trigger(tmp_path):
    """As a sink that cannot take a send: the event is not skipped, the run stops, a restart from
    the last snapshot decides the trigger again."""
    (tmp_path / "grants").write_text("not a folder")
    engine = _partition(tmp_path / "grants", [])
    with pytest.raises(SinkError, match="the shared capacity store failed"):
        engine.on_event(at(10 * H, "1"))
    assert 0 == engine.faults
