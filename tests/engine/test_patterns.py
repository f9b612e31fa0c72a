"""Each pattern form of LANGUAGE.md §2 at its boundaries, on hand-built plans.

Time axis in the timelines: minutes after T0 (Monday 2026-11-23 00:00, Asia/Shanghai).
"""

from __future__ import annotations

from kairos.engine import Reference
from kairos.engine._events import Call, Dpi, Feedback, Location, Power, Sms, Trigger
from kairos.plan import Absence, Aggregate, Dwell, Sequence, Single

from tests.engine.builders import flt, run, scenario, times

T0 = 1_795_363_200_000
S = 1_000
M = 60_000


def dpi(minute: float, m: str = "1", category: str = "video", **kw) -> Dpi:
    return Dpi(ts=T0 + int(minute * M), msisdn=m, host="h", category=category, **kw)


def loc(ms: int, cell: str, m: str = "1") -> Location:
    return Location(ts=T0 + ms, msisdn=m, cell=cell)


# --- single filter -------------------------------------------------------


def test_single_filter_completes_at_every_passing_event():
    video = scenario("v", Single(flt("dpi", lambda e, a, c: e.category == "video")))
    sends, _ = run(video, [dpi(0), dpi(1, category="news"), dpi(2)])
    assert times(sends) == [T0, T0 + 2 * M]


def test_a_scenario_sees_only_the_event_types_it_reads():
    video = scenario("v", Single(flt("dpi")))
    sends, engine = run(video, [Sms(ts=T0, msisdn="1", direction="mo"), dpi(1)])
    assert times(sends) == [T0 + M]
    assert engine.events_in == 2


# --- sequences -----------------------------------------------------------


def test_sequence_within_is_inclusive_at_both_ends():
    # sms@0 -> call@10m completes (exactly D); sms@20 -> call@30m+1ms does not
    seq = scenario("s", Sequence((flt("sms"), flt("call")), within_ms=10 * M))
    events = [
        Sms(ts=T0, msisdn="1", direction="mo"),
        Call(ts=T0 + 10 * M, msisdn="1", direction="mo"),
        Sms(ts=T0 + 20 * M, msisdn="1", direction="mo"),
        Call(ts=T0 + 30 * M + 1, msisdn="1", direction="mo"),
    ]
    sends, _ = run(seq, events)
    assert times(sends) == [T0 + 10 * M]


def test_sequence_match_is_consumed_so_the_next_needs_new_events_for_every_step():
    #   sms  call call   sms call
    #   0    1    2      3   4
    # completes at 1 and 4, not at 2 (its sms was consumed)
    seq = scenario("s", Sequence((flt("sms"), flt("call")), within_ms=10 * M))
    events = [
        Sms(ts=T0, msisdn="1", direction="mo"),
        Call(ts=T0 + 1 * M, msisdn="1", direction="mo"),
        Call(ts=T0 + 2 * M, msisdn="1", direction="mo"),
        Sms(ts=T0 + 3 * M, msisdn="1", direction="mo"),
        Call(ts=T0 + 4 * M, msisdn="1", direction="mo"),
    ]
    sends, _ = run(seq, events)
    assert times(sends) == [T0 + 1 * M, T0 + 4 * M]


def test_sequence_aliases_bind_to_the_latest_events_that_complete_it():
    seen = []
    seq = scenario(
        "s",
        Sequence((flt("sms", alias="s"), flt("call", alias="c")), within_ms=10 * M),
        audience=_record(seen),
    )
    events = [
        Sms(ts=T0, msisdn="1", direction="mo", peer="a"),
        Sms(ts=T0 + 1 * M, msisdn="1", direction="mo", peer="b"),
        Call(ts=T0 + 2 * M, msisdn="1", direction="mo"),
    ]
    run(seq, events)
    assert [(a[0].peer, a[1].ts) for a in seen] == [("b", T0 + 2 * M)]


def test_one_event_does_not_fill_two_steps_of_the_same_match():
    # dpi -> dpi: a single event completes nothing; the second does
    seq = scenario("s", Sequence((flt("dpi"), flt("dpi")), within_ms=10 * M))
    sends, _ = run(seq, [dpi(0), dpi(1), dpi(2), dpi(3)])
    assert times(sends) == [T0 + 1 * M, T0 + 3 * M]


def test_correlated_sequence_keeps_every_partial_match_its_filter_may_need():
    # sms to peer a, sms to peer b, then a call to peer a: completes with the first sms
    seen = []
    seq = scenario(
        "s",
        Sequence(
            (
                flt("sms", alias="s"),
                flt("call", lambda e, a, c: e.peer == a[0].peer, reads_aliases=True),
            ),
            within_ms=10 * M,
        ),
        audience=_record(seen),
    )
    events = [
        Sms(ts=T0, msisdn="1", direction="mo", peer="a"),
        Sms(ts=T0 + M, msisdn="1", direction="mo", peer="b"),
        Call(ts=T0 + 2 * M, msisdn="1", direction="mo", peer="a"),
        Call(ts=T0 + 3 * M, msisdn="1", direction="mo", peer="b"),
    ]
    sends, _ = run(seq, events)
    assert times(sends) == [T0 + 2 * M]  # the b-match was consumed with the completion
    assert seen[0][0].peer == "a"


def test_three_step_sequence_measures_within_from_the_first_step():
    seq = scenario("s", Sequence((flt("sms"), flt("dpi"), flt("call")), within_ms=10 * M))
    late = [
        Sms(ts=T0, msisdn="1", direction="mo"),
        dpi(5),
        Call(ts=T0 + 10 * M + 1, msisdn="1", direction="mo"),
    ]
    assert run(seq, late)[0] == []
    on_time = late[:2] + [Call(ts=T0 + 10 * M, msisdn="1", direction="mo")]
    assert times(run(seq, on_time)[0]) == [T0 + 10 * M]


def _record(into):
    from tests.engine.builders import fn

    def audience(e, a, c):
        into.append(a)
        return True

    return fn(audience)


# --- absence -------------------------------------------------------------


def _absence(within=10 * M):
    return scenario(
        "wave2",
        Absence(
            flt("trigger", lambda e, a, c: e.scenario == "w1", alias="t"),
            flt("feedback", lambda e, a, c: e.trigger_id == a[0].id, reads_aliases=True),
            within_ms=within,
        ),
    )


def _trig(ms, tid="x"):
    return Trigger(ts=T0 + ms, msisdn="1", id=tid, scenario="w1", channel="sms", template="t")


def _fb(ms, tid="x"):
    return Feedback(ts=T0 + ms, msisdn="1", trigger_id=tid, outcome="clicked")


def test_absence_completes_at_first_plus_d_when_nothing_answered():
    sends, _ = run(_absence(), [_trig(0), dpi(60)])
    assert times(sends) == [T0 + 10 * M]


def test_absence_answer_exactly_at_the_deadline_still_counts():
    sends, _ = run(_absence(), [_trig(0), _fb(10 * M), dpi(60)])
    assert sends == []


def test_absence_answer_one_ms_late_does_not_count():
    sends, _ = run(_absence(), [_trig(0), _fb(10 * M + 1)])
    assert times(sends) == [T0 + 10 * M]


def test_absence_a_new_first_while_waiting_does_not_restart_the_wait():
    #  t(x)@0  t(y)@5  ---- deadline 10 fires for x; y was ignored
    sends, _ = run(_absence(), [_trig(0, "x"), _trig(5 * M, "y"), dpi(60)])
    assert times(sends) == [T0 + 10 * M]


def test_absence_after_an_answer_the_next_first_starts_a_new_wait():
    sends, _ = run(_absence(), [_trig(0, "x"), _fb(M, "x"), _trig(2 * M, "y"), dpi(60)])
    assert times(sends) == [T0 + 12 * M]


def test_absence_only_an_answer_that_matches_the_bound_alias_counts():
    sends, _ = run(_absence(), [_trig(0, "x"), _fb(M, "other"), dpi(60)])
    assert times(sends) == [T0 + 10 * M]


def test_time_stands_at_the_last_event_deadlines_up_to_it_fire_later_ones_do_not():
    exactly = run(_absence(), [_trig(0), dpi(10)])[0]
    assert times(exactly) == [T0 + 10 * M]
    short = run(_absence(), [_trig(0), dpi(9.99)])[0]
    assert short == []


# --- aggregates ----------------------------------------------------------


def _count(n=3, within=10 * M, cmp=">="):
    return scenario(
        "c", Aggregate("count", flt("dpi", lambda e, a, c: e.category == "video"), None, cmp, n, within)
    )


def test_count_window_includes_an_event_exactly_d_before():
    #  v@0  v@5  v@10  -> 3 events in [0, 10]: completes at 10
    sends, _ = run(_count(), [dpi(0), dpi(5), dpi(10)])
    assert times(sends) == [T0 + 10 * M]


def test_count_window_excludes_an_event_more_than_d_before():
    sends, _ = run(_count(), [dpi(0), dpi(5), dpi(10.001)])
    assert sends == []


def test_count_completes_at_every_passing_event_while_the_condition_holds():
    sends, _ = run(_count(n=2), [dpi(0), dpi(1), dpi(2), dpi(2, category="news")])
    assert times(sends) == [T0 + M, T0 + 2 * M]


def test_count_with_less_than_compares_the_window_including_this_event():
    sends, _ = run(_count(n=2, cmp="<"), [dpi(0), dpi(1), dpi(30)])
    assert times(sends) == [T0, T0 + 30 * M]


def test_sum_adds_the_expression_over_the_window_ignoring_nulls():
    agg = scenario(
        "s", Aggregate("sum", flt("dpi"), _fn(lambda e, a, c: e.bytes), ">=", 100, 10 * M)
    )
    events = [dpi(0, bytes=60), dpi(1, bytes=30), dpi(11, bytes=20), dpi(12, bytes=80)]
    sends, _ = run(agg, events)
    # at 12: window [2, 12] holds 20 + 80 = 100
    assert times(sends) == [T0 + 12 * M]


def test_distinct_counts_different_values_in_the_window():
    agg = scenario(
        "d", Aggregate("distinct", flt("dpi"), _fn(lambda e, a, c: e.app), ">=", 3, 10 * M)
    )
    events = [dpi(0, app="a"), dpi(1, app="a"), dpi(2, app="b"), dpi(3, app=None), dpi(4, app="c")]
    sends, _ = run(agg, events)
    assert times(sends) == [T0 + 4 * M]


def _fn(f):
    from tests.engine.builders import fn

    return fn(f)


# --- dwell ---------------------------------------------------------------

CELLS = Reference(areas_of_cell={"air1": frozenset({"airport"}), "air2": frozenset({"airport"}),
                                 "home": frozenset()})


def _dwell():
    return scenario("d", Dwell(("airport",), for_ms=20 * M))


def test_dwell_completes_at_enter_plus_d_without_an_event_then():
    sends, _ = run(_dwell(), [loc(0, "air1"), loc(5 * M, "air2"), loc(30 * M, "air2")], CELLS)
    assert times(sends) == [T0 + 20 * M]


def test_dwell_left_exactly_at_the_deadline_completes():
    sends, _ = run(_dwell(), [loc(0, "air1"), loc(20 * M, "home")], CELLS)
    assert times(sends) == [T0 + 20 * M]


def test_dwell_left_before_the_deadline_is_cancelled():
    sends, _ = run(_dwell(), [loc(0, "air1"), loc(20 * M - 1, "home"), loc(60 * M, "home")], CELLS)
    assert sends == []


def test_dwell_power_off_is_a_leave():
    events = [loc(0, "air1"), Power(ts=T0 + 10 * M, msisdn="1", state="off"), loc(60 * M, "home")]
    assert run(_dwell(), events, CELLS)[0] == []


def test_dwell_completes_once_per_stay_and_again_after_reentering():
    events = [loc(0, "air1"), loc(25 * M, "air1"), loc(50 * M, "air2"),  # one stay
              loc(60 * M, "home"), loc(70 * M, "air1"), loc(95 * M, "air1")]  # a second stay
    sends, _ = run(_dwell(), events, CELLS)
    assert times(sends) == [T0 + 20 * M, T0 + 90 * M]


def test_dwell_deadline_after_the_last_event_does_not_fire():
    assert run(_dwell(), [loc(0, "air1"), loc(19 * M, "air1")], CELLS)[0] == []


def test_dwell_unknown_cell_counts_as_outside():
    events = [loc(0, "air1"), loc(5 * M, "unknown-cell"), loc(6 * M, "air1"), loc(27 * M, "air1")]
    assert times(run(_dwell(), events, CELLS)[0]) == [T0 + 26 * M]


# --- state lifetime ------------------------------------------------------


def test_window_state_is_dropped_once_nothing_can_complete_from_it():
    _, engine = run(_count(), [dpi(0, m="1"), dpi(1, m="2")], finish=False)
    assert engine.subscribers_in_state() == 2
    engine.on_event(dpi(11.5, m="3", category="news"))  # both windows ended by 11m
    assert engine.subscribers_in_state() == 0


def test_a_completed_absence_leaves_no_state():
    _, engine = run(_absence(), [_trig(0), dpi(60)])
    assert engine.subscribers_in_state() == 0


def test_sequence_state_expires_after_within():
    seq = scenario("s", Sequence((flt("sms"), flt("call")), within_ms=10 * M))
    _, engine = run(seq, [Sms(ts=T0, msisdn="1", direction="mo"), dpi(20, m="2")], finish=False)
    assert engine.subscribers_in_state() == 0


def test_an_event_older_than_the_stream_time_is_counted_and_skipped():
    sends, engine = run(_count(n=1), [dpi(5), dpi(4)])
    assert (times(sends), engine.late_events) == ([T0 + 5 * M], 1)
