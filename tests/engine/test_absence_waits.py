"""Absence waits keep only what their scenario reads of the first event.

``location as l -> not location where cell != l.cell`` needs ``l.cell`` and the
time; a wait is then one int (time and the index of a shared view of the cell).
What users rely on: the same sends, ``explain`` and snapshots that still say when
a wait completes, old snapshots (whole events) that still load, and a reload
that keeps or drops waits according to what the new scenario reads.
"""

from __future__ import annotations

import io

import msgspec
from hypothesis import settings

from kairos.engine import Engine, Reference
from kairos.engine._events import Call, Location
from kairos.engine.forms.absence import VIEW_BITS, Waiting, _layout, kept_fields
from kairos.engine._snapshot import decode, encode, restore, transfer
from kairos._explain import explain
from tests.dsl.support import T0, compile_one, scenario
from tests.engine.test_snapshot import SCENARIOS, SnapshotRestoreMachine

D = 10_000

STAYS = """
scenario stays
  when location as l -> not location where cell != l.cell within 10s
  then sms "t.stays" with {cell: l.cell}
end
"""

QUIET = """
scenario quiet
  when call where direction == "mo" -> not call where direction == "mo" within 10s
  then sms "t.quiet"
end
"""


def _run(text: str, events: list, engine: Engine | None = None) -> tuple[list, Engine]:
    sends: list = []
    engine = engine or Engine(compile_one(text), Reference(), sink=sends.append)
    for ev in events:
        engine.on_event(ev)
    return sends, engine


def test_a_wait_keeps_the_text_fields_the_scenario_reads_and_nothing_when_it_reads_none():
    assert kept_fields(scenario(STAYS)) == ("cell",)
    assert kept_fields(scenario(QUIET)) == ()


def test_a_wait_keeps_the_whole_event_when_the_scenario_reads_its_time_or_a_number():
    reads_ts = STAYS.replace("{cell: l.cell}", "{cell: l.cell, at: l.ts}")
    reads_number = 'scenario u when usage as u -> not topup within 10s then sms "t" with {pct: u.pct} end'
    assert kept_fields(scenario(reads_ts)) is None
    assert kept_fields(scenario(reads_number)) is None


def test_a_packed_wait_is_one_int_and_completes_with_the_cell_it_started_in():
    sends, engine = _run(STAYS, [
        Location(ts=T0, msisdn="1", cell="c1"),
        Location(ts=T0 + 1, msisdn="2", cell="c2"),
        Location(ts=T0 + 5, msisdn="2", cell="c3"),  # answers 2's wait and starts the next one
    ])
    assert [w.__class__ for w in engine.runtimes[0].states.values()] == [int, int]
    engine.advance(T0 + 60_000)
    assert [(s.msisdn, s.ts, s.params) for s in sends] == [
        ("1", T0 + D, {"cell": "c1"}),
        ("2", T0 + 5 + D, {"cell": "c3"}),
    ]


def test_a_wait_that_keeps_nothing_is_its_time():
    sends, engine = _run(QUIET, [Call(ts=T0, msisdn="1", direction="mo", peer="p" * 11)])
    (wait,) = engine.runtimes[0].states.values()
    assert wait >> VIEW_BITS == T0
    engine.advance(T0 + 60_000)
    assert [(s.msisdn, s.ts) for s in sends] == [("1", T0 + D)]


def test_values_past_the_shared_table_get_their_own_wait_and_complete_the_same(monkeypatch):
    text = 'scenario p when call as c -> not sms within 10s then sms "t" with {peer: c.peer, roaming: c.roaming} end'
    layout = _layout(Call, ("peer", "roaming"))
    monkeypatch.setattr(layout, "capacity", len(layout.views) + 1)  # room for one more view
    sends, engine = _run(text, [Call(ts=T0 + k, msisdn=str(k), direction="mo", peer=f"p{k}") for k in range(3)])
    waits = list(engine.runtimes[0].states.values())
    assert [w.__class__ for w in waits] == [int, layout.view, layout.view]
    restored = Engine(compile_one(text), Reference(), sink=sends.append)
    restore(restored, decode(encode(engine)).engine)
    restored.advance(T0 + 60_000)
    assert [(s.msisdn, s.ts, s.params) for s in sends] == [
        (str(k), T0 + k + D, {"peer": f"p{k}", "roaming": "none"}) for k in range(3)]


def test_a_snapshot_stores_a_packed_wait_with_its_time_and_fields_and_restores_it_packed():
    _, engine = _run(STAYS, [Location(ts=T0, msisdn="1", cell="c1")])
    assert engine.runtimes[0].state_of("1") == Waiting(T0, {"cell": "c1"})  # what `explain` reads
    sends: list = []
    restored = Engine(compile_one(STAYS), Reference(), sink=sends.append)
    restore(restored, decode(encode(engine)).engine)
    assert restored.runtimes[0].states == engine.runtimes[0].states
    restored.on_event(Location(ts=T0 + 3, msisdn="1", cell="c1"))  # the same cell: no answer
    restored.advance(T0 + 60_000)
    assert [(s.ts, s.params) for s in sends] == [(T0 + D, {"cell": "c1"})]


def test_waits_held_as_whole_events_restore_into_a_runtime_that_packs_them():
    """What a format-1 snapshot or a scenario that read the time hands over."""
    whole = STAYS.replace("{cell: l.cell}", "{cell: l.cell, at: l.ts}")
    _, old = _run(whole, [Location(ts=T0, msisdn="1", cell="c1")])
    assert old.runtimes[0].states["1"].__class__ is Location
    sends: list = []
    new = Engine(compile_one(STAYS), Reference(), sink=sends.append)
    report = transfer(old, new)
    assert report.kept == ["stays"]
    assert new.runtimes[0].states["1"].__class__ is int
    assert old.runtimes[0].states["1"] == Location(ts=T0, msisdn="1", cell="c1")  # not changed
    new.advance(T0 + 60_000)
    assert [(s.ts, s.params) for s in sends] == [(T0 + D, {"cell": "c1"})]


def test_a_reload_that_reads_more_of_the_first_event_drops_the_waits_that_lack_it():
    _, old = _run(STAYS, [Location(ts=T0, msisdn="1", cell="c1")])
    reads_more = STAYS.replace("{cell: l.cell}", "{cell: l.cell, roaming: l.roaming}")
    new = Engine(compile_one(reads_more), Reference(), sink=lambda s: None)
    report = transfer(old, new)
    assert (report.kept, report.pattern_dropped) == ([], ["stays"])
    assert new.runtimes[0].states == {}
    new = Engine(compile_one(reads_more), Reference(), sink=lambda s: None)
    report = restore(new, decode(encode(old)).engine)
    assert (report.kept, report.pattern_dropped) == ([], ["stays"])


def test_explain_says_when_a_packed_wait_completes():
    data = msgspec.json.encode(Location(ts=T0, msisdn="1", cell="c1")) + b"\n"
    lines = list(explain(compile_one(STAYS), Reference(), io.BytesIO(data), "1"))
    assert any("stays: partial match — completes at 2026-11-23 Mon 00:00:10 unless a matching location"
               in line for line in lines)


class CompactWaitsMachine(SnapshotRestoreMachine):
    """The snapshot state machine with absences whose waits are packed (a cell, nothing)."""

    text = SCENARIOS + STAYS + QUIET.replace('sms "t.quiet"', 'sms "t.quiet" with {peer: c.peer}').replace(
        "when call where", "when call as c where")
    plan = compile_one(text)


CompactWaitsMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=50, deadline=None)
test_packed_waits_survive_snapshots_and_reloads = CompactWaitsMachine.TestCase


def test_a_snapshot_restored_where_the_shared_views_are_numbered_otherwise_maps_its_waits():
    from kairos.engine.forms.absence import PackedWaits

    layout = _layout(Location, ("cell",))
    layout.share(("c-taken-first",))  # this process numbered another cell first
    saved = PackedWaits(("cell",), [("c-other",), ("c-remapped",)], {"1": T0 << VIEW_BITS | 1})
    sends: list = []
    engine = Engine(compile_one(STAYS), Reference(), sink=sends.append)
    engine.runtimes[0].restore(saved)
    engine.schedule(T0 + D, engine.runtimes[0], "1")  # a snapshot restores the wait's deadline beside it
    assert engine.runtimes[0].state_of("1") == Waiting(T0, {"cell": "c-remapped"})
    engine.on_event(Location(ts=T0 + 1, msisdn="1", cell="c-remapped"))  # the same cell: no answer
    engine.advance(T0 + 60_000)
    assert [(s.ts, s.params) for s in sends] == [(T0 + D, {"cell": "c-remapped"})]


def test_an_event_that_does_not_answer_a_packed_wait_calls_no_handler():
    _, engine = _run(STAYS, [])
    route = engine._routes[Location]
    handled: list[str] = []
    handler = route.__globals__["_h0"]
    route.__globals__["_h0"] = lambda ev: (handled.append(ev.cell), handler(ev))
    sends: list = []
    engine.sink = sends.append
    for ev in [Location(ts=T0, msisdn="1", cell="c1"), Location(ts=T0 + 1, msisdn="1", cell="c1"),
               Location(ts=T0 + 2, msisdn="1", cell="c2"), Location(ts=T0 + 3, msisdn="1", cell="c2")]:
        engine.on_event(ev)
    assert handled == ["c1", "c2"]  # the wait's start and the answer that restarts it; the same cell: no call
    engine.advance(T0 + 60_000)
    assert [(s.ts, s.params) for s in sends] == [(T0 + 2 + D, {"cell": "c2"})]
