"""Live mode: events offered at a fixed rate by an in-process paced source.

Event k of the input is scheduled to arrive at ``start + k / rate`` (wall
clock). The source hands the engine, as one block, every event whose arrival
time has passed (at most ``max_batch``), raw JSON bytes as they would come off
a socket, so decoding is part of the path. An event's latency is from its
scheduled arrival to the moment the engine returned from the block holding
it — every decision the event caused was made by then — so queueing behind a
slow block counts, as it would in the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import numpy as np

from bench._measure import Latency


def first_lines(path: Path, n: int) -> list[bytes]:
    """The first ``n`` lines of ``path`` (all of them if it has fewer), as raw bytes."""
    lines: list[bytes] = []
    with open(path, "rb") as f:
        for line in f:
            lines.append(line)
            if len(lines) == n:
                break
    return lines


def run_paced(
    lines: Sequence[bytes],
    feed: Callable[[list], None],
    decoder: msgspec.json.Decoder,
    rate: float,
    *,
    max_batch: int = 512,
) -> tuple[Latency, float]:
    """Offer ``lines`` at ``rate`` events/s to ``feed``; (latency percentiles, wall seconds)."""
    latency_ms, ends, wall = paced_latencies(lines, feed, decoder, rate, max_batch=max_batch)
    return percentiles(latency_ms), wall


def paced_latencies(
    lines: Sequence[bytes],
    feed: Callable[[list], None],
    decoder: msgspec.json.Decoder,
    rate: float,
    *,
    max_batch: int = 512,
    idle: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, list[int], float]:
    """``run_paced``'s run: (each event's latency in ms, each block's end index, wall seconds), so a
    caller can tell the blocks apart (``bench.live_sweep``: those fed while a sweep was under way).
    ``idle()``: called instead of sleeping while no event is due, as the daemon's other tasks run
    between reads; it returns whether it did any work (False: sleep until the next event is due)."""
    n = len(lines)
    if n == 0:
        raise ValueError("live mode needs at least one event")
    decode_lines = decoder.decode_lines
    clock = time.perf_counter
    sleep = time.sleep
    ends: list[int] = []
    done: list[float] = []
    start = clock() + 0.005
    i = 0
    while i < n:
        now = clock()
        due = int((now - start) * rate) + 1  # events 0 … due−1 have arrived
        if due <= i:
            if idle is not None and idle():
                continue
            wait = start + i / rate - now
            if wait > 0.0005:
                sleep(wait - 0.0002)  # a coarse sleep, then a short spin for precision
            continue
        j = min(due, n, i + max_batch)
        feed(decode_lines(b"".join(lines[i:j])))
        done.append(clock())
        ends.append(j)
        i = j
    wall = done[-1] - start
    counts = np.diff(np.asarray([0] + ends))
    finished = np.repeat(np.asarray(done), counts)
    arrived = start + np.arange(n) / rate
    return (finished - arrived) * 1000.0, ends, wall


def percentiles(latency_ms: np.ndarray) -> Latency:
    """p50, p99, p99.9 and max of latencies in ms."""
    p50, p99, p999 = np.percentile(latency_ms, [50, 99, 99.9])
    return Latency(round(float(p50), 3), round(float(p99), 3), round(float(p999), 3),
                   round(float(latency_ms.max()), 3))
