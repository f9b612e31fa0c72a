"""``sum(…)`` keeps a running total: it equals summing the window afresh, whatever the values."""

from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from plan import Aggregate

from tests.engine.builders import flt, fn, run, scenario
from tests.engine.test_properties import D, dpi_streams

#: what the summed expression yields per event (by its bytes field): ints, floats, null, a bool
VALUES = {0: None, 1: 1.5, 2: True, 3: 3, 4: -2, 5: 10**20}


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@settings(max_examples=300, deadline=None)
@given(dpi_streams(max_size=60), st.sampled_from([">=", "<", "=="]), st.sampled_from([0, 1, 3, 4.5, 10**20]))
def test_a_sliding_sum_equals_brute_force_over_mixed_values(events, cmp, n):
    op = {">=": operator.ge, "<": operator.lt, "==": operator.eq}[cmp]
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: VALUES[e.bytes]), cmp, n, D)
    sends, _ = run(scenario("s", pattern), events)
    expected = []
    for i, e in enumerate(events):
        window = [VALUES[x.bytes] for x in events[: i + 1] if x.msisdn == e.msisdn and x.ts >= e.ts - D]
        if op(sum(v for v in window if _is_number(v)), n):
            expected.append((e.msisdn, e.ts))
    assert expected == [(s.msisdn, s.ts) for s in sends]


def test_the_running_total_of_an_expired_window_is_dropped_with_it():
    from engine._events import Dpi

    # a float keeps the window in its list form, whose running total is a side table
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes + 0.5), ">=", 100, D)
    events = [Dpi(ts=0, msisdn="a", host="h", bytes=1), Dpi(ts=5 * D, msisdn="b", host="h", bytes=1)]
    _, engine = run(scenario("s", pattern), events, gc_granularity_ms=1)
    rt = engine.runtimes[0]
    assert (set(rt.states), set(rt._sums)) == ({"b"}, {"b"})


def test_a_window_of_whole_numbers_is_packed_and_reads_back_as_pairs():
    from array import array

    from engine._events import Dpi

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 10**9, D)
    events = [Dpi(ts=t, msisdn="a", host="h", bytes=b) for t, b in ((0, 7), (1, 8), (D + 1, 9))]
    _, engine = run(scenario("s", pattern), events)
    rt = engine.runtimes[0]
    assert rt.states["a"].__class__ is array  # 16 bytes an entry, not a tuple of two ints
    assert rt.state_of("a") == [(1, 8), (D + 1, 9)]  # the entry at 0 left the window
    assert rt._sums == {}


def test_a_float_turns_a_packed_window_into_a_list_with_the_same_sum():
    from engine._events import Dpi

    values = {1: 60, 2: 30.5, 3: 10}
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: values[e.bytes]), ">=", 100, D)
    events = [Dpi(ts=t, msisdn="a", host="h", bytes=t) for t in (1, 2, 3)]
    sends, engine = run(scenario("s", pattern), events)
    assert [s.ts for s in sends] == [3]  # 60 + 30.5 + 10
    assert engine.runtimes[0].state_of("a") == [(1, 60), (2, 30.5), (3, 10)]
