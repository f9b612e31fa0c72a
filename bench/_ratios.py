"""Ratios of one run's Measurements, and the issue's targets read from them.

A ratio compares two contenders measured in the same run, interleaved, on the
same machine: unlike events/s, it holds from one machine to another. Every
contender is compared with its floor, the decode-only pass of its own input
into the engine's event Structs (``w1-floor``, ``w2-floor``), and W1's Kairos
with the hand-written loops. Each ratio is given twice: by wall time (events/s)
and by CPU time (events per CPU-second of each worker, what it would do on a
core of its own), the second less sensitive to a busy machine.
"""

from __future__ import annotations

import msgspec

from bench._measure import Measurement

#: the issue's targets: (name, what is compared, threshold, higher is better); the names are ratios'
TARGETS = (
    ("w1_vs_msgspec", "W1 Kairos / msgspec loop, events/s, whole processes", 1.0, True),
    ("w1_vs_json", "W1 Kairos / json.loads loop, events/s, whole processes", 2.0, True),
    ("w1_rss_vs_json", "W1 Kairos peak RSS / json.loads loop's", 2.0, False),
    ("w2_one_vs_floor", "W2 one worker / its decode floor, events/s", 0.35, True),
    ("w2_two_vs_one_partitioned", "W2 two workers / one, a log partitioned by subscriber", 1.8, True),
    ("w2_state_bytes", "W2 bytes of state per subscriber in state (RSS delta)", 200, False),
    ("live_p99_ms", "live p99, half the max rate, GC as the daemon runs it, ms", 5.0, False),
    ("live_p999_ms", "live p99.9, the same run, ms", 20.0, False),
)

#: the ratios of the printed table: (name, what, numerator, denominator); W1's contenders are whole
#: processes, the floors and W2's are timed inside their process
RATIOS = (
    ("w1_json_vs_floor", "W1 json.loads loop / W1 floor", "w1-json", "w1-floor"),
    ("w1_msgspec_vs_floor", "W1 msgspec loop / W1 floor", "w1-msgspec", "w1-floor"),
    ("w1_kairos_vs_floor", "W1 Kairos / W1 floor", "w1-kairos", "w1-floor"),
    ("w1_vs_msgspec", "W1 Kairos / msgspec loop", "w1-kairos", "w1-msgspec"),
    ("w1_vs_json", "W1 Kairos / json.loads loop", "w1-kairos", "w1-json"),
    ("w2_one_vs_floor", "W2 one worker / W2 floor", "w2-1w", "w2-floor"),
    ("w2_two_vs_floor", "W2 two workers, one file routed / W2 floor", "w2-2w", "w2-floor"),
    ("w2_two_partitioned_vs_floor", "W2 two workers, partitioned log / W2 floor", "w2-2w-partitioned", "w2-floor"),
    ("w2_two_vs_one", "W2 two workers, one file routed / one", "w2-2w", "w2-1w"),
    ("w2_two_vs_one_partitioned", "W2 two workers, partitioned log / one", "w2-2w-partitioned", "w2-1w"),
)


class Target(msgspec.Struct, frozen=True):
    """One target of the issue and whether this run met it."""

    name: str
    what: str
    target: float
    measured: float | None
    met: bool


def cpu_rate(m: Measurement) -> float:
    """Events per CPU-second of one worker: what ``m`` would do with a core per worker."""
    return m.events / (m.cpu_s / m.workers) if m.cpu_s > 0 else 0.0


def ratio(num: Measurement, den: Measurement) -> tuple[float, float]:
    """``num`` over ``den``: by events/s (wall) and by events per worker's CPU-second."""
    wall = num.events_per_s / den.events_per_s if den.events_per_s else 0.0
    cpu = cpu_rate(num) / cpu_rate(den) if cpu_rate(den) else 0.0
    return round(wall, 3), round(cpu, 3)


def ratios(measured: dict[str, Measurement]) -> dict[str, float]:
    """Every ratio of ``RATIOS`` whose two contenders ran (by wall as ``name``, by CPU as ``name_cpu``),
    W1 Kairos's peak RSS over the json.loads loop's, and W1 Kairos over the msgspec loop as each
    process timed its own loop (start-up left out, ``_in_process``)."""
    out: dict[str, float] = {}
    for name, _, num, den in RATIOS:
        if num in measured and den in measured:
            out[name], out[f"{name}_cpu"] = ratio(measured[num], measured[den])
    kairos, loop, json_loop = (measured.get(n) for n in ("w1-kairos", "w1-msgspec", "w1-json"))
    if kairos is not None and json_loop is not None:
        out["w1_rss_vs_json"] = round(kairos.peak_rss_mib / json_loop.peak_rss_mib, 3)
    if kairos is not None and loop is not None and kairos.inner_wall_s and loop.inner_wall_s:
        out["w1_vs_msgspec_in_process"] = round(loop.inner_wall_s / kairos.inner_wall_s, 3)
    return out


def targets(ratios: dict[str, float], one_worker: Measurement | None, live: Measurement | None) -> list[Target]:
    """The issue's targets, each read from this run's ratios, W2's one worker or the live run
    (None where that part did not run)."""
    measured: dict[str, float | None] = dict(ratios)
    measured["w2_state_bytes"] = None if one_worker is None else one_worker.state_bytes_per_subscriber
    latency = None if live is None else live.latency
    measured["live_p99_ms"] = None if latency is None else latency.p99_ms
    measured["live_p999_ms"] = None if latency is None else latency.p999_ms
    out = []
    for name, what, threshold, higher in TARGETS:
        value = measured.get(name)
        met = value is not None and (value >= threshold if higher else value <= threshold)
        out.append(Target(name, what, threshold, value, met))
    return out


def render(ratios: dict[str, float]) -> list[str]:
    """The ratios table: one row per ratio that was measured, by events/s and by CPU."""
    rows = [("ratio", "events/s", "CPU")]
    rows += [(what, f"{ratios[name]:.3f}", f"{ratios[name + '_cpu']:.3f}")
             for name, what, _, _ in RATIOS if name in ratios]
    if len(rows) == 1:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join((r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    if "w1_vs_msgspec_in_process" in ratios:
        lines.append(f"W1 Kairos / msgspec loop as each process timed its own loop (start-up left out): "
                     f"{ratios['w1_vs_msgspec_in_process']:.3f}")
    return lines
