"""Schedule instants in the daemon (LANGUAGE.md §9.1): on event time, and on wall time when idle."""

from __future__ import annotations

import datetime as dt
import json
import time
from zoneinfo import ZoneInfo

from kairos._cli import main
from tests.daemon.support import sends, start, stop, wait_for, write_config

SH = ZoneInfo("Asia/Shanghai")
T0 = int(dt.datetime(2024, 5, 1, 9, tzinfo=SH).timestamp() * 1000)
H = 3_600_000


def _reference(folder, rows: dict[str, dict]) -> None:
    ref = folder / "ref"
    ref.mkdir(exist_ok=True)
    (ref / "tags.jsonl").write_text("".join(json.dumps({"msisdn": m, "tags": t}) + "\n" for m, t in rows.items()))


def _login(ts: int, m: str) -> str:
    return json.dumps({"type": "login", "ts": ts, "msisdn": m, "channel": "app"}) + "\n"


def test_an_instant_fires_on_event_time_for_tags_only_and_event_only_subscribers_in_msisdn_order(tmp_path):
    scenarios = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end
"""
    _reference(tmp_path, {"13900000002": {"x": 1}, "13900000001": {"x": 2}, "13900000000": {}})
    config = write_config(tmp_path, scenarios, reference="ref")
    (tmp_path / "in" / "events.jsonl").write_text(_login(T0, "13800000005") + _login(T0 + 2 * H, "13800000009"))
    proc = start(config)
    try:
        got = wait_for(lambda: s if len(s := sends(tmp_path, ("sms",))) >= 3 else None, what="the 10:00 sends")
        time.sleep(0.3)  # room for a wrong fourth send (13800000009 came after the instant)
    finally:
        assert 0 == stop(proc)
    ten = T0 + H
    assert [(s["msisdn"], s["ts"]) for s in sends(tmp_path, ("sms",))] == [
        ("13800000005", ten), ("13900000000", ten), ("13900000002", ten)]
    assert got[0]["id"] == f"morning:13800000005:{ten}"


def test_an_idle_daemon_fires_the_instant_on_wall_time(tmp_path):
    now = dt.datetime.now(SH)
    at = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    scenarios = f"""
scenario soon
  when every day at {at:%H:%M}
  then sms "soon"
end
"""
    config = write_config(tmp_path, scenarios, idle_advance=True)
    (tmp_path / "in" / "events.jsonl").write_text(_login(int(now.timestamp() * 1000), "13800000001"))
    proc = start(config)
    try:
        got = wait_for(lambda: sends(tmp_path, ("sms",)), timeout=120, what="the instant on wall time")
    finally:
        assert 0 == stop(proc)
    assert [(s["msisdn"], s["ts"]) for s in got] == [("13800000001", int(at.timestamp() * 1000))]


def test_a_crash_mid_sweep_neither_repeats_nor_skips_a_subscriber(tmp_path):
    n = 60_000
    scenarios = """
scenario morning
  when every day at 10:00
  then sms "morning"
end
"""
    _reference(tmp_path, {f"139{i:08d}": {} for i in range(n)})
    config = write_config(tmp_path, scenarios, reference="ref", interval_s=0.05)
    (tmp_path / "in" / "events.jsonl").write_text(_login(T0, "13800000001") + _login(T0 + 2 * H, "13800000001"))
    proc = start(config)
    try:
        # the fault point is progress: some of the instant's sends are out, not all of them
        wait_for(lambda: sends(tmp_path, ("sms",)), timeout=120, what="the first sends of the sweep")
        proc.kill()
        proc.wait(10)
        at_kill = sends(tmp_path, ("sms",))
        assert 0 < len(at_kill) < n + 1, "the crash came after the sweep: the test did not test a restart mid-sweep"
        proc = start(config)
        wait_for(lambda: len(sends(tmp_path, ("sms",))) >= n + 1, timeout=180, what="the rest of the sweep")
        time.sleep(0.5)  # room for a repeated send to show up before the comparison
    finally:
        assert 0 == stop(proc)
    ids = [s["id"] for s in sends(tmp_path, ("sms",))]
    assert len(ids) == len(set(ids)) == n + 1
    expected = ["13800000001"] + [f"139{i:08d}" for i in range(n)]
    assert sorted({s["msisdn"] for s in sends(tmp_path, ("sms",))}) == expected


def test_a_sweep_interleaved_with_events_decides_what_replay_decides(tmp_path):
    n = 30_000
    scenarios = """
scenario morning
  when every day at 10:00 where tags.x != 2
  then sms "morning"
end
"""
    _reference(tmp_path, {f"139{i:08d}": {"x": 1} for i in range(n)})
    events = [_login(T0, "13800000001")]
    t = T0 + H
    for k in range(3_000):  # after the instant: tags flipped all over the msisdn range while the sweep runs
        t += 10
        m = f"139{(k * 7_919) % n:08d}"
        events.append(json.dumps({"type": "profile", "ts": t, "msisdn": m, "tags": {"x": 2}}) + "\n")
    config = write_config(tmp_path, scenarios, reference="ref")
    (tmp_path / "in" / "events.jsonl").write_text("".join(events))
    replayed = tmp_path / "replay.jsonl"
    assert 0 == main(["replay", "--scenarios", str(tmp_path / "scenarios" / "s.kairos"), "--events",
                      str(tmp_path / "in" / "events.jsonl"), "--reference", str(tmp_path / "ref"),
                      "--out", str(replayed), "--quiet"])
    expected = sorted(json.loads(x)["id"] for x in replayed.read_text().splitlines())
    assert len(expected) == n + 1  # at 10:00 nobody was flipped yet
    proc = start(config)
    try:
        wait_for(lambda: len(sends(tmp_path, ("sms",))) >= len(expected), timeout=120, what="the sweep")
        time.sleep(0.5)  # room for a wrong send to show up before the comparison
    finally:
        assert 0 == stop(proc)
    assert sorted(s["id"] for s in sends(tmp_path, ("sms",))) == expected
