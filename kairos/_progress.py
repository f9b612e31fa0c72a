"""Progress of long work on a terminal (``replay``, ``split``, ``demo``, ``python -m bench``).

A line on standard error: how far through the input (a percentage, from the bytes read of the file's
size), events read, events per second, time elapsed and time left. Drawn with tqdm, and only when
standard error is a terminal: in a pipe or a CI log a command writes exactly what it wrote before, and
tqdm is not even imported (nor is it for ``kairos --help`` or ``check``: import this module only in the
commands that use it). The work calls a ``Progress`` after each block it has read (tens of kilobytes),
never per event; it redraws at most every ``INTERVAL`` seconds, so between redraws a call costs one
clock read.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Callable
from typing import IO, Any, TextIO

#: seconds between redraws: often enough to look alive, rare enough to cost nothing
INTERVAL = 0.25
#: the line with a known input size (``desc``: what, events, events/s), fitting 80 columns:
#: ``replay 109,443 events 134,729 events/s  45%|████▌     | 00:01, ETA 00:02``
_SIZED = "{desc} {percentage:3.0f}%|{bar}| {elapsed}, ETA {remaining}"
#: the line without one (standard input from a pipe): no percentage, no time left
_UNSIZED = "{desc} {elapsed}"


class Progress:
    """A progress line on a terminal, fed ``(events, bytes)`` read so far; ``close()`` clears it."""

    def __init__(self, what: str, total_bytes: int | None, stream: TextIO, unit: str = "events") -> None:
        from tqdm import tqdm  # lazy: only a terminal that shows a bar loads it

        tqdm.monitor_interval = 0  # no monitor thread: we redraw ourselves, and workers fork after this
        self._what, self._unit = what, unit
        # delay: nothing is drawn until the first block (an error before it prints on a clean line)
        self._bar: Any = tqdm(total=total_bytes or None, file=stream, desc=what, unit="B",
                              bar_format=_SIZED if total_bytes else _UNSIZED, mininterval=0, miniters=0,
                              leave=False, delay=1e-6, position=0, **_width(stream))
        self._started = time.monotonic()
        self._next = 0.0  # the first block draws; then every INTERVAL

    def __call__(self, events: int, done_bytes: int) -> None:
        """Where the work is; redrawn when ``INTERVAL`` has passed since the last redraw."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + INTERVAL
        self._draw(events, done_bytes, now)

    def _draw(self, events: int, done_bytes: int, now: float) -> None:
        elapsed = now - self._started
        rate = f" {events / elapsed:,.0f} {self._unit}/s" if elapsed > 0 else ""
        bar = self._bar
        bar.set_description_str(f"{self._what} {events:,} {self._unit}{rate}", refresh=False)
        bar.update(done_bytes - bar.n)  # tqdm counts bytes: the percentage and the time left

    def around(self, show: Callable[[Any], None]) -> Callable[[Any], None]:
        """``show`` (a printer of problems on standard error) that clears the line before it prints."""

        def shown(item: Any) -> None:
            self._bar.clear()
            show(item)

        return shown

    def close(self) -> None:
        """The work is done: clear the line (the command's own summary follows)."""
        self._bar.close()


class Steps:
    """A progress line over a known number of steps (the bench's contender runs): how many are done, what
    the last one measured, elapsed and time left; ``close()`` clears it."""

    def __init__(self, what: str, total: int, stream: TextIO) -> None:
        from tqdm import tqdm  # lazy: only a terminal that shows a bar loads it

        tqdm.monitor_interval = 0
        self._what = what
        self._bar: Any = tqdm(total=total, file=stream, desc=what, bar_format="{desc} {n}/{total}|{bar}| "
                              "{elapsed}, ETA {remaining}", mininterval=0, miniters=0, leave=False, delay=1e-6, position=0,
                              **_width(stream))

    def done(self, text: str) -> None:
        """One more step done; ``text`` says what it measured."""
        self._bar.set_description_str(f"{self._what} {text}", refresh=False)
        self._bar.update(1)

    def clear(self) -> None:
        """Take the line off the screen so something else can be printed; the next step brings it back."""
        self._bar.clear()

    def close(self) -> None:
        """All done: clear the line."""
        self._bar.close()


def steps(what: str, total: int) -> Steps | None:
    """A ``Steps`` line on standard error, or None when it is not a terminal."""
    return Steps(what, total, sys.stderr) if _is_terminal(sys.stderr) else None


def progress(what: str, source: str | IO[bytes] | int | None, *, sends_to_stdout: bool = False,
             unit: str = "events") -> Progress | None:
    """A ``Progress`` for reading ``source`` (a file name, an open stream: its size if it is a regular
    file, or a size in bytes; None: no size), or None when standard error is not a terminal, or when sends go to standard
    output on the same terminal (they scroll past, and a redrawn line would tangle with them)."""
    if not _is_terminal(sys.stderr):
        return None
    if sends_to_stdout and _is_terminal(sys.stdout):
        return None
    return Progress(what, _size(source), sys.stderr, unit)


def _width(stream: TextIO) -> dict[str, Any]:
    """Follow the terminal's width as it is resized; 80 by 24 when it reports no size (0 by 0: a bare
    pty, where tqdm would draw nothing)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        known = size.columns > 0 and size.lines > 0
    except (OSError, ValueError, AttributeError):
        known = False
    return {"dynamic_ncols": True} if known else {"ncols": 80, "nrows": 24}


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed or detached
        return False


def _size(source: str | IO[bytes] | int | None) -> int | None:
    """Bytes left to read in ``source``: a file's size, or None when it has none (a pipe, a terminal)."""
    if source == "-":
        source = sys.stdin.buffer
    if source is None or isinstance(source, int):
        return source
    try:
        if isinstance(source, str):
            return os.path.getsize(source)
        st = os.fstat(source.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        return max(st.st_size - source.tell(), 0)
    except (OSError, ValueError, AttributeError):
        return None
