"""Replay and time that jumps: a wild timestamp is skipped, a real gap is not, mild disorder is sorted.

      stream time ─────────────────────────────────────────▶
      … 10:00 10:00 10:01 [2100-01-01] 10:01 10:02 …      one wild line: skipped, the rest processed
      … day 1 23:59 │ (no data for a day) │ day 3 00:00 …   a real gap: the stream goes on from day 3
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kairos.adapters._partitions import split
from kairos._cli import main
from tests.kairos.test_workers import SCENARIOS, _mixed_stream

YEAR_2100 = 4_102_444_800_000
DAY = 86_400_000


def _replay(ws, events: str, *extra: str) -> tuple[int, bytes, list[str]]:
    """(exit status, sends, standard error's lines) of ``kairos replay``."""
    out = ws / f"out-{events}-{'-'.join(extra)}.jsonl"
    code = main(["replay", "--scenarios", str(ws / "s.kairos"), "--events", str(ws / events),
                 "--reference", str(ws / "ref"), "--out", str(out), *extra])
    return code, out.read_bytes() if out.exists() else b"", []


def _write(ws, name: str, lines: list[bytes]) -> str:
    (ws / name).write_bytes(b"".join(lines))
    return name


def _wild(line: bytes, ts: int) -> bytes:
    ev = msgspec.json.decode(line)
    return msgspec.json.encode({**ev, "ts": ts}) + b"\n"


@pytest.mark.parametrize("form", ["one process", "--workers 3", "partitioned"])
def test_one_line_dated_2100_amid_a_stream_is_skipped_and_everything_else_is_processed(workspace, form, capfd):
    lines = _mixed_stream(3_000, 40, seed=11)
    _, clean, _ = _replay(workspace, _write(workspace, "clean.jsonl", lines))
    bad = list(lines)
    bad.insert(1_500, _wild(lines[1_500], YEAR_2100))  # line 1501
    name = _write(workspace, "bad.jsonl", bad)
    extra: list[str] = []
    where = f"{workspace / name}:1501"
    if form == "--workers 3":
        extra = ["--workers", "3"]
    elif form == "partitioned":
        split(bad, workspace / "log", 4)
        name, extra = "log", ["--workers", "2"]
        where = ""
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    err = capfd.readouterr().err.splitlines()
    assert (3, clean) == (code, sends)  # the sends of the stream without it; exit 3: a line was skipped
    (problem,) = [e for e in err if "error:" in e]
    assert problem.endswith(f": error: event at ts {YEAR_2100} jumps more than 3600000 ms ahead of the stream and "
                            "the events after it go back: a wild timestamp, not a gap in the recording (line skipped)")
    assert problem.startswith(where)
    assert "3,030 events, 0 malformed, 1 wild timestamp and 0 out-of-order lines skipped" in err[-2]
    assert "kairos replay: finished, but 1 line was skipped (1 wild timestamp); exit status 3" == err[-1]


def test_a_wild_first_line_is_skipped_too(workspace, capfd):
    lines = _mixed_stream(500, 20, seed=2)
    _, clean, _ = _replay(workspace, _write(workspace, "clean.jsonl", lines))
    capfd.readouterr()
    code, sends, _ = _replay(workspace, _write(workspace, "bad.jsonl", [_wild(lines[0], YEAR_2100)] + lines))
    err = capfd.readouterr().err.splitlines()
    assert (3, clean) == (code, sends)
    assert err[0].startswith(f"{workspace / 'bad.jsonl'}:1: error: event at ts {YEAR_2100} jumps")


@pytest.mark.parametrize("form", ["one process", "--workers 3", "partitioned"])
def test_a_real_one_day_gap_in_a_recording_is_not_rejected(workspace, form, capfd):
    day1 = _mixed_stream(1_500, 30, seed=4)
    day3 = [_wild(line, msgspec.json.decode(line)["ts"] + 2 * DAY) for line in _mixed_stream(1_500, 30, seed=5)]
    name = _write(workspace, "gap.jsonl", day1 + day3)
    _, unscreened, _ = _replay(workspace, name, "--max-jump", "0")
    extra = {"one process": [], "--workers 3": ["--workers", "3"], "partitioned": ["--workers", "2"]}[form]
    if form == "partitioned":
        split(day1 + day3, workspace / "log", 4)
        name = "log"
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    err = capfd.readouterr().err.splitlines()
    assert (0, unscreened) == (code, sends)
    assert "3,060 events, 0 malformed and 0 out-of-order lines skipped" in err[-1]
    day3_sends = [s for s in sends.splitlines() if msgspec.json.decode(s)["ts"] >= msgspec.json.decode(day3[0])["ts"]]
    assert day3_sends  # the day after the gap decided its own sends


@pytest.mark.parametrize("form", ["one process", "partitioned"])
def test_a_mildly_shuffled_recording_with_allowed_lateness_gives_the_sorted_ones_sends(workspace, form, capfd):
    lines = _mixed_stream(3_000, 40, seed=7)
    rng = random.Random(7)
    shuffled = list(lines)
    for i in range(0, len(shuffled) - 8, 8):  # each run of 8 lines (at most minutes apart) shuffled
        run = shuffled[i:i + 8]
        rng.shuffle(run)
        shuffled[i:i + 8] = run
    resorted = sorted(shuffled, key=lambda line: msgspec.json.decode(line)["ts"])  # stable: ties as they came
    _, expected, _ = _replay(workspace, _write(workspace, "sorted.jsonl", resorted))
    name = _write(workspace, "shuffled.jsonl", shuffled)
    extra = ["--allowed-lateness", "10m"]
    if form == "partitioned":
        split(shuffled, workspace / "log", 3)
        name, extra = "log", extra + ["--workers", "2"]
    code, unsorted, _ = _replay(workspace, name)
    assert (3, True) == (code, unsorted != expected)  # without the option: lines are late
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    assert (0, expected) == (code, sends)
    assert "0 out-of-order lines skipped" in capfd.readouterr().err


def test_an_event_later_than_the_allowed_lateness_is_late_with_its_line(workspace, capfd):
    lines = _mixed_stream(200, 10, seed=3)
    late = _wild(lines[100], msgspec.json.decode(lines[100])["ts"] - 3_600_000)  # an hour behind
    name = _write(workspace, "late.jsonl", lines[:150] + [late] + lines[150:])
    capfd.readouterr()
    code, _, _ = _replay(workspace, name, "--allowed-lateness", "1m")
    err = capfd.readouterr().err.splitlines()
    assert 3 == code
    assert err[0].startswith(f"{workspace / name}:151: error: event at ts ")
    assert "(the newest event" in err[0] and "less the allowed lateness 60000 ms)" in err[0]
    assert err[-1] == "kairos replay: finished, but 1 line was skipped (1 out of order); exit status 3"


def test_allowed_lateness_with_workers_on_one_file_is_refused(workspace, capfd):
    name = _write(workspace, "e.jsonl", _mixed_stream(100, 10, seed=1))
    code, _, _ = _replay(workspace, name, "--allowed-lateness", "1m", "--workers", "2")
    assert 2 == code
    assert "an allowed lateness sorts events in one process" in capfd.readouterr().err


def _form(ws, name: str, lines: list[bytes], form: str) -> tuple[str, list[str]]:
    """(events argument, extra options) that replay ``lines`` (written as ``name``) in ``form``."""
    if form == "partitioned":
        split(lines, ws / f"log-{name}", 4)
        return f"log-{name}", ["--workers", "2"]
    return name, {"one process": [], "--workers 3": ["--workers", "3"]}[form]


@pytest.mark.parametrize("form", ["one process", "--workers 3", "partitioned"])
@pytest.mark.parametrize("line", [2, 4])
def test_a_2100_line_near_the_start_of_the_file_is_skipped(workspace, form, line, capfd):
    lines = _mixed_stream(3_000, 40, seed=11)
    _, clean, _ = _replay(workspace, _write(workspace, "clean.jsonl", lines))
    bad = list(lines)
    bad.insert(line - 1, _wild(lines[line - 1], YEAR_2100))  # the first line is held too: nothing precedes it
    name, extra = _form(workspace, _write(workspace, f"bad{line}.jsonl", bad), bad, form)
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    err = capfd.readouterr().err.splitlines()
    assert (3, clean) == (code, sends)
    assert "3,030 events, 0 malformed, 1 wild timestamp and 0 out-of-order lines skipped" in err[-2]


@pytest.mark.parametrize("form", ["one process", "--workers 3", "partitioned"])
@pytest.mark.parametrize("after", [1, 3])
def test_a_2100_line_just_after_a_real_gap_is_skipped_and_the_gap_kept(workspace, form, after, capfd):
    day1 = _mixed_stream(1_500, 30, seed=4)
    day3 = [_wild(line, msgspec.json.decode(line)["ts"] + 2 * DAY) for line in _mixed_stream(1_500, 30, seed=5)]
    _, clean, _ = _replay(workspace, _write(workspace, "gap.jsonl", day1 + day3), "--max-jump", "0")
    bad = day1 + day3[:after] + [_wild(day3[after], YEAR_2100)] + day3[after:]  # within 4 events of the gap
    name, extra = _form(workspace, _write(workspace, f"bad{after}.jsonl", bad), bad, form)
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    err = capfd.readouterr().err.splitlines()
    assert (3, clean) == (code, sends)
    assert "3,060 events, 0 malformed, 1 wild timestamp and 0 out-of-order lines skipped" in err[-2]


def test_a_2100_line_early_in_a_partitions_tail_does_not_move_every_partition_to_2100(workspace, capfd):
    lines = _mixed_stream(3_000, 40, seed=11)[:3_000]  # without the quiet tail: deadlines are pending at the end
    _, clean, _ = _replay(workspace, _write(workspace, "clean.jsonl", lines))
    split(lines, workspace / "clean-log", 4)
    part = sorted((workspace / "clean-log").iterdir())[0].read_bytes().splitlines(keepends=True)
    at = lines.index(part[-62])  # the partition's tail of 64 lines: part[-63], the wild line, part[-62], …
    bad = lines[:at] + [_wild(lines[at], YEAR_2100)] + lines[at:]
    split(bad, workspace / "log", 4)
    capfd.readouterr()
    code, sends, _ = _replay(workspace, "log", "--workers", "2")
    assert (3, clean) == (code, sends)
    assert "1 wild timestamp" in capfd.readouterr().err.splitlines()[-2]


@pytest.mark.parametrize("form", ["one process", "--workers 2", "partitioned"])
def test_a_real_gap_followed_by_fewer_events_than_partitions_confirm_apart_is_kept_alike(workspace, form, capfd):
    before = _mixed_stream(400, 20, seed=8)[:400]
    after = [_wild(line, msgspec.json.decode(line)["ts"] + DAY) for line in _mixed_stream(400, 20, seed=9)[:8]]
    _kept_as_unscreened(workspace, form, capfd, "gap8.jsonl", before + after, events=408)


def _kept_as_unscreened(workspace, form: str, capfd, name: str, lines: list[bytes], *, events: int) -> bytes:
    """Replay ``lines`` in ``form``: it must exit 0 with the sends of a run with the screen off, every event
    taken; returns the sends."""
    name = _write(workspace, name, lines)
    _, unscreened, _ = _replay(workspace, name, "--max-jump", "0")
    if form == "partitioned":
        split(lines, workspace / "log", 4)
        name = "log"
    extra = [] if form == "one process" else ["--workers", "2"]
    capfd.readouterr()
    code, sends, _ = _replay(workspace, name, *extra)
    err = capfd.readouterr().err.splitlines()
    assert (0, unscreened) == (code, sends)
    assert f"{events:,} events, 0 malformed and 0 out-of-order lines skipped" in err[-1]
    return sends


def _screened(stamps: list[int], max_jump: int) -> tuple[list[int], list[int], list[int]]:
    """(let through while the stream went on, rejected, held at the end) by one screen."""
    from kairos.engine._screen import JumpScreen

    screen = JumpScreen(max_jump)
    through: list[int] = []
    wild: list[int] = []
    for ts in stamps:
        now, bad = screen.screen(ts, ts)
        through.extend(now)
        wild.extend(bad)
    return through, wild, screen.held_items()


def test_events_after_a_gap_more_than_a_quarter_of_max_jump_apart_confirm_the_gap():
    stream = list(range(11)) + [200 + 20 * i for i in range(30)]  # each 20 ms after the last; max_jump 60
    assert (stream, [], []) == _screened(stream, 60)


def test_a_2100_line_amid_sparse_events_after_a_gap_is_still_rejected():
    after = [200 + 50 * i for i in range(30)]
    stream = list(range(11)) + after[:2] + [YEAR_2100] + after[2:]
    assert (list(range(11)) + after, [YEAR_2100], []) == _screened(stream, 60)


def test_a_partitioned_log_ends_after_sparse_events_past_a_gap():
    from kairos.engine._partitioned import _log_end

    stream = list(range(11)) + [200 + 20 * i for i in range(30)]
    assert stream[-1] == _log_end([stream[0::2], stream[1::2]], 60)


@pytest.mark.parametrize("form", ["one process", "--workers 2", "partitioned"])
def test_a_real_gap_followed_by_events_half_an_hour_apart_is_kept_alike(workspace, form, capfd):
    before = _mixed_stream(400, 20, seed=8)[:400]
    start = msgspec.json.decode(before[-1])["ts"] + DAY
    after = [_wild(line, start + i * 30 * 60_000) for i, line in enumerate(_mixed_stream(400, 20, seed=9)[:30])]
    sends = _kept_as_unscreened(workspace, form, capfd, "sparse.jsonl", before + after, events=430)
    assert any(msgspec.json.decode(s)["ts"] >= start for s in sends.splitlines())  # the sparse day decided sends


HOUR = 3_600_000


@settings(max_examples=80, deadline=None)
@given(n=st.integers(20, 250), seed=st.integers(0, 10**6),
       gaps=st.lists(st.tuples(st.floats(0, 1), st.integers(2 * HOUR, 3 * DAY),
                               st.integers(0, 9 * HOUR // 10), st.integers(0, 250)), max_size=3),
       outliers=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 100 * DAY)), max_size=4))
def test_lone_outliers_are_skipped_and_real_gaps_kept_alike_in_one_process_and_a_partitioned_log(
        n, seed, gaps, outliers):
    """Outliers dated far ahead of everything around them, each followed by a line of its subscriber,
    and real gaps with at least 5 events after the last one, the first few of them possibly sparse
    (up to 0.9 max_jump apart): one process and a partitioned log give the sends of the stream
    without the outliers (unscreened), and skip exactly the outliers."""
    base = _mixed_stream(n, 8, seed=seed)[:n]  # no quiet tail: deadlines are pending at the end
    shifts = sorted((1 + int(f * (n - 6)), d, s, m) for f, d, s, m in gaps)  # gaps before line 1 … n-5
    stamps = [msgspec.json.decode(line)["ts"] for line in base]
    ends = [p for p, *_ in shifts[1:]] + [n]
    for (p, d, spacing, sparse), end in zip(shifts, ends, strict=False):  # no gap: ends is [n]
        stamps[p:] = [t + d for t in stamps[p:]]
        for i in range(p + 1, min(p + sparse, end)):  # the first events after it up to 0.9 max_jump apart
            stamps[i:] = [t + spacing for t in stamps[i:]]
    real = [_wild(line, t) for line, t in zip(base, stamps, strict=True)]
    bad = list(real)
    for f, ahead in sorted(outliers, reverse=True):  # a copy of the line it stands before, far ahead
        q = int(f * (n - 1))
        bad.insert(q, _wild(real[q], stamps[-1] + 2 * DAY + ahead))
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp)
        (ws / "s.kairos").write_text(SCENARIOS)
        (ws / "ref").mkdir()
        (ws / "ref" / "cells.csv").write_text("cell,area\nCBD-1,cbd\nCBD-2,cbd\n")
        _, expected, _ = _replay(ws, _write(ws, "real.jsonl", real), "--max-jump", "0", "--quiet")
        one = _replay(ws, _write(ws, "bad.jsonl", bad), "--quiet")
        split(bad, ws / "log", 4)
        partitioned = _replay(ws, "log", "--quiet")
    status = 3 if outliers else 0
    assert (status, expected) == one[:2] == partitioned[:2]


def test_the_worker_router_reports_a_wild_line_after_a_held_gap_once_wherever_its_blocks_end():
    import io

    from kairos.engine._workers import Router

    def login(ts: int, i: int) -> bytes:
        return b'{"type":"login","ts":%d,"msisdn":"1380000%04d","channel":"app"}' % (ts, i)

    lines = [login(1_000 + i, i) for i in range(10)] + [login(DAY + i, i) for i in range(2)]
    lines += [login(YEAR_2100, 99)] + [login(DAY + i, i) for i in range(2, 12)]  # the gap held: 2100 is line 13
    for block in range(60, 900, 23):  # a block may end while the gap is still undecided
        router = Router(2)
        routed = sum(f.count(b'"login"') for frames in router.route(io.BytesIO(b"\n".join(lines) + b"\n"), block)
                     for f in frames if f is not None)
        assert (22, 1, 0, [13]) == (routed, router.wild, router.malformed, [p.line for p in router.problems])
