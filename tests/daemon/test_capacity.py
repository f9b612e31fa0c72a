"""A channel capacity holds across the partitions of every instance: one count, in ``partitions_dir/capacity``.

Two instances own two partitions each of an embedded partitioned log (the
same unit logic as a Kafka consumer group) and share ``partitions_dir``. Every
partition has dropped calls every day; the policy allows one call a day.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from kairos.adapters import read_grants
from kairos.adapters._partitions import partition_of, split
from tests.daemon.support import sends, start, stop, wait_for_progress
from tests.daemon.test_crash import reference, sentinels
from tests.daemon.test_partitions import COUNT, partitioned_config

SCENARIOS = """
scenario dropped
  when call where dropped
  then call "care.apology"
end

policy
  capacity call 1 per 1d
end
"""

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
H = 3_600_000
D = 24 * H


def _local_day(ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).date()


def _dropped_calls(midnight: int, days: int) -> list[bytes]:
    """Each day from 10:00, a dropped call of two subscribers of every partition: eight a day."""
    subscribers = []
    for p in range(COUNT):
        subscribers += [m for m in (f"1360000{i:04d}" for i in range(400)) if partition_of(m, COUNT) == p][:2]
    out = []
    for day in range(days):
        for k, m in enumerate(subscribers):
            ev = {"type": "call", "ts": midnight + day * D + 10 * H + k * 60_000, "msisdn": m, "direction": "mo",
                  "dropped": True}
            out.append(json.dumps(ev).encode() + b"\n")
    return out


def _instance(tmp_path: Path, name: str, shared: Path, owned: list[int]) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    config = partitioned_config(folder, shared, owned)
    (folder / "scenarios" / "s.kairos").write_text(SCENARIOS)
    return config


def test_two_instances_with_two_partitions_each_send_one_call_a_day_in_all(tmp_path):
    reference(tmp_path)
    today = dt.datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    midnight = int((today - dt.timedelta(days=10)).timestamp() * 1000)
    end = midnight + 2 * D + 12 * H  # the third day's noon: its midnight released a waiting call
    lines = _dropped_calls(midnight, 2) + [x.encode() for x in sentinels(end, COUNT)]
    split(lines, tmp_path / "log", COUNT)
    per_partition = [sum(1 for x in lines if partition_of(json.loads(x)["msisdn"], COUNT) == p) for p in range(COUNT)]

    shared = tmp_path / "partitions"
    owned = {"a": [0, 1], "b": [2, 3]}
    configs = {n: _instance(tmp_path, n, shared, o) for n, o in owned.items()}
    procs = {n: start(c) for n, c in configs.items()}
    try:
        for n, proc in procs.items():
            wait_for_progress(tmp_path / n, proc, 0, snapshots=1, events=sum(per_partition[p] for p in owned[n]),
                              input_done=lambda: True, timeout=60, what=f"instance {n} to read its partitions")
    finally:
        assert [0, 0] == [stop(p) for p in procs.values()]
    calls = [s for n in owned for s in sends(tmp_path / n, ("call",))]
    by_day = sorted(_local_day(s["send_at"]) for s in calls)
    first = _local_day(midnight)
    assert [first, first + dt.timedelta(days=1), first + dt.timedelta(days=2)] == by_day
    granted = read_grants(shared / "capacity")
    assert [1, 1, 1] == [len(ids) for ids in granted.values()]
    assert sorted(s["id"] for s in calls) == sorted(i for ids in granted.values() for i in ids)
