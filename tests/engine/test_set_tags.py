"""LANGUAGE.md §9.3: a scenario's ``set`` clause writes subscriber tags when it triggers.

Each rule of the section is pinned here: what a trigger is (the gates stop a write, the contact
policy and the control group do not), what a write is (all values computed first, ``null``
removes), and the instant it becomes visible (every evaluation after the one that wrote it).
"""

from __future__ import annotations

import io
from typing import Any

import msgspec

from kairos.engine import Engine, Reference, Send, TagWrite
from kairos._explain import explain
from kairos.engine._events import Event, Location, Login, Profile
from kairos.engine._snapshot import MAGIC, capture, decode, encode, restore
from tests.dsl.support import T0, compile_one

M = 60_000


def _engine(text: str, reference: Reference | None = None, **kw: Any) -> tuple[Engine, list[Send], list[TagWrite]]:
    sends: list[Send] = []
    writes: list[TagWrite] = []
    engine = Engine(compile_one(text), reference or Reference(), sink=sends.append, tag_sink=writes.append, **kw)
    return engine, sends, writes


def _feed(engine: Engine, events: list[Event]) -> None:
    for ev in events:
        engine.on_event(ev)


def _login(minute: int, m: str = "1") -> Login:
    return Login(ts=T0 + minute * M, msisdn=m, channel="app")


def test_a_set_only_scenario_writes_its_tags_and_sends_nothing():
    engine, sends, writes = _engine("""
scenario first_login
  when login as l
  once
  set tags.first_login = l.ts, tags.welcomed = true
end
scenario follows_it
  when trigger where scenario == "first_login"
  then sms "never"
end
""")
    _feed(engine, [_login(0), _login(5)])
    engine.finish()
    assert engine.reference.tags == {"1": {"first_login": T0, "welcomed": True}}
    assert writes == [TagWrite("first_login", "1", T0, {"first_login": T0, "welcomed": True})]
    assert sends == []  # and no trigger event re-entered: the follower never completed
    assert (engine.stats[0].triggered, engine.stats[0].tag_writes, engine.stats[1].matched) == (1, 1, 0)


def test_null_removes_the_tag():
    engine, _, writes = _engine('scenario clear when login set tags.vip = null end',
                                Reference(tags={"1": {"vip": True, "region": "north"}}))
    _feed(engine, [_login(0)])
    assert engine.reference.tags == {"1": {"region": "north"}}
    assert writes[0].tags == {"vip": None}  # a removal is written as null


def test_a_scenario_after_the_writer_sees_the_new_value_on_the_same_event_one_before_it_on_the_next():
    engine, sends, _ = _engine("""
scenario reads_first
  audience tags.seen == true
  when login
  then sms "before"
end
scenario writer
  when login
  set tags.seen = true
end
scenario reads_after
  audience tags.seen == true
  when login
  then sms "after"
end
""")
    _feed(engine, [_login(0)])
    assert [s.template for s in sends] == ["after"]
    _feed(engine, [_login(1)])
    assert [s.template for s in sends] == ["after", "before", "after"]


def test_the_writers_own_audience_with_and_set_values_read_the_tags_from_before_its_write():
    engine, sends, writes = _engine("""
scenario counter
  audience tags.n == null or tags.n < 2
  when login
  set tags.n = tags.n + 1, tags.was = tags.n
  then sms "count" with {n: tags.n}
end
""", Reference(tags={"1": {"n": 0}}))
    _feed(engine, [_login(0), _login(1), _login(2)])
    assert [s.params for s in sends] == [{"n": 0}, {"n": 1}]  # the third login: n is 2, the audience refused
    assert [w.tags for w in writes] == [{"n": 1, "was": 0}, {"n": 2, "was": 1}]  # set values computed together
    assert engine.reference.tags["1"] == {"n": 2, "was": 1}


def test_the_scenarios_gates_stop_a_write():
    engine, _, writes = _engine("""
scenario cooled
  when login
  cooldown 10m
  set tags.cooled = true
end
scenario only_once
  when login as l
  once
  set tags.once_at = l.ts
end
scenario at_night
  when login
  during 22:00..06:00
  set tags.night = true
end
scenario vip_only
  audience tags.vip == true
  when login
  set tags.vip_seen = true
end
""")
    _feed(engine, [_login(9 * 60), _login(9 * 60 + 5)])  # 09:00 and 09:05 local time
    assert [(w.scenario, w.ts) for w in writes] == [("cooled", T0 + 540 * M), ("only_once", T0 + 540 * M)]
    assert engine.stats[0].suppressed == {"cooldown": 1}
    assert engine.stats[2].suppressed == {"during": 2}
    assert engine.stats[3].suppressed == {"audience": 2}


def test_the_contact_policy_and_the_control_group_do_not_stop_a_write():
    engine, sends, writes = _engine("""
scenario offer
  when login
  set tags.offered = true
  then sms "offer"
end
policy
  exclude list("dnd")
  control 100% for offer
end
""", Reference(lists={"dnd": frozenset({"1"})}))
    _feed(engine, [_login(0, "1"), _login(0, "2")])
    engine.finish()
    assert sends == []  # 1 is excluded, 2 is held out for the control group
    assert [w.msisdn for w in writes] == ["1", "2"]
    assert engine.reference.tags == {"1": {"offered": True}, "2": {"offered": True}}


def test_a_set_only_trigger_is_no_contact_for_the_policys_caps():
    engine, sends, _ = _engine("""
scenario profile_it
  when login
  set tags.active = true
end
scenario offer
  when login
  then sms "offer"
end
policy
  cap sms 1 per 1d
  cap any 1 per 1d
end
""")
    _feed(engine, [_login(0), _login(1)])
    engine.finish()
    assert [(s.scenario, s.ts) for s in sends] == [("offer", T0)]  # the first login's offer is the one contact
    assert engine.stats[1].suppressed == {"cap": 1}
    assert engine.stats[0].tag_writes == 2


def test_a_value_no_tag_can_hold_is_the_events_fault_and_writes_nothing():
    engine, sends, writes = _engine("""
scenario too_big
  when login
  set tags.ok = 1, tags.huge = 9007199254740992 * 1024
  then sms "x"
end
""")
    faults: list[BaseException] = []
    engine.on_fault = lambda i, ev, exc: faults.append(exc)
    _feed(engine, [_login(0)])
    assert (sends, writes, engine.reference.tags, engine.faults) == ([], [], {}, 1)
    assert "scenario 'too_big' (set at t.kairos:4:20) cannot write tags.huge" in str(faults[0])


def test_a_value_no_tag_can_hold_consumes_no_cooldown_or_once_of_the_next_trigger():
    engine, sends, writes = _engine("""
scenario scaled
  when login
  once
  cooldown 1h
  set tags.v = tags.base * 1024
  then sms "x"
end
""", Reference(tags={"1": {"base": 9007199254740992}}))
    engine.on_fault = lambda i, ev, exc: None
    _feed(engine, [_login(0), Profile(ts=T0 + M, msisdn="1", tags={"base": 1}), _login(5)])
    assert engine.faults == 1
    assert [(s.ts, s.id) for s in sends] == [(T0 + 5 * M, f"scaled:1:{T0 + 5 * M}")]
    assert [w.tags for w in writes] == [{"v": 1024}]
    assert (engine.stats[0].triggered, engine.stats[0].suppressed) == (1, {})


def test_written_tags_are_kept_by_a_snapshot_and_survive_the_reference_data_read_again():
    text = """
scenario home
  when login
  set tags.home_cell = "C1", tags.segment = null
end
"""
    before = Reference(tags={"1": {"segment": "old", "region": "north"}})
    engine, _, _ = _engine(text, before)
    _feed(engine, [_login(0), Profile(ts=T0 + M, msisdn="2", tags={"vip": True})])
    data = encode(engine)
    # tags.jsonl changed meanwhile: region and segment edited, a subscriber added
    again = Reference(tags={"1": {"segment": "new", "region": "south"}, "3": {"region": "east"}})
    restored, _, _ = _engine(text, again)
    restore(restored, decode(data).engine)
    assert restored.reference.tags == {
        "1": {"region": "south", "home_cell": "C1"},  # segment: written null, stays removed
        "2": {"vip": True},  # a profile event's tags are written tags too
        "3": {"region": "east"},
    }
    # the marks travel on: a second snapshot of the restored engine keeps the written ones written
    assert {k: sorted(v) for k, v in capture(restored).written.items()} == {
        "home_cell": ["1"], "segment": ["1"], "vip": ["2"]}


def test_a_snapshot_lists_the_written_marks_in_one_order_whatever_order_they_were_made_in():
    text = 'scenario home when login set tags.home_cell = "C1" end'
    numbers = [str(13_800_000_000 + k) for k in range(60)]
    engines = []
    for order in (numbers, numbers[::-1]):
        engine, _, _ = _engine(text)
        _feed(engine, [_login(0, m) for m in order])
        engines.append(engine)
    marks = capture(engines[0]).written
    assert marks == {"home_cell": sorted(numbers)}
    assert capture(engines[1]).written == marks


def test_profile_events_mark_each_subscriber_once_with_one_shared_set_of_names():
    # every scenario hears profile events, a set clause or not: their marks must stay small
    reference = Reference(tags={"1": {"region": "north"}})
    for m in ("1", "2", "1", "3"):
        reference.update_tags(m, {"vip": True, "tier": "gold"})
    reference.update_tags("3", {"tier": None, "churn": 0.2})
    assert reference.written == {"1": {"vip", "tier"}, "2": {"vip", "tier"}, "3": {"vip", "tier", "churn"}}
    assert reference.written["1"] is reference.written["2"]  # one frozenset for every subscriber of those names
    assert reference.written_by_name() == {"churn": ["3"], "tier": ["1", "2", "3"], "vip": ["1", "2", "3"]}


def test_a_snapshot_from_before_written_tags_were_marked_restores_its_tags_whole():
    text = 'scenario home when login set tags.home_cell = "C1" end'
    engine, _, _ = _engine(text, Reference(tags={"1": {"region": "north"}}))
    _feed(engine, [_login(0)])
    raw = msgspec.msgpack.decode(encode(engine)[len(MAGIC):])
    del raw["engine"]["written"]  # the file a Kairos from before this change wrote
    old = MAGIC + msgspec.msgpack.encode(raw)
    restored, _, _ = _engine(text, Reference(tags={"9": {"region": "west"}}))
    restore(restored, decode(old).engine)
    assert restored.reference.tags == {"1": {"region": "north", "home_cell": "C1"}}


def test_a_profile_write_restored_from_an_older_snapshot_survives_the_next_restart():
    text = 'scenario s when login then sms "x" end'
    engine, _, _ = _engine(text, Reference(tags={"1": {"tier": "gold", "region": "north"}, "2": {"n": 1}}))
    _feed(engine, [Profile(ts=T0, msisdn="1", tags={"tier": "platinum", "vip": True, "region": None}),
                   Profile(ts=T0, msisdn="2", tags={"n": 1.0})])
    raw = msgspec.msgpack.decode(encode(engine)[len(MAGIC):])
    del raw["engine"]["written"]  # the file a Kairos from before written tags were marked wrote
    old = MAGIC + msgspec.msgpack.encode(raw)
    file_now = {"1": {"tier": "gold", "region": "north", "segment": "a"}, "2": {"n": 1}}
    upgraded, _, _ = _engine(text, Reference(tags=msgspec.json.decode(msgspec.json.encode(file_now))))
    restore(upgraded, decode(old).engine)
    expected = {"1": {"tier": "platinum", "vip": True}, "2": {"n": 1.0}}
    assert upgraded.reference.tags == expected
    # restarted again from the upgraded engine's own snapshot, tags.jsonl read once more
    again, _, _ = _engine(text, Reference(tags=msgspec.json.decode(msgspec.json.encode(file_now))))
    restore(again, decode(encode(upgraded)).engine)
    assert again.reference.tags == expected
    assert type(again.reference.tags["2"]["n"]) is float  # 1.0 is not the file's 1
    # the segment the old snapshot did not have is removed as the old snapshot said, marked so
    assert "segment" in again.reference.written["1"]


def test_explain_shows_the_tag_writes_in_the_subscribers_timeline():
    text = """
scenario home
  when location as l where l.cell == "RES-1"
  set tags.home_cell = l.cell, tags.away = null
end
"""
    events = b"".join(msgspec.json.encode(ev) + b"\n" for ev in [
        Location(ts=T0, msisdn="1", cell="RES-1"), Location(ts=T0 + M, msisdn="2", cell="RES-1")])
    lines = list(explain(compile_one(text), Reference(), io.BytesIO(events), "1"))
    assert lines[1:4] == [
        "2026-11-23 Mon 00:00:00   location cell=RES-1 roaming=none",
        "2026-11-23 Mon 00:00:00   home: the pattern completed (location event)",
        '                            wrote tags.home_cell = "RES-1", tags.away = null',
    ]
    assert "  home: wrote tags 1 time" in lines


def test_an_absence_keeps_what_its_set_clause_reads_of_the_first_event():
    text = """
scenario left_home
  when location as l -> not location where cell == l.cell within 10m
  set tags.left_cell = l.cell
end
"""
    engine, _, writes = _engine(text)
    _feed(engine, [Location(ts=T0, msisdn="1", cell="RES-1"), Location(ts=T0 + 11 * M, msisdn="1", cell="X")])
    assert [(w.ts, w.tags) for w in writes] == [(T0 + 10 * M, {"left_cell": "RES-1"})]
