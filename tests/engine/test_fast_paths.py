"""The engine's shortcuts change how much work an event costs, never what it decides.

Routes skip runtimes that cannot act, audiences read tags last, list and area
tests are bound to the loaded reference, and an absence wait that restarts at
every event keeps a single deadline — each checked here against what a user
sees: the sends and the counts.
"""

from __future__ import annotations

import itertools

import pytest

from kairos.engine import Engine, Reference
from kairos.engine._conjuncts import cheap_first
from kairos.engine._events import Dpi, Location

from tests.dsl.support import T0, compile_one

MIN = 60_000


def _engine(text: str, reference: Reference | None = None) -> tuple[Engine, list]:
    sends: list = []
    return Engine(compile_one(text), reference, sink=sends.append), sends


def test_an_audience_with_tags_last_has_the_truth_value_of_the_written_one():
    s = compile_one(
        'scenario a\n  audience tags.plan == "x" and msisdn in list("vip") and not tags.dnd == true\n'
        '  when dpi\n  then sms "t"\nend\n'
    ).scenarios[0]
    fast = cheap_first(s.audience, {"vip": frozenset({"1"})})
    assert fast is not s.audience.fn

    class Ctx:
        def __init__(self, msisdn, tags):
            self.msisdn, self._tags = msisdn, tags

        def tag(self, name):
            return self._tags.get(name)

        def in_list(self, name, value):
            return name == "vip" and value == "1"

    for msisdn, plan_, dnd in itertools.product(["1", "2"], ["x", "y", None], [True, False, None]):
        ctx = Ctx(msisdn, {"plan": plan_, "dnd": dnd})
        assert fast(None, (), ctx) == s.audience.fn(None, (), ctx)


def test_a_refused_audience_is_counted_in_the_route_as_complete_counts_it():
    ref = Reference(tags={"1": {"plan": "x"}}, lists={"vip": frozenset({"1", "2"})})
    engine, sends = _engine(
        'scenario a\n  audience msisdn in list("vip") and tags.plan == "x"\n'
        '  when dpi where bytes > 0\n  once\n  then sms "t"\nend\n'
        'scenario b\n  audience tags.plan == "x"\n'
        '  when dpi where bytes > 0\n  cooldown 1h\n  then sms "t"\nend\n', ref)
    for i, m in enumerate(["1", "2", "3", "1", "3"]):
        engine.on_event(Dpi(ts=T0 + i * MIN, msisdn=m, host="h", bytes=1))
    engine.on_event(Dpi(ts=T0 + 5 * MIN, msisdn="1", host="h", bytes=0))  # the filter refuses: not matched
    a, b = engine.stats
    assert [s.msisdn for s in sends] == ["1", "1"]  # one per scenario
    assert (a.matched, a.triggered, a.suppressed) == (5, 1, {"audience": 3, "once": 1})
    # b has a cool-down, which is checked (and counted) before the audience
    assert (b.matched, b.triggered, b.suppressed) == (5, 1, {"audience": 3, "cooldown": 1})


def test_area_filters_bound_to_the_cell_table_send_as_the_context_lookup_would():
    ref = Reference(areas_of_cell={"c1": frozenset({"metro"}), "c2": frozenset({"mall", "metro"}),
                                   "c3": frozenset({"mall"})})
    engine, sends = _engine('scenario a\n  when location where in_area("metro")\n  then sms "t"\nend\n', ref)
    assert "cells" in engine._routes[Location].source  # a set test on the cells, no Context call
    for i, cell in enumerate(["c1", "c2", "c3", "c9", "c1"]):
        engine.on_event(Location(ts=T0 + i, msisdn="1", cell=cell))
    assert [s.ts - T0 for s in sends] == [0, 1, 4]


def test_a_wait_restarted_at_every_event_keeps_one_deadline_and_completes_after_the_last():
    engine, sends = _engine(
        'scenario stays\n  when location as l -> not location where cell != l.cell within 1h\n'
        '  then sms "t" with {cell: l.cell}\nend\n')
    for i in range(500):  # a new cell every minute: each answers the wait and starts the next
        engine.on_event(Location(ts=T0 + i * MIN, msisdn="1", cell=f"c{i}"))
    assert len(engine._deadlines) == 1  # not one per event
    engine.on_event(Location(ts=T0 + 499 * MIN + 60 * MIN + 1, msisdn="2", cell="x"))
    assert [(s.ts - T0, s.params) for s in sends] == [(499 * MIN + 60 * MIN, {"cell": "c499"})]


@pytest.mark.parametrize("category, calls", [("handset_review", 1), ("video", 0)])
def test_a_sequence_handler_is_called_only_for_events_a_step_can_take(category, calls, monkeypatch):
    from kairos.engine.forms.sequence import SequenceRuntime

    seen = []
    original = SequenceRuntime._on_correlated

    def counting(self, ev, steps):
        seen.append(ev)
        return original(self, ev, steps)

    monkeypatch.setattr(SequenceRuntime, "_on_correlated", counting)  # before the routes bind it
    engine, _ = _engine(
        'scenario a\n  when dpi as r where category == "handset_review"\n'
        '       -> dpi where category == "handset_review" and app == r.app within 5m\n'
        '  then sms "t"\nend\n')
    engine.on_event(Dpi(ts=T0, msisdn="1", host="h", category=category, app="x"))
    assert len(seen) == calls


def test_state_keys_share_one_copy_of_each_number():
    engine, _ = _engine(
        'scenario a\n  when count(dpi where category == "video") >= 9 within 1h\n  then sms "t"\nend\n'
        'scenario b\n  when location -> not location within 1h\n  then sms "t"\nend\n')
    number = "".join(["138", "0000", "0001"])  # built at run time: not a shared constant
    engine.on_event(Dpi(ts=T0, msisdn=number, host="h", category="video"))
    engine.on_event(Location(ts=T0 + 1, msisdn="".join(["138", "0000", "0001"]), cell="c"))
    (ka,), (kb,) = engine.runtimes[0].states, engine.runtimes[1].states
    assert ka is kb


def test_state_is_collected_when_due_even_if_a_later_watch_was_made_first():
    engine, _ = _engine(
        'scenario long\n  when count(dpi where category == "video") >= 9 within 1h\n  then sms "t"\nend\n'
        'scenario short\n  when count(dpi where category == "news") >= 9 within 1m\n  then sms "t"\nend\n')
    engine.feed([Dpi(ts=T0, msisdn="1", host="h", category="video"),  # watched at T0 + 1h
                 Dpi(ts=T0 + 1, msisdn="2", host="h", category="news")])  # at T0 + 1 + 1m: earlier
    engine.feed([Dpi(ts=T0 + 1 + MIN + 2_000, msisdn="3", host="h", category="sports")])
    assert list(engine.runtimes[0].states) == ["1"] and engine.runtimes[1].states == {}
    engine.feed([Dpi(ts=T0 + 60 * MIN + 2_000, msisdn="3", host="h", category="sports")])
    assert engine.runtimes[0].states == {}


def test_a_block_of_mixed_types_is_routed_as_one_event_at_a_time_is():
    text = ('scenario d\n  when count(dpi where category == "video") >= 2 within 1h\n  then sms "t"\nend\n'
            'scenario l\n  when location where cell == "c1"\n  then sms "t"\nend\n')
    events = [Dpi(ts=T0, msisdn="1", host="h", category="video"), Location(ts=T0 + 1, msisdn="1", cell="c1"),
              Location(ts=T0 + 2, msisdn="2", cell="c1"), Dpi(ts=T0 + 3, msisdn="1", host="h", category="video"),
              Dpi(ts=T0 + 3, msisdn="2", host="h", category="video"), Location(ts=T0 + 4, msisdn="1", cell="c2")]
    fed, fed_sends = _engine(text)
    fed.feed(events)
    one, one_sends = _engine(text)
    for ev in events:
        one.on_event(ev)
    assert [(s.scenario, s.msisdn, s.ts) for s in fed_sends] == [("l", "1", T0 + 1), ("l", "2", T0 + 2),
                                                                 ("d", "1", T0 + 3)]
    assert fed_sends == one_sends
