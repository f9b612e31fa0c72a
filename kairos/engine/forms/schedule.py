"""``every day | week on DAY | month on day N at HH:MM [where EXPR]``: the schedule form (LANGUAGE.md §9.1).

No per-subscriber state: one deadline, the next instant, whose owner is the
runtime (msisdn ``""``). It fires as every deadline does, once stream time
passes it (an event at the instant itself comes first; at the end of input the
instants up to the last event's ts fire). Firing visits every member of the
engine's universe in ascending msisdn order: ``where`` (if any) is evaluated
for the subscriber at the instant (``e`` is None, ``now`` is the instant) and
a true one completes, the instant as the trigger's time.

A replay visits all members at once. A daemon (``sliced``) freezes the
members at the instant and visits them in slices between event batches
(``Sweep``): the host calls ``step`` with a number of subscribers, and
``catch_up`` before it feeds an event of a subscriber not yet visited, so each
is evaluated as at the instant, as the replay evaluates it.
"""

from __future__ import annotations

import bisect
import datetime as _dt
from collections.abc import Iterable
from typing import Any

import msgspec

from kairos.engine._localtime import LocalTime
from kairos.engine._settle import settle
from kairos.engine.forms.base import Handler, Host, PatternRuntime
from kairos.plan import LAST_DAY, Schedule

_DAY_MS = 86_400_000
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
#: the time of the deadline a fresh engine arms a schedule with: fires at the first event,
#: when the first instant is chosen from that event's time
ARMING = -(2**62) + 1


def next_instant(pattern: Schedule, t: int, clock: LocalTime) -> int:
    """The first instant of ``pattern`` at or after ``t`` (epoch ms), in ``clock``'s local time."""
    day = (t + clock.offset_ms(t)) // _DAY_MS - 1  # the local day before t's: an offset change may cross it
    for _ in range(40):
        if _matches(pattern, day):
            instant = clock.to_utc(day * _DAY_MS + pattern.minute * 60_000)
            if instant >= t:
                return instant
        day += 1
    raise AssertionError(f"no instant of {pattern} within 40 days of {t}")  # pragma: no cover


def _matches(pattern: Schedule, day: int) -> bool:
    """Local day ``day`` (days since 1970-01-01) has an instant of ``pattern``."""
    if pattern.period == "day":
        return True
    if pattern.period == "week":
        return (day + 3) % 7 + 1 == pattern.day
    date = _dt.date.fromordinal(_EPOCH_ORDINAL + day)
    if pattern.day == LAST_DAY:
        return (date + _dt.timedelta(days=1)).day == 1
    return date.day == pattern.day


class Sweep(msgspec.Struct, array_like=True):
    """An instant being swept in slices (a daemon): the members frozen at it, sorted, and how many
    are visited. A snapshot keeps it, so a restart neither repeats nor skips a subscriber."""

    instant: int
    members: list[str]
    done: int = 0
    #: members past ``done`` already visited out of turn (an event of theirs came first); filled
    #: only when saved (``ScheduleRuntime.saved_sweep``): the runtime keeps them as a set
    caught: list[str] = msgspec.field(default_factory=list)


class ScheduleRuntime(PatternRuntime):
    """A schedule: reads no event; its one deadline is the next instant (see the module)."""

    __slots__ = ("pattern", "where", "sweep", "_caught", "_member", "_outside", "visited", "instants", "next")

    def __init__(self, index: int, host: Host, pattern: Schedule) -> None:
        super().__init__(index, host)
        self.pattern = pattern
        self.where = None if pattern.where is None else pattern.where.fn
        #: the sweep under way in a sliced host (None: none)
        self.sweep: Sweep | None = None
        self._caught: set[str] = set()  # members past the sweep's ``done`` already visited
        #: the sweep's membership as one hash probe (``Universe.member``), for a sweep this engine started
        #: at its instant; None: search the frozen members (a sweep restored from a snapshot)
        self._member: Any = None
        self._outside: set[str] = set()  # numbers past ``done`` found not to be members of the sweep
        #: the instant armed (``ARMING`` before the first event)
        self.next = ARMING
        self.visited = 0  #: subscribers visited, over all instants (a metric)
        self.instants = 0  #: instants fired

    def handlers(self) -> dict[str, Handler]:
        return {}

    def arm(self, after: int) -> None:
        """Schedule the first instant at or after ``after`` (``ARMING``: at the first event's time)."""
        when = after if after == ARMING else next_instant(self.pattern, after, self.host.clock)  # type: ignore[attr-defined]
        self.next = when
        self.host.schedule(when, self, "")

    def on_deadline(self, msisdn: str, when: int) -> None:
        host: Any = self.host
        if when == ARMING:
            if self.next == ARMING:  # not armed from a larger stream's start already (``Engine.started``)
                self.arm(host.arming_time())
            return
        self.instants += 1
        self.arm(when + 1)
        members = host.universe.members()
        if host.sliced:
            # a million references the sweep holds for its whole run: every full collection meanwhile would
            # visit each (~30 ms at a million, issue 14's live tail) — long-lived at once, out of the walk
            settle()
            if self.sweep is not None:  # the previous instant's sweep is not done: finish it first
                self.step(len(self.sweep.members))
            self.start(Sweep(when, members))
            self._member = host.universe.member
            return
        for m in members:
            self.visit(m, when)

    def visit(self, m: str, instant: int) -> None:
        """Subscriber ``m`` at ``instant``: ``where``, then the completion's gates."""
        host: Any = self.host
        self.visited += 1
        ctx = host.ctx
        ctx.msisdn = m
        try:
            where = self.where
            if where is None or where(None, (), ctx):
                host.complete(self, m, instant, None, ())
            elif host.observer is not None:
                host.observer.passed_over(self.index, m, instant)
            host.settle()
        except Exception as exc:  # one subscriber's failure must not stop the sweep (issue 12)
            if host.is_let_out(exc):
                raise
            host.fault_at(exc)

    # --- a sliced sweep (the daemon) --------------------------------------

    def start(self, sweep: Sweep) -> None:
        """Take ``sweep`` as the one under way (a new instant's, or a snapshot's)."""
        self.sweep = sweep
        self._caught = set(sweep.caught)
        self._member = None  # the universe and tags now may not be those at the instant: search the members
        self._outside = set()

    def saved_sweep(self) -> Sweep | None:
        """The sweep under way as a snapshot keeps it: where it stands, and who was caught up past it."""
        sweep = self.sweep
        if sweep is None:
            return None
        return Sweep(sweep.instant, sweep.members, sweep.done, sorted(self._caught))

    def step(self, n: int) -> int:
        """Visit up to ``n`` more subscribers of the sweep under way; how many were visited."""
        sweep = self.sweep
        if sweep is None:
            return 0
        host: Any = self.host
        members, start = sweep.members, sweep.done
        end = min(len(members), start + n)
        caught = self._caught
        with host.at_time(sweep.instant):
            for k in range(start, end):
                m = members[k]
                if m in caught:
                    caught.discard(m)  # a set: a sweep with many caught up stays linear
                else:
                    self.visit(m, sweep.instant)
                sweep.done = k + 1
        if sweep.done >= len(members):
            self.sweep = None
            self._caught = set()
            self._member = None
            self._outside = set()
        return end - start

    def catch_up(self, m: str) -> None:
        """Before an event of ``m`` past the instant: visit ``m`` now if the sweep has not yet."""
        self.catch_up_all((m,))

    def catch_up_all(self, msisdns: Iterable[str]) -> None:
        """Before a block of events past the instant: visit now, in the block's order, each of their
        subscribers the sweep has not yet visited. A number at or before the last one the sweep visited
        costs one comparison; one past it, the first time, a probe of the universe (``Universe.member``):
        nothing of a subscriber changes its membership before that subscriber's first event or deadline
        past the instant, and those come here first — so the universe now answers as at the instant. A
        sweep restored from a snapshot searches its frozen members instead (the reference may have changed
        across the restart)."""
        sweep = self.sweep
        if sweep is None:
            return
        members, done, caught = sweep.members, sweep.done, self._caught
        member, outside = self._member, self._outside
        n = len(members)
        last = members[done - 1] if done else None
        todo: list[str] = []
        for m in msisdns:
            if (last is not None and m <= last) or m in caught:  # visited in turn (or no member), or out of turn
                continue
            if member is not None:
                if m in outside:
                    continue
                if member(m):
                    todo.append(m)
                else:
                    outside.add(m)  # decided now: its own event may make it a member of the universe next
                continue
            k = bisect.bisect_left(members, m, done)
            if k < n and members[k] == m:
                todo.append(m)
        if todo:
            instant = sweep.instant
            with self.host.at_time(instant):  # type: ignore[attr-defined]
                for m in todo:
                    if m not in caught:  # a number twice in the block: once
                        caught.add(m)  # visited out of turn: the slice skips it
                        self.visit(m, instant)
