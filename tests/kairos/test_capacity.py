"""`kairos replay --workers N` and a partitioned log hold the policy's channel capacity over all workers.

The bundled catalogue (its policy allows 500 call-centre tasks a day) over
three generated days of a province: with its own capacity, which this traffic
never fills, two workers write one worker's output byte for byte; with the
capacity cut to 3 a day, which binds on two of the days, no day gets more
than 3 calls in all, and the days one worker fills, two workers fill too.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections import Counter
from pathlib import Path

import msgspec
import pytest

from kairos import traffic
from kairos._cli import main
from kairos.adapters import split_file

ROOT = Path(__file__).resolve().parents[2]
SHANGHAI = dt.timezone(dt.timedelta(hours=8))  # the policy's calendar: kairos replay's default --tz


@pytest.fixture(scope="module")
def province(tmp_path_factory) -> Path:
    """Three generated days, the same traffic split into a partitioned log, and the catalogue twice:
    as bundled and with 3 calls a day."""
    root = tmp_path_factory.mktemp("province")
    traffic.make_reference(root / "reference", 1_500, seed=5)
    traffic.write(root / "events.jsonl", subscribers=1_500, hours=72, seed=5, mix="province")
    split_file(root / "events.jsonl", root / "log", 4)
    for name, limit in (("bundled", 500), ("tight", 3)):
        folder = root / name
        shutil.copytree(ROOT / "scenarios", folder, ignore=shutil.ignore_patterns("reference"))
        policy = folder / "policy.kairos"
        text = policy.read_text()
        assert "capacity call 500 per 1d" in text
        policy.write_text(text.replace("capacity call 500 per 1d", f"capacity call {limit} per 1d"))
    return root


_RUNS: dict[tuple[Path, str, str, int], bytes] = {}


def _replay(root: Path, catalogue: str, events: str, workers: int) -> bytes:
    key = (root, catalogue, events, workers)
    if key in _RUNS:  # the module's tests share the runs
        return _RUNS[key]
    out = root / f"out-{catalogue}-{events}-{workers}.jsonl"
    code = main(["replay", "--scenarios", str(root / catalogue), "--reference", str(root / "reference"),
                 "--events", str(root / events), "--out", str(out), "--workers", str(workers), "--quiet"])
    assert 0 == code
    _RUNS[key] = out.read_bytes()
    return _RUNS[key]


def _calls_a_day(output: bytes) -> dict[dt.date, int]:
    days: Counter[dt.date] = Counter()
    for line in output.splitlines():
        send = msgspec.json.decode(line)
        if send["channel"] == "call":
            days[dt.datetime.fromtimestamp(send["send_at"] / 1000, SHANGHAI).date()] += 1
    return dict(days)


@pytest.mark.parametrize(("events", "workers"), [("events.jsonl", 2), ("log", 1), ("log", 2)])
def test_the_bundled_catalogue_with_its_capacity_runs_split_and_writes_one_workers_output(province, events, workers):
    one = _replay(province, "bundled", "events.jsonl", 1)
    assert max(_calls_a_day(one).values()) < 500  # the capacity never binds: the output is unchanged
    assert one == _replay(province, "bundled", events, workers)


@pytest.mark.parametrize(("events", "workers"), [("events.jsonl", 2), ("log", 1), ("log", 2)])
def test_a_capacity_of_three_calls_a_day_holds_over_all_workers_and_partitions(province, events, workers):
    one = _calls_a_day(_replay(province, "tight", "events.jsonl", 1))
    split = _calls_a_day(_replay(province, "tight", events, workers))
    full = [day for day, calls in one.items() if calls == 3]
    assert len(full) >= 2  # the capacity binds
    assert max(split.values()) <= 3
    assert [3] * len(full) == [split.get(day) for day in full]
