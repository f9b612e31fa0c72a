"""scenarios/location.kairos: airport dwell, the stadium during a match, the metro in the morning rush."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, inserted, replay, send, story

WANG = "13800000001"       # app user
PARKED = "13800000005"     # on the dual_sim list
ZHAO = "13800000003"       # no app


def test_leaving_the_airport_a_minute_early_sends_nothing(tmp_path):
    events = inserted(story("airport"), {"type": "location", "ts": at("07:49"), "msisdn": WANG, "cell": "OTH-15"})
    assert replay(events, tmp_path) == []


def test_switching_off_a_minute_early_is_leaving(tmp_path):
    events = inserted(story("airport"), {"type": "power", "ts": at("07:49"), "msisdn": WANG, "state": "off"})
    assert replay(events, tmp_path) == []


def test_leaving_exactly_at_twenty_minutes_still_counts_as_the_stay(tmp_path):
    events = inserted(story("airport"), {"type": "location", "ts": at("07:50"), "msisdn": WANG, "cell": "OTH-15"})
    assert replay(events, tmp_path) == [send("airport_travel", WANG, at("07:50"), "sms", "offer.travel_pack")]


def test_twenty_minutes_in_another_area_sends_nothing(tmp_path):
    events = [{**e, "cell": "UNI-03"} if e.get("cell", "").startswith("AP") else e for e in story("airport")]
    assert replay(events, tmp_path) == []


def test_the_airport_late_at_night_or_a_parked_sim_gets_nothing(tmp_path):
    night = [{**e, "ts": e["ts"] + (23 - 7) * 3_600_000} for e in story("airport")]  # 23:30 → trigger 23:50
    assert replay(night, tmp_path) == []
    assert replay(as_subscriber(story("airport"), PARKED), tmp_path) == []


def test_a_second_stay_the_same_day_is_inside_the_cool_down(tmp_path):
    later = [{**e, "ts": e["ts"] + 8 * 3_600_000} for e in story("airport")]
    assert replay(story("airport") + later, tmp_path) == [
        send("airport_travel", WANG, at("07:50"), "sms", "offer.travel_pack"),
    ]


def test_the_stadium_in_the_afternoon_is_no_match(tmp_path):
    afternoon = [{**e, "ts": e["ts"] - 5 * 3_600_000} for e in story("stadium")]
    assert replay(afternoon, tmp_path) == []


def test_fourteen_minutes_at_the_stadium_is_not_enough(tmp_path):
    events = inserted(story("stadium")[:2], {"type": "location", "ts": at("19:24"), "msisdn": WANG, "cell": "MET-21"})
    assert replay(events + story("stadium")[3:], tmp_path) == []


def test_the_metro_on_saturday_at_half_past_nine_or_without_the_app_sends_nothing(tmp_path):
    saturday = [{**e, "ts": e["ts"] + 5 * 86_400_000} for e in story("metro")]
    assert replay(saturday, tmp_path) == []
    assert replay(changed(story("metro")[:2], 1, ts=at("09:30")), tmp_path) == []
    assert replay(as_subscriber(story("metro"), ZHAO), tmp_path) == []
