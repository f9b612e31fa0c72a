"""The contact policy stage: exclude, caps, quiet hours, arbitration, fallbacks and the extensions.

Plans are built by hand (no parser); times are offsets from T0, Monday
2026-11-23 00:00 in Asia/Shanghai.
"""

from __future__ import annotations

import io
from typing import Any

import msgspec
import pytest

from kairos.engine import Engine, Reference, Send, replay
from kairos.engine._events import Dpi, Feedback, Trigger
from kairos.engine._policy import in_control
from kairos.plan import (
    Action, Cap, Capacity, Control, Exclusive, Hours, NoRepeat, Plan, Policy, Quiet, Single, TimeRange,
)
from tests.engine.builders import HERE, flt, fn, scenario

T0 = 1_795_363_200_000  # Monday 2026-11-23 00:00 Asia/Shanghai
S, M, H, D = 1_000, 60_000, 3_600_000, 86_400_000


def at(ms: int, m: str = "1", **kw: Any) -> Dpi:
    return Dpi(ts=T0 + ms, msisdn=m, host=kw.pop("host", "h"), **kw)


def on_host(name: str, host: str, *, priority: int = 50, actions: tuple[Action, ...] | None = None,
            **kw: Any) -> Any:
    """A scenario that triggers at every dpi event on ``host``."""
    return scenario(name, Single(flt("dpi", lambda e, a, c, host=host: e.host == host)),
                    priority=priority, actions=actions, **kw)


def run(scenarios: list[Any], events: list[Any], reference: Reference | None = None,
        **policy: Any) -> tuple[list[Send], Engine, list[Trigger]]:
    """Run with a policy made of ``policy``'s fields; also collect re-entered triggers."""
    sends: list[Send] = []
    entered: list[Trigger] = []
    seen = scenario("seen", Single(flt("trigger", lambda e, a, c: entered.append(e) and False)))
    plan = Plan(tuple(scenarios) + (seen,), Policy(origin=HERE, **policy))
    engine = Engine(plan, reference, sink=sends.append)
    for ev in events:
        engine.on_event(ev)
    engine.finish()
    return sends, engine, entered


def sent(sends: list[Send]) -> list[tuple[str, int]]:
    """(scenario, send_at as an offset from T0) of each send."""
    return [(s.scenario, s.send_at - T0) for s in sends]


# --- exclude --------------------------------------------------------------


def test_a_subscriber_on_an_excluded_list_gets_nothing_and_the_trigger_does_not_re_enter():
    ref = Reference(lists={"dnd": frozenset({"1"})})
    sends, engine, entered = run([on_host("a", "h")], [at(0, "1"), at(0, "2")], ref, exclude=("dnd",))
    assert [s.msisdn for s in sends] == ["2"]
    assert [t.msisdn for t in entered] == ["2"]
    assert engine.stats[0].suppressed == {"exclude": 1}
    assert engine.stats[0].sent == {"sms": 1}


# --- caps -----------------------------------------------------------------


def test_a_cap_counts_a_send_exactly_d_after_another_in_the_same_window():
    # cap sms 1 per 1d, "in any D" with both ends inclusive:
    #   0 ........................ 1d  1d+1ms
    #   sent                       no  sent
    sends, engine, _ = run([on_host("a", "h")], [at(0), at(D), at(D + 1)], caps=(Cap("sms", 1, D),))
    assert sent(sends) == [("a", 0), ("a", D + 1)]
    assert engine.stats[0].suppressed == {"cap": 1}


def test_a_rolling_cap_is_not_a_calendar_day():
    # cap sms 2 per 1d: 20:00, 23:00 sent; 01:00 next day is within 1d of both → stopped;
    # 20:00 next day + 1ms is more than 1d after the first → sent
    events = [at(20 * H), at(23 * H), at(25 * H), at(44 * H + 1)]
    sends, _, _ = run([on_host("a", "h")], events, caps=(Cap("sms", 2, D),))
    assert sent(sends) == [("a", 20 * H), ("a", 23 * H), ("a", 44 * H + 1)]


def test_cap_any_counts_every_channel_and_a_channel_cap_only_its_own():
    sms = on_host("s", "x", actions=(Action("sms", "t.s"),))
    pop = on_host("p", "y", actions=(Action("popup", "t.p"),))
    events = [at(0, host="x"), at(1, host="y"), at(2, host="y"), at(3, host="x")]
    sends, _, _ = run([sms, pop], events, caps=(Cap("sms", 1, H), Cap("any", 2, H)))
    assert [(s.scenario, s.channel) for s in sends] == [("s", "sms"), ("p", "popup")]


def test_caps_are_per_subscriber():
    sends, _, _ = run([on_host("a", "h")], [at(0, "1"), at(1, "2"), at(2, "1")], caps=(Cap("sms", 1, D),))
    assert [s.msisdn for s in sends] == ["1", "2"]


# --- fallbacks --------------------------------------------------------------


def test_the_first_action_the_policy_allows_is_used_with_its_own_channel_template_and_params():
    chain = (Action("sms", "t.sms", (("k", fn(lambda e, a, c: "s")),)),
             Action("popup", "t.pop", (("k", fn(lambda e, a, c: "p")),)))
    sends, engine, entered = run([on_host("a", "h", actions=chain)], [at(0), at(1)], caps=(Cap("sms", 1, D),))
    assert [(s.channel, s.template, s.params) for s in sends] == [
        ("sms", "t.sms", {"k": "s"}), ("popup", "t.pop", {"k": "p"})]
    assert [(t.channel, t.template) for t in entered] == [("sms", "t.sms"), ("popup", "t.pop")]
    assert [s.id for s in sends] == [f"a:1:{T0}", f"a:1:{T0 + 1}"]
    assert engine.stats[0].sent == {"sms": 1, "popup": 1}


def test_when_every_action_is_stopped_nothing_is_sent_and_the_first_actions_reason_is_counted():
    chain = (Action("sms", "t.sms"), Action("call", "t.call"))
    policy = dict(caps=(Cap("sms", 1, D),), quiet=(Quiet(TimeRange(0, 24 * 60), ("call",), "drop"),))
    sends, engine, entered = run([on_host("a", "h", actions=chain)], [at(0), at(1)], **policy)
    assert [s.channel for s in sends] == ["sms"]
    assert len(entered) == 1
    assert engine.stats[0].suppressed == {"cap": 1}


# --- quiet hours ------------------------------------------------------------

NIGHT = TimeRange(22 * 60, 8 * 60)


@pytest.mark.parametrize(("trigger", "send_at"), [
    (21 * H + 59 * M, 21 * H + 59 * M),  # before the range
    (22 * H, 32 * H),                     # its start is quiet → the next morning 08:00
    (23 * H + 30 * M, 32 * H),            # across midnight
    (26 * H, 32 * H),                     # after midnight → the same morning
    (32 * H, 32 * H),                     # 08:00 itself is not quiet (end excluded)
])
def test_quiet_defer_moves_the_send_to_the_end_of_the_range_across_midnight(trigger, send_at):
    sends, _, _ = run([on_host("a", "h")], [at(trigger)], quiet=(Quiet(NIGHT, ("sms",), "defer"),))
    assert [(s.ts - T0, s.send_at - T0) for s in sends] == [(trigger, send_at)]


def test_quiet_drop_stops_the_send_and_leaves_other_channels_alone():
    chain = (Action("sms", "t.sms"), Action("popup", "t.pop"))
    sends, engine, _ = run([on_host("a", "h", actions=chain), on_host("b", "h")], [at(23 * H)],
                           quiet=(Quiet(NIGHT, ("sms",), "drop"),))
    assert [(s.scenario, s.channel) for s in sends] == [("a", "popup")]
    assert engine.stats[1].suppressed == {"quiet": 1}


def test_after_is_applied_before_quiet_hours():
    act = (Action("sms", "t", after_ms=30 * M),)
    sends, _, _ = run([on_host("a", "h", actions=act)], [at(21 * H + 45 * M)],
                      quiet=(Quiet(NIGHT, ("sms",), "defer"),))
    assert sent(sends) == [("a", 32 * H)]


def test_caps_count_a_deferred_send_at_its_send_time():
    # 23:00 deferred to 08:00; a trigger at 08:30 is within 1h of that send → capped
    sends, engine, _ = run([on_host("a", "h")], [at(23 * H), at(32 * H + 30 * M), at(33 * H + 1)],
                           quiet=(Quiet(NIGHT, ("sms",), "defer"),), caps=(Cap("sms", 1, H),))
    assert sent(sends) == [("a", 32 * H), ("a", 33 * H + 1)]
    assert engine.stats[0].suppressed == {"cap": 1}


def test_quiet_on_weekend_days_defers_a_saturday_send_to_monday():
    weekend = Quiet(TimeRange(0, 24 * 60), ("call",), "defer", frozenset({6, 7}))
    act = (Action("call", "t"),)
    saturday = 5 * D + 10 * H
    sends, _, _ = run([on_host("a", "h", actions=act)], [at(saturday)], quiet=(weekend,))
    assert sent(sends) == [("a", 7 * D)]  # Monday 00:00


def test_a_wrapping_quiet_range_on_a_day_covers_that_night_into_the_next_morning():
    friday_night = Quiet(NIGHT, ("sms",), "defer", frozenset({5}))
    events = [at(4 * D + 23 * H), at(5 * D + 7 * H), at(5 * D + 23 * H)]  # Fri 23:00, Sat 07:00, Sat 23:00
    sends, _, _ = run([on_host("a", "h")], events, quiet=(friday_night,))
    assert sent(sends) == [("a", 5 * D + 8 * H), ("a", 5 * D + 8 * H), ("a", 5 * D + 23 * H)]


# --- working hours and capacity (extensions) ---------------------------------

WORK = Hours("call", (TimeRange(9 * 60, 20 * 60),), frozenset({1, 2, 3, 4, 5}))


def test_call_tasks_outside_working_hours_wait_for_the_next_opening_across_the_weekend():
    act = (Action("call", "t"),)
    events = [at(8 * H), at(19 * H + 59 * M), at(4 * D + 20 * H), at(5 * D + 12 * H)]
    sends, _, _ = run([on_host("a", "h", actions=act)], events, hours=(WORK,))
    # Mon 08:00 → Mon 09:00; Mon 19:59 stays; Fri 20:00 → Mon 09:00; Sat 12:00 → Mon 09:00
    assert sent(sends) == [("a", 9 * H), ("a", 19 * H + 59 * M), ("a", 7 * D + 9 * H), ("a", 7 * D + 9 * H)]


def test_hours_leave_other_channels_alone():
    sends, _, _ = run([on_host("a", "h")], [at(3 * H)], hours=(WORK,))
    assert sent(sends) == [("a", 3 * H)]


def test_over_capacity_call_tasks_wait_for_the_next_day_highest_priority_first():
    act = (Action("call", "t"),)
    low = on_host("low", "l", priority=10, actions=act)
    high = on_host("high", "x", priority=90, actions=act)
    # capacity 2 per day: on Monday 3 low + 1 high arrive after the two places went
    events = [at(10 * H, "1", host="l"), at(11 * H, "2", host="l"), at(12 * H, "3", host="l"),
              at(13 * H, "4", host="x"), at(D + 15 * H, "5", host="x")]
    sends, engine, _ = run([low, high], events, hours=(WORK,), capacity=(Capacity("call", 2, 1),))
    # Tuesday 09:00: high (4) first, then low (3); Tuesday's full, so 5 waits and stays held at the end
    assert [(s.msisdn, s.send_at - T0) for s in sends] == [
        ("1", 10 * H), ("2", 11 * H), ("4", D + 9 * H), ("3", D + 9 * H)]
    assert engine.stats[1].held == 1
    assert engine.stats[0].held == 0


def test_capacity_release_order_is_priority_first():
    act = (Action("call", "t"),)
    low = on_host("low", "l", priority=10, actions=act)
    high = on_host("high", "x", priority=90, actions=act)
    events = [at(10 * H, "1", host="l"), at(11 * H, "2", host="l"), at(12 * H, "3", host="x"),
              at(D + 8 * H, "9", host="z")]  # something on Tuesday so the period opens
    order: list[str] = []
    plan = Plan((low, high), Policy(origin=HERE, capacity=(Capacity("call", 1, 1),)))
    engine = Engine(plan, sink=lambda s: order.append(s.msisdn))
    for ev in events:
        engine.on_event(ev)
    engine.finish()
    # Monday: 1 sent; 2 and 3 wait; Tuesday 00:00 releases one place: 3 (priority 90)
    assert order == ["1", "3"]
    assert engine.stats[0].held == 1


# --- arbitration --------------------------------------------------------------


def test_arbitration_sends_only_the_highest_priority_of_triggers_within_d_of_the_first():
    hi, lo = on_host("hi", "x", priority=80), on_host("lo", "y", priority=60)
    #  0: lo   5s: hi   10s: lo (at first + D: still in)   10s+1: lo (a new window)
    events = [at(0, host="y"), at(5 * S, host="x"), at(10 * S, host="y"), at(10 * S + 1, host="y")]
    sends, engine, entered = run([hi, lo], events, arbitrate_ms=10 * S)
    assert sent(sends) == [("hi", 5 * S)]
    assert engine.stats[1].suppressed == {"arbitration": 2}
    assert engine.stats[1].held == 1  # the window opened at 10s+1 is still open at the end of input
    assert [t.scenario for t in entered] == ["hi"]


def test_arbitration_ties_go_to_the_earlier_trigger_then_the_scenario_name():
    a, b = on_host("b_second", "x"), on_host("a_first", "y")
    sends, _, _ = run([a, b], [at(0, host="x"), at(S, host="y"), at(20 * S)], arbitrate_ms=10 * S)
    assert [s.scenario for s in sends] == ["b_second"]
    sends, _, _ = run([a, b], [at(0, host="x"), at(0, host="y"), at(20 * S)], arbitrate_ms=10 * S)
    assert [s.scenario for s in sends] == ["a_first"]


def test_arbitration_is_per_subscriber():
    hi, lo = on_host("hi", "x", priority=80), on_host("lo", "y", priority=60)
    sends, _, _ = run([hi, lo], [at(0, "1", host="x"), at(1, "2", host="y"), at(20 * S)], arbitrate_ms=10 * S)
    assert [(s.scenario, s.msisdn) for s in sends] == [("hi", "1"), ("lo", "2")]


def test_replay_output_stays_ordered_by_trigger_time_when_arbitration_holds_sends():
    hi = on_host("hi", "x", priority=80)
    events = [at(0, "1", host="x"), at(S, "2", host="x"), at(2 * S, "1", host="x"), at(30 * S, "3", host="x")]
    data = b"".join(msgspec.json.encode(e) + b"\n" for e in events)
    out = io.BytesIO()
    plan = Plan((hi,), Policy(origin=HERE, arbitrate_ms=10 * S))
    report = replay(lambda sink: Engine(plan, sink=sink), io.BytesIO(data), out)
    lines = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
    assert [(d["msisdn"], d["ts"] - T0) for d in lines] == [("1", 0), ("2", S)]
    assert report.sends == 2


# --- no_repeat, exclusion groups, control (extensions) -------------------------


def test_no_repeat_blocks_the_template_on_every_channel_after_an_answer():
    sms = on_host("sms_offer", "x", actions=(Action("sms", "offer.pack"),))
    pop = on_host("pop_offer", "y", actions=(Action("popup", "offer.pack"),))
    other = on_host("pop_other", "y", actions=(Action("popup", "offer.other"),))
    fid = f"sms_offer:1:{T0}"
    events = [at(0, host="x"), Feedback(ts=T0 + M, msisdn="1", trigger_id=fid, outcome="accepted"),
              at(2 * M, host="y"), at(M + 30 * D, host="y"), at(M + 30 * D + 1, host="y")]
    sends, engine, _ = run([sms, pop, other], events, no_repeat=NoRepeat(("accepted", "rejected"), 30 * D))
    assert [(s.scenario, s.ts - T0) for s in sends] == [
        ("sms_offer", 0), ("pop_other", 2 * M), ("pop_other", M + 30 * D),
        ("pop_offer", M + 30 * D + 1), ("pop_other", M + 30 * D + 1)]
    assert engine.stats[1].suppressed == {"no_repeat": 2}


def test_a_delivery_report_does_not_block_the_template():
    sms = on_host("sms_offer", "x", actions=(Action("sms", "offer.pack"),))
    events = [at(0, host="x"), Feedback(ts=T0 + M, msisdn="1", trigger_id=f"sms_offer:1:{T0}", outcome="delivered"),
              at(2 * M, host="x")]
    sends, _, _ = run([sms], events, no_repeat=NoRepeat(("accepted", "rejected"), 30 * D))
    assert len(sends) == 2


def test_feedback_is_counted_per_channel_once_per_outcome():
    sms = on_host("a", "x")
    fid = f"a:1:{T0}"
    events = [at(0, host="x")] + [Feedback(ts=T0 + i, msisdn="1", trigger_id=fid, outcome=o)
                                  for i, o in enumerate(["delivered", "delivered", "clicked"], 1)]
    events.append(Feedback(ts=T0 + 9, msisdn="1", trigger_id="nope", outcome="clicked"))
    _, engine, _ = run([sms], events)
    assert engine.stats[0].outcomes == {"sms": {"delivered": 1, "clicked": 1}}
    assert engine.policy is not None and engine.policy.unmatched_feedback == 1


def test_scenarios_of_an_exclusion_group_never_both_reach_a_subscriber_within_the_period():
    a, b, c = on_host("data_90", "x"), on_host("data_100", "y"), on_host("other", "z")
    group = Exclusive("data_offers", ("data_90", "data_100"), 7 * D)
    events = [at(0, host="x"), at(D, host="y"), at(D, host="z"), at(2 * D, host="x"), at(7 * D + 1, host="y")]
    sends, engine, _ = run([a, b, c], events, exclusive=(group,))
    # data_100 at 1d is within 7d of data_90's send; at 7d+1ms it is still within 7d of
    # data_90's second send at 2d → stopped too; "other" is not in the group
    assert [(s.scenario, s.ts - T0) for s in sends] == [("data_90", 0), ("other", D), ("data_90", 2 * D)]
    assert engine.stats[1].suppressed == {"exclusive": 2}


def test_control_group_members_are_matched_and_recorded_but_never_sent():
    subscribers = [str(13800000000 + i) for i in range(400)]
    events = [at(0, m) for m in subscribers]
    sends, engine, entered = run([on_host("a", "h")], events, control=(Control(10.0),))
    held_out = {m for m in subscribers if in_control(m, "a", 10.0)}
    assert {s.msisdn for s in sends} == set(subscribers) - held_out
    assert engine.stats[0].suppressed == {"control": len(held_out)}
    assert {t.msisdn for t in entered} == set(subscribers) - held_out
    assert 0 < len(held_out) < 80


def test_control_feedback_is_counted_apart_from_treated_feedback():
    subscribers = [str(13800000000 + i) for i in range(200)]
    member = next(m for m in subscribers if in_control(m, "a", 20.0))
    events = [at(0, m) for m in subscribers] + [
        Feedback(ts=T0 + 1, msisdn=member, trigger_id=f"a:{member}:{T0}", outcome="accepted")]
    _, engine, _ = run([on_host("a", "h")], events, control=(Control(20.0),))
    assert engine.stats[0].control_outcomes == {"accepted": 1}
    assert engine.stats[0].outcomes == {}


def test_a_per_scenario_control_share_overrides_the_global_one():
    subscribers = [str(13800000000 + i) for i in range(300)]
    events = [at(0, m, host=h) for m in subscribers for h in ("x", "y")]
    policy = dict(control=(Control(0.0), Control(50.0, ("b",))))
    _, engine, _ = run([on_host("a", "x"), on_host("b", "y")], events, **policy)
    assert engine.stats[0].suppressed == {}
    assert engine.stats[1].suppressed["control"] == sum(in_control(m, "b", 50.0) for m in subscribers)


def test_control_membership_is_stable_and_its_share_is_within_tolerance_on_100000_subscribers():
    subscribers = [str(13_800_000_000 + i) for i in range(100_000)]
    members = [m for m in subscribers if in_control(m, "video_heavy_no_pack", 5.0)]
    assert members == [m for m in subscribers if in_control(m, "video_heavy_no_pack", 5.0)]
    assert abs(len(members) / 100_000 - 0.05) < 0.003  # ≈ 4 standard deviations
    other = {m for m in subscribers if in_control(m, "data_90", 5.0)}
    overlap = len(other & set(members)) / len(members)
    assert overlap < 0.1  # memberships of different scenarios are independent (≈ 5 % overlap)


def test_without_a_policy_the_engine_sends_directly():
    sends: list[Send] = []
    engine = Engine(Plan((on_host("a", "h"),)), sink=sends.append)
    engine.on_event(at(0))
    assert engine.policy is None
    assert [s.channel for s in sends] == ["sms"]


def test_several_hours_rules_for_a_channel_open_when_any_of_them_is_open():
    saturday = Hours("call", (TimeRange(10 * 60, 16 * 60),), frozenset({6}))
    act = (Action("call", "t"),)
    sends, _, _ = run([on_host("a", "h", actions=act)], [at(4 * D + 20 * H), at(5 * D + 16 * H)],
                      hours=(WORK, saturday))
    # Fri 20:00 → Sat 10:00; Sat 16:00 (the end is excluded) → Mon 09:00
    assert sent(sends) == [("a", 5 * D + 10 * H), ("a", 7 * D + 9 * H)]


# --- against brute-force oracles ------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def cap_oracle(times: list[int], limit: int, per: int) -> list[int]:
    """Greedy in time order: a send goes when every window [w, w + per] holding it
    keeps at most ``limit`` sends — checked at every integer w."""
    sent: list[int] = []
    for t in times:
        if all(sum(1 for s in sent + [t] if w <= s <= w + per) <= limit for w in range(t - per, t + 1)):
            sent.append(t)
    return sent


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=14).map(sorted), st.integers(1, 3), st.integers(1, 12))
def test_a_rolling_cap_equals_the_brute_force_oracle(offsets, limit, per):
    sends, _, _ = run([on_host("a", "h")], [at(o) for o in offsets], caps=(Cap("sms", limit, per),))
    assert [s.ts - T0 for s in sends] == cap_oracle(offsets, limit, per)


def arbitration_oracle(triggers: list[tuple[int, int, str]], window: int) -> list[str]:
    """(time, priority, name) in time order → the winners, window by window."""
    winners, i = [], 0
    while i < len(triggers):
        first = triggers[i][0]
        group = [tr for tr in triggers[i:] if tr[0] <= first + window]
        winners.append(min(group, key=lambda tr: (-tr[1], tr[0], tr[2]))[2])
        i += len(group)
    return winners


PRIORITY = {"x": ("sx", 50), "y": ("sy", 50), "z": ("sz", 70)}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.sampled_from("xyz")), max_size=12), st.integers(0, 10))
def test_arbitration_equals_the_brute_force_oracle(events, window):
    events = sorted(events)
    scenarios = [on_host(name, host, priority=p) for host, (name, p) in PRIORITY.items()]
    evs = [at(t, host=h) for t, h in events] + [at(100)]  # time moves past the last window
    sends, _, _ = run(scenarios, evs, arbitrate_ms=window)
    triggers = sorted((t, PRIORITY[h][1], PRIORITY[h][0]) for t, h in events)
    assert [s.scenario for s in sends] == arbitration_oracle(triggers, window)


def test_the_policy_keeps_no_state_for_a_subscriber_once_nothing_can_count_any_more():
    events = [at(0, "1"), at(S, "2"), at(2 * D, "3")]
    _, engine, _ = run([on_host("a", "h")], events, arbitrate_ms=10 * S, caps=(Cap("sms", 1, H),),
                       quiet=(Quiet(NIGHT, ("sms",), "defer"),))
    assert engine.policy is not None
    assert sorted(engine.policy.states) == ["3"]  # 1 and 2 sent two days ago: their caps have expired
    _, engine, _ = run([on_host("a", "h")], events, arbitrate_ms=10 * S)
    assert engine.policy is not None and engine.policy.states == {"3": engine.policy.states["3"]}
    assert engine.policy.states["3"].window is not None  # the last window is still open at the end


# --- the send watermark (what a restart could still decide; the daemon gives it to the outbox) ------------


def test_the_send_watermark_stays_at_a_trigger_held_for_arbitration_until_it_is_decided():
    """::

        dpi x (trigger) ---- dpi z ------------- dpi z
        0                    5s                  20s
        |<---- arbitration window 10s ---->|
        watermark 0          0                   20s (decided, sent)
    """
    sends: list[Send] = []
    engine = Engine(Plan((on_host("a", "x"),), Policy(origin=HERE, arbitrate_ms=10 * S)), None, sink=sends.append)
    engine.on_event(at(0, host="x"))
    engine.on_event(at(5 * S, host="z"))
    assert (T0, T0 + 5 * S, []) == (engine.send_watermark(), engine.now, sends)
    engine.on_event(at(20 * S, host="z"))
    assert (T0 + 20 * S, ["a"]) == (engine.send_watermark(), [s.scenario for s in sends])
