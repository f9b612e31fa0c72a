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

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 100, D)
    events = [Dpi(ts=0, msisdn="a", host="h", bytes=1), Dpi(ts=5 * D, msisdn="b", host="h", bytes=1)]
    _, engine = run(scenario("s", pattern), events, gc_granularity_ms=1)
    rt = engine.runtimes[0]
    assert (set(rt.states), set(rt._sums)) == ({"b"}, {"b"})
