"""Live latency while a monthly schedule instant sweeps a million subscribers (issue 14 item 2).

    python -m bench.live_sweep --events W2.jsonl --reference W2-reference [--rate R] [--seconds S]
                               [--alone] [--at F] [--max-batch N]
    python -m bench.live_sweep --replay --reference W2-reference

W2's province traffic (``python -m bench`` makes it: ``bench/results/inputs``; its reference
holds 1,000,000 subscribers in ``tags.jsonl``) is offered at ``--rate`` events/s by
``bench._live``'s paced source, its timestamps shifted so that 1 December 10:00 (the
daemon's default zone) falls ``--at`` of the way through the run. The scenarios are the
catalogue (``scenarios/``, the policy left out as ``python -m bench`` does; its day-1 and
daily 10:00 schedules fire at that instant too) plus ``bill_day``, a monthly instant over
``tags.plan_type``; ``--alone``: ``bill_day`` only. The engine is built as the daemon builds
it (``sliced=True``) and fed through ``kairos._units.Unit.push``, the daemon's path; a sweep goes on
in ``Unit.sweep`` turns as the daemon's sweep task takes them: one between two blocks, and more
while no event is due (visits count towards settling the collector as in the daemon); with the
collector as the daemon runs
it (loaded state frozen, ``engine.Settler``). Prints latency (scheduled arrival → engine
returned from the block) over the run and over the blocks fed while a sweep was under way,
the sweep's wall time and the events processed during it.
"""

from __future__ import annotations

import argparse
import gc
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from bench._live import first_lines, paced_latencies, percentiles
from bench._measure import peak_rss_mib

BILL_DAY = """
scenario bill_day
  when every month on day 1 at 10:00 where tags.plan_type == "postpaid"
  then sms "bill.reminder"
end
"""
CATALOGUE = Path(__file__).resolve().parent.parent / "scenarios"
_TS = re.compile(rb'"ts":\s*(\d+)')


def shifted(path: Path, n: int, instant: int, at: float) -> list[bytes]:
    """The first ``n`` lines of ``path``, every ts moved by one offset so that event ``at·n`` is at ``instant``."""
    lines = first_lines(path, n)
    k = int(at * len(lines))
    m = _TS.search(lines[k])
    assert m is not None
    shift = instant - int(m.group(1))
    return [_TS.sub(lambda g: b'"ts":%d' % (int(g.group(1)) + shift), line, count=1) for line in lines]


def replay_instant(reference: Path, instant: int) -> None:
    """``kairos replay`` of ``bill_day`` over two events: once crossing the instant (all members visited at
    once, as replay does), once not; the difference in wall time is the instant's."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory(prefix="kairos-replay-instant-") as d:
        folder = Path(d)
        (folder / "bill_day.kairos").write_text(BILL_DAY)
        walls = []
        for label, after in (("not crossing", instant - 1_000), ("crossing", instant + 60_000)):
            events = folder / f"{label.replace(' ', '-')}.jsonl"
            events.write_text("".join(
                f'{{"type":"login","ts":{t},"msisdn":"13800000001","channel":"app"}}\n'
                for t in (instant - 60_000, after)))
            started = time.perf_counter()
            command = [sys.executable, "-m", "kairos", "replay", "--scenarios", str(folder / "bill_day.kairos"),
                       "--events", str(events), "--reference", str(reference), "--out", str(folder / "out")]
            done = subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
            sends = (folder / "out").read_bytes().count(b"\n")
            print(f"kairos replay, two events {label} the instant: {walls[-1]:.2f} s wall, {sends:,} sends"
                  + (f" ({done.stderr.decode().strip().splitlines()[-1]})" if done.stderr.strip() else ""))
        print(f"  the instant over {reference / 'tags.jsonl'}: {walls[1] - walls[0]:.2f} s")


def main(argv: list[str] | None = None) -> None:
    from kairos import dsl
    from kairos.engine import DEFAULT_TZ, Engine, Reference, Settler, event_schema, event_union
    from kairos._units import SWEEP_SHARE, SWEEP_TURN_S, Unit

    p = argparse.ArgumentParser(prog="python -m bench.live_sweep")
    p.add_argument("--events", type=Path, help="W2 province traffic (JSON lines)")
    p.add_argument("--reference", type=Path, required=True, help="its reference folder (1 M subscribers' tags)")
    p.add_argument("--rate", type=float, default=181_000.0,
                   help="events/s offered (default: half W2's one-worker max rate in bench/results)")
    p.add_argument("--seconds", type=float, default=30.0, help="how long events are offered")
    p.add_argument("--at", type=float, default=0.2, help="where in the run the instant falls (0–1)")
    p.add_argument("--alone", action="store_true", help="bill_day only, not the catalogue with it")
    p.add_argument("--max-batch", type=int, default=512,
                   help="most events in a block (default: the live contender's; the daemon's file source reads "
                        "1 MiB, ~5,000 W2 lines)")
    p.add_argument("--replay", action="store_true",
                   help="instead: `kairos replay` of bill_day over two events crossing the instant (all at once)")
    a = p.parse_args(argv)

    instant = int(datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo(DEFAULT_TZ)).timestamp() * 1000)
    if a.replay:
        replay_instant(a.reference, instant)
        return
    if a.events is None:
        p.error("--events is needed (unless --replay)")
    lines = shifted(a.events, int(a.rate * a.seconds), instant, a.at)
    sources = [("bill_day.kairos", BILL_DAY)]
    if not a.alone:
        sources += [(str(f), f.read_text()) for f in sorted(CATALOGUE.rglob("*.kairos")) if f.name != "policy.kairos"]
    plan = dsl.compile_sources(sources, event_schema())
    loading = time.perf_counter()
    reference = Reference.load(str(a.reference))
    loaded_s = time.perf_counter() - loading
    sends: list[Any] = []
    engine = Engine(plan, reference, sink=sends.append, tz=DEFAULT_TZ, sliced=True)
    schedules = len(engine.schedules)
    tmp = tempfile.TemporaryDirectory(prefix="kairos-live-sweep-")
    unit = Unit("all", Path(tmp.name) / "snapshot.bin", engine, 0, on_late=lambda _ev, _late: None)
    gc.collect()
    gc.freeze()  # as `kairos run`: what is loaded leaves the collector's walk (kairos/_daemon.py)
    settler = Settler()
    clock = time.perf_counter
    full: list[tuple[float, float]] = []  # the collector's full (generation 2) collections: (start, seconds)
    began = [0.0]

    def collections(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = clock()
        elif info["generation"] == 2:
            full.append((began[0], clock() - began[0]))

    gc.callbacks.append(collections)
    flags: list[bool] = []  # per block: a sweep was under way before or after it
    sweep_wall: list[float] = []  # when a sweep was first seen under way, when it was seen done

    def feed(events: list[Any]) -> None:
        before = engine.sweeping
        unit.push(events)  # the daemon's path: decoded events to event time
        settler.tick(len(events))
        settler.tick(unit.sweep())  # the daemon's sweep task takes its turn between two reads
        after = engine.sweeping
        if after and not sweep_wall:
            sweep_wall.append(clock())
        elif before and not after and len(sweep_wall) == 1:
            sweep_wall.append(clock())
        flags.append(before or after)

    def idle() -> bool:  # the daemon's sweep task (Daemon._sweeps) goes on while the sources wait
        visited = unit.sweep()
        settler.tick(visited)
        return visited > 0

    latency, ends, wall = paced_latencies(lines, feed, msgspec.json.Decoder(event_union()), a.rate,
                                          max_batch=a.max_batch, idle=idle)
    counts = np.diff(np.asarray([0] + ends))
    during = np.repeat(np.asarray(flags), counts)
    swept = latency[during]
    print(f"live_sweep: {len(lines):,} events offered at {a.rate:,.0f}/s over {wall:.1f} s; {schedules} schedules "
          f"({'bill_day alone' if a.alone else 'bill_day + catalogue'}); reference {len(reference.tags):,} subscribers "
          f"(loaded in {loaded_s:.1f} s); blocks of at most {a.max_batch:,}; sweep turns of "
          f"{SWEEP_TURN_S * 1000:g} ms, {SWEEP_SHARE:.2f} of block time under load; "
          f"{len(sends):,} sends; peak RSS {peak_rss_mib():,.0f} MiB")
    print(f"  all events     {_fmt(latency)}")
    flagged = np.asarray(flags)
    if flagged.any():
        first = int(np.argmax(flagged))  # the block that crossed the instant
        print(f"  before instant {_fmt(latency[:ends[first - 1] if first else 0])}")
    if swept.size:
        print(f"  during sweep   {_fmt(swept)}")
        end = "still under way at the end of the run" if len(sweep_wall) < 2 else \
            f"{sweep_wall[1] - sweep_wall[0]:.2f} s wall"
        print(f"  sweep: {end}; {int(counts[flagged].sum()):,} events in {int(flagged.sum()):,} blocks "
              f"during it")
        stop = sweep_wall[1] if len(sweep_wall) > 1 else float("inf")
        inside = [d for t, d in full if sweep_wall[0] <= t <= stop]
        print(f"  full GC collections: {len(full)} in the run, {len(inside)} during the sweep"
              + (f" (longest {max(inside) * 1000:.0f} ms, {sum(inside):.2f} s in all)" if inside else ""))
    else:
        print("  no block was fed while a sweep was under way (did the run cross the instant?)")
    tmp.cleanup()


def _fmt(latency_ms: np.ndarray) -> str:
    q = percentiles(latency_ms)
    return (f"n={latency_ms.size:>9,}  p50 {q.p50_ms:8.3f} ms  p99 {q.p99_ms:8.3f} ms  "
            f"p99.9 {q.p999_ms:8.3f} ms  max {q.max_ms:8.3f} ms")


if __name__ == "__main__":
    main()
