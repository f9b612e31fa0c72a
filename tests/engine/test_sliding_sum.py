"""``sum(…)`` keeps a running total: it equals summing the window afresh, whatever the values."""

from __future__ import annotations

import operator

from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.plan import Aggregate

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
    from kairos.engine._events import Dpi

    # a float keeps the window in its list form, whose running total is a side table
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes + 0.5), ">=", 100, D)
    events = [Dpi(ts=0, msisdn="a", host="h", bytes=1), Dpi(ts=5 * D, msisdn="b", host="h", bytes=1)]
    _, engine = run(scenario("s", pattern), events, gc_granularity_ms=1)
    rt = engine.runtimes[0]
    assert (set(rt.states), set(rt._sums)) == ({"b"}, {"b"})


def test_a_window_of_whole_numbers_is_packed_and_reads_back_as_pairs():
    from array import array

    from kairos.engine._events import Dpi

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 10**9, D)
    events = [Dpi(ts=t, msisdn="a", host="h", bytes=b) for t, b in ((0, 7), (1, 8), (D + 1, 9))]
    _, engine = run(scenario("s", pattern), events)
    rt = engine.runtimes[0]
    assert (rt.states["a"].__class__, rt.states["a"].typecode) == (array, "Q")  # 8 bytes an entry
    assert rt.state_of("a") == [(1, 8), (D + 1, 9)]  # the entry at 0 left the window
    assert rt._sums == {}


def test_a_float_turns_a_packed_window_into_a_list_with_the_same_sum():
    from kairos.engine._events import Dpi

    values = {1: 60, 2: 30.5, 3: 10}
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: values[e.bytes]), ">=", 100, D)
    events = [Dpi(ts=t, msisdn="a", host="h", bytes=t) for t in (1, 2, 3)]
    sends, engine = run(scenario("s", pattern), events)
    assert [s.ts for s in sends] == [3]  # 60 + 30.5 + 10
    assert engine.runtimes[0].state_of("a") == [(1, 60), (2, 30.5), (3, 10)]


#: days of 24 h; a window kept alive this long has packed offsets beyond 32 bits (49.7 days)
DAY = 86_400_000


@st.composite
def long_streams(draw):
    """Events up to 60 days apart and values around the edges of the 8-byte form."""
    steps = draw(st.lists(st.sampled_from([0, 1, DAY // 2, DAY, 10 * DAY, 2**32 - 1, 2**32]), max_size=40))
    values = st.sampled_from([0, 1, 2**32 - 1, 2**32, -1, 2**40, 2**62])
    out, t = [], 0
    from kairos.engine._events import Dpi

    for step in steps:
        t += step
        out.append(Dpi(ts=t, msisdn=draw(st.sampled_from(["a", "b"])), host="h", bytes=draw(values)))
    return out


@settings(max_examples=300, deadline=None)
@given(long_streams(), st.sampled_from([DAY, 60 * DAY]), st.sampled_from([1, 2**32, 2**33, 2**63]))
def test_a_sum_over_long_spans_and_large_values_equals_brute_force(events, within, n):
    """Rebasing offsets past 32 bits, values past 32 (and 64) bits, windows longer than 49 days."""
    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", n, within)
    sends, _ = run(scenario("s", pattern), events)
    expected = []
    for i, e in enumerate(events):
        window = [x.bytes for x in events[: i + 1] if x.msisdn == e.msisdn and x.ts >= e.ts - within]
        if sum(window) >= n:
            expected.append((e.msisdn, e.ts))
    assert expected == [(s.msisdn, s.ts) for s in sends]


def test_a_window_alive_past_49_days_moves_its_base_and_stays_8_bytes_an_entry():
    from kairos.engine._events import Dpi

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 10**12, DAY)
    events = [Dpi(ts=k * DAY // 2, msisdn="a", host="h", bytes=k) for k in range(120)]  # 60 days
    _, engine = run(scenario("s", pattern), events, finish=False)
    window = engine.runtimes[0].states["a"]
    assert window.typecode == "Q" and window[1] > 0  # rebased: the first entry was at 0
    assert engine.runtimes[0].state_of("a") == [(k * DAY // 2, k) for k in (117, 118, 119)]  # a day: 117 on the edge


def test_values_outside_32_bits_widen_the_window_to_16_bytes_an_entry_with_the_same_sum():
    from kairos.engine._events import Dpi

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 2**33, D)
    events = [Dpi(ts=1, msisdn="a", host="h", bytes=5), Dpi(ts=2, msisdn="a", host="h", bytes=2**33 - 6),
              Dpi(ts=3, msisdn="a", host="h", bytes=-1), Dpi(ts=4, msisdn="a", host="h", bytes=2)]
    sends, engine = run(scenario("s", pattern), events, finish=False)
    assert [s.ts for s in sends] == [4]  # 5 + 2**33 - 6 - 1 + 2
    assert engine.runtimes[0].states["a"].typecode == "q"
    assert engine.runtimes[0].state_of("a") == [(1, 5), (2, 2**33 - 6), (3, -1), (4, 2)]


def test_a_packed_window_survives_a_snapshot_in_its_packed_form():
    from kairos.engine import Engine
    from kairos.engine._events import Dpi
    from kairos.engine._snapshot import decode, encode, restore
    from kairos.plan import Plan

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 100, D)
    _, engine = run(scenario("s", pattern), [Dpi(ts=t, msisdn="a", host="h", bytes=40) for t in (1, 2)],
                    finish=False)
    sends: list = []
    restored = Engine(Plan((scenario("s", pattern),)), sink=sends.append)
    restore(restored, decode(encode(engine)).engine)
    assert restored.runtimes[0].states["a"] == engine.runtimes[0].states["a"]
    assert restored.runtimes[0].states["a"].typecode == "Q"
    restored.on_event(Dpi(ts=3, msisdn="a", host="h", bytes=40))
    assert [s.ts for s in sends] == [3]


def test_a_window_of_one_entry_is_an_int_and_becomes_one_again_when_the_others_leave():
    from kairos.engine._events import Dpi

    pattern = Aggregate("sum", flt("dpi"), fn(lambda e, a, c: e.bytes), ">=", 15, D)
    _, engine = run(scenario("s", pattern), [Dpi(ts=1, msisdn="a", host="h", bytes=7)], finish=False)
    rt = engine.runtimes[0]
    assert rt.states["a"] == 1 << 32 | 7
    assert rt.state_of("a") == [(1, 7)]
    sends: list = []
    engine.sink = sends.append
    engine.on_event(Dpi(ts=2, msisdn="a", host="h", bytes=8))  # 7 + 8
    assert (rt.states["a"].typecode, rt.state_of("a"), [s.ts for s in sends]) == ("Q", [(1, 7), (2, 8)], [2])
    engine.on_event(Dpi(ts=D + 2, msisdn="a", host="h", bytes=9))  # the entry at 1 left
    assert (rt.states["a"].typecode, rt.state_of("a"), len(sends)) == ("Q", [(2, 8), (D + 2, 9)], 2)
    engine.on_event(Dpi(ts=2 * D + 3, msisdn="a", host="h", bytes=15))  # both left: 15 alone
    assert (rt.states["a"], len(sends)) == ((2 * D + 3) << 32 | 15, 3)
