"""scenarios/billing.kairos: data allowance 90 % / 100 %, low balance 10 / 5.

Also: first data use without a plan, and over plan again.
"""

from __future__ import annotations

from tests.scenarios.support import (
    as_subscriber, at, changed, inserted, replay, send, story, without,
)

WANG = "13800000001"          # postpaid, 10GB plan
LI = "13800000002"            # prepaid, churn score 0.85
ZHAO = "13800000003"          # prepaid, churn score 0.3
PARKED = "13800000005"        # on the dual_sim list
CHEN = "13800000006"          # 4 months over a 5GB plan
SUN = "13800000007"           # complaint-prone, no data plan
ZHOU = "13800000008"          # complaint-prone, 5GB plan


def test_data_usage_just_under_90_percent_sends_nothing(tmp_path):
    events = story("data_allowance")[:2]
    assert replay(changed(events, 1, pct=89.9), tmp_path) == []


def test_a_jump_past_100_percent_sends_only_the_exhausted_offer(tmp_path):
    events = changed(story("data_allowance")[:2], 1, pct=100.5)
    assert replay(events, tmp_path) == [
        send("data_100", WANG, at("12:00"), "sms", "offer.data_addon_exhausted",
             {"pack_gb": 5.0, "cycle": "2026-11"}),
    ]


def test_a_parked_second_sim_gets_no_data_offer(tmp_path):
    assert replay(as_subscriber(story("data_allowance"), PARKED), tmp_path) == []


def test_low_balance_after_the_cool_down_is_offered_again(tmp_path):
    events = changed(story("low_balance"), 5, ts=at("12:30", day=3))
    assert replay(events, tmp_path)[-1] == send(
        "low_balance_10", LI, at("12:30", day=3), "sms", "offer.topup_bonus", {"balance": 9.1, "bonus": 10})


def test_a_fall_straight_under_5_sends_only_the_larger_bonus(tmp_path):
    events = changed(without(story("low_balance"), 1), 1, amount=4.0)
    assert replay(events[:2], tmp_path) == [
        send("low_balance_5", LI, at("19:00"), "sms", "offer.topup_bonus", {"balance": 4.0, "bonus": 20}),
    ]


def test_low_balance_of_a_subscriber_unlikely_to_churn_sends_nothing(tmp_path):
    assert replay(as_subscriber(story("low_balance"), ZHAO), tmp_path) == []


def test_first_data_use_with_a_plan_or_off_the_complaint_list_sends_nothing(tmp_path):
    assert replay(as_subscriber(story("first_data_no_plan"), ZHOU), tmp_path) == []
    assert replay(as_subscriber(story("first_data_no_plan"), ZHAO), tmp_path) == []


def test_over_plan_data_use_more_than_a_day_later_sends_nothing(tmp_path):
    events = story("over_plan_again")[:3]
    assert replay(changed(events, 2, ts=at("11:01", day=1)), tmp_path) == []


def test_data_use_before_the_90_percent_crossing_does_not_count(tmp_path):
    events = story("over_plan_again")[:2]
    events = inserted(events, {"type": "dpi", "ts": at("10:00"), "msisdn": CHEN, "host": "weibo.com", "bytes": 10})
    assert replay(events, tmp_path) == []


def test_a_subscriber_not_over_plan_gets_the_add_on_not_the_bigger_plan(tmp_path):
    assert replay(as_subscriber(story("over_plan_again"), WANG), tmp_path) == [
        send("data_90", WANG, at("11:00"), "sms", "offer.data_addon",
             {"pct": 91, "pack_gb": 1.0, "cycle": "2026-11"}),
    ]
