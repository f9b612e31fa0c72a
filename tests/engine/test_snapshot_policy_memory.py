"""The contact policy's newer memory survives a snapshot.

Feedback parked for a held trigger, and send records' retention.
"""

from __future__ import annotations

from kairos.engine import Engine, Reference
from kairos.engine._events import Dpi, Feedback
from kairos.engine._snapshot import decode, encode, restore
from tests.dsl.support import T0, compile_one

S = 1_000

TEXT = """
scenario first
  when dpi where category == "video"
  then sms "t.first"
end

scenario wave
  when trigger as t where scenario == "first"
       -> not feedback where trigger_id == t.id and outcome == "clicked" within 30s
  then call "t.wave"
end

policy
  arbitrate 10s
  feedback within 1m
end
"""


def _run(events: list, snapshot_after: int | None) -> tuple[list, Engine]:
    """Feed ``events``; with ``snapshot_after``, restore into a fresh engine after that many."""
    plan = compile_one(TEXT)
    sends: list = []
    engine = Engine(plan, Reference(), sink=sends.append, measure=True)
    for n, ev in enumerate(events):
        if n == snapshot_after:
            fresh = Engine(plan, Reference(), sink=sends.append, measure=True)
            restore(fresh, decode(encode(engine, taken_at=ev.ts)).engine)
            engine = fresh
        engine.on_event(ev)
    engine.finish()
    return sends, engine


def test_a_click_that_came_while_its_trigger_was_held_still_stops_the_wave_after_a_restore():
    # 0s video → trigger held by `arbitrate 10s`; 5s the SMS is clicked (parked: still held);
    # [snapshot + restore at 6s]; 11s the window closes: sms sent, its trigger re-enters, the
    # parked click follows it, so the 30s wait is answered; 60s: no wave call.
    trigger_id = f"first:1:{T0}"
    events = [
        Dpi(ts=T0, msisdn="1", host="v", category="video"),
        Feedback(ts=T0 + 5 * S, msisdn="1", trigger_id=trigger_id, outcome="clicked"),
        Dpi(ts=T0 + 6 * S, msisdn="2", host="n", category="news"),
        Dpi(ts=T0 + 60 * S, msisdn="2", host="n", category="news"),
    ]
    through, _ = _run(events, None)
    restarted, engine = _run(events, 2)
    assert [(s.scenario, s.id) for s in through] == [("first", trigger_id)]
    assert through == restarted
    assert 0 == engine.policy.unmatched_feedback


def test_a_send_record_keeps_its_retention_across_a_restore():
    # decided when the arbitration window closes, sent for 0s; `feedback within 1m` of the send
    # time: a report at 59s joins, a click at 61s does not — with a restore in between, as without.
    trigger_id = f"first:1:{T0}"
    events = [
        Dpi(ts=T0, msisdn="1", host="v", category="video"),
        Dpi(ts=T0 + 20 * S, msisdn="2", host="n", category="news"),
        Feedback(ts=T0 + 59 * S, msisdn="1", trigger_id=trigger_id, outcome="delivered"),
        Feedback(ts=T0 + 61 * S, msisdn="1", trigger_id=trigger_id, outcome="clicked"),
    ]
    _, through = _run(events, None)
    _, restarted = _run(events, 2)
    counts = [(e.stats[0].outcomes, e.policy.unmatched_feedback) for e in (through, restarted)]
    assert counts[0] == counts[1]
    assert 1 == counts[1][1]
