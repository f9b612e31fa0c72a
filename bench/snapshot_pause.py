"""How long a snapshot of N subscribers' state pauses event processing: inline vs forked.

    python -m bench.snapshot_pause [N ...]      (default 100000 1000000)

Builds an engine whose N subscribers each hold a count window, a cool-down and
a partial sequence with a bound event, then measures (1) serialising the
snapshot in the process (what a non-forking daemon would pause for), (2) the
pause of a forked snapshot (the time ``fork`` takes; the child serialises and
writes), and the forked snapshot's total time until it is on disk, and (3)
reading it back (decode + restore, paid once at start-up).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio

from kairos.engine import Engine, Reference, decode_snapshot, encode_snapshot, restore_snapshot
from kairos.engine._events import Dpi
from kairos._snapfiles import SnapshotFiles

T0 = 1_795_363_200_000
SCENARIOS = """
scenario video when count(dpi where category == "video") >= 20 within 10m cooldown 60m then sms "v" end
scenario review when dpi as r where category == "review" -> dpi where category == "shop" within 5m then sms "r" end
scenario one when dpi where category == "first" then sms "f" end
"""


def build(n: int) -> Engine:
    from kairos import dsl
    from kairos.engine import event_schema

    plan = dsl.compile_sources([("bench.kairos", SCENARIOS)], event_schema())
    engine = Engine(plan, Reference(), sink=lambda s: None)
    block: list = []
    for i in range(n):
        m = str(13_800_000_000 + i)
        t = T0 + i // 1000
        block += [Dpi(ts=t, msisdn=m, host="h", category="video"), Dpi(ts=t, msisdn=m, host="h", category="review"),
                  Dpi(ts=t, msisdn=m, host="h", category="first")]
        if len(block) >= 30_000:
            engine.feed(block)
            block = []
    engine.feed(block)
    return engine


async def forked(engine: Engine, folder: Path) -> tuple[float, float, int]:
    files = SnapshotFiles(fork=True)

    async def nothing() -> None:
        return None

    info = await files.take([folder / "snapshot.bin"], lambda: [encode_snapshot(engine)], nothing)
    return info.pause_ms, info.duration_ms, info.bytes


def main(sizes: list[int]) -> None:
    print(f"{'subscribers':>12} {'inline ms':>10} {'fork pause ms':>14} {'forked total ms':>16} "
          f"{'MB':>7} {'restore ms':>11}")
    for n in sizes:
        engine = build(n)
        assert engine.subscribers_in_state() == n
        started = time.perf_counter()
        data = encode_snapshot(engine)
        inline = (time.perf_counter() - started) * 1000
        with tempfile.TemporaryDirectory() as d:
            pause, total, size = anyio.run(forked, engine, Path(d))
        started = time.perf_counter()
        fresh = Engine(engine.plan, Reference(), sink=lambda s: None)
        restore_snapshot(fresh, decode_snapshot(data).engine)
        back = (time.perf_counter() - started) * 1000
        print(f"{n:>12} {inline:>10.0f} {pause:>14.1f} {total:>16.0f} {size / 1e6:>7.1f} {back:>11.0f}")
        del engine, fresh, data


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
