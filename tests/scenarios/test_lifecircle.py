"""scenarios/lifecircle.kairos: home and work cells written from a week of signalling, and the commuter offer.

Wu (app user, 5GB plan) lives a week (``scenarios/tests/life_circle.events.jsonl``): nights at
home (RES-07), weekdays at the office (CBD-02) with the metro between
(MET-12 near home, MET-03 near work), the weekend at the mall. On Monday
30 November at 04:00 the week becomes two tags; that morning's commute gets
the commuter pack::

    Mon 23 – Fri 27   00:30 RES-07 · 07:40 RES-07 · 07:55 MET-12 · 08:10 OTH-15 · 08:20 MET-03
                      08:30 CBD-02 · 11:00 · 14:00 · 16:30 CBD-02 · 18:10 MET-03 · 18:40 MET-12
                      19:00 RES-07 · 22:30 RES-07            (no tags yet: no commuter offer)
    Sat 28, Sun 29    00:30 RES-07 · 10:30, 13:00 MAL-01 · 17:00, 22:30 RES-07
    Mon 30 04:00      home_cell = RES-07 (14 night updates), work_cell = CBD-02 (15 in office hours)
    Mon 30 07:40 RES-07 → 07:55 MET-12 → 08:30 CBD-02   → commuter_pack
"""

from __future__ import annotations

import json

from tests.scenarios.support import inserted, of, on, replay, story

WU = "13800000015"
ZHAO = "13800000003"  # no app, 2GB plan


def test_the_week_becomes_home_and_work_cells_on_monday_morning(tmp_path):
    tags_out = tmp_path / "tags.jsonl"
    replay(story("life_circle"), tmp_path, "--tags-out", str(tags_out))
    writes = [json.loads(line) for line in tags_out.read_text(encoding="utf-8").splitlines()]
    assert writes == [
        {"scenario": "home_cell", "msisdn": WU, "ts": on("2026-11-30", "04:00"), "tags": {"home_cell": "RES-07"}},
        {"scenario": "work_cell", "msisdn": WU, "ts": on("2026-11-30", "04:00"), "tags": {"work_cell": "CBD-02"}},
    ]


def test_the_next_commute_to_the_same_work_cell_gets_nothing(tmp_path):
    events = story("life_circle")
    for hhmm, cell in (("07:40", "RES-07"), ("07:55", "MET-12"), ("08:30", "CBD-02")):
        events.append({"type": "location", "ts": on("2026-12-01", hhmm), "msisdn": WU, "cell": cell})
    assert [s["ts"] for s in of("commuter_pack", replay(events, tmp_path))] == [on("2026-11-30", "08:30")]


def test_a_commute_taking_more_than_two_hours_is_not_one(tmp_path):
    """Home last seen at 06:20, at work at 08:30: 2 h 10 min."""
    events = [e for e in story("life_circle") if e["ts"] != on("2026-11-30", "07:40")]
    events = inserted(events, {"type": "location", "ts": on("2026-11-30", "06:20"), "msisdn": WU, "cell": "RES-07"})
    assert of("commuter_pack", replay(events, tmp_path)) == []


def test_a_subscriber_without_the_app_on_a_small_plan_gets_no_commuter_offer(tmp_path):
    events = [{**e, "msisdn": ZHAO} for e in story("life_circle")]
    assert of("commuter_pack", replay(events, tmp_path)) == []


def test_a_night_at_another_cell_does_not_move_home(tmp_path):
    """One night at a friend's (RES-33, two updates) against twelve at home: home stays RES-07."""
    events = story("life_circle")
    for hhmm in ("22:40", "23:50"):
        events = inserted(events, {"type": "location", "ts": on("2026-11-28", hhmm), "msisdn": WU, "cell": "RES-33"})
    tags_out = tmp_path / "tags.jsonl"
    replay(events, tmp_path, "--tags-out", str(tags_out))
    writes = [json.loads(x)["tags"] for x in tags_out.read_text(encoding="utf-8").splitlines()]
    assert [w for w in writes if "home_cell" in w] == [{"home_cell": "RES-07"}]
