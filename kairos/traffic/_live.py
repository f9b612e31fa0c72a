"""Paced writing (``python -m kairos.traffic --live``): each event is written once the wall clock reaches its ts.

A daemon following the file (or standard input) then receives the events as a
live feed would, instead of a backlog: sends arrive as their causes happen.
The clock and the sleep are parameters so a test can drive them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import IO

import numpy as np

from kairos.traffic._columns import Columns

#: longest wait between two looks at the clock (s): Ctrl-C and a changed clock are noticed within it
MAX_WAIT_S = 0.5


def wall_ms() -> int:
    """The wall clock in epoch milliseconds."""
    return int(time.time() * 1000)


def write_paced(parts: Iterable[Columns], out: IO[bytes], *, clock: Callable[[], int] = wall_ms,
                sleep: Callable[[float], None] = time.sleep) -> int:
    """Write ``parts`` (sorted by ts, one after the other) as their time comes, flushing each batch;
    returns the number of events written. An event is never written before ``clock()`` reaches its ts."""
    written = 0
    for cols in parts:
        i = 0
        while i < len(cols):
            now = clock()
            j = int(np.searchsorted(cols.ts, now, side="right"))
            if j > i:
                cols.rows(i, j).write(out)
                out.flush()
                written += j - i
                i = j
                continue
            sleep(min(MAX_WAIT_S, max(0.001, (int(cols.ts[i]) - now) / 1000)))
    return written
