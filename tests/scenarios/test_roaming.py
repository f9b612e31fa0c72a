"""scenarios/roaming.kairos: the first inter-province roaming call, switched on abroad."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, replay, story

WANG = "13800000001"
PARKED = "13800000005"     # on the dual_sim list


def test_calls_at_home_or_abroad_are_no_inter_province_call(tmp_path):
    assert replay(changed(story("roaming_call"), 2, roaming="none")[:3], tmp_path) == []
    assert replay(changed(story("roaming_call"), 2, roaming="international")[:3], tmp_path) == []


def test_a_parked_sim_roaming_gets_nothing(tmp_path):
    assert replay(as_subscriber(story("roaming_call"), PARKED), tmp_path) == []


def test_the_next_trip_after_three_days_gets_the_offer_again(tmp_path):
    events = changed(story("roaming_call"), 3, ts=at("14:30", day=3))
    assert [s["ts"] for s in replay(events, tmp_path)] == [at("14:30"), at("14:30", day=3)]


def test_switching_on_at_home_or_off_abroad_sends_nothing(tmp_path):
    events = story("abroad")
    assert replay(changed(events, 1, roaming="none")[:3], tmp_path) == []
    assert replay(changed(events, 1, state="off")[:3], tmp_path) == []
