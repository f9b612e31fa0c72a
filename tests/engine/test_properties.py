"""Windows, sequences and dwell against brute-force recomputation on random streams.

Timestamps advance by steps drawn around the window length D (0, 1, D-1, D,
D+1 …) so ties and exact boundaries are common.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.engine import Reference
from kairos.engine._events import Dpi, Location, Power
from kairos.plan import Aggregate, Dwell, Sequence

from tests.engine.builders import flt, fn, run, scenario, times

D = 10
CATS = ["video", "news", "music"]


@st.composite
def dpi_streams(draw, max_size=40):
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 2, D - 1, D, D + 1, 3 * D]), max_size=max_size))
    ts = list(itertools.accumulate(steps, initial=0))[1:] or []
    events = []
    for t in ts:
        events.append(Dpi(ts=t, msisdn=draw(st.sampled_from(["a", "b"])), host="h",
                          category=draw(st.sampled_from(CATS)), bytes=draw(st.integers(0, 5)),
                          app=draw(st.sampled_from(["x", "y", "z", None]))))
    return events


def _passes(e):
    return e.category != "news"


def _oracle_aggregate(events, kind, cmp, n):
    import operator
    op = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
          "==": operator.eq, "!=": operator.ne}[cmp]
    out = []
    for i, e in enumerate(events):
        if not _passes(e):
            continue
        window = [x for x in events[: i + 1] if x.msisdn == e.msisdn and _passes(x) and x.ts >= e.ts - D]
        if kind == "count":
            value = len(window)
        elif kind == "sum":
            value = sum(x.bytes for x in window)
        else:
            value = len({x.app for x in window if x.app is not None})
        if op(value, n):
            out.append((e.msisdn, e.ts))
    return out


@settings(max_examples=300, deadline=None)
@given(dpi_streams(), st.sampled_from(["count", "sum", "distinct"]),
       st.sampled_from([">=", ">", "<=", "<", "==", "!="]), st.integers(0, 6))
def test_aggregates_equal_brute_force_recomputation(events, kind, cmp, n):
    value = None if kind == "count" else fn(
        (lambda e, a, c: e.bytes) if kind == "sum" else (lambda e, a, c: e.app))
    agg = scenario("w", Aggregate(kind, flt("dpi", lambda e, a, c: e.category != "news"), value, cmp, n, D))
    sends, _ = run(agg, events)
    assert [(s.msisdn, s.ts) for s in sends] == _oracle_aggregate(events, kind, cmp, n)


def _oracle_sequence(events, filters):
    out = []
    consumed = {}  # msisdn -> index of the last completion
    k = len(filters)
    for i, e in enumerate(events):
        if not filters[-1](e):
            continue
        start = consumed.get(e.msisdn, -1)
        mine = [j for j in range(start + 1, i) if events[j].msisdn == e.msisdn]
        for combo in itertools.combinations(mine, k - 1):
            if all(filters[s](events[j]) for s, j in enumerate(combo)) and e.ts - events[combo[0]].ts <= D:
                out.append((e.msisdn, e.ts))
                consumed[e.msisdn] = i
                break
    return out


@settings(max_examples=300, deadline=None)
@given(dpi_streams(max_size=25), st.lists(st.sampled_from(CATS + [None]), min_size=2, max_size=3))
def test_sequences_equal_brute_force_search(events, cats):
    def make(cat):
        return (lambda e: True) if cat is None else (lambda e: e.category == cat)

    filters = [make(c) for c in cats]
    steps = tuple(flt("dpi", (lambda f: lambda e, a, c: f(e))(f)) for f in filters)  # noqa: B023 (f is bound by the outer lambda)
    sends, _ = run(scenario("q", Sequence(steps, within_ms=D)), events)
    assert [(s.msisdn, s.ts) for s in sends] == _oracle_sequence(events, filters)


CELLS = Reference(areas_of_cell={"in1": frozenset({"zone"}), "in2": frozenset({"zone"})})


@st.composite
def movements(draw):
    steps = draw(st.lists(st.sampled_from([0, 1, D - 1, D, D + 1, 2 * D]), min_size=1, max_size=30))
    out = []
    for t in itertools.accumulate(steps):
        kind = draw(st.sampled_from(["in1", "in2", "out", "out", "off"]))
        out.append(Power(ts=t, msisdn="a", state="off") if kind == "off" else Location(ts=t, msisdn="a", cell=kind))
    return out


def _oracle_dwell(events):
    last = events[-1].ts
    out, enter = [], None
    for e in events:
        inside = isinstance(e, Location) and e.cell in ("in1", "in2")
        if inside and enter is None:
            enter = e.ts
        elif not inside and (isinstance(e, Location) or e.state == "off") and enter is not None:
            if e.ts >= enter + D:
                out.append(enter + D)
            enter = None
    if enter is not None and last >= enter + D:
        out.append(enter + D)
    return out


@settings(max_examples=300, deadline=None)
@given(movements())
def test_dwell_equals_the_stays_that_lasted_d(events):
    sends, _ = run(scenario("d", Dwell(("zone",), for_ms=D)), events, CELLS)
    assert times(sends) == _oracle_dwell(events)
