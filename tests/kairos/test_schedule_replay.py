"""Schedules over several processes: `--workers N` and a partitioned log give one engine's output."""

from __future__ import annotations

import msgspec

from kairos._cli import main
from kairos.adapters._partitions import partition_of, split
from kairos.engine import shard_of
from tests.kairos.test_workers import SCENARIOS, T0, _mixed_stream

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


DAY = 86_400_000
MORNING = """
scenario morning
  when every day at 06:00
  then sms "morning" with {who: msisdn}
end
"""


def _pick(shard: int, partition: int, n: int, start: int) -> list[str]:
    """``n`` msisdns of worker ``shard`` (of 2, ``--workers 2``) and partition ``partition`` (of 2, ``split``)."""
    found = []
    for i in range(start, start + 10_000):
        m = f"1391{i:07d}"
        if shard_of(m, 2) == shard and partition_of(m, 2) == partition:
            found.append(m)
            if len(found) == n:
                return found
    raise AssertionError("no such msisdns")  # pragma: no cover


def _every_way(ws, tags: list[str], events: list[dict]) -> bytes:
    """The morning scenario over ``events`` with ``tags`` in tags.jsonl: the sends of one process,
    checked equal, byte for byte, to --workers 2 and 3 and to the log split in 2 partitions on 1 and 2 workers."""
    (ws / "s.kairos").write_text(MORNING)
    ref = ws / "ref"
    ref.mkdir(exist_ok=True)
    (ref / "tags.jsonl").write_bytes(b"".join(msgspec.json.encode({"msisdn": m, "tags": {"x": 1}}) + b"\n"
                                              for m in tags))
    lines = [msgspec.json.encode(e) + b"\n" for e in events]
    (ws / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, ws / "log", 2)
    whole = _replay(ws, "e.jsonl", 1)
    for w in (2, 3):
        assert _replay(ws, "e.jsonl", w) == whole, f"--workers {w}"
    for w in (1, 2):
        assert _replay(ws, "log", w) == whole, f"partitioned, {w} worker(s)"
    return whole


def _mornings(out: bytes) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in out.splitlines():
        send = msgspec.json.decode(line)
        counts[send["msisdn"]] = counts.get(send["msisdn"], 0) + 1
    return counts


def test_subscribers_only_in_tags_on_a_worker_without_events_get_every_instant(workspace):
    # the tag-only subscribers' worker and partition see no event at all: their clock must still
    # follow the stream's, from its first event to its last (three days: three mornings)
    quiet = _pick(0, 0, 3, 0)
    busy = _pick(1, 1, 1, 0)[0]
    events = [{"type": "login", "ts": T0 + 12 * 3_600_000 + k * 3_600_000, "msisdn": busy, "channel": "app"}
              for k in range(3 * 24)]
    out = _every_way(workspace, quiet, events)
    assert _mornings(out) == {m: 3 for m in [*quiet, busy]}


def test_an_instant_before_a_workers_first_event_fires_for_its_subscribers(workspace):
    # ``late`` (in tags.jsonl, a member from the start) has its first event two days in: the
    # mornings before it fire for it too, as in one engine, not only those after its first event
    early = _pick(0, 0, 1, 0)[0]
    late = _pick(1, 1, 1, 0)[0]
    start = T0 + 12 * 3_600_000
    events = [{"type": "login", "ts": start + k * 3_600_000, "msisdn": early, "channel": "app"} for k in range(72)]
    events += [{"type": "login", "ts": start + 2 * DAY + k * 3_600_000, "msisdn": late, "channel": "app"}
               for k in range(24)]
    events.sort(key=lambda e: e["ts"])
    out = _every_way(workspace, [late], events)
    assert _mornings(out) == {early: 3, late: 3}


def test_a_partition_with_no_events_for_days_fires_the_instants_in_between(workspace):
    # ``gap`` has events on the first and the last day only: the morning between fires for it
    # when its worker's or partition's next event (or the end) moves its time past it
    other = _pick(0, 0, 1, 0)[0]
    gap = _pick(1, 1, 1, 0)[0]
    start = T0 + 12 * 3_600_000
    events = [{"type": "login", "ts": start + k * 3_600_000, "msisdn": other, "channel": "app"} for k in range(72)]
    events += [{"type": "login", "ts": start + k * 3_600_000, "msisdn": gap, "channel": "app"}
               for k in (0, 1, 70, 71)]
    events.sort(key=lambda e: (e["ts"], e["msisdn"]))
    out = _every_way(workspace, [], events)
    assert _mornings(out) == {other: 3, gap: 3}
