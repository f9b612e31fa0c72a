"""What one contender's run measured, and the process-level clocks and memory it reads.

Every contender runs in its own process, so its peak RSS (``VmHWM``) is its
own; CPU time is user + system of the process and of any workers it forked.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import TypeVar

import msgspec

T = TypeVar("T")


class Latency(msgspec.Struct, frozen=True):
    """Event → decision latency percentiles of a live run, in milliseconds."""

    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float


class Measurement(msgspec.Struct, frozen=True, omit_defaults=False):
    """One contender on one input: throughput, time, memory, and what it decided."""

    contender: str
    events: int
    sends: int
    checksum: str
    wall_s: float
    cpu_s: float
    events_per_s: float
    peak_rss_mib: float
    workers: int = 1
    subscribers_in_state: int | None = None
    state_bytes_per_subscriber: float | None = None  # RSS delta / subscribers in state (upper bound)
    state_object_bytes_per_subscriber: float | None = None  # object sizes (lower bound, bench._state)
    state_breakdown: dict[str, float] | None = None  # object bytes per subscriber in state, by holder
    offered_rate: float | None = None
    latency: Latency | None = None
    #: timed by the runner from spawn to exit, start-up included (W1's contenders, ``bench._process``)
    whole_process: bool = False
    #: a whole process's own figure of its work's seconds, start-up and exit left out (what it prints)
    inner_wall_s: float | None = None


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB: ``VmHWM`` of its address space.

    Not ``ru_maxrss``: that survives ``exec``, so a contender would inherit the
    peak of the runner process that started it.
    """
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def children_peak_rss_mib() -> float:
    """The largest peak RSS of any waited-for child process, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def current_rss_bytes() -> int:
    """This process's resident set size now, from ``/proc/self/statm``."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """``fn()``, its wall-clock seconds and its CPU seconds (with children)."""
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    return result, wall, cpu_seconds() - cpu0
