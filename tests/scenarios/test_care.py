"""scenarios/care.kairos: the hotline agent's pop-up, dropped calls → apology or a care call."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, replay, replay_story, send, story, without

WANG = "13800000001"       # mid ARPU
XU = "13800000004"         # on the low-spend white-list, churn risk mid
GAO = "13800000010"        # high ARPU


def test_a_low_spend_subscriber_calling_the_hotline_pops_up_the_offer_for_the_agent(tmp_path):
    """Xu calls 10086 at 10:00 → the agent's screen; calls 1008611 at 15:00,
    inside the day's cool-down → nothing."""
    assert replay_story("hotline", tmp_path) == [
        send("hotline_agent_offer", XU, at("10:00"), "popup", "agent.low_spend_offer",
             {"hotline": "10086", "arpu": "low"}),
    ]


def test_the_next_days_hotline_call_pops_up_again(tmp_path):
    events = changed(story("hotline"), 1, ts=at("10:00", day=1))
    assert [s["ts"] for s in replay(events, tmp_path)] == [at("10:00"), at("10:00", day=1)]


def test_a_hotline_call_off_the_white_list_or_from_the_hotline_pops_up_nothing(tmp_path):
    assert replay(as_subscriber(story("hotline"), WANG), tmp_path) == []
    assert replay(changed(story("hotline")[:1], 0, direction="mt"), tmp_path) == []


def test_calling_another_number_is_not_a_hotline_call(tmp_path):
    assert replay(changed(story("hotline")[:1], 0, peer="13911112222"), tmp_path) == []


def test_three_dropped_calls_within_the_hour_get_an_apology(tmp_path):
    """Wang, mid ARPU::

        14:00 dropped   14:20 dropped (incoming)   14:40 fine   15:00 dropped
        └──────────────── 1 h, both ends included ──────────────┘ → apology at 15:00
    """
    assert replay_story("dropped_calls", tmp_path) == [
        send("dropped_calls_apology", WANG, at("15:00"), "sms", "care.dropped_calls", {"minutes": 100}),
    ]


def test_the_third_dropped_call_a_minute_late_sends_nothing(tmp_path):
    assert replay(changed(story("dropped_calls"), 3, ts=at("15:01")), tmp_path) == []


def test_two_dropped_calls_send_nothing(tmp_path):
    assert replay(without(story("dropped_calls"), 1), tmp_path) == []


def test_a_high_value_subscriber_gets_a_call_from_the_care_team_instead(tmp_path):
    """The same afternoon for Gao (high ARPU): a call task naming the last call's peer."""
    assert replay_story("dropped_calls_high_value", tmp_path) == [
        send("dropped_calls_care_call", GAO, at("15:00"), "call", "care.dropped_calls_callback",
             {"last_peer": "13911112222", "count": 3}),
    ]
