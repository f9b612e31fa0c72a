"""What makes the live tail: the live contender's run (``bench._contenders.live``, GC as the daemon runs
it) with each block's CPU time (``time.thread_time``) and what ran inside it, timed.

The machine may be busy, so a block is judged by its own CPU time as well as its wall time; each
block whose latency is above p99 (and p99.9) is given to the cause that took most of its CPU time
(``other``: none took half of it). Causes are timed by wrapping the engine's occasional work: a
deadline bucket opened into a heap, the engine's state sweep, a calendar-period slot reset or row
recycle (new day), the row index's columns growing, a schedule instant, the settler's freeze, a
full collection (``gc.callbacks``), a universe merge. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

CAUSES = ("deadline-bucket", "state-sweep", "period-reset", "period-recycle", "rows-grow", "schedule-instant",
          "settle-freeze", "gc-gen2", "gc-young", "universe-merge", "big-resize")

#: a container whose allocation changed by more than this in one block was resized (a big rehash or copy)
BIG = 1 << 20


class Timers:
    """CPU seconds and counts per cause, cumulative (a block reads the difference)."""

    def __init__(self) -> None:
        self.cpu = dict.fromkeys(CAUSES, 0.0)
        self.n = dict.fromkeys(CAUSES, 0)
        self._depth = 0

    def wrap(self, owner: Any, name: str, cause: str) -> None:
        inner = getattr(owner, name)
        clock = time.thread_time
        timers = self

        def timed(*args: Any, **kw: Any) -> Any:
            if timers._depth:
                return inner(*args, **kw)
            timers._depth += 1
            t0 = clock()
            try:
                return inner(*args, **kw)
            finally:
                timers.cpu[cause] += clock() - t0
                timers.n[cause] += 1
                timers._depth -= 1

        setattr(owner, name, timed)


def instrument(timers: Timers) -> None:
    """Wrap the engine's occasional work (classes, before an engine is built)."""
    from kairos.engine import _deadlines, _engine, _periods, _universe
    from kairos.engine.forms import schedule

    # a bucket opened: pop_before's slow branch is the one calling _entries
    timers.wrap(_deadlines.Deadlines, "_entries", "deadline-bucket")
    timers.wrap(_engine.Engine, "_sweep", "state-sweep")
    timers.wrap(_periods._Buckets, "reset", "period-reset")
    timers.wrap(_periods.Periods, "collect", "period-recycle")
    for cls in (_periods._Buckets, _periods._Since):
        timers.wrap(cls, "grow", "rows-grow")
    timers.wrap(schedule.ScheduleRuntime, "on_deadline", "schedule-instant")
    timers.wrap(_universe.Universe, "_merge", "universe-merge")
    start = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start[0] = time.thread_time()
        else:
            cause = "gc-gen2" if info["generation"] == 2 else "gc-young"
            timers.cpu[cause] += time.thread_time() - start[0]
            timers.n[cause] += 1

    gc.callbacks.append(on_gc)


def heapify_time(timers: Timers) -> None:
    """The heapify after a bucket opened is not inside ``_entries``: time ``heapq.heapify`` as the
    deadline module calls it (its only caller there)."""
    import heapq

    from kairos.engine import _deadlines

    class _Heapq:
        heappush = staticmethod(heapq.heappush)
        heappop = staticmethod(heapq.heappop)
        heapify = staticmethod(heapq.heapify)

    _deadlines.heapq = _Heapq  # type: ignore[assignment,attr-defined]
    timers.wrap(_Heapq, "heapify", "deadline-bucket")


def run(events: Path, scenarios: list[str], reference: str, rate: float, seconds: float,
        settle_every: int | None = None) -> dict[str, Any]:
    from bench._live import first_lines
    from kairos._compile import compile_plan
    from kairos.engine import Engine, Reference, Settler, event_union

    timers = Timers()
    instrument(timers)
    heapify_time(timers)
    plan = compile_plan(scenarios)
    ref = Reference.load(reference)
    lines = first_lines(events, max(1, int(rate * seconds)))
    sends: list[Any] = []
    engine = Engine(plan, ref, sink=sends.append)
    if hasattr(engine.periods, "reserve"):  # as the daemon builds its engine (a build from before it: not)
        engine.periods.reserve(len(ref.tags))
    decoder = msgspec.json.Decoder(event_union())
    gc.collect()
    gc.freeze()
    settler = Settler() if settle_every is None else Settler(settle_every)
    clock = time.thread_time
    rows: list[tuple[float, float, list[float], list[int]]] = []
    cpu, n = timers.cpu, timers.n

    samples: list[str] = []
    sampled: dict[int, dict[str, int]] = {}

    def sample(signum: int, frame: Any) -> None:
        where: list[str] = []
        f = frame
        while f is not None and len(where) < 6:
            code = f.f_code
            where.append(f"{Path(code.co_filename).name}:{f.f_lineno} {code.co_name}")
            f = f.f_back
        samples.append(" < ".join(where))

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, 0.001, 0.001)

    def big_containers() -> list[tuple[str, Any]]:
        """The per-subscriber containers that grow to a million entries: their resizes are not calls."""
        found: list[tuple[str, Any]] = [("periods.rows", engine.periods.rows),
                                        ("periods._owners", engine.periods._owners)]
        for key, col in engine.periods.columns.items():
            found.extend((f"column {key.split('|')[0]} slot", slot) for slot in getattr(col, "slots", ()))
        found.extend((f"{engine.scenarios[rt.index].name}.states", rt.states) for rt in engine.runtimes
                     if isinstance(getattr(rt, "states", None), dict))
        if engine.universe is not None:
            found.extend((("universe._known", engine.universe._known), ("universe._fresh", engine.universe._fresh)))
        return found

    resizes: dict[str, int] = {}

    sizeof = sys.getsizeof

    def feed(block: list[Any]) -> None:
        samples.clear()
        watched = big_containers()
        sizes = [sizeof(c) for _, c in watched]
        before_cpu, before_n = list(cpu.values()), list(n.values())
        t0 = clock()
        w0 = time.perf_counter()
        engine.feed(block)
        t1 = clock()
        settler.tick(len(block))
        cpu["settle-freeze"] += clock() - t1
        names = [name for (name, c), z in zip(watched, sizes, strict=True) if abs(sizeof(c) - z) > BIG]
        for name in names:
            resizes[name] = resizes.get(name, 0) + 1
        resized = len(names)
        if resized:
            n["big-resize"] += resized
            timed = sum(cpu.values()) - sum(before_cpu)
            cpu["big-resize"] += max(0.0, (t1 - t0) - timed)  # what no timed cause took: the rehash
        rows.append((time.perf_counter() - w0, clock() - t0,
                     [a - b for a, b in zip(cpu.values(), before_cpu, strict=True)],
                     [a - b for a, b in zip(n.values(), before_n, strict=True)]))
        if samples:
            seen: dict[str, int] = {}
            for w in samples:
                seen[w] = seen.get(w, 0) + 1
            sampled[len(rows) - 1] = seen

    latency, ends, wall = paced(lines, feed, decoder, rate)
    signal.setitimer(signal.ITIMER_PROF, 0, 0)
    out = report(latency, ends, rows, wall, len(lines))
    out["big_resizes"] = resizes
    for b in out["slowest_blocks"]:
        seen = sampled.get(b["block"], {})
        b["samples"] = sorted(seen.items(), key=lambda x: -x[1])[:4]
    return out


def paced(lines: Sequence[bytes], feed: Callable[[list[Any]], None], decoder: Any,
          rate: float) -> tuple[np.ndarray, list[int], float]:
    from bench._live import paced_latencies

    return paced_latencies(lines, feed, decoder, rate)


def report(latency: np.ndarray, ends: list[int], rows: list[Any], wall: float, n: int) -> dict[str, Any]:
    """Latency percentiles and each cause's share of the events above p99 and p99.9 (by their block)."""
    p50, p99, p999 = np.percentile(latency, [50, 99, 99.9])
    block_of = np.repeat(np.arange(len(ends)), np.diff(np.asarray([0] + ends)))
    out: dict[str, Any] = {
        "events": n, "wall_s": round(wall, 2), "blocks": len(ends),
        "p50_ms": round(float(p50), 3), "p99_ms": round(float(p99), 3), "p999_ms": round(float(p999), 3),
        "max_ms": round(float(latency.max()), 3), "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    # a slow event waited behind the slowest block fed since it arrived, up to its own block
    slow_cpu = np.asarray([r[1] for r in rows])
    for name, cut in (("above_p99", p99), ("above_p999", p999)):
        blamed: dict[str, int] = {}
        for b in np.unique(block_of[latency > cut]).tolist():
            # the block that made the wait: the one with most CPU among the last 50 up to b
            lo = max(0, b - 50)
            k = lo + int(np.argmax(slow_cpu[lo:b + 1]))
            blamed_cause = _cause(rows[k])
            blamed[blamed_cause] = blamed.get(blamed_cause, 0) + int((block_of[latency > cut] == b).sum())
        total = sum(blamed.values()) or 1
        out[name] = {c: round(v / total, 3) for c, v in sorted(blamed.items(), key=lambda x: -x[1])}
    for cut_ms in (5, 20, 50):
        over = [r for r in rows if r[1] * 1000 >= cut_ms]
        blamed = {}
        for r in over:
            c = _cause(r)
            blamed[c] = blamed.get(c, 0) + 1
        out[f"blocks_cpu_over_{cut_ms}ms"] = {"n": len(over), "cpu_s": round(sum(r[1] for r in over), 3),
                                              **dict(sorted(blamed.items(), key=lambda x: -x[1]))}
    out["cpu_ms_by_cause"] = {c: round(sum(r[2][j] for r in rows) * 1000, 1) for j, c in enumerate(CAUSES)}
    out["count_by_cause"] = {c: sum(r[3][j] for r in rows) for j, c in enumerate(CAUSES)}
    top = sorted(range(len(rows)), key=lambda k: -rows[k][1])[:15]
    out["slowest_blocks"] = [
        {"block": k, "wall_ms": round(rows[k][0] * 1000, 1), "cpu_ms": round(rows[k][1] * 1000, 1),
         **{c: f"{rows[k][3][j]}x {rows[k][2][j] * 1000:.1f}ms" for j, c in enumerate(CAUSES) if rows[k][3][j]}}
        for k in top]
    return out


def _cause(row: Any) -> str:
    _, total, cpus, _ = row
    j = int(np.argmax(cpus))
    return CAUSES[j] if cpus[j] >= total / 2 else "other"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the instrumented live contender; print its attribution as one JSON line."""
    p = argparse.ArgumentParser(prog="python -m bench.live_tail", description=__doc__)
    p.add_argument("--events", required=True, type=Path)
    p.add_argument("--scenarios", nargs="*", default=[])
    p.add_argument("--reference", required=True)
    p.add_argument("--rate", type=float, default=91_150.0)
    p.add_argument("--seconds", type=float, default=20.0)
    a = p.parse_args(argv)
    sys.stdout.buffer.write(msgspec.json.encode(run(a.events, a.scenarios, a.reference, a.rate, a.seconds)) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
