"""Snapshot and restore: a run interrupted by snapshots equals an uninterrupted one.

The state machine drives two engines over the same plan in lock-step: one runs
through, the other is replaced at random points by a new engine restored from
its snapshot (through the encoded bytes). Every pattern form is in the plan,
so partial sequences (plain and correlated), open waits, windows, open dwells,
gates, previous values, tags from ``profile`` events and trigger re-entry are
all in flight when the snapshots are taken.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kairos.engine import Engine, Reference
from kairos.engine._events import Call, Dpi, Feedback, Location, Power, Profile, Sms, Topup, Usage
from kairos.engine._snapshot import FORMAT, SnapshotError, decode, encode, restore, transfer
from tests.dsl.support import T0, compile_one

FIXTURES = Path(__file__).parent / "fixtures"

SCENARIOS = """
scenario seq_plain
  when dpi as r where category == "review" -> dpi where category == "shop" within 10s
  then sms "t.seq" with {host: r.host}
end

scenario seq_corr
  when call as c where direction == "mo" -> sms where peer == c.peer within 10s
  then sms "t.corr" with {peer: c.peer}
end

scenario absent
  when usage as u where pct >= 50 -> not topup within 10s
  then sms "t.absent" with {pct: u.pct}
end

scenario cnt
  when count(dpi where category == "video") >= 3 within 10s
  cooldown 5s
  then popup "t.count"
end

scenario total
  when sum(dpi, bytes) >= 10 within 10s
  once per last.category
  then sms "t.sum"
end

scenario apps
  when distinct(dpi, app) >= 2 within 10s
  then sms "t.apps" with {app: last.app}
end

scenario stay
  when dwell in area("mall") for 10s
  then sms "t.dwell"
end

scenario rises
  audience tags.vip == true
  when usage as u where crosses_above(pct, 80)
  then sms "t.rise"
end

scenario follow
  when trigger as t where scenario == "cnt" -> not feedback where trigger_id == t.id within 10s
  then call "t.follow"
end
"""

PLAN = compile_one(SCENARIOS)

#: every rule of the contact policy that keeps state per subscriber (or across them)
POLICY = """
policy
  cap sms 2 per 20s
  cap any 3 per 30s
  quiet 00:00..00:01 for popup defer
  arbitrate 2s
  capacity call 1 per 1d
  no_repeat after clicked for 15s
  exclusive "g": seq_plain, apps per 10s
  control 30% for total
end
"""
POLICY_PLAN = compile_one(SCENARIOS + POLICY)
MSISDNS = ["1", "2"]
STEPS = [0, 0, 1, 1000, 5000, 9999, 10_000, 10_001, 30_000]


def reference() -> Reference:
    """A fresh reference per engine: tags are per-engine state that the snapshot carries."""
    return Reference(areas_of_cell={"c_mall": frozenset({"mall"}), "c_out": frozenset({"street"})},
                     tags={"1": {"vip": True}})


def events(draw_ts: int, m: str):
    """Strategies for one event of each kind at ``draw_ts`` for subscriber ``m``."""
    t = draw_ts
    return st.one_of(
        st.builds(Dpi, ts=st.just(t), msisdn=st.just(m), host=st.sampled_from(["a.cn", "b.cn"]),
                  category=st.sampled_from(["review", "shop", "video", "news"]),
                  app=st.sampled_from(["x", "y", None]), bytes=st.integers(0, 6)),
        st.builds(Call, ts=st.just(t), msisdn=st.just(m), direction=st.sampled_from(["mo", "mt"]),
                  peer=st.sampled_from(["p1", "p2"])),
        st.builds(Sms, ts=st.just(t), msisdn=st.just(m), direction=st.just("mt"),
                  peer=st.sampled_from(["p1", "p2"])),
        st.builds(Usage, ts=st.just(t), msisdn=st.just(m), pct=st.sampled_from([40, 60, 85, 95.5])),
        st.builds(Topup, ts=st.just(t), msisdn=st.just(m), amount=st.just(10)),
        st.builds(Location, ts=st.just(t), msisdn=st.just(m), cell=st.sampled_from(["c_mall", "c_out", "c_x"])),
        st.builds(Power, ts=st.just(t), msisdn=st.just(m), state=st.sampled_from(["on", "off"])),
        st.builds(Profile, ts=st.just(t), msisdn=st.just(m),
                  tags=st.sampled_from([{"vip": True}, {"vip": False}, {"vip": None}])),
    )


class SnapshotRestoreMachine(RuleBasedStateMachine):
    """Two engines, one restored from snapshots at random points, must send the same."""

    plan = PLAN
    text = SCENARIOS

    @initialize()
    def start(self) -> None:
        self.t = T0
        self.expected: list = []
        self.actual: list = []
        self.through = Engine(self.plan, reference(), sink=self.expected.append)
        self.restarted = Engine(self.plan, reference(), sink=self.actual.append)
        self.snapshots = 0

    def _both(self, ev) -> None:
        self.through.on_event(ev)
        self.restarted.on_event(msgspec.structs.replace(ev))  # events are mutable (kb labels)

    @rule(data=st.data(), step=st.sampled_from(STEPS), m=st.sampled_from(MSISDNS))
    def event(self, data, step: int, m: str) -> None:
        self.t += step
        self._both(data.draw(events(self.t, m)))

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), step=st.sampled_from(STEPS), outcome=st.sampled_from(["clicked", "delivered"]))
    def feedback(self, data, step: int, outcome: str) -> None:
        """A channel answers one of the sends so far (it may answer a `follow` wait)."""
        self.t += step
        sent = data.draw(st.sampled_from(self.expected))
        self._both(Feedback(ts=self.t, msisdn=sent.msisdn, trigger_id=sent.id, outcome=outcome))

    @rule(step=st.sampled_from(STEPS))
    def idle_time_passes(self, step: int) -> None:
        """The daemon advances time without events (wall clock): deadlines fire."""
        self.t += step
        self.through.advance(self.t)
        self.restarted.advance(self.t)

    @rule()
    def snapshot_and_restore(self) -> None:
        data = encode(self.restarted, taken_at=self.t)
        fresh = Engine(self.plan, reference(), sink=self.actual.append)
        report = restore(fresh, decode(data).engine)
        assert report.withdrawn == [] and report.pattern_dropped == []
        self.restarted = fresh
        self.snapshots += 1

    @rule()
    def hot_reload_of_the_same_scenarios(self) -> None:
        """A reload hands the live state to an engine built from a freshly compiled plan."""
        fresh = Engine(compile_one(self.text), self.restarted.reference, sink=self.actual.append)
        report = transfer(self.restarted, fresh)
        assert report.withdrawn == [] and report.pattern_dropped == []
        self.restarted = fresh

    @invariant()
    def same_sends(self) -> None:
        assert self.expected == self.actual

    def teardown(self) -> None:
        if hasattr(self, "through"):
            self.through.finish()
            self.restarted.finish()
            assert self.expected == self.actual
            # a day later every window has closed and every deadline fired: both forgot the same
            # subscribers (a restored engine may forget a little later within the day: expired state
            # is collected in 1 s buckets, re-armed at restore from the state's own expiry)
            later = self.t + 86_400_000
            self.through.advance(later)
            self.restarted.advance(later)
            assert self.expected == self.actual
            assert _held(self.through) == _held(self.restarted)
            assert [msgspec.structs.asdict(s) for s in self.through.stats] == [
                msgspec.structs.asdict(s) for s in self.restarted.stats]


def _held(engine: Engine) -> dict[str, list[str]]:
    """Who each part of the engine holds state for (what a snapshot must neither lose nor keep too long)."""
    out = {scn.name: sorted(rt.states) for scn, rt in zip(engine.scenarios, engine.runtimes, strict=True)}
    for scn, g in zip(engine.scenarios, engine._gates, strict=True):
        if g is not None:
            out[scn.name + " gates"] = sorted(set(g.last) | set(g.values))
    if engine.policy is not None:
        out["policy"] = sorted(engine.policy.states)
    return out


class PolicySnapshotRestoreMachine(SnapshotRestoreMachine):
    """The same, with a contact policy holding caps, deferrals, arbitration windows, a capacity
    queue, blocked templates, an exclusion group and control-group records across the snapshots."""

    plan = POLICY_PLAN
    text = SCENARIOS + POLICY


SnapshotRestoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
test_a_run_restored_from_snapshots_sends_what_an_uninterrupted_run_sends = SnapshotRestoreMachine.TestCase
PolicySnapshotRestoreMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)
test_the_contact_policys_state_survives_snapshots_too = PolicySnapshotRestoreMachine.TestCase


# --- plans that changed between snapshot and restore ---------------------

def _engine(text: str, sends: list) -> Engine:
    return Engine(compile_one(text), reference(), sink=sends.append)


COUNT = 'scenario cnt when count(dpi) >= 2 within 10s then sms "t" end\n'
ABSENT = 'scenario absent when usage -> not topup within 10s then sms "a" end\n'


def test_a_changed_plan_keeps_unchanged_scenarios_state_and_drops_changed_and_withdrawn():
    sends: list = []
    old = _engine(COUNT + ABSENT + 'scenario gone when dpi -> sms within 1m then sms "g" end\n', sends)
    old.on_event(Dpi(ts=T0, msisdn="1", host="h"))
    old.on_event(Usage(ts=T0, msisdn="1", pct=1))
    old.on_event(Dpi(ts=T0 + 1, msisdn="1", host="h"))  # cnt triggers; gone has a partial match
    assert len(sends) == 1
    changed_absent = 'scenario absent when usage -> not topup within 20s then sms "a" end\n'
    new_sends: list = []
    new = _engine(COUNT.replace('"t"', '"t2"') + changed_absent, new_sends)
    report = restore(new, decode(encode(old)).engine)
    assert (report.kept, report.pattern_dropped, report.withdrawn) == (["cnt"], ["absent"], ["gone"])
    new.on_event(Dpi(ts=T0 + 2, msisdn="1", host="h"))  # the count window survived: 3 in 10 s
    new.advance(T0 + 60_000)  # the old 10 s wait was dropped: nothing fires
    assert [(s.scenario, s.ts, s.template) for s in new_sends] == [("cnt", T0 + 2, "t2")]


def test_a_hot_reload_keeps_unchanged_scenarios_live_state_and_drops_changed_and_withdrawn():
    sends: list = []
    old = _engine(COUNT + ABSENT + 'scenario gone when dpi -> sms within 1m then sms "g" end\n', sends)
    old.on_event(Dpi(ts=T0, msisdn="1", host="h"))
    old.on_event(Usage(ts=T0, msisdn="1", pct=1))
    new_sends: list = []
    new = Engine(compile_one(COUNT + ABSENT.replace("10s", "20s")), old.reference, sink=new_sends.append)
    report = transfer(old, new)
    assert (report.kept, report.pattern_dropped, report.withdrawn) == (["cnt"], ["absent"], ["gone"])
    new.on_event(Dpi(ts=T0 + 1, msisdn="1", host="h"))
    new.advance(T0 + 60_000)
    assert [(s.scenario, s.ts) for s in new_sends] == [("cnt", T0 + 1)]


def test_not_a_snapshot_is_refused_with_a_clear_error():
    with pytest.raises(SnapshotError, match="not a Kairos snapshot"):
        decode(b'{"hello": 1}')


def test_a_snapshot_from_a_newer_format_is_refused_and_says_what_to_do():
    data = encode(_engine(COUNT, []))
    newer = data.replace(b"\xa6format" + bytes([FORMAT]), b"\xa6format\x63", 1)
    with pytest.raises(SnapshotError, match="format 99 is newer .* start without the snapshot"):
        decode(newer)


# --- the committed fixture of format 1 -----------------------------------

V1_FIXTURE = FIXTURES / "snapshot-v1.bin"
V1_EVENTS = [
    Dpi(ts=T0, msisdn="1", host="a.cn", category="review"),
    Call(ts=T0, msisdn="1", direction="mo", peer="p1"),
    Usage(ts=T0 + 1, msisdn="2", pct=95.5),
    Location(ts=T0 + 2, msisdn="2", cell="c_mall"),
    Dpi(ts=T0 + 3, msisdn="2", host="b.cn", category="video", app="x", bytes=6),
    Dpi(ts=T0 + 4, msisdn="2", host="b.cn", category="video", app="y", bytes=6),
]
V1_AFTER = [
    Dpi(ts=T0 + 5, msisdn="1", host="a.cn", category="shop"),
    Sms(ts=T0 + 6, msisdn="1", direction="mt", peer="p1"),
    Dpi(ts=T0 + 7, msisdn="2", host="b.cn", category="video", app="x"),
]


def _v1_continuation(engine: Engine, sends: list) -> list:
    for ev in V1_AFTER:
        engine.on_event(ev)
    engine.advance(T0 + 60_000)
    return [(s.scenario, s.msisdn, s.ts, s.params) for s in sends]


def write_v1_fixture() -> None:
    """Regenerate the fixture (only when format 1 itself is meant to change: it never should)."""
    e = Engine(PLAN, reference(), sink=lambda s: None)
    for ev in V1_EVENTS:
        e.on_event(ev)
    FIXTURES.mkdir(exist_ok=True)
    V1_FIXTURE.write_bytes(encode(e, taken_at=T0))


def test_a_committed_format_1_snapshot_still_loads_and_continues_the_run():
    assert FORMAT >= 1
    through: list = []
    e = Engine(PLAN, reference(), sink=through.append)
    for ev in V1_EVENTS:
        e.on_event(ev)
    through.clear()
    expected = _v1_continuation(e, through)
    restored: list = []
    fresh = Engine(PLAN, reference(), sink=restored.append)
    snap = decode(V1_FIXTURE.read_bytes())
    restore(fresh, snap.engine)
    assert (snap.format, snap.taken_at) == (1, T0)
    assert expected == _v1_continuation(fresh, restored)
    assert {s for s, *_ in expected} >= {"seq_plain", "seq_corr", "absent", "stay"}


if __name__ == "__main__":
    write_v1_fixture()
