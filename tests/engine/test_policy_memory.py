"""The policy stage forgets, in event time, everything nothing can use any more.

A daemon runs for weeks: every per-subscriber structure of the stage must
empty once no rule, window or feedback can read it. Each test drives time far
past the structure's horizon with an unrelated event (host ``zz`` matches no
scenario) and checks the structure is empty. Plans are built by hand; times
are offsets from T0 (see ``test_policy``).
"""

from __future__ import annotations

from kairos.engine import Engine, Send, decode_snapshot, encode_snapshot, restore_snapshot
from kairos.engine._events import Feedback
from kairos.engine._feedback import DEFAULT_FEEDBACK_MS, feedback_retention
from kairos.plan import (
    Absence, Action, Cap, Capacity, Control, Exclusive, NoRepeat, Origin, Plan, Policy, Quiet,
)
from tests.engine.builders import flt, scenario
from tests.engine.test_policy import NIGHT, D, H, M, S, T0, at, on_host, run

LATER = at(90 * D, "0", host="zz")  # moves time far past every horizon below


def feedback(ms: int, trigger: str, outcome: str = "delivered", m: str = "1") -> Feedback:
    return Feedback(ts=T0 + ms, msisdn=m, trigger_id=trigger, outcome=outcome)


def tid(name: str, ms: int, m: str = "1") -> str:
    return f"{name}:{m}:{T0 + ms}"


# --- records: the sends feedback is joined to --------------------------------------


def test_the_feedback_retention_defaults_to_the_no_repeat_window_or_30_days_whichever_is_longer():
    here = Origin("<test>", 1, 1)
    assert 30 * D == DEFAULT_FEEDBACK_MS == feedback_retention(None)
    assert 30 * D == feedback_retention(Policy(origin=here))
    assert 30 * D == feedback_retention(Policy(origin=here, no_repeat=NoRepeat(("accepted",), 7 * D)))
    assert 45 * D == feedback_retention(Policy(origin=here, no_repeat=NoRepeat(("accepted",), 45 * D)))
    assert 2 * D == feedback_retention(Policy(origin=here, no_repeat=NoRepeat(("accepted",), 45 * D),
                                              feedback_within_ms=2 * D))


def test_a_feedback_within_the_retention_of_its_send_is_joined_and_one_after_it_is_unmatched():
    # feedback within 1d, both ends inclusive:
    #   0 send ............... 1d          1d+1ms
    #                          delivered   clicked
    #                          joined      unmatched (too late)
    events = [at(0), feedback(D, tid("a", 0)), feedback(D + 1, tid("a", 0), "clicked")]
    _, engine, _ = run([on_host("a", "h")], events, feedback_within_ms=D)
    assert {"sms": {"delivered": 1}} == engine.stats[0].outcomes
    assert engine.policy is not None
    assert 1 == engine.policy.unmatched_feedback


def test_the_retention_counts_from_the_send_time_not_the_trigger_time():
    # a 23:00 SMS deferred by quiet hours to 08:00: its feedback the next evening is joined
    events = [at(23 * H), feedback(D + 20 * H, tid("a", 23 * H))]
    sends, engine, _ = run([on_host("a", "h")], events, feedback_within_ms=12 * H,
                           quiet=(Quiet(NIGHT, ("sms",), "defer"),))
    assert [32 * H] == [s.send_at - T0 for s in sends]
    assert {"sms": {"delivered": 1}} == engine.stats[0].outcomes


def test_sent_records_are_dropped_once_their_retention_has_passed():
    events = [at(0, "1"), at(S, "2"), at(2 * D, "3")]
    _, engine, _ = run([on_host("a", "h")], events, feedback_within_ms=D)
    assert engine.policy is not None
    assert [tid("a", 2 * D, "3")] == list(engine.policy.records)
    _, engine, _ = run([on_host("a", "h")], events + [LATER], feedback_within_ms=D)
    assert engine.policy is not None and {} == engine.policy.records


def test_records_are_kept_for_the_default_retention_without_a_feedback_rule():
    _, engine, _ = run([on_host("a", "h")], [at(0), at(30 * D, "0", host="zz")])
    assert engine.policy is not None and [tid("a", 0)] == list(engine.policy.records)
    _, engine, _ = run([on_host("a", "h")], [at(0), at(30 * D + 2 * H, "0", host="zz")])
    assert engine.policy is not None and {} == engine.policy.records


def test_control_records_are_dropped_after_the_retention_too():
    subscribers = [str(13800000000 + i) for i in range(50)]
    _, engine, _ = run([on_host("a", "h")], [at(0, m) for m in subscribers] + [LATER],
                       control=(Control(100.0),), feedback_within_ms=D)
    assert engine.policy is not None
    assert {"control": 50} == engine.stats[0].suppressed
    assert {} == engine.policy.records


def test_feedback_for_an_expired_record_neither_counts_nor_blocks_the_template():
    pack = (Action("sms", "offer.pack"),)
    events = [at(0, host="x"), feedback(3 * D, tid("a", 0), "accepted"), at(4 * D, host="x")]
    sends, engine, _ = run([on_host("a", "x", actions=pack)], events, feedback_within_ms=D,
                           no_repeat=NoRepeat(("accepted",), 30 * D))
    assert [0, 4 * D] == [s.ts - T0 for s in sends]
    assert engine.policy is not None and 1 == engine.policy.unmatched_feedback
    assert {} == engine.stats[0].outcomes


def test_records_are_invisible_to_the_garbage_collector():
    """Weeks of records are long-lived and scalar-only: the cyclic GC must not walk them."""
    import gc
    _, engine, _ = run([on_host("a", "h")], [at(0)])
    assert engine.policy is not None
    assert [False] == [gc.is_tracked(r) for r in engine.policy.records.values()]


# --- per-subscriber state -----------------------------------------------------------


def test_a_no_repeat_block_is_forgotten_once_it_ends():
    events = [at(0), feedback(M, tid("a", 0), "accepted"), LATER]
    _, engine, _ = run([on_host("a", "h")], events, no_repeat=NoRepeat(("accepted",), D))
    assert engine.policy is not None and {} == engine.policy.states


def test_sends_kept_for_an_exclusion_group_are_forgotten_after_its_period():
    group = Exclusive("g", ("a", "b"), 7 * D)
    events = [at(0, host="x"), at(D, host="y")]
    _, engine, _ = run([on_host("a", "x"), on_host("b", "y")], events, exclusive=(group,))
    assert engine.policy is not None and ["1"] == list(engine.policy.states)
    _, engine, _ = run([on_host("a", "x"), on_host("b", "y")], events + [LATER], exclusive=(group,))
    assert engine.policy is not None and {} == engine.policy.states


def test_sends_kept_for_caps_are_forgotten_after_the_longest_cap():
    _, engine, _ = run([on_host("a", "h")], [at(0), LATER], caps=(Cap("sms", 1, D), Cap("any", 5, 7 * D)))
    assert engine.policy is not None and {} == engine.policy.states


def test_arbitration_bookkeeping_empties_once_every_window_is_decided():
    subscribers = [str(13800000000 + i) for i in range(30)]
    events = [at(k * S, m) for k, m in enumerate(subscribers)] + [LATER]
    sends, engine, _ = run([on_host("a", "h")], events, arbitrate_ms=10 * S)
    policy = engine.policy
    assert policy is not None and 30 == len(sends)
    assert (0, [], {}, {}) == (policy.held(), policy._held, policy.states, policy._parked)


def test_a_capacity_queue_leaves_nothing_behind_once_it_is_released():
    call = (Action("call", "offer.call"),)
    events = [at(H, "1"), at(H, "2"), at(H, "3"), LATER]
    sends, engine, _ = run([on_host("a", "h", actions=call)], events, capacity=(Capacity("call", 1, 1),))
    policy = engine.policy
    assert policy is not None
    assert [H, D, 2 * D] == [s.send_at - T0 for s in sends]
    assert (0, {}, {}, []) == (policy.held(), policy.waiting, policy.used, policy._held)


# --- feedback for a trigger the policy still holds ------------------------------------


def test_feedback_for_a_trigger_held_for_arbitration_is_joined_once_it_is_sent():
    #   0 trigger ...... 10s window end ..... 11s decided: sent
    #        5s delivered (before the decision): joined at 11s
    events = [at(0), feedback(5 * S, tid("a", 0)), at(11 * S, host="zz")]
    _, engine, _ = run([on_host("a", "h")], events, arbitrate_ms=10 * S)
    assert {"sms": {"delivered": 1}} == engine.stats[0].outcomes
    assert engine.policy is not None and 0 == engine.policy.unmatched_feedback


def test_feedback_for_a_trigger_that_loses_arbitration_is_unmatched():
    events = [at(0, host="x"), at(S, host="y"), feedback(5 * S, tid("lo", 0)), at(11 * S, host="zz")]
    _, engine, _ = run([on_host("lo", "x", priority=10), on_host("hi", "y", priority=90)], events,
                       arbitrate_ms=10 * S)
    assert engine.policy is not None and 1 == engine.policy.unmatched_feedback
    assert {} == engine.policy._parked


def test_a_wave_sees_feedback_that_came_while_its_trigger_was_held():
    """Wave two waits for no answer within 1d of wave one's trigger. The answer
    came 5 s after the trigger, while arbitration still held it: the wave must
    still see it after the trigger (it is parked until the trigger re-enters)."""
    wave = scenario("wave2", Absence(flt("trigger", lambda e, a, c: e.scenario == "a", alias="t"),
                                     flt("feedback", lambda e, a, c: e.trigger_id == a[0].id, reads_aliases=True),
                                     D), actions=(Action("call", "offer.call"),))
    events = [at(0), feedback(5 * S, tid("a", 0), "clicked"), at(2 * D, host="zz")]
    sends, _, _ = run([on_host("a", "h"), wave], events, arbitrate_ms=10 * S)
    assert ["a"] == [s.scenario for s in sends]
    sends, _, _ = run([on_host("a", "h"), wave], [at(0), at(2 * D, host="zz")], arbitrate_ms=10 * S)
    assert ["a", "wave2"] == [s.scenario for s in sends]


def test_a_capacity_queue_restored_from_a_snapshot_waits_and_sends_as_the_one_that_was_never_stopped():
    """A daemon restarted while sends wait in a capacity queue (and no arbitration window
    is open) restores them; the queue's earliest time (the outbox horizon's watermark) and
    what it sends afterwards are those of an engine that ran on."""
    call = (Action("call", "offer.call"),)
    plan = Plan((on_host("a", "h", actions=call),), Policy(origin=Origin("<test>", 1, 1),
                                                            capacity=(Capacity("call", 1, 1),)))
    before = [at(H, "1"), at(H + M, "2"), at(H + 2 * M, "3")]
    on_sends: list[Send] = []
    ran_on = Engine(plan, None, sink=on_sends.append)
    restarted_sends: list[Send] = []
    first = Engine(plan, None, sink=restarted_sends.append)
    for ev in before:
        ran_on.on_event(ev)
        first.on_event(ev)
    assert first.policy is not None and 2 == first.policy.held()
    restarted = Engine(plan, None, sink=restarted_sends.append)
    restore_snapshot(restarted, decode_snapshot(encode_snapshot(first)).engine)
    assert restarted.policy is not None and ran_on.policy is not None
    assert (2, ran_on.policy.watermark()) == (restarted.policy.held(), restarted.policy.watermark())
    for engine in (ran_on, restarted):
        engine.on_event(LATER)
        engine.finish()
    assert [(s.msisdn, s.send_at - T0) for s in on_sends] == [(s.msisdn, s.send_at - T0) for s in restarted_sends]
    assert [H, D, 2 * D] == [s.send_at - T0 for s in on_sends]
