"""One contender, one input, in this process: ``python -m bench._contenders NAME …``.

The runner starts each contender in a fresh process so that peak RSS and CPU
time are its own, and reads the ``Measurement`` it prints as JSON. Contenders:

- ``w1-json`` / ``w1-msgspec``: the hand-written W1 loops of ``bench.baseline``;
- ``w1-kairos``: the W1 scenario through ``kairos replay``'s path (decode, engine, ordered writer);
  these three time their work in this process; the runner times W1 as whole processes
  instead (``bench._process``: ``kairos replay`` and ``python -m bench.baseline``);
- ``w1-floor`` / ``w2-floor``: the decode-only pass of the same file into the engine's own event
  Structs, block-wise by the reader ``kairos replay`` uses (``kairos.engine.EventReader``), with the
  event types the scenarios' catalogue declares registered first: what the engine's input costs,
  the floor every contender is compared to;
- ``w2``: the scenario catalogue over province traffic on ``--workers`` processes; with one
  worker it also measures the bytes of state per subscriber in state, as an RSS delta (upper
  bound) and as object sizes per holder — each scenario, the calendar's columns and row index,
  the universe, watches, deadlines, the policy (lower bound, ``bench._state``);
- ``live``: the catalogue fed at ``--rate`` events/s by an in-process paced source, with
  Python's automatic garbage collection on or (``--gc off``) off, as a daemon would run it.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from collections.abc import Sequence

import msgspec

from bench import baseline
from bench._state import state_bytes
from bench._measure import (
    Measurement,
    children_peak_rss_mib,
    current_rss_bytes,
    peak_rss_mib,
    timed,
)

CONTENDERS = ("w1-json", "w1-msgspec", "w1-kairos", "w1-floor", "w2-floor", "w2", "live")


def floor(name: str, events: Path, scenarios: list[str]) -> Measurement:
    """Decode ``events`` into the engine's event Structs as replay reads them, and nothing else."""
    from kairos._compile import read_catalogues
    from kairos.engine import EventReader

    read_catalogues(scenarios, use=True)  # the catalogue's own event types, as compile_plan registers them

    def decode_all() -> int:
        with open(events, "rb") as f:
            reader = EventReader(f, on_problem=lambda problem: None)
            return sum(len(decoded) for decoded, _ in reader.blocks())

    count, wall, cpu = timed(decode_all)
    return Measurement(
        contender=name, events=count, sends=0, checksum="", wall_s=round(wall, 3), cpu_s=round(cpu, 3),
        events_per_s=round(count / wall), peak_rss_mib=round(peak_rss_mib(), 1),
    )


def w1_json(events: Path) -> Measurement:
    with open(events, "rb") as f:
        sends, wall, cpu = timed(lambda: baseline.run_json(f))
    return _w1("w1-json", count_lines(events), sends, wall, cpu)


def w1_msgspec(events: Path) -> Measurement:
    with open(events, "rb") as f:
        sends, wall, cpu = timed(lambda: baseline.run_msgspec(f))
    return _w1("w1-msgspec", count_lines(events), sends, wall, cpu)


def w1_kairos(events: Path) -> Measurement:
    from kairos import dsl
    from kairos.engine import Engine, event_schema, replay

    plan = dsl.compile_sources([("w1.kairos", baseline.W1_SCENARIO)], event_schema())
    pairs: list[tuple[str, int]] = []
    keep = pairs.append

    def factory(sink: Any) -> Engine:
        def both(send: Any) -> None:
            keep((send.msisdn, send.ts))
            sink(send)

        return Engine(plan, sink=both)

    with open(events, "rb") as f, open(os.devnull, "wb") as out:
        report, wall, cpu = timed(lambda: replay(factory, f, out))
    return _w1("w1-kairos", report.events, pairs, wall, cpu)


def _w1(name: str, events: int, sends: list[tuple[str, int]], wall: float, cpu: float) -> Measurement:
    return Measurement(
        contender=name, events=events, sends=len(sends), checksum=baseline.checksum(sends),
        wall_s=round(wall, 3), cpu_s=round(cpu, 3), events_per_s=round(events / wall),
        peak_rss_mib=round(peak_rss_mib(), 1),
    )


def count_lines(path: Path) -> int:
    """How many lines a file holds (each W1 line is one event)."""
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def w2(events: Path, scenarios: list[str], reference: str, workers: int) -> Measurement:
    """The catalogue over ``events``: a file (``replay_workers``) or a partitioned log's folder
    (``replay_partitioned``: each worker replays whole partitions, nothing routed)."""
    from kairos.adapters import partition_files, partition_of
    from kairos.engine import Engine, Reference, replay_partitioned, replay_workers
    from kairos._compile import compile_plan

    partitioned = events.is_dir()
    plan = compile_plan(scenarios)
    ref = Reference.load(reference)
    engines: list[Engine] = []

    def factory(sink: Any) -> Engine:
        engine = Engine(plan, ref, sink=sink)
        engines.append(engine)
        return engine

    gc.collect()
    before = current_rss_bytes()  # plan and reference loaded: what follows is state (and buffers)

    with tempfile.TemporaryDirectory(prefix="kairos-bench-") as tmp:
        out_path = Path(tmp) / "sends.jsonl"
        with open(out_path, "wb") as out:
            if partitioned:
                files = partition_files(events)
                count = max(files) + 1  # the split's partition count: a schedule's engine visits only its own tag rows
                report, wall, cpu = timed(lambda: replay_partitioned(
                    factory, files, out, workers=workers, owns=lambda p, m: partition_of(m, count) == p))
            else:
                report, wall, cpu = timed(lambda: replay_workers(factory, events, out, workers=workers))
        after = current_rss_bytes()
        digest = hashlib.blake2b(out_path.read_bytes(), digest_size=12).hexdigest()
    in_state = per_sub = objects = breakdown = None
    if workers == 1 and not partitioned:
        in_state = max(engines[0].subscribers_in_state(), 1)
        per_sub = round((after - before) / in_state, 1)
        sizes = state_bytes(engines[0])
        objects = round(sum(sizes.values()) / in_state, 1)
        breakdown = {k: round(v / in_state, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}
    return Measurement(
        contender=f"w2-{workers}w" + ("-partitioned" if partitioned else ""), events=report.events,
        sends=report.sends, checksum=digest,
        wall_s=round(wall, 3), cpu_s=round(cpu, 3), events_per_s=round(report.events / wall),
        peak_rss_mib=round(max(peak_rss_mib(), children_peak_rss_mib()), 1), workers=workers,
        subscribers_in_state=in_state, state_bytes_per_subscriber=per_sub,
        state_object_bytes_per_subscriber=objects, state_breakdown=breakdown,
    )


def live(events: Path, scenarios: list[str], reference: str, rate: float, seconds: float,
         gc_mode: str = "auto") -> Measurement:
    from bench._live import first_lines, run_paced
    from kairos.engine import Engine, Reference, Settler, event_union
    from kairos._compile import compile_plan

    plan = compile_plan(scenarios)
    ref = Reference.load(reference)
    want = max(1, int(rate * seconds))
    lines = first_lines(events, want)
    sends: list[Any] = []
    engine = Engine(plan, ref, sink=sends.append)
    engine.periods.reserve(len(ref.tags))  # as the daemon builds its engine (``Daemon.new_engine``)
    decoder = msgspec.json.Decoder(event_union())
    feed = engine.feed
    if gc_mode == "daemon":
        # what `kairos run` does: what is loaded leaves the collector's walk, and so does the
        # state every 20 000 events made (engine.Settler, kairos/_daemon.py); the collector stays on
        gc.collect()
        gc.freeze()
        settler = Settler()

        def feed(events: list[Any]) -> None:
            engine.feed(events)
            settler.tick(len(events))

    elif gc_mode == "off":
        # the engine's hot path makes no reference cycles (tests/bench/test_live.py), so
        # reference counting frees everything; without this, Python's full collections
        # walk the whole heap of a million subscribers and stall the stream for 0.1–0.3 s
        gc.collect()
        gc.freeze()
        gc.disable()
    (latency, wall), _, cpu = timed(lambda: run_paced(lines, feed, decoder, rate))
    digest = hashlib.blake2b(b"".join(msgspec.json.encode(s) for s in sends), digest_size=12).hexdigest()
    return Measurement(
        contender=f"live-gc-{gc_mode}", events=len(lines), sends=len(sends), checksum=digest,
        wall_s=round(wall, 3), cpu_s=round(cpu, 3), events_per_s=round(len(lines) / wall),
        peak_rss_mib=round(peak_rss_mib(), 1), offered_rate=round(rate), latency=latency,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one contender and print its Measurement as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench._contenders")
    p.add_argument("contender", choices=CONTENDERS)
    p.add_argument("--events", required=True, type=Path)
    p.add_argument("--scenarios", nargs="*", default=[])
    p.add_argument("--reference")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--gc", choices=("auto", "daemon", "off"), default="auto",
                   help="live: Python's automatic garbage collection as it comes (default), as the "
                        "daemon runs it (loaded state frozen, collector on), or off")
    a = p.parse_args(argv)
    if a.contender == "w1-json":
        m = w1_json(a.events)
    elif a.contender == "w1-msgspec":
        m = w1_msgspec(a.events)
    elif a.contender == "w1-kairos":
        m = w1_kairos(a.events)
    elif a.contender in ("w1-floor", "w2-floor"):
        m = floor(a.contender, a.events, a.scenarios)
    elif a.contender == "w2":
        m = w2(a.events, a.scenarios, a.reference, a.workers)
    else:
        m = live(a.events, a.scenarios, a.reference, a.rate, a.seconds, a.gc)
    sys.stdout.buffer.write(msgspec.json.encode(m) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
