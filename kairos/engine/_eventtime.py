"""Event time for live sources: a reorder buffer within the allowed lateness, and idle advance.

Live feeds arrive slightly out of order. Events wait here until the newest
event seen is ``lateness_ms`` past them, then reach the engine in ts order
(ties in arrival order). An event older than what was already released (the
newest ts seen minus the lateness, or the time idle advance reached) is late:
it is counted and reported through ``on_late`` — never dropped in silence.
``advance_to`` moves time without events (the daemon calls it with the wall
clock when the sources are idle) so that ``not … within`` and ``dwell``
deadlines fire. Synchronous, no clock of its own.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from kairos.engine._engine import Engine
from kairos.engine._events import Event


class EventTime:
    """Feeds an engine in event time from out-of-order input."""

    __slots__ = ("engine", "lateness_ms", "on_late", "_heap", "_seq", "max_ts", "horizon", "late")

    def __init__(self, engine: Engine, lateness_ms: int = 0,
                 on_late: Callable[[Event, int], None] | None = None) -> None:
        self.engine = engine
        self.lateness_ms = lateness_ms
        self.on_late = on_late  #: (event, the engine's time it came after)
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = 0
        self.max_ts = engine.now
        self.horizon = engine.now  #: everything up to here was released: older events are late
        self.late = 0

    def push(self, events: list[Event]) -> None:
        """Take a block of decoded events; release what the lateness allows."""
        if not events:
            return
        if self.lateness_ms == 0 and not self._heap:
            for ev in events:  # the common in-order case goes straight through; the engine finds the late
                if ev.ts > self.max_ts:
                    self.max_ts = ev.ts
            self._feed(events)
            if self.max_ts > self.horizon:
                self.horizon = self.max_ts
            return
        heap = self._heap
        seq = self._seq
        top = self.max_ts
        horizon = self.horizon
        for ev in events:
            if ev.ts < horizon:
                self._late(ev)
                continue
            seq += 1
            heapq.heappush(heap, (ev.ts, seq, ev))
            if ev.ts > top:
                top = ev.ts
        self._seq = seq
        self.max_ts = top
        self._release(top - self.lateness_ms)

    def advance_to(self, t: int) -> None:
        """Time reaches ``t`` without new events: buffered events up to it go in, deadlines before it fire."""
        self._release(t)
        if t > self.horizon:
            self.horizon = t
        if t > self.engine.now:
            self.engine.advance(t)

    def buffered(self) -> list[Event]:
        """The events still waiting, in the order they will be released (for a snapshot)."""
        return [ev for _, _, ev in sorted(self._heap)]

    def restore(self, events: list[Event], max_ts: int) -> None:
        """Put a snapshot's waiting events back."""
        for ev in events:
            self._seq += 1
            heapq.heappush(self._heap, (ev.ts, self._seq, ev))
        self.max_ts = max(self.max_ts, max_ts)
        self.horizon = max(self.horizon, self.engine.now, self.max_ts - self.lateness_ms)

    def _late(self, ev: Event) -> None:
        self.late += 1
        if self.on_late is not None:
            self.on_late(ev, self.horizon)

    def _release(self, upto: int) -> None:
        if upto > self.horizon:
            self.horizon = upto
        heap = self._heap
        out = []
        while heap and heap[0][0] <= upto:
            out.append(heapq.heappop(heap)[2])
        if out:
            self._feed(out)

    def _feed(self, events: list[Event]) -> None:
        engine = self.engine
        on_late = self.on_late
        if on_late is None:
            before = engine.late_events
            engine.feed(events)
            self.late += engine.late_events - before
            return

        def late(_: int, ev: Event) -> None:
            self.late += 1
            on_late(ev, engine.now)

        engine.feed(events, on_late=late)
