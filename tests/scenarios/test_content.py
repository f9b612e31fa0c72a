"""scenarios/content.kairos: heavy video / music without a pack, a video pack bought and never used."""

from __future__ import annotations

from tests.scenarios.support import (
    as_subscriber, at, changed, inserted, replay, replay_story, send, story, without,
)

WANG = "13800000001"       # no packs
FANS = "13800000009"       # has the video and the music pack
PARKED = "13800000005"     # on the dual_sim list
VIDEO_SMS = f"video_heavy_no_pack:{WANG}:{at('21:30')}"


def test_over_one_and_a_half_gigabytes_of_video_in_a_day_gets_the_video_pack(tmp_path):
    """Monday evening (bytes by the DPI knowledge base's category)::

        19:00 iQIYI 600 MB   20:00 Douyin 500 MB (short video counts)
        20:30 WeChat 20 MB (not video)   21:30 Tencent Video 450 MB → 1.55 GB: offer
        22:00 Tencent Video 300 MB       inside the 30-day cool-down
    """
    assert replay_story("video_heavy", tmp_path) == [
        send("video_heavy_no_pack", WANG, at("21:30"), "sms", "offer.video_pack", {"app": "tencent_video"}),
    ]


def test_exactly_one_and_a_half_gigabytes_is_enough(tmp_path):
    events = changed(story("video_heavy"), 3, bytes=400_000_000)
    assert [s["ts"] for s in replay(events, tmp_path)] == [at("21:30")]


def test_video_just_under_the_threshold_sends_nothing(tmp_path):
    assert replay(changed(story("video_heavy")[:4], 3, bytes=399_999_999), tmp_path) == []


def test_video_spread_over_more_than_a_day_sends_nothing(tmp_path):
    events = changed(story("video_heavy")[:4], 0, ts=at("21:29", day=-1))
    assert replay(events, tmp_path) == []


def test_subscribers_with_the_video_pack_or_a_parked_sim_get_no_video_offer(tmp_path):
    assert replay(as_subscriber(story("video_heavy"), FANS), tmp_path) == []
    assert replay(as_subscriber(story("video_heavy"), PARKED), tmp_path) == []


def test_two_hours_of_music_in_a_day_gets_the_music_pack(tmp_path):
    """08:00, 12:30, 18:00: 40 minutes each → 2 h at 18:00, offer naming QQ Music."""
    assert replay_story("music_heavy", tmp_path) == [
        send("music_heavy_no_pack", WANG, at("18:00"), "sms", "offer.music_pack", {"app": "qq_music"}),
    ]


def test_music_one_session_short_or_with_the_music_pack_sends_nothing(tmp_path):
    assert replay(without(story("music_heavy"), 1), tmp_path) == []
    assert replay(as_subscriber(story("music_heavy"), FANS), tmp_path) == []


def test_a_video_pack_accepted_and_never_used_for_14_days_gets_usage_tips(tmp_path):
    """d0 21:30 the video-pack SMS; d1 10:00 accepted (and the CRM sets the
    video_pack tag); no video since, only Weibo on d3 → d15 10:00 tips. The
    acceptance also stops the second wave (no call on d3)."""
    assert replay_story("silent_after_video_pack", tmp_path) == [
        send("video_heavy_no_pack", WANG, at("21:30"), "sms", "offer.video_pack", {"app": "tencent_video"}),
        send("silent_after_video_pack", WANG, at("10:00", day=15), "sms", "tips.video_pack"),
    ]


def test_watching_video_after_buying_the_pack_means_no_tips(tmp_path):
    events = inserted(story("silent_after_video_pack"),
                      {"type": "dpi", "ts": at("20:00", day=5), "msisdn": WANG, "host": "bilibili.com",
                       "bytes": 80_000_000})
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"]


def test_a_refused_video_pack_gets_no_tips(tmp_path):
    events = [e for e in story("silent_after_video_pack") if e["type"] != "profile"]  # no pack bought
    i = next(n for n, e in enumerate(events) if e.get("outcome") == "accepted")
    assert [s["scenario"] for s in replay(changed(events, i, outcome="rejected"), tmp_path)] == ["video_heavy_no_pack"]
