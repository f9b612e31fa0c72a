"""`kairos replay`: an event (or a deadline) whose processing raises is reported with its line and the
scenario's place, counted and skipped; every other event is processed, on one worker, several, or by partition."""

from __future__ import annotations

import json

import pytest

from kairos.adapters._partitions import split
from kairos._cli import main

T0 = 1_795_363_200_000
#: forty factors of ``bytes``: a 10**12-byte record's product is past any float, and ``/ 3`` raises
#: OverflowError for it (and only for it: ten bytes to the fortieth is a float)
HUGE = " * ".join(["bytes"] * 40)

SCENARIOS = f"""scenario big_video
  when dpi where category == "video" and {HUGE} / 3 > 1
  then sms "offer.video"
end

scenario review_shop
  when dpi as r where category == "review" -> dpi where category == "shop" within 10m
  then sms "offer.handset" with {{site: r.host}}
end
"""

ABSENT = f"""scenario no_topup
  when usage as u where pct >= 90 -> not topup within 1m
  then sms "care.topup" with {{mb: {" * ".join(["u.used_mb"] * 40)} / 3}}
end
"""

BAD_LINE = 23  # the line of the one event that raises


def _stream() -> list[bytes]:
    """Sixty DPI records of four subscribers a second apart: videos (each a send), reviews and shops
    (a send per pair); line ``BAD_LINE`` is a 10**12-byte video record, which makes ``big_video`` raise."""
    cats = ("video", "review", "news", "shop", "video", "review")
    out = []
    for i in range(60):
        n = i + 1
        ev = {"type": "dpi", "ts": T0 + i * 1_000, "msisdn": f"1380000{i % 4:04d}", "host": "h.example.com",
              "category": cats[i % 6], "bytes": 10**12 if n == BAD_LINE else 10}
        out.append(json.dumps(ev).encode() + b"\n")
    assert b'"video"' in out[BAD_LINE - 1]
    return out


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "s.kairos").write_text(SCENARIOS)
    lines = _stream()
    (tmp_path / "e.jsonl").write_bytes(b"".join(lines))
    (tmp_path / "clean.jsonl").write_bytes(b"".join(lines[:BAD_LINE - 1] + lines[BAD_LINE:]))
    split(lines, tmp_path / "log", 2)
    return tmp_path


def _replay(ws, events: str, *extra: str, scenarios: str = "s.kairos") -> tuple[int, bytes]:
    out = ws / f"out-{events}-{'-'.join(extra)}.jsonl"
    code = main(["replay", "--scenarios", str(ws / scenarios), "--events", str(ws / events), "--out", str(out),
                 *extra])
    return code, out.read_bytes()


def test_an_event_whose_expression_raises_is_reported_with_its_line_and_skipped_alike_on_every_way_of_splitting(
        ws, capfd):
    code, expected = _replay(ws, "clean.jsonl")
    scenarios = [json.loads(s)["scenario"] for s in expected.splitlines()]
    assert (0, 19) == (code, scenarios.count("big_video"))  # every video but the bad line's
    assert "review_shop" in scenarios
    capfd.readouterr()
    reason = (f"processing failed in {ws / 's.kairos'}:2: OverflowError: integer division result too large "
              "for a float (event skipped)")
    for extra in ([], ["--workers", "2"]):
        assert (3, expected) == _replay(ws, "e.jsonl", *extra)
        err = capfd.readouterr().err.splitlines()
        assert [f"{ws / 'e.jsonl'}:{BAD_LINE}: error: {reason}"] == [e for e in err if "error:" in e]
        summary = f"59 events, 0 malformed and 0 out-of-order lines skipped, 1 event failed, {len(scenarios)} sends"
        assert summary in err[-2]
        assert "kairos replay: finished, but 1 line was skipped (1 processing failed); exit status 3" == err[-1]
    assert (3, expected) == _replay(ws, "log", "--workers", "2")
    err = capfd.readouterr().err.splitlines()
    assert 1 == sum(1 for e in err if e.endswith(f": error: {reason}"))
    assert err[-1].endswith("finished, but 1 line was skipped (1 processing failed); exit status 3")


def test_a_deadline_whose_firing_raises_is_counted_and_later_deadlines_still_fire(tmp_path, capfd):
    (tmp_path / "a.kairos").write_text(ABSENT)
    usage = [(T0, "13800000001", 10**9), (T0 + 1_000, "13800000002", 10), (T0 + 90_000, "13800000003", 20)]
    lines = [json.dumps({"type": "usage", "ts": ts, "msisdn": m, "pct": 95, "used_mb": mb}) for ts, m, mb in usage]
    lines.append(json.dumps({"type": "topup", "ts": T0 + 200_000, "msisdn": "13800000009", "amount": 10}))
    (tmp_path / "u.jsonl").write_text("\n".join(lines) + "\n")
    for extra in ([], ["--workers", "2"]):
        code, out = _replay(tmp_path, "u.jsonl", *extra, scenarios="a.kairos")
        sends = [json.loads(s) for s in out.splitlines()]
        assert 3 == code
        assert [("13800000002", T0 + 61_000), ("13800000003", T0 + 150_000)] == [(s["msisdn"], s["ts"]) for s in sends]
        err = capfd.readouterr().err.splitlines()
        assert [f"{tmp_path / 'u.jsonl'}: error: processing failed in {tmp_path / 'a.kairos'}:3: OverflowError: "
                f"integer division result too large for a float (deadline at ts {T0 + 60_000} skipped)"] == [
            e for e in err if "error:" in e]
        assert ("kairos replay: finished, but 1 deadline was skipped (processing failed); exit status 3"
                == err[-1])


def test_explain_reports_the_failing_event_with_its_line_and_goes_on(ws, capfd):
    assert 0 == main(["explain", "--scenarios", str(ws / "s.kairos"), "--events", str(ws / "e.jsonl"),
                      "--msisdn", "13800000002"])
    captured = capfd.readouterr()
    assert [f"{ws / 'e.jsonl'}:{BAD_LINE}: error: processing failed in {ws / 's.kairos'}:2: OverflowError: "
            "integer division result too large for a float (event skipped)"] == captured.err.splitlines()
    videos = [n for n, line in enumerate(_stream(), 1) if b'"13800000002"' in line and b'"video"' in line]
    assert BAD_LINE in videos and videos[-1] > BAD_LINE
    assert len(videos) - 1 == captured.out.count("big_video: the pattern completed")  # all but the failed one
