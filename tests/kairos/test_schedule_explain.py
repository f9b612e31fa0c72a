"""`kairos explain` for a schedule: the instants that visited the subscriber and why they did or did not
complete and trigger."""

from __future__ import annotations

import io

import msgspec

from kairos import dsl
from kairos._explain import explain
from kairos.engine import Reference, event_schema

SCENARIOS = """
scenario daily_tip
  audience not msisdn in list("dnd")
  when every day at 10:00 where tags.plan == "basic"
  then sms "tip"
end
"""

T0 = 1_714_525_200_000  # 2024-05-01 09:00 Asia/Shanghai
H = 3_600_000


def _timeline(msisdn: str, tags: dict, lists: dict | None = None) -> list[str]:
    plan = dsl.compile_sources([("s.kairos", SCENARIOS)], event_schema())
    ref = Reference(tags=tags, lists=lists or {})
    events = b"".join(msgspec.json.encode({"type": "login", "ts": T0 + k * 24 * H, "msisdn": "other",
                                           "channel": "app"}) + b"\n" for k in range(3))
    return list(explain(plan, ref, io.BytesIO(events), msisdn))


def test_explain_shows_the_instants_whose_where_was_false_for_the_subscriber():
    lines = _timeline("1", {"1": {"plan": "gold"}}, {"dnd": frozenset()})
    text = "\n".join(lines)
    assert text.count("daily_tip: the schedule visited (every day at 10:00); not completed: "
                      "tags.plan == \"basic\" was false (tags.plan = \"gold\")") == 2
    assert "daily_tip: never completed — where 2" in text


def test_explain_shows_a_completed_instant_stopped_by_the_audience_and_one_sent():
    text = "\n".join(_timeline("1", {"1": {"plan": "basic"}}, {"dnd": frozenset()}))
    assert text.count("daily_tip: the pattern completed (every day at 10:00)") == 2
    assert "daily_tip: sent 2 times" in text
    text = "\n".join(_timeline("1", {"1": {"plan": "basic"}}, {"dnd": frozenset({"1"})}))
    assert "not triggered: audience" in text


def test_the_demo_shows_a_schedules_send_among_its_examples():
    from kairos._demo_report import pick_examples
    from kairos.engine import Send

    plan = dsl.compile_sources([("s.kairos", SCENARIOS)], event_schema())
    send = Send("daily_tip:1:5", "daily_tip", "1", 5, 5, "sms", "tip", {})
    assert pick_examples(plan, [send], 3) == [send]


def test_a_passed_over_instant_names_the_calendar_term_that_was_false_and_its_value():
    scenarios = """
scenario regulars
  when every day at 10:00 where tags.plan == "basic" and count(login) in day(-1) >= 2
  then sms "tip"
end
"""
    plan = dsl.compile_sources([("s.kairos", scenarios)], event_schema())
    events = b"".join(msgspec.json.encode({"type": "login", "ts": T0 + k * 12 * H, "msisdn": "1",
                                           "channel": "app"}) + b"\n" for k in range(4))
    lines = list(explain(plan, Reference(tags={"1": {"plan": "basic"}}), io.BytesIO(events), "1"))
    assert ("2024-05-01 Wed 10:00:00   regulars: the schedule visited (every day at 10:00); not completed: "
            "count(login) in day(-1) >= 2 was false (count(login) in day(-1) = 0)") in lines
    assert "2024-05-02 Thu 10:00:00   regulars: the pattern completed (every day at 10:00)" in lines
