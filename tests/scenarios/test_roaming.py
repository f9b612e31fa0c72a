"""scenarios/roaming.kairos: the first inter-province roaming call, switched on abroad."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, replay, replay_story, send, story

WANG = "13800000001"
PARKED = "13800000005"     # on the dual_sim list


def test_the_first_roaming_call_of_a_trip_gets_the_two_cities_pack_after_hang_up(tmp_path):
    """10:00 a call at home; 14:00 in another province; 14:30 a 5-minute call
    ends → the offer is sent 30 s after hang-up; 16:00 another roaming call
    is inside the trip's cool-down."""
    assert replay_story("roaming_call", tmp_path) == [
        send("roaming_first_call", WANG, at("14:30"), "sms", "offer.two_cities", {"minutes": 5.0},
             send_at=at("14:30", seconds=30)),
    ]


def test_calls_at_home_or_abroad_are_no_inter_province_call(tmp_path):
    assert replay(changed(story("roaming_call"), 2, roaming="none")[:3], tmp_path) == []
    assert replay(changed(story("roaming_call"), 2, roaming="international")[:3], tmp_path) == []


def test_a_parked_sim_roaming_gets_nothing(tmp_path):
    assert replay(as_subscriber(story("roaming_call"), PARKED), tmp_path) == []


def test_the_next_trip_after_three_days_gets_the_offer_again(tmp_path):
    events = changed(story("roaming_call"), 3, ts=at("14:30", day=3))
    assert [s["ts"] for s in replay(events, tmp_path)] == [at("14:30"), at("14:30", day=3)]


def test_switching_on_abroad_gets_the_roaming_day_pack_once_a_day(tmp_path):
    """Wednesday 01:40 off before the flight, 06:30 on abroad → the day pack;
    07:15 on again → cool-down."""
    assert replay_story("abroad", tmp_path) == [
        send("switched_on_abroad", WANG, at("06:30", day=2), "sms", "offer.roaming_day_pack", {"price": 25}),
    ]


def test_switching_on_at_home_or_off_abroad_sends_nothing(tmp_path):
    events = story("abroad")
    assert replay(changed(events, 1, roaming="none")[:3], tmp_path) == []
    assert replay(changed(events, 1, state="off")[:3], tmp_path) == []
