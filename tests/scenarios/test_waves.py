"""scenarios/waves.kairos: SMS first; no response within N days → a call (or pop-up); responders never asked again.

Wave one is content.kairos's offer; its sent trigger re-enters the engine and
wave two waits on it, so these tests replay the whole catalogue.
"""

from __future__ import annotations

from tests.scenarios.support import at, changed, inserted, replay, story

WANG = "13800000001"
VIDEO_SMS = f"video_heavy_no_pack:{WANG}:{at('21:30')}"
MUSIC_SMS = f"music_heavy_no_pack:{WANG}:{at('18:00')}"


def _feedback(ts: int, outcome: str, trigger_id: str = VIDEO_SMS, channel: str = "sms") -> dict:
    return {"type": "feedback", "ts": ts, "msisdn": WANG, "trigger_id": trigger_id,
            "scenario": trigger_id.split(":")[0], "channel": channel, "outcome": outcome}


def test_a_click_accept_or_refusal_of_the_sms_means_no_call(tmp_path):
    for outcome in ("clicked", "accepted", "rejected"):
        events = inserted(story("video_wave"), _feedback(at("09:00", day=2), outcome))
        assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"], outcome


def test_a_response_to_the_same_offer_on_another_channel_means_no_call(tmp_path):
    """The subscriber accepted the video pack in the app (another send of the offer)."""
    events = inserted(story("video_wave"), _feedback(at("09:00", day=1), "accepted",
                                                    trigger_id=f"video_heavy_no_pack:{WANG}:{at('09:00', day=1)}",
                                                    channel="popup"))
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"]


def test_a_response_at_the_last_moment_still_counts_and_a_minute_later_does_not(tmp_path):
    on_time = inserted(story("video_wave"), _feedback(at("21:30", day=3), "clicked"))
    late = inserted(story("video_wave"), _feedback(at("21:31", day=3), "clicked"))
    assert [s["scenario"] for s in replay(on_time, tmp_path)] == ["video_heavy_no_pack"]
    assert [s["scenario"] for s in replay(late, tmp_path)] == ["video_heavy_no_pack", "video_pack_wave2_call"]


def test_a_pack_bought_elsewhere_meanwhile_means_no_call(tmp_path):
    events = inserted(story("video_wave"), {"type": "profile", "ts": at("12:00", day=1), "msisdn": WANG,
                                            "tags": {"video_pack": True}})
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"]


def test_the_wave_waits_for_the_end_of_its_three_days(tmp_path):
    events = changed(story("video_wave"), len(story("video_wave")) - 1, ts=at("21:29", day=3))
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["video_heavy_no_pack"]


def test_a_refused_music_sms_means_no_pop_up(tmp_path):
    events = inserted(story("music_wave"), _feedback(at("20:00"), "rejected", trigger_id=MUSIC_SMS))
    assert [s["scenario"] for s in replay(events, tmp_path)] == ["music_heavy_no_pack"]
