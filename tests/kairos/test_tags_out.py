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
    code, sends, tags = _run(workspace, "e.jsonl", 1, "t1.jsonl")
    records = [msgspec.json.decode(line, type=TagWrite) for line in tags.splitlines()]
    first = msgspec.json.decode(tags.splitlines()[0])
    assert code == 0 and sends
    assert list(first) == ["scenario", "msisdn", "ts", "tags"]
    assert {r.scenario for r in records} == {"last_cell", "logins", "cbd_video"}
    assert [(r.ts, r.msisdn) for r in records] == sorted((r.ts, r.msisdn) for r in records)
    assert any(r.tags == {"cbd_video": True, "last_cell": None} for r in records)  # a removal is null
    assert _run(workspace, "e.jsonl", 2, "t2.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 2, "t3.jsonl") == (0, sends, tags)
    assert _run(workspace, "log", 1, "t4.jsonl") == (0, sends, tags)


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
