"""scenarios/handset.kairos: handset reviews → contract offer, a new IMEI → the app for its OS.

And silent after the change.
"""

from __future__ import annotations

from tests.scenarios.support import (
    as_subscriber, at, changed, inserted, replay, send, story, without,
)

WANG = "13800000001"       # app user
ZHAO = "13800000003"       # no app
PARKED = "13800000005"     # on the dual_sim list


def test_the_second_review_one_second_too_late_sends_nothing(tmp_path):
    assert replay(changed(story("handset_review"), 2, ts=at("20:05", seconds=1)), tmp_path) == []


def test_reviews_of_two_different_models_send_nothing(tmp_path):
    assert replay(changed(story("handset_review"), 2, host="iphone17.zol.com.cn"), tmp_path) == []


def test_handset_news_is_not_a_review(tmp_path):
    events = [{**e, "host": "zol.com.cn"} if "zol" in e["host"] else e for e in story("handset_review")]
    assert replay(events, tmp_path) == []


def test_a_parked_sim_reading_reviews_gets_nothing(tmp_path):
    assert replay(as_subscriber(story("handset_review"), PARKED), tmp_path) == []


def test_the_same_model_again_the_next_day_is_not_offered_twice_but_another_model_is(tmp_path):
    events = story("handset_review")
    next_day = [{**e, "ts": e["ts"] + 86_400_000} for e in events]
    other = [{**e, "ts": e["ts"] + 2 * 86_400_000, "host": e["host"].replace("mate70", "xiaomi15")} for e in events]
    assert replay(events + next_day + other, tmp_path) == [
        send("handset_review_contract", WANG, at("20:04"), "sms", "offer.handset_contract", {"model": "huawei_mate70"}),
        send("handset_review_contract", WANG, at("20:04", day=2), "sms", "offer.handset_contract",
             {"model": "xiaomi_15"}),
    ]


def test_an_app_login_after_the_phone_change_means_no_reinstall_tips(tmp_path):
    events = changed(story("new_handset"), 4, channel="app")
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["new_handset_app"]


def test_a_login_on_the_last_day_of_the_fortnight_still_counts(tmp_path):
    events = inserted(story("new_handset"),
                      {"type": "login", "ts": at("10:00", day=17), "msisdn": WANG, "channel": "app"})
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["new_handset_app"]


def test_the_first_attach_ever_seen_is_no_phone_change(tmp_path):
    assert replay(without(story("new_handset"), 0)[:4], tmp_path) == []


def test_a_subscriber_without_the_app_gets_the_install_link_but_no_reinstall_tips(tmp_path):
    assert [s["scenario"] for s in replay(as_subscriber(story("new_handset"), ZHAO), tmp_path)] == ["new_handset_app"]
