"""A count window pasted into its route (``engine.forms.aggregate``) decides what the general path decides.

The general path is the same engine with the pasting switched off: the count handler,
compiled from the same text, called from the route, every completion through
``Engine.complete``. Streams step around
the window length and the cool-down so that evictions at the window's edge and
completions at the cool-down's end are common.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.engine import Engine, Reference
from kairos.engine import _engine
from kairos.engine.forms import aggregate
from kairos.engine._events import Dpi, Location
from kairos.plan import Aggregate

from tests.dsl.support import T0, compile_one
from tests.engine.builders import flt, fn, run, scenario

D = 10
HOUR = 3_600_000
CATS = ["video", "news"]
TAGS = {"a": {"plan": "x"}, "b": {"plan": "y"}}


@st.composite
def streams(draw, max_size=60):
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 2, D - 1, D, D + 1, 2 * D, 3 * D, HOUR]),
                          max_size=max_size))
    return [Dpi(ts=t, msisdn=draw(st.sampled_from(["a", "b"])), host="h",
                category=draw(st.sampled_from(CATS)))
            for t in itertools.accumulate(steps, initial=1)]


@st.composite
def counts(draw, name):
    cmp = draw(st.sampled_from([">=", ">", "<=", "<", "==", "!="]))
    n = draw(st.sampled_from([0, 1, 2, 3, 2.5]))
    within = draw(st.sampled_from([D, 2 * HOUR]))  # a long window keys its state by interned numbers
    kw = {}
    cooldown = draw(st.sampled_from([None, 0, D, 3 * D]))
    if cooldown is not None:
        kw["cooldown_ms"] = cooldown
    if draw(st.booleans()):
        kw["once"] = "once"
    if draw(st.booleans()):
        kw["audience"] = fn(lambda e, a, c: c.tag("plan") == "x")  # refused after the cool-down
    where = flt("dpi", lambda e, a, c: e.category == "video")
    return scenario(name, Aggregate("count", where, None, cmp, n, within), **kw)


def _both(scenarios, events, monkeypatch):
    ref = Reference(tags=TAGS)
    fused_sends, fused = run(scenarios, events, ref)
    with monkeypatch.context() as m:
        m.setattr(aggregate, "FUSED", False)
        general_sends, general = run(scenarios, events, ref)
    assert "_r0_states" in fused._routes[Dpi].source
    assert "_r0_states" not in general._routes[Dpi].source
    return (fused_sends, fused), (general_sends, general)


@settings(max_examples=300, deadline=None)
@given(streams(), counts("s0"), counts("s1"))
def test_a_fused_count_sends_and_counts_what_the_general_path_does(events, first, second):
    with pytest.MonkeyPatch.context() as monkeypatch:
        (fused_sends, fused), (general_sends, general) = _both([first, second], events, monkeypatch)
    assert fused_sends == general_sends
    assert fused.stats == general.stats
    for a, b in zip(fused.runtimes, general.runtimes, strict=True):
        assert a.states == b.states


def test_a_burst_over_the_threshold_is_refused_by_the_cool_down_and_counted(monkeypatch):
    scn = scenario("burst", Aggregate("count", flt("dpi", lambda e, a, c: e.category == "video"), None,
                                      ">=", 3, D), cooldown_ms=5 * D)
    events = [Dpi(ts=t, msisdn="a", host="h", category="video") for t in range(1, 60, 2)]
    (sends, engine), (general_sends, _) = _both(scn, events, monkeypatch)
    # 3 in the window from ts 5 on; a send at 5, then the cool-down refuses until 5 + 50
    assert [s.ts for s in sends] == [5, 55] == [s.ts for s in general_sends]
    stats = engine.stats[0]
    assert (stats.matched, stats.triggered, stats.suppressed) == (28, 2, {"cooldown": 26})


@pytest.mark.parametrize("at, sends, kept", [
    ([1, 1 + D, 2 + 2 * D + 1, 3 + 3 * D + 1], [1 + D], [3 + 3 * D + 1]),  # the oldest exactly D old stays
    ([1, 2, 2 + D, 2 + D, 2 + 2 * D], [2 + D, 2 + 2 * D], [2 + D, 2 + D, 2 + 2 * D]),  # so does a later one
])
def test_the_window_drops_events_older_than_its_length_exactly_at_the_edge(at, sends, kept, monkeypatch):
    scn = scenario("edge", Aggregate("count", flt("dpi"), None, ">=", 2 if len(at) == 4 else 3, D))
    events = [Dpi(ts=t, msisdn="a", host="h") for t in at]
    (fused_sends, engine), (general_sends, _) = _both(scn, events, monkeypatch)
    assert [s.ts for s in fused_sends] == sends == [s.ts for s in general_sends]
    assert engine.runtimes[0].states == {"a": kept}


def test_a_window_is_kept_while_fresh_and_dropped_once_its_newest_event_is_older_than_its_length(monkeypatch):
    minute = 60_000
    scn = scenario("gc", Aggregate("count", flt("dpi"), None, ">=", 5, minute))
    seen = []
    for enabled in (True, False):
        monkeypatch.setattr(aggregate, "FUSED", enabled)
        _, engine = run(scn, [], finish=False)
        states = engine.runtimes[0].states
        kept = []
        for t, m in [(0, "a"), (50_000, "a"), (62_000, "b"), (109_000, "b"), (112_000, "b")]:
            engine.on_event(Dpi(ts=t, msisdn=m, host="h"))
            kept.append(sorted(states))
        seen.append(kept)
    # a's window (newest at 50 s) outlives the sweep at 62 s, and goes at the first sweep after 110 s
    assert seen[0] == [["a"], ["a"], ["a", "b"], ["a", "b"], ["b"]] == seen[1]


def test_an_observer_hears_every_completion_so_its_engine_does_not_fuse():
    heard: list[int] = []

    class Observer:
        def completed(self, i, m, t, e, a):
            heard.append(t)

        def gated(self, i, m, t, reason):
            pass

        def __getattr__(self, name):
            return lambda *args, **kw: None

    scn = scenario("o", Aggregate("count", flt("dpi"), None, ">=", 1, D), cooldown_ms=D)
    events = [Dpi(ts=t, msisdn="a", host="h") for t in (1, 2, 3)]
    _, engine = run(scn, events, observer=Observer())
    assert "_r0_states" not in engine._routes[Dpi].source
    assert heard == [1, 2, 3] and engine.stats[0].suppressed == {"cooldown": 2}


CATALOGUE = """
scenario burst
  when count(dpi where category == "video") >= 2 within 1m
  cooldown 2m
  then sms "t"
end
scenario big
  audience tags.plan == "x"
  when dpi where bytes > 3
  then sms "t"
end
scenario rising
  when dpi where crosses_above(bytes, 2)
  then sms "t"
end
scenario then_there
  when dpi as d where category == "video" -> location where cell == "c1" within 1m
  then sms "t"
end
scenario quiet
  when dpi where category == "news" -> not dpi where category == "video" within 30s
  then sms "t"
end
scenario wave
  when trigger where scenario == "burst"
  then sms "t2"
end
"""


@st.composite
def mixed_streams(draw):
    steps = draw(st.lists(st.sampled_from([0, 1, 1_000, 29_000, 30_000, 61_000, -1]), max_size=50))
    events, t = [], T0
    for step in steps:
        t += step  # a step back makes a late event
        m = draw(st.sampled_from(["a", "b"]))
        if draw(st.booleans()):
            events.append(Dpi(ts=t, msisdn=m, host="h", category=draw(st.sampled_from(CATS)),
                              bytes=draw(st.integers(0, 5))))
        else:
            events.append(Location(ts=t, msisdn=m, cell=draw(st.sampled_from(["c1", "c2"]))))
    return events


@settings(max_examples=200, deadline=None)
@given(mixed_streams(), st.integers(1, 7))
def test_the_feed_with_the_dpi_route_pasted_in_decides_what_the_general_feed_does(events, block):
    plan = compile_one(CATALOGUE)
    ref = Reference(tags=TAGS)
    runs = []
    loops = []
    for pasted in (True, False):
        sends, late = [], []
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_engine, "FUSED_FEED", pasted)  # the same loop's text, calling the DPI route
            engine = Engine(plan, ref, sink=sends.append)
        for k in range(0, len(events), block):
            engine.feed(events[k:k + block], on_late=lambda i, ev, k=k: late.append(k + i))  # noqa: B023 (used in this iteration only)
        engine.finish()
        runs.append((sends, late, engine.stats, engine.events_in, engine.late_events,
                     [rt.states for rt in engine.runtimes]))
        loops.append("_feed_hot" in engine.feed.source)
    assert loops == [True, False]
    assert runs[0] == runs[1]


def test_a_subclass_that_overrides_feed_keeps_its_own():
    calls = []

    class Counting(Engine):
        def feed(self, events, on_late=None):
            calls.append(len(events))
            super().feed(events, on_late)

    sends: list = []
    engine = Counting(compile_one(CATALOGUE), Reference(tags=TAGS), sink=sends.append)
    engine.feed([Dpi(ts=T0, msisdn="a", host="h", bytes=5)])
    assert calls == [1] and [s.scenario for s in sends] == ["big", "rising"]


def test_the_count_handler_is_the_text_its_route_pastes_compiled_under_the_scenarios_name():
    engine = Engine(compile_one(CATALOGUE), Reference(tags=TAGS), sink=lambda s: None)
    handler = engine.runtimes[0].entry()[2]
    assert handler.__code__.co_filename == "<kairos scenario burst count>"
    step = [line.strip() for line in handler.source.splitlines()[1:-1]]  # all but ``complete``: the window
    route = [line.strip() for line in engine._routes[Dpi].source.splitlines()]
    start = route.index(step[0])
    assert route[start:start + len(step)] == step  # pasted as it is
    assert " # scenario burst count at " in step[-1]  # the threshold test names its clause's place


def test_the_cool_down_the_route_pastes_is_the_test_the_engine_s_gate_compiles():
    engine = Engine(compile_one(CATALOGUE), Reference(tags=TAGS), sink=lambda s: None)
    gate = engine._gates[0].cooling
    assert gate.__code__.co_filename == "<kairos scenario burst cooldown>"
    test = gate.source.splitlines()[-1].strip().removeprefix("return ").replace("last", "_l").replace("t <", "_t <")
    route = [line.strip() for line in engine._routes[Dpi].source.splitlines()]
    assert any(line.startswith(f"if {test}:") for line in route)  # one text: pasted here, compiled there
    engine.on_event(Dpi(ts=T0, msisdn="a", host="h", category="video"))
    engine.on_event(Dpi(ts=T0 + 1, msisdn="a", host="h", category="video"))  # triggers: cooling from here
    assert (True, False) == (gate("a", T0 + 2 * 60_000 - 1), gate("a", T0 + 2 * 60_000 + 1))
