"""`kairos replay --tags-out`: one JSON line per tag write, the same whether one process, several
workers or a partitioned log wrote it, and streamed (LANGUAGE.md §9.3)."""

from __future__ import annotations

import io

import msgspec

from kairos._cli import main
from kairos.adapters._partitions import split
from kairos.engine import TagWrite
from kairos.engine._replay import TagWriter
from tests.kairos.test_workers import _mixed_stream

WRITERS = """
scenario last_cell
  when location as l
  set tags.last_cell = l.cell
end

scenario logins
  when login as l
  set tags.logins = tags.logins + 1, tags.last_login = l.ts
end

scenario cbd_video
  audience tags.last_cell == "CBD-1"
  when dpi where category == "video"
  cooldown 10m
  set tags.cbd_video = true, tags.last_cell = null
  then sms "offer.video"
end
"""


def _run(ws, events: str, workers: int, tags: str) -> tuple[int, bytes, bytes]:
    out = ws / f"sends-{events}-{workers}.jsonl"
    code = main(["replay", "--scenarios", str(ws / "w.kairos"), "--events", str(ws / events),
                 "--reference", str(ws / "ref"), "--out", str(out), "--workers", str(workers),
                 "--tags-out", str(ws / tags), "--quiet"])
    return code, out.read_bytes(), (ws / tags).read_bytes()


def test_tags_out_writes_one_line_per_write_and_equals_over_workers_and_partitions(workspace):
    (workspace / "w.kairos").write_text(WRITERS)
    lines = _mixed_stream(6_000, 60, seed=5)
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 4)
    numbers = sorted({msgspec.json.decode(line)["msisdn"] for line in lines})
    (workspace / "ref" / "tags.jsonl").write_text("".join(  # tags.logins counts from 100
        f'{{"msisdn": "{m}", "tags": {{"logins": 100}}}}\n' for m in numbers))
    code, sends, tags = _run(workspace, "e.jsonl", 1, "t1.jsonl")
    records = [msgspec.json.decode(line, type=TagWrite) for line in tags.splitlines()]
    logins: dict[str, list[int]] = {}
    for line in lines:
        event = msgspec.json.decode(line)
        if event["type"] == "login":
            logins.setdefault(event["msisdn"], []).append(101 + len(logins.get(event["msisdn"], [])))
    counted: dict[str, list[int]] = {}
    for r in records:
        if r.scenario == "logins":
            counted.setdefault(r.msisdn, []).append(r.tags["logins"])
    assert counted == logins  # each subscriber's logins counted one by one, in the order they came
    first = msgspec.json.decode(tags.splitlines()[0])
    assert code == 0 and sends
    assert list(first) == ["scenario", "msisdn", "ts", "tags"]
    assert {r.scenario for r in records} == {"last_cell", "logins", "cbd_video"}
    assert [(r.ts, r.msisdn) for r in records] == sorted((r.ts, r.msisdn) for r in records)
    assert any(r.tags == {"cbd_video": True, "last_cell": None} for r in records)  # a removal is null
    assert _run(workspace, "e.jsonl", 2, "t2.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 2, "t3.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 1, "t4.jsonl") == (0, sends, tags)


HELD = """
scenario offer
  priority 60
  when login
  then sms "offer"
end
scenario after_offer
  when trigger where scenario == "offer"
  set tags.offered = true
end
scenario seen
  when dpi
  set tags.seen = true
end
policy
  arbitrate 10s
end
"""


def test_a_trigger_the_policy_held_writes_its_tags_in_ts_order_the_same_over_workers_and_partitions(workspace):
    # the offer to 1 is decided when its 10 s window closes, after 2's and 3's writes were made; its
    # trigger event, at the login's time, writes tags.offered then: the file still reads in ts order
    (workspace / "w.kairos").write_text(HELD)
    t0 = 1_795_363_200_000
    events = [{"type": "login", "ts": t0, "msisdn": m, "channel": "app"} for m in ("1", "4", "15")]
    events += [{"type": "dpi", "ts": t0 + 5_000, "msisdn": "2", "host": "a.com", "bytes": 1},
               {"type": "dpi", "ts": t0 + 20_000, "msisdn": "3", "host": "a.com", "bytes": 1}]
    lines = [msgspec.json.encode(e) + b"\n" for e in events]
    (workspace / "e.jsonl").write_bytes(b"".join(lines))
    split(lines, workspace / "log", 4)
    code, sends, tags = _run(workspace, "e.jsonl", 1, "t1.jsonl")
    records = [msgspec.json.decode(line, type=TagWrite) for line in tags.splitlines()]
    assert code == 0 and len(sends.splitlines()) == 3
    assert [(r.ts, r.msisdn, r.tags) for r in records] == [
        (t0, "1", {"offered": True}), (t0, "15", {"offered": True}), (t0, "4", {"offered": True}),
        (t0 + 5_000, "2", {"seen": True}), (t0 + 20_000, "3", {"seen": True})]
    assert _run(workspace, "e.jsonl", 2, "t2.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 2, "t3.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 1, "t4.jsonl") == (0, sends, tags)


def test_the_tag_writer_holds_writes_out_of_order_until_released_even_spilled():
    out = io.BytesIO()
    writer = TagWriter(out, run=2)
    writer.reorder()
    for ts, m, k in [(20, "3", 0), (10, "9", 1), (30, "1", 2), (10, "2", 3), (20, "3", 4), (5, "7", 5)]:
        writer(TagWrite("s", m, ts, {"k": k}))
    writer.release(20)
    first = [(w.ts, w.msisdn, w.tags["k"]) for w in map(_decode, out.getvalue().splitlines())]
    assert first == [(5, "7", 5), (10, "2", 3), (10, "9", 1)]
    writer(TagWrite("s", "0", 20, {"k": 6}))
    writer.flush()
    rest = [(w.ts, w.msisdn, w.tags["k"]) for w in map(_decode, out.getvalue().splitlines()[3:])]
    assert rest == [(20, "0", 6), (20, "3", 0), (20, "3", 4), (30, "1", 2)]  # "3": written order kept
    assert writer.written == 7 and not writer._runs and not writer._held


def _decode(line: bytes) -> TagWrite:
    return msgspec.json.decode(line, type=TagWrite)


def test_tags_out_to_standard_output_needs_the_sends_in_a_file(workspace, capsys):
    (workspace / "w.kairos").write_text(WRITERS)
    (workspace / "e.jsonl").write_bytes(b"".join(_mixed_stream(50, 5, seed=1)))
    code = main(["replay", "--scenarios", str(workspace / "w.kairos"), "--events", str(workspace / "e.jsonl"),
                 "--tags-out", "-"])
    assert code == 2
    assert "give --out FILE" in capsys.readouterr().err


def test_the_tag_writer_holds_only_one_time_and_sorts_past_its_limit_on_disk():
    out = io.BytesIO()
    writer = TagWriter(out, run=3)
    numbers = ["5", "3", "9", "1", "3", "7", "2"]
    for k, m in enumerate(numbers):  # seven writes at one instant: spilled in runs of three
        writer(TagWrite("s", m, 10, {"k": k}))
    assert out.getvalue() == b""  # held until the time moves on
    writer(TagWrite("s", "0", 11, {"k": 99}))
    first = [msgspec.json.decode(line, type=TagWrite) for line in out.getvalue().splitlines()]
    assert [(w.msisdn, w.tags["k"]) for w in first] == [
        ("1", 3), ("2", 6), ("3", 1), ("3", 4), ("5", 0), ("7", 5), ("9", 2)]  # "3": written order kept
    assert len(writer._held) == 1 and not writer._runs
    writer.flush()
    assert writer.written == 8
