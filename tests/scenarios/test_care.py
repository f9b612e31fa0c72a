"""scenarios/care.kairos: the hotline agent's pop-up, dropped calls → apology or a care call."""

from __future__ import annotations

from tests.scenarios.support import as_subscriber, at, changed, replay, story, without

WANG = "13800000001"       # mid ARPU
XU = "13800000004"         # on the low-spend white-list, churn risk mid
GAO = "13800000010"        # high ARPU


def test_the_next_days_hotline_call_pops_up_again(tmp_path):
    events = changed(story("hotline"), 1, ts=at("10:00", day=1))
    assert [s["ts"] for s in replay(events, tmp_path)] == [at("10:00"), at("10:00", day=1)]


def test_a_hotline_call_off_the_white_list_or_from_the_hotline_pops_up_nothing(tmp_path):
    assert replay(as_subscriber(story("hotline"), WANG), tmp_path) == []
    assert replay(changed(story("hotline")[:1], 0, direction="mt"), tmp_path) == []


def test_calling_another_number_is_not_a_hotline_call(tmp_path):
    assert replay(changed(story("hotline")[:1], 0, peer="13911112222"), tmp_path) == []


def test_the_third_dropped_call_a_minute_late_sends_nothing(tmp_path):
    assert replay(changed(story("dropped_calls"), 3, ts=at("15:01")), tmp_path) == []


def test_two_dropped_calls_send_nothing(tmp_path):
    assert replay(without(story("dropped_calls"), 1), tmp_path) == []
