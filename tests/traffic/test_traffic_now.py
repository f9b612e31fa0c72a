"""Traffic around now: ``--start now`` ends the span at the current time, ``--live`` writes events as their
time comes — what a daemon (its time following the wall clock when idle) can take without calling any late."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import orjson
import pytest

from kairos import traffic
from kairos.traffic._generator import _province, span_ending_now
from kairos.traffic._live import write_paced

HOUR = 3_600_000
LOCAL = dt.timezone(dt.timedelta(hours=8))


def _ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=LOCAL).timestamp() * 1000)


def _ts(path: Path) -> list[int]:
    return [orjson.loads(line)["ts"] for line in path.read_bytes().splitlines()]


def test_start_now_writes_a_day_that_ends_at_the_current_time_none_of_it_ahead_of_the_clock(tmp_path):
    before = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    assert 0 == traffic.main(["--subscribers", "300", "--hours", "24", "--start", "now",
                              "--out", str(tmp_path / "day.jsonl"), "--reference", str(tmp_path / "ref")])
    after = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    ts = _ts(tmp_path / "day.jsonl")
    assert len(ts) > 10_000 and ts == sorted(ts)
    assert before - 24 * HOUR <= ts[0] and ts[-1] <= after  # the span ends now: nothing ahead of the clock
    assert ts[-1] > before - HOUR  # and reaches it (the quietest night hour has events every minute)
    assert (tmp_path / "ref" / "tags.jsonl").exists()


def test_a_span_ending_now_keeps_the_local_hour_of_the_day_also_across_midnight():
    assert span_ending_now(3, now_ms=_ms(2026, 12, 6, 12, 30)) == (_ms(2026, 12, 6), 9.5)
    assert span_ending_now(3, now_ms=_ms(2026, 12, 6, 1, 0)) == (_ms(2026, 12, 5), 22.0)
    assert span_ending_now(48, now_ms=_ms(2026, 12, 6, 8, 0)) == (_ms(2026, 12, 4), 8.0)


@pytest.mark.parametrize(("start", "said"), [
    ("tomorrow", "argument --start: expected a date YYYY-MM-DD (e.g. 2026-11-23) or 'now', got 'tomorrow'\n"),
    ("2026-02-30", "got '2026-02-30' (day is out of range for month)\n"),
])
def test_a_start_that_is_neither_a_date_nor_now_is_refused_saying_what_to_write(tmp_path, capsys, start, said):
    with pytest.raises(SystemExit) as exit_:
        traffic.main(["--start", start, "--out", str(tmp_path / "x.jsonl")])
    assert 2 == exit_.value.code
    assert capsys.readouterr().err.endswith(said)
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize(("args", "said"), [
    (["--start", "now", "--from-hour", "20"], "--from-hour does not apply with --start now"),
    (["--live", "--from-hour", "20"], "--from-hour does not apply with --live"),
    (["--live", "--start", "2026-11-23"], "--live starts the span at the current time: leave out --start"),
])
def test_now_and_live_refuse_options_that_place_the_span_elsewhere(tmp_path, capsys, args, said):
    with pytest.raises(SystemExit) as exit_:
        traffic.main([*args, "--out", str(tmp_path / "x.jsonl")])
    assert 2 == exit_.value.code
    assert said in capsys.readouterr().err


class _Clock:
    """A wall clock that moves only when the writer sleeps."""

    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(1, int(seconds * 1000))


class _Out(io.BytesIO):
    """Remembers the clock at each flush with what had been written by then."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.flushes: list[tuple[int, bytes]] = []

    def flush(self) -> None:
        self.flushes.append((self.clock(), self.getvalue()))


def test_live_writes_each_event_only_once_the_clock_reaches_it_and_writes_them_all():
    start, from_hour = span_ending_now(1, now_ms=_ms(2026, 12, 6, 13, 0))
    cols = _province(300, 1.0, 7, start, from_hour)
    whole = io.BytesIO()
    cols.write(whole)
    clock = _Clock(int(cols.ts[0]) - 5_000)
    out = _Out(clock)
    assert len(cols) == write_paced([cols], out, clock=clock, sleep=clock.sleep)
    assert out.getvalue() == whole.getvalue()  # the same lines as written at once, in the same order
    assert len(out.flushes) > 100  # paced: many small writes, not one
    for at, text in out.flushes:
        assert orjson.loads(text.splitlines()[-1])["ts"] <= at  # never an event before its time


def test_live_appends_to_the_file_a_daemon_follows(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"type":"login","ts":1,"msisdn":"13800000000"}\n')
    before = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    assert 0 == traffic.main(["--subscribers", "3000", "--hours", "0.0003", "--live", "--out", str(path)])
    lines = path.read_bytes().splitlines()
    assert lines[0] == b'{"type":"login","ts":1,"msisdn":"13800000000"}'
    assert all(orjson.loads(x)["ts"] >= before for x in lines[1:])
