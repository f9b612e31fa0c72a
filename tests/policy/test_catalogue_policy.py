"""The operator's policy over the catalogue, through the command line: replay, --stats, --report, explain.

Each story is a small event file of ``scenarios/tests`` (the catalogue's
own), varied by the test: shifted into the night, given to a do-not-disturb
subscriber, cut short.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kairos import main
from tests.policy import simulate
from tests.stats_text import in_report_order, stats_cells
from tests.scenarios.support import DAY0, HOUR, MINUTE, REFERENCE, SCENARIOS, story

POLICY = SCENARIOS / "policy.kairos"
WANG = "13800000001"  # a heavy video user without a video pack
DND = "13800000098"  # on the do-not-disturb list
PACKED = "13800000009"  # has the video pack already


def catalogue() -> list[str]:
    return [str(p) for p in sorted(SCENARIOS.glob("*.kairos")) if p.name != "policy.kairos"]


def write(events: list[dict[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["ts"])))
    return path


def replay(events: list[dict[str, Any]], tmp_path: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / "sends.jsonl"
    args = ["replay", "--scenarios", *catalogue(), "--policy", str(POLICY), "--reference", str(REFERENCE),
            "--events", str(write(events, tmp_path / "events.jsonl")), "--out", str(out), "--quiet", *extra]
    assert main(args) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def explain(events: list[dict[str, Any]], msisdn: str, tmp_path: Path, capsys: Any) -> str:
    capsys.readouterr()
    args = ["explain", "--msisdn", msisdn, "--scenarios", *catalogue(), "--policy", str(POLICY),
            "--reference", str(REFERENCE), "--events", str(write(events, tmp_path / "events.jsonl"))]
    assert main(args) == 0
    return capsys.readouterr().out


def as_subscriber(events: list[dict[str, Any]], msisdn: str, shift: int = 0) -> list[dict[str, Any]]:
    return [dict(e, msisdn=msisdn, ts=e["ts"] + shift) for e in events]


def test_heavy_video_by_day_is_sent_at_once(tmp_path):
    sends = replay(story("video_heavy"), tmp_path)
    assert [(s["scenario"], s["ts"] - DAY0, s["send_at"] - DAY0) for s in sends] == [
        ("video_heavy_no_pack", 21 * HOUR + 30 * MINUTE, 21 * HOUR + 30 * MINUTE)]


def test_heavy_video_late_at_night_is_deferred_to_eight_in_the_morning(tmp_path):
    sends = replay(as_subscriber(story("video_heavy"), WANG, shift=2 * HOUR), tmp_path)
    # the sum crosses 1.5 GB at 23:30; the SMS waits for 08:00 the next day
    assert [(s["ts"] - DAY0, s["send_at"] - DAY0) for s in sends] == [(23 * HOUR + 30 * MINUTE, 32 * HOUR)]


def test_do_not_disturb_subscribers_get_nothing_and_explain_says_why(tmp_path, capsys):
    events = as_subscriber(story("video_heavy"), DND)
    assert replay(events, tmp_path) == []
    text = explain(events, DND, tmp_path, capsys)
    assert "video_heavy_no_pack: the pattern completed (sum >= 1,500,000,000 within 1d)" in text
    assert "stopped by the contact policy (exclude): the subscriber is on the excluded list \"dnd\"" in text
    assert ("not triggered: cooldown — the scenario triggered less than 30d ago (that trigger was stopped by "
            "the contact policy, but cool-down and once count it)") in text
    assert "  video_heavy_no_pack: matched 2 times, never sent — cooldown 1, exclude 1" in text


def test_explain_shows_the_audience_that_kept_a_subscriber_out(tmp_path, capsys):
    text = explain(as_subscriber(story("video_heavy"), PACKED), PACKED, tmp_path, capsys)
    assert "not triggered: audience — tags.video_pack != true was false (tags.video_pack = true)" in text


def test_explain_shows_a_partial_match_that_never_completed(tmp_path, capsys):
    first_two = story("video_heavy")[:2]
    text = explain(first_two, WANG, tmp_path, capsys)
    lines = text.splitlines()
    assert "2026-11-23 Mon 19:00:00   dpi host=iqiyi.com app=iqiyi category=video bytes=600000000 duration_s=2700" \
        in lines
    assert ("                            video_heavy_no_pack: partial match — 2 matching values in the last 1d, "
            "sum 1,100,000,000 (completes when sum >= 1,500,000,000)") in lines
    assert ("  video_heavy_no_pack: never matched; at the end: 2 matching values in the last 1d, "
            "sum 1,100,000,000 (completes when sum >= 1,500,000,000)") in lines


def test_explain_follows_a_sent_offer_through_the_policy(tmp_path, capsys):
    text = explain(story("video_heavy"), WANG, tmp_path, capsys)
    lines = text.splitlines()
    trigger = f"trigger video_heavy_no_pack:{WANG}:{DAY0 + 21 * HOUR + 30 * MINUTE}"
    at_completion = lines.index("2026-11-23 Mon 21:30:00   video_heavy_no_pack: the pattern completed "
                                "(sum >= 1,500,000,000 within 1d)")
    assert (f"                            {trigger}: waits for arbitration until 2026-11-23 Mon 21:31:00 — of the "
            "subscriber's triggers until then only the highest priority is sent") == lines[at_completion + 1]
    assert (f"2026-11-23 Mon 21:31:00   policy: {trigger}: sent sms \"offer.video_pack\", "
            "send time 2026-11-23 Mon 21:30:00") in lines
    assert "  video_heavy_no_pack: sent 1 time" in text


def test_explain_says_why_a_send_was_deferred(tmp_path, capsys):
    text = explain(as_subscriber(story("video_heavy"), WANG, shift=2 * HOUR), WANG, tmp_path, capsys)
    assert ("sent sms \"offer.video_pack\", send time 2026-11-24 Tue 08:00:00 (deferred from "
            "2026-11-23 Mon 23:30:00 by quiet hours 22:00..08:00 for sms)") in text


def test_explain_says_what_the_policy_still_held_when_the_input_ended(tmp_path, capsys):
    """The care call completes at 15:00:00 with the last event: its arbitration
    window (until 15:01) never closes, so it is not sent — and explain must say so."""
    text = explain(story("dropped_calls_high_value"), "13800000010", tmp_path, capsys)
    trigger = f"trigger dropped_calls_care_call:13800000010:{DAY0 + 15 * HOUR}"
    assert (f"2026-11-23 Mon 15:00:00   end of input: {trigger}: not sent — still waiting for arbitration "
            "(until 2026-11-23 Mon 15:01:00) when the input ended") in text
    assert "  dropped_calls_care_call: matched 1 time, never sent — held at the end of input 1" in text
    assert "  dropped_calls_apology: matched 1 time, never sent — audience 1" in text


def test_explain_names_the_exclusion_group_and_sums_up_the_reasons(tmp_path, capsys):
    text = explain(story("data_allowance"), WANG, tmp_path, capsys)
    assert ("stopped by the contact policy (exclusive): sms \"offer.data_addon_exhausted\": data_90 of the "
            "exclusion group \"data_offers\" was sent at 2026-11-23 Mon 12:00:00, less than 7d before") in text
    # the December 90 % completes with the last event: its window is still open at the end
    assert "  data_90: sent 1 time; not sent 2 — once 1, held at the end of input 1" in text
    assert "  data_100: matched 1 time, never sent — exclusive 1" in text


def test_explain_says_when_a_wave_completes_unless_answered(tmp_path, capsys):
    text = explain(story("video_wave"), WANG, tmp_path, capsys)
    assert ("                            video_pack_wave2_call: partial match — completes at 2026-11-26 Thu 21:30:00 "
            "unless a matching feedback comes first") in text.splitlines()


def test_a_refused_sms_offer_is_not_repeated_by_the_call_wave(tmp_path):
    events = story("video_wave")
    sends = replay(events, tmp_path)
    assert [(s["scenario"], s["channel"]) for s in sends] == [
        ("video_heavy_no_pack", "sms"), ("video_pack_wave2_call", "call")]
    first = sends[0]
    # the answer comes after the decision (the policy arbitrates for a minute)
    answered = events + [{"type": "feedback", "ts": first["send_at"] + 2 * MINUTE, "msisdn": first["msisdn"],
                          "trigger_id": first["id"], "outcome": "rejected"}]
    again = replay(answered, tmp_path)
    assert [(s["scenario"], s["channel"]) for s in again] == [("video_heavy_no_pack", "sms")]


def test_policy_in_a_loaded_file_and_policy_option_give_the_same_sends(tmp_path):
    events = write(story("video_heavy") + story("data_allowance"), tmp_path / "events.jsonl")
    outputs = []
    for how in (["--scenarios", *catalogue(), "--policy", str(POLICY)], ["--scenarios", str(SCENARIOS)]):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        assert main(["replay", *how, "--reference", str(REFERENCE), "--events", str(events),
                     "--out", str(out), "--quiet"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0]


# --- feedback while the arbitration window holds the send ---------------------------


def stats(events: list[dict[str, Any]], tmp_path: Path, capsys: Any, *extra: str) -> str:
    capsys.readouterr()
    replay(events, tmp_path, "--stats", *extra)
    return capsys.readouterr().err


VIDEO_SMS = f"video_heavy_no_pack:{WANG}:{DAY0 + 21 * HOUR + 30 * MINUTE}"


def click(ts: int, trigger_id: str = VIDEO_SMS) -> dict[str, Any]:
    return {"type": "feedback", "ts": ts, "msisdn": WANG, "trigger_id": trigger_id,
            "scenario": trigger_id.split(":")[0], "channel": "sms", "outcome": "clicked"}


def test_the_delivery_report_that_comes_while_the_sms_is_held_for_arbitration_is_counted(tmp_path, capsys):
    """video_wave: the SMS triggers at 21:30:00, its delivery report is at 21:31:00 —
    the last moment of the `arbitrate 1m` window, before the SMS is decided."""
    table = stats(story("video_wave"), tmp_path, capsys)
    rows = stats_rows(table)
    assert ["1", "1", "0", "0", "0"] == rows[("video_heavy_no_pack", "sms")][:5]  # sent, delivered, …
    assert "unmatched feedback: 0" in table


def test_a_click_while_the_sms_is_held_for_arbitration_still_means_no_call_wave(tmp_path):
    """Without a policy a click at 21:30:30 answers the SMS and wave two never calls;
    the policy holds the SMS until 21:31, and the click must still reach the wave."""
    events = story("video_wave") + [click(DAY0 + 21 * HOUR + 30 * MINUTE + 30_000)]
    assert ["video_heavy_no_pack"] == [s["scenario"] for s in replay(events, tmp_path)]


def test_feedback_joined_to_no_send_is_counted_in_stats_and_in_the_report(tmp_path, capsys):
    events = story("video_heavy") + [click(DAY0 + 22 * HOUR), click(DAY0 + 22 * HOUR, "nobody:1:2"),
                                     click(DAY0 + 23 * HOUR, "nobody:1:3")]
    table = stats(events, tmp_path, capsys, "--report", str(tmp_path / "r.html"))
    assert "unmatched feedback: 2 (no send with that trigger id, or more than 30d after its send)" in table
    page = html.unescape((tmp_path / "r.html").read_text())
    assert "2 feedback events matched no send" in page


def test_feedback_later_than_the_policys_feedback_window_is_unmatched(tmp_path, capsys):
    policy = tmp_path / "policy.kairos"
    policy.write_text(POLICY.read_text().replace("feedback within 30d", "feedback within 1d"))
    events = story("video_heavy") + [click(DAY0 + 46 * HOUR)]  # sent at 21:30; +1d is 45:30
    capsys.readouterr()
    out = tmp_path / "sends.jsonl"
    assert main(["replay", "--scenarios", *catalogue(), "--policy", str(policy), "--reference", str(REFERENCE),
                 "--events", str(write(events, tmp_path / "events.jsonl")), "--out", str(out), "--stats"]) == 0
    assert "unmatched feedback: 1 (no send with that trigger id, or more than 1d after its send)" \
        in capsys.readouterr().err


# --- --stats and --report on a simulated week ---------------------------------------


@pytest.fixture(scope="module")
def week(tmp_path_factory):
    root = tmp_path_factory.mktemp("week")
    events, ref = simulate.week(root, copies=12)
    common = ["replay", "--scenarios", str(SCENARIOS), "--reference", str(ref), "--quiet"]
    assert main(common + ["--events", str(events), "--out", str(root / "first.jsonl"),
                          "--control-out", str(root / "control.jsonl")]) == 0
    full = simulate.merged(events, simulate.feedback(root / "first.jsonl", root / "control.jsonl"),
                           root / "full.jsonl")
    return root, common + ["--events", str(full), "--out", str(root / "sends.jsonl")]


def stats_rows(text: str) -> dict[tuple[str, str], list[str]]:
    """scenario/channel → the cells of the --stats tables after scenario and channel, in the report's order."""
    return {key: in_report_order(cells) for key, cells in stats_cells(text).items()}


def report_rows(page: str) -> dict[tuple[str, str], list[str]]:
    rows: dict[tuple[str, str], list[str]] = {}
    scenario = ""
    for tr in re.findall(r"<tr class=\"(?:total|channel)\">(.*?)</tr>", page):
        cells = [html.unescape(re.sub(r"<[^>]+>", " ", c)).split() for c in re.findall(r"<td>(.*?)</td>", tr)]
        if cells[0]:
            scenario = cells[0][0]
        channel = cells[1][0]
        rows[(scenario, channel)] = [" ".join(c) for c in cells[2:] if c]
    return rows


def test_the_report_shows_the_same_numbers_as_stats(week, capsys):
    root, args = week
    capsys.readouterr()
    assert main(args + ["--stats", "--report", str(root / "report.html")]) == 0
    table = capsys.readouterr().err
    page = (root / "report.html").read_text()
    from_stats = stats_rows(table)
    from_report = report_rows(page)
    assert from_stats.keys() == from_report.keys()
    assert len(from_stats) > 40
    for key, cells in from_stats.items():
        normalise = [c.replace("–", "-").replace(" pp", "pp").replace("+", "") for c in from_report[key]]
        assert normalise == [c.replace(" pp", "pp").replace("+", "") for c in cells], key


def test_the_report_is_self_contained_and_has_its_three_charts(week):
    root, args = week
    assert main(args + ["--report", str(root / "page.html")]) == 0
    page = (root / "page.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count('<div class="chart') == 3
    for heading in ("Messages sent per", "From match to conversion", "Why matches were not sent"):
        assert heading in page


def test_stats_sent_counts_equal_the_lines_replay_writes(week, capsys):
    root, args = week
    capsys.readouterr()
    assert main(args + ["--stats"]) == 0
    rows = stats_rows(capsys.readouterr().err)
    sends = [json.loads(line) for line in (root / "sends.jsonl").read_text().splitlines()]
    for (scenario, channel), cells in rows.items():
        if channel != "all":
            assert int(cells[0].replace(",", "")) == sum(
                1 for s in sends if s["scenario"] == scenario and s["channel"] == channel)


def test_replay_with_the_policy_is_ordered_and_repeatable(week):
    root, args = week
    assert main(args) == 0
    first = (root / "sends.jsonl").read_bytes()
    assert main(args) == 0
    assert (root / "sends.jsonl").read_bytes() == first
    keys = [(s["ts"], s["id"]) for s in map(json.loads, first.splitlines())]
    assert keys == sorted(keys)
