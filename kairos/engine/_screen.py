"""What a replay lets through to its engine: wild timestamps out, mild disorder sorted into place.

A recorded stream's time only moves forward, so one event dated far ahead
(a corrupted ts, a year 2100) would make every later event late. A jump is
not always a fault, though: a recording may have a real gap (a day without
data) after which it goes on from the later time. ``JumpScreen`` tells the
two apart by the events that follow:

- an event more than ``max_jump`` ahead of the stream's time (or the first
  event of all: nothing precedes it) is *held*, with the events after it;
- each held jump is judged on its own: an event more than ``max_jump``
  ahead of the latest ts held since the latest held jump is a jump of its
  own, held inside it (so a 2100 line among the few events after the first
  line, or after a real gap, cannot pass as one of the events that confirm
  them, while events after a gap up to ``max_jump`` apart do confirm it);
- an event more than ``max_jump`` *before* the latest held jump ("back near
  the old time") shows that jump wild: it and the events held after it are
  rejected as malformed, and that event is judged afresh against the jump
  before (or the stream's time);
- ``confirm`` events after the latest held jump that are neither back nor a
  further jump confirm it, and with it the jumps it is held in: every held
  event goes through, in order, and the stream goes on from the latest;
- at the end of the input, held events go through — except a jump that
  ``until`` (the whole log's end, for a partition of it) shows the log never
  reached, with the jumps held in it.

One process never rejects an event of a stream in ts order. The decision depends only on
the events, in order, so it is the same in one process and in ``--workers``
(the router screens the whole stream). A partitioned replay screens each
partition: an outlier a later line of its partition contradicts is rejected
there, and the log's end (``until``) is what all partitions' tails confirm
together (``engine._partitioned._log_end``), so a real gap is confirmed by
the events after it in all partitions, as in one process.

``Reorder`` is the daemon's lateness buffer for a recording: events wait
until the newest is ``lateness`` past them, then go on in (ts, line) order;
an event older than what was already let go is late.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

from kairos.engine._engine import Engine, TimeJump, events_before_jump
from kairos.engine._events import Event
from kairos.engine._jump_defaults import JUMP_CONFIRM

_NONE: tuple[Any, ...] = ()


#: how the problem text of a rejected wild timestamp ends (``wild_reason``)
WILD_END = "go back: a wild timestamp, not a gap in the recording"


def wild_reason(ts: int, max_jump: int) -> str:
    """The problem text of a rejected wild timestamp (the same in every form of replay)."""
    return f"event at ts {ts} jumps more than {max_jump} ms ahead of the stream and the events after it {WILD_END}"


class JumpScreen:
    """Holds the events of a time jump until what follows shows it real (let through) or wild (rejected)."""

    __slots__ = ("max_jump", "confirm", "now", "held", "_jumps", "_tops")

    def __init__(self, max_jump: int, confirm: int = JUMP_CONFIRM) -> None:
        self.max_jump = max_jump
        self.confirm = confirm
        self.now: int | None = None  #: the largest ts let through (None: nothing yet)
        self.held: list[tuple[int, Any]] = []  #: (ts, item) of every held event, in order
        #: where in ``held`` each held jump begins, outermost first (only while ``held`` is not
        #: empty: a caller that clears ``held`` forgets its jumps with it)
        self._jumps: list[int] = []
        #: the latest ts held since each held jump and before the next (a new jump is measured from it)
        self._tops: list[int] = []

    def screen(self, ts: int, item: Any) -> tuple[tuple[Any, ...] | list[Any], tuple[Any, ...] | list[Any]]:
        """Judge the next event: (items let through now, in order; items found wild)."""
        held = self.held
        if held:
            jumps = self._jumps
            tops = self._tops
            wild: list[Any] = []
            while jumps:
                k = jumps[-1]
                jump = held[k][0]
                if ts < jump - self.max_jump:  # back near the time before it: this jump was wild
                    wild[:0] = [it for _, it in held[k:]]
                    del held[k:]
                    jumps.pop()
                    tops.pop()
                    continue
                if ts - tops[-1] > self.max_jump:  # a jump beyond what is held: held, judged on its own
                    jumps.append(len(held))
                    tops.append(ts)
                    held.append((ts, item))
                    return _NONE, wild or _NONE
                held.append((ts, item))
                if ts > tops[-1]:
                    tops[-1] = ts
                if len(held) - k > self.confirm:  # confirmed, and with it the jumps it is held in
                    return self._release(len(held)), wild or _NONE
                return _NONE, wild or _NONE
            through, more = self.screen(ts, item)  # every held jump was wild: judged afresh
            return through, wild + list(more)
        now = self.now
        if now is None or ts - now > self.max_jump:
            self._jumps[:] = (0,)
            self._tops[:] = (ts,)
            held.append((ts, item))
            return _NONE, _NONE
        if ts > now:
            self.now = ts
        return (item,), _NONE

    def end(self, until: int | None = None) -> tuple[list[Any], list[Any]]:
        """End of input: (held items let through, held items rejected). Nothing contradicts the held
        jumps, so they go through — unless ``until`` (the whole log's end, for a partition of it) shows
        the log never reached one: that jump and the ones held in it are rejected."""
        held = self.held
        if not held:
            return [], []
        cut = len(held)
        if until is not None:
            cut = next((k for k in self._jumps if held[k][0] > until + self.max_jump), cut)
        wild = [it for _, it in held[cut:]]
        return self._release(cut), wild

    def held_items(self) -> list[Any]:
        """The items held, in order (left held)."""
        return [it for _, it in self.held]

    def _release(self, n: int) -> list[Any]:
        """The first ``n`` held items go through (the stream's time moves to the latest); all are let go."""
        held = self.held
        top = max((ts for ts, _ in held[:n]), default=None)
        if top is not None and (self.now is None or top > self.now):
            self.now = top
        items = [it for _, it in held[:n]]
        held.clear()
        self._jumps.clear()
        self._tops.clear()
        return items


def unrejected(stamps: list[int], max_jump: int) -> list[int]:
    """``stamps`` less those the later ones show wild: what a screen lets through, or still holds at the end."""
    screen = JumpScreen(max_jump)
    kept: list[int] = []
    for ts in stamps:
        kept.extend(screen.screen(ts, ts)[0])
    kept.extend(screen.held_items())
    return kept


def confirmed_end(stamps: list[int], max_jump: int) -> int | None:
    """The last time of ``stamps`` (a log's tail, in order) that the screen lets through before the end,
    where a jump nothing after it confirms does not count; None if nothing was confirmed."""
    screen = JumpScreen(max_jump)
    for ts in stamps:
        screen.screen(ts, None)
    return screen.now


class Reorder:
    """Events wait until the newest seen is ``lateness`` past them, then leave in (ts, line) order.

    Judged event by event (an event is late when it is more than ``lateness`` older than the
    newest before it), so the outcome does not depend on how the input was cut into blocks."""

    __slots__ = ("lateness", "heap", "top", "out")

    def __init__(self, lateness: int) -> None:
        self.lateness = lateness
        self.heap: list[tuple[int, int, Event]] = []
        self.top: int | None = None  #: the newest ts seen
        self.out: list[tuple[int, int, Event]] = []  #: left the buffer, not yet taken by ``ready``

    @property
    def horizon(self) -> int | None:
        """Everything up to here left the buffer: an older event is late."""
        return None if self.top is None else self.top - self.lateness

    def push(self, ev: Event, line: int) -> bool:
        """Take an event; False if it is late."""
        ts = ev.ts
        top = self.top
        if top is not None and ts < top - self.lateness:
            return False
        heap = self.heap
        heapq.heappush(heap, (ts, line, ev))
        if top is None or ts > top:
            self.top = top = ts
            upto = top - self.lateness
            out = self.out
            while heap and heap[0][0] <= upto:
                out.append(heapq.heappop(heap))
        return True

    def ready(self, final: bool = False) -> list[tuple[int, int, Event]]:
        """What left the buffer (everything, ``final``), in order."""
        out = self.out
        self.out = []
        if final:
            heap = self.heap
            while heap:
                out.append(heapq.heappop(heap))
        return out


Problem = Callable[[int, str], None]  #: (line, reason)


class Feeder:
    """Feeds a replay's engine block by block through the screen and the reorder buffer.

    With neither, a block goes to ``engine.feed`` as it is. With the screen alone
    (the default) the engine itself stops at a jump (``Engine.guard_jumps``), so a
    block without one costs nothing more; the events from the jump on are screened
    one by one until the screen holds nothing. With ``lateness`` every event passes
    the screen and the buffer.
    """

    def __init__(self, engine: Engine, on_problem: Problem, *, max_jump: int | None, lateness: int = 0,
                 on_failed: Callable[[int | None, BaseException], None] | None = None) -> None:
        """``on_failed(line, exception)``: an event whose processing raised, by its line
        (None: a deadline; ``Engine.on_fault``)."""
        self.engine = engine
        self.on_problem = on_problem
        self.on_failed = on_failed
        self.screen = None if max_jump is None else JumpScreen(max_jump)
        self.reorder = Reorder(lateness) if lateness > 0 else None
        self.wild = 0
        self.late = 0  #: late in the reorder buffer (the engine counts its own)
        if self.screen is not None and self.reorder is None:
            engine.guard_jumps(max_jump)

    @property
    def holding(self) -> bool:
        """The screen holds events whose fate later lines decide."""
        return self.screen is not None and bool(self.screen.held)

    def block(self, events: list[Event], lines: list[int] | int) -> None:
        if self.reorder is not None:
            for i, ev in enumerate(events):
                self._offer(ev, _line(lines, i))
            self._release(False)
            return
        if self.screen is None:
            self._feed(events, lines)
            return
        engine = self.engine
        screen = self.screen
        pos, n = 0, len(events)
        while pos < n:
            if screen.held:
                while pos < n and screen.held:
                    self._offer(events[pos], _line(lines, pos))
                    pos += 1
                continue
            chunk = events[pos:] if pos else events
            late = [0]
            try:
                self._feed(chunk, lines, pos, late)
                return
            except TimeJump as jump:
                i = events_before_jump(chunk, jump.now, screen.max_jump)
                engine.interrupted(i, late[0])
                screen.now = jump.now if jump.now > _START else None  # None: the engine has no time yet
                pos += i
                self._offer(events[pos], _line(lines, pos))
                pos += 1

    def end(self, until: int | None) -> None:
        """End of input: decide what the screen still holds, empty the buffer; the guard comes off."""
        if self.screen is not None:
            through, wild = self.screen.end(until)
            self._rejected(wild)
            self._through(through)
        if self.reorder is not None:
            self._release(True)
        self.engine.guard_jumps(None)

    def _offer(self, ev: Event, line: int) -> None:
        if self.screen is None:
            through: Any = ((ev, line),)
        else:
            through, wild = self.screen.screen(ev.ts, (ev, line))
            if wild:
                self._rejected(wild)
        if through:
            self._through(through)

    def _through(self, items: Any) -> None:
        reorder = self.reorder
        if reorder is None:
            self._feed_unguarded([ev for ev, _ in items], [n for _, n in items])
            return
        for ev, n in items:
            if not reorder.push(ev, n):
                self.late += 1
                self.on_problem(n, f"event at ts {ev.ts} is older than the stream's time {reorder.horizon} "
                                   f"(the newest event {reorder.top} less the allowed lateness {reorder.lateness} ms)")

    def _release(self, final: bool) -> None:
        out = self.reorder.ready(final)  # type: ignore[union-attr]  # called only with a reorder
        if out:
            self._feed([ev for _, _, ev in out], [n for _, n, _ in out])

    def _rejected(self, items: Any) -> None:
        for ev, n in items:
            self.wild += 1
            self.on_problem(n, wild_reason(ev.ts, self.screen.max_jump))  # type: ignore[union-attr]  # only a screen rejects

    def _feed_unguarded(self, events: list[Event], lines: list[int]) -> None:
        """Events the screen let through: a confirmed jump must not stop the engine again."""
        engine = self.engine
        guard = engine.max_jump
        engine.guard_jumps(None)
        self._feed(events, lines)
        engine.guard_jumps(guard)

    def _feed(self, events: list[Event], lines: list[int] | int, offset: int = 0,
              count: list[int] | None = None) -> None:
        """``engine.feed`` of ``events``, the ``offset``-th on of the lines ``lines``: late and
        failed events are reported by their line."""
        engine = self.engine
        failed = self.on_failed
        if failed is not None:
            def fault(i: int | None, ev: Event | None, exc: BaseException) -> None:
                failed(None if i is None else _line(lines, offset + i), exc)

            engine.on_fault = fault
        engine.feed(events, on_late=self._late_hook(lines, offset, count))

    def _late_hook(self, lines: list[int] | int, offset: int,
                   count: list[int] | None = None) -> Callable[[int, Event], None]:
        engine = self.engine
        problem = self.on_problem

        def late(i: int, ev: Event) -> None:
            if count is not None:
                count[0] += 1
            problem(_line(lines, offset + i),
                    f"event at ts {ev.ts} is older than the stream's time {engine.now}; the file must be sorted by ts")

        return late


#: an engine's time before its first event (``Engine.now`` starts far below any ts)
_START = -(2**61)


def _line(lines: list[int] | int, i: int) -> int:
    return lines + i if isinstance(lines, int) else lines[i]
