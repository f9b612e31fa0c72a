"""scenarios/content.kairos: heavy video / music without a pack, a video pack bought and never used."""

from __future__ import annotations

from tests.scenarios.support import (
    as_subscriber, at, changed, inserted, replay, story, without,
)

WANG = "13800000001"       # no packs
FANS = "13800000009"       # has the video and the music pack
PARKED = "13800000005"     # on the dual_sim list
VIDEO_SMS = f"video_heavy_no_pack:{WANG}:{at('21:30')}"


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


def test_music_one_session_short_or_with_the_music_pack_sends_nothing(tmp_path):
    assert replay(without(story("music_heavy"), 1), tmp_path) == []
    assert replay(as_subscriber(story("music_heavy"), FANS), tmp_path) == []


def test_watching_video_after_buying_the_pack_means_no_tips(tmp_path):
    events = inserted(story("silent_after_video_pack"),
                      {"type": "dpi", "ts": at("20:00", day=5), "msisdn": WANG, "host": "bilibili.com",
                       "bytes": 80_000_000})
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"]


def test_a_refused_video_pack_gets_no_tips(tmp_path):
    events = [e for e in story("silent_after_video_pack") if e["type"] != "profile"]  # no pack bought
    i = next(n for n, e in enumerate(events) if e.get("outcome") == "accepted")
    assert [s["scenario"] for s in replay(changed(events, i, outcome="rejected"), tmp_path)] == ["video_heavy_no_pack"]
