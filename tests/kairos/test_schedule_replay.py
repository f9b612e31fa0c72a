"""Schedules over several processes: `--workers N` and a partitioned log give one engine's output."""

from __future__ import annotations

import msgspec

from kairos._cli import main
from kairos.adapters._partitions import split
from tests.kairos.test_workers import SCENARIOS, _mixed_stream

SCHEDULES = """
scenario morning
  audience tags.x != 2
  when every day at 06:00 where tags.x == 1 or not msisdn in list("quiet")
  then sms "morning" with {who: msisdn}
end

scenario monday
  when every week on mon at 08:00
  cooldown 1d
  then popup "week"
end

scenario after_morning
  when trigger where scenario == "morning"
  then popup "after"
end
"""


def _workspace(ws):
    (ws / "s.kairos").write_text(SCENARIOS + SCHEDULES)
    ref = ws / "ref"
    (ref / "lists").mkdir(parents=True, exist_ok=True)
    (ref / "lists" / "quiet.txt").write_text("13800000003\n13800000004\n")
    rows = [{"msisdn": f"1390000{i:04d}", "tags": {"x": i % 3}} for i in range(40)]  # tags only
    rows += [{"msisdn": "13800000004", "tags": {"x": 1}}, {"msisdn": "13800000005", "tags": {"x": 2}}]
    (ref / "tags.jsonl").write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in rows))


def _replay(ws, events: str, workers: int) -> bytes:
    out = ws / f"out-{events}-{workers}.jsonl"
    code = main(["replay", "--scenarios", str(ws / "s.kairos"), "--events", str(ws / events),
                 "--reference", str(ws / "ref"), "--out", str(out), "--workers", str(workers), "--quiet"])
    assert code == 0
    return out.read_bytes()


def test_schedule_sends_over_workers_and_partitions_equal_one_engines(workspace):
    _workspace(workspace)
    lines = _mixed_stream(6_000, 60, seed=5)
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 4)
    whole = _replay(workspace, "e.jsonl", 1)
    sends = [msgspec.json.decode(line) for line in whole.splitlines()]
    morning = [s["msisdn"] for s in sends if s["scenario"] == "morning"]
    assert morning == sorted(morning) and len(set(morning)) == len(morning)  # one instant, ascending
    assert "13900000001" in morning and "13900000002" not in morning  # tags only; audience x != 2
    assert any(m.startswith("1380000") for m in morning)  # seen in events only
    assert {s["scenario"] for s in sends} >= {"morning", "monday", "after_morning"}
    for w in (2, 3):
        assert _replay(workspace, "e.jsonl", w) == whole
    for w in (1, 2):
        assert _replay(workspace, "log", w) == whole
