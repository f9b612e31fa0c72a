"""Channel callbacks reach the running daemon as ``feedback`` events and drive a follow-up wave."""

from __future__ import annotations

import time

import httpx

from tests.daemon.support import logged, sends, start, stop, wait_for, write_config
from tests.daemon.test_run import append, dpi

WAVES = """
scenario wave1
  when dpi where category == "video"
  then sms "offer.video"
end

scenario wave2
  when trigger as t where scenario == "wave1"
       -> not feedback where trigger_id == t.id and outcome in ["clicked", "accepted", "rejected"] within 3s
  then call "offer.video_call"
end
"""


def test_a_click_reported_by_the_channel_stops_the_second_wave_and_silence_lets_it_go(tmp_path):
    config = write_config(tmp_path, WAVES, channels=("sms", "call"), idle_advance=True,
                          extra='[feedback]\nlisten = "127.0.0.1:0"\nchannel = "sms"\n')
    now = time.time_ns() // 1_000_000
    append(tmp_path / "in" / "events.jsonl", dpi(now, "1", "video"), dpi(now, "2", "video"))
    proc = start(config)
    try:
        (listening,) = wait_for(lambda: logged(tmp_path, "feedback listening"), what="the feedback endpoint")
        first = wait_for(lambda: s if len(s := sends(tmp_path, ("sms",))) == 2 else None, what="the first wave")
        clicked = next(x["id"] for x in first if x["msisdn"] == "1")
        r = httpx.post(f"http://127.0.0.1:{listening['port']}/feedback",
                       json={"trigger_id": clicked, "outcome": "clicked"})
        assert 202 == r.status_code
        wait_for(lambda: sends(tmp_path, ("call",)), timeout=30, what="the second wave")
        time.sleep(0.5)  # room for a wrong second-wave send to show up before the comparison
    finally:
        assert 0 == stop(proc)
    assert ["2"] == [s["msisdn"] for s in sends(tmp_path, ("call",))]
