"""scenarios/retention.kairos: a competitor's hotline or site, contacts drying up → a retention call."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, inserted, replay, story

WANG = "13800000001"       # churn risk low
XU = "13800000004"         # churn risk mid
LIU = "13800000011"        # churn risk high, score 0.9
PARKED = "13800000005"     # churn risk high, on the dual_sim list


def test_a_mid_churn_risk_subscriber_calling_a_competitor_also_gets_the_call(tmp_path):
    assert [s["scenario"] for s in replay(as_subscriber(story("competitor_hotline"), XU), tmp_path)] == [
        "churn_competitor_hotline"]


def test_a_loyal_subscriber_or_a_parked_sim_calling_a_competitor_gets_no_call(tmp_path):
    assert replay(as_subscriber(story("competitor_hotline"), WANG), tmp_path) == []
    assert replay(as_subscriber(story("competitor_hotline"), PARKED), tmp_path) == []


def test_the_third_visit_a_minute_after_three_days_sends_nothing(tmp_path):
    assert replay(changed(story("competitor_site"), 2, ts=at("10:01", day=3)), tmp_path) == []


def test_the_operators_own_site_is_not_a_competitor(tmp_path):
    assert replay(changed(story("competitor_site"), 2, host="www.10086.cn"), tmp_path) == []


def test_an_outgoing_call_on_the_third_day_keeps_the_subscriber_off_the_list(tmp_path):
    events = inserted(story("went_quiet"), {"type": "call", "ts": at("10:00", day=3), "msisdn": LIU,
                                            "direction": "mo", "peer": "13922225555", "duration_s": 30})
    assert replay(events, tmp_path) == []


def test_a_quiet_subscriber_at_mid_churn_risk_gets_no_call(tmp_path):
    assert replay(as_subscriber(story("went_quiet"), XU), tmp_path) == []


def test_going_out_before_the_three_days_are_up_means_no_call(tmp_path):
    events = inserted(story("stays_put"), {"type": "location", "ts": at("18:29", day=3), "msisdn": LIU,
                                           "cell": "MAL-02"})
    assert replay(events, tmp_path) == []


def test_staying_put_at_low_churn_risk_gets_no_call(tmp_path):
    assert replay(as_subscriber(story("stays_put"), WANG), tmp_path) == []
