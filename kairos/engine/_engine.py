"""The engine: runs a compiled plan over events in event time.

Synchronous and free of I/O (the replay command and the daemon feed it). Per
event it advances time (firing due deadlines), enriches the event, calls only
the handlers of scenarios that read its type, records previous values that
``crosses_*``/``changed`` need, and re-enters every sent trigger as a
``trigger`` event. A completion passes the gates ``during``, ``audience``,
``cooldown``, ``once`` before it becomes a trigger with its deterministic id.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from contextlib import contextmanager
from typing import Any
from collections.abc import Callable, Iterator, Sequence

import msgspec

from kairos.engine._context import Context
from kairos.engine._deadlines import NEVER, Deadlines
from kairos.engine._dedup import Dedup
from kairos.engine._faults import describe_fault
from kairos.engine._feed import build_feed
from kairos.engine._events import Dpi, Event, Feedback, Profile, Trigger, event_types, tag_value_problem
from kairos.engine._localtime import DEFAULT_TZ, LocalTime
from kairos.engine._periods import Periods
from kairos.engine._policy import Candidate, CapacityGrants, PolicyStage
from kairos.engine._reference import Reference
from kairos.engine._conjuncts import audience_guard, bound_filter, cheap_first
from kairos.engine._routes import Entry, Guarded, build_route
from kairos.engine._universe import Universe
from kairos.engine.forms import PatternRuntime, ScheduleRuntime, build_runtime
from kairos.engine.forms.schedule import ARMING
from kairos.engine.forms.base import cooling_test
from kairos.plan import Action, During, Origin, Plan, Scenario, Schedule, define, eq_values, filename

#: triggers re-entering as events may chain (wave 1 → wave 2 …); past this
#: depth a chain is a loop and its triggers are sent but not re-entered
MAX_TRIGGER_DEPTH = 8

#: False: the feed loop calls the DPI route instead of pasting it (tests compare both: one template)
FUSED_FEED = True


class Send(msgspec.Struct, frozen=True):
    """One decided send: the line ``kairos replay`` writes (LANGUAGE.md §8)."""

    id: str
    scenario: str
    msisdn: str
    ts: int
    send_at: int
    channel: str
    template: str
    params: dict[str, Any]


class TagWrite(msgspec.Struct, frozen=True):
    """The tags one trigger wrote (a ``set`` clause): the line ``kairos replay --tags-out`` writes
    (LANGUAGE.md §9.3); a ``null`` value removed the tag."""

    scenario: str
    msisdn: str
    ts: int
    tags: dict[str, Any]


class TagValueError(ValueError):
    """A ``set`` clause computed a value no tag can hold (a number beyond ±2**53, a value nested too deep):
    the trigger's writes and sends are dropped as the event's fault, since every snapshot after would fail."""


class ScenarioStats(msgspec.Struct):
    """What happened to one scenario's completions.

    ``triggered`` passed the scenario's own gates; of those the contact policy
    sent ``sent`` (per channel), stopped some (``suppressed``, by reason, with
    the gates' reasons) and still ``held`` some at the end of input.
    ``outcomes`` counts feedback per channel and outcome (each outcome once per
    send); ``control_outcomes`` the feedback joined to held-out control triggers.
    """

    matched: int = 0
    triggered: int = 0
    suppressed: dict[str, int] = msgspec.field(default_factory=dict)
    sent: dict[str, int] = msgspec.field(default_factory=dict)
    held: int = 0
    outcomes: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    control_outcomes: dict[str, int] = msgspec.field(default_factory=dict)
    #: triggers whose ``set`` clause wrote tags (one ``TagWrite`` each)
    tag_writes: int = 0


def events_before_jump(events: list[Event], now: int, max_jump: int) -> int:
    """How many of ``events`` come before the first that ``advance`` would refuse as a jump (from ``now``):
    the index of the event a ``TimeJump`` stopped at, judged exactly as ``Engine.advance`` judges it."""
    for i, ev in enumerate(events):
        t = ev.ts
        if t > now:
            if t - now > max_jump:
                return i
            now = t
    return len(events)


class LetOut(Exception):
    """An exception the per-event fault handling lets out: it concerns the run, not one event."""


class SinkError(LetOut):
    """The sink (the daemon's outbox, replay's output) could not take a decided send — a full disk, an
    outbox not running. Not one event's fault: skipping the event would lose the send while the state
    counts it sent, so the run stops, and a restart from the last snapshot decides it again."""


class _StoppingCapacity:
    """A shared capacity store whose failure stops the run as the sink's does (``SinkError``): a place it
    cannot answer for durably must not be guessed, and skipping the event would lose the trigger."""

    __slots__ = ("store",)

    def __init__(self, store: CapacityGrants) -> None:
        self.store = store

    def take(self, channel: str, per_days: int, period: int, end: int, limit: int, trigger_id: str) -> bool:
        try:
            return self.store.take(channel, per_days, period, end, limit, trigger_id)
        except Exception as e:
            raise SinkError(f"the shared capacity store failed: {e!r}") from e


class TimeJump(LetOut):
    """``advance`` refused to move time more than the engine's ``max_jump`` ahead (see ``guard_jumps``):
    nothing was changed; the event at ``t`` was not processed."""

    def __init__(self, t: int, now: int) -> None:
        super().__init__(f"time would jump from {now} to {t}")
        self.t = t
        self.now = now


class BindError(Exception):
    """The plan cannot run here: it needs reference data (a list, an area) that is not loaded,
    or building it failed (``BuildError``)."""


class BuildError(BindError):
    """Building the engine for a checked plan failed: a Kairos bug, never the author's.

    The message names each scenario involved by ``FILE:LINE:COL``, so a reload
    refused with it says which file to hold back; the cause is chained.
    """


#: what every ``BuildError`` message ends with
REPORT = ("the scenario passed `kairos check`, so this is an internal error of Kairos, not of the "
          "scenario: please report it with the scenario file")


@contextmanager
def _building(what: str, places: Sequence[tuple[str, Origin | None]]) -> Iterator[None]:
    """Turns any exception but a ``BindError`` raised while building ``what`` into a
    ``BuildError`` naming ``places`` (``(who, origin)``: the scenarios, the policy involved)."""
    try:
        yield
    except BindError:
        raise
    except Exception as e:  # a bug of ours: the caller refuses the plan instead of dying
        lines = [f"{_where(origin)}: error: {who}: internal error while {what}: {type(e).__name__}: {e}"
                 for who, origin in places] or [f"error: internal error while {what}: {type(e).__name__}: {e}"]
        raise BuildError("\n".join([*lines, f"({REPORT})"])) from e


def _where(origin: Origin | None) -> str:
    return "<unknown>" if origin is None else f"{origin.file}:{origin.line}:{origin.col}"


def _scenario(scn: Scenario) -> tuple[str, Origin]:
    return f"scenario '{scn.name}'", scn.origin


def _never_cooling(m: str, t: int) -> bool:
    """The cool-down of a scenario that has none."""
    return False


class _Gates:
    """Cool-down and ``once`` bookkeeping of one scenario, per subscriber."""

    __slots__ = ("cooldown_ms", "once", "once_per", "last", "values", "host", "cooling")

    def __init__(self, scenario: Scenario, host: Engine) -> None:
        self.cooldown_ms = scenario.cooldown_ms
        self.once = scenario.once
        self.once_per = None if scenario.once_per is None else scenario.once_per.fn
        self.last: dict[str, int] = {}  # msisdn → time of the last trigger
        self.values: dict[str, Any] = {}  # msisdn → once-per value (or True for once)
        self.host = host
        #: ``cooling(m, t)``: still inside the cool-down of this subscriber's last trigger — compiled
        #: from the text a fused count route pastes (``forms.base.cooling_test``), so it exists once
        self.cooling: Callable[[str, int], bool] = _never_cooling
        if self.cooldown_ms is not None:
            test = cooling_test("last", "t", self.cooldown_ms)
            source = f"def cooling(m, t):\n    last = _last.get(m)\n    return {test}\n"
            file = filename("scenario", scenario.name, "cooldown")
            self.cooling = define("cooling", source, {"_last": self.last}, file)

    def refuse(self, m: str, t: int, e: Any, a: tuple[Any, ...], ctx: Context,
               check: Callable[[], None] | None = None) -> str | None:
        """Why this completion may not trigger (``once``), or None; records it if it may.

        The cool-down is checked first, by ``cooling``, as the cheapest gate. ``check`` runs once the
        completion may trigger and before it is recorded: what it raises leaves the gates as they were.
        """
        cd = self.cooldown_ms
        m = sys.intern(m)  # kept for long: the one copy of the number (engine.forms.base)
        once = self.once
        value: Any = True
        if once == "once":
            if m in self.values:
                return "once"
        elif once == "per":
            value = self.once_per(e, a, ctx)  # type: ignore[misc]
            if m in self.values and eq_values(self.values[m], value):
                return "once"
        if check is not None:
            check()
        if once != "never":
            self.values[m] = value
        if cd is not None:
            if m not in self.last:
                self.host.watch(t + cd, self, m)
            self.last[m] = t
        return None

    def collect(self, m: str, now: int) -> None:
        last = self.last.get(m)
        if last is None:
            return
        if last + self.cooldown_ms < now:  # type: ignore[operator]
            del self.last[m]
        else:
            self.host.watch(last + self.cooldown_ms, self, m)  # type: ignore[operator]


class Engine:
    """Runs a plan; ``on_event`` per event in ts order, ``finish`` at end of input."""

    def __init__(
        self,
        plan: Plan,
        reference: Reference | None = None,
        *,
        sink: Callable[[Send], None],
        tz: str = DEFAULT_TZ,
        gc_granularity_ms: int = 1_000,
        measure: bool = False,
        observer: Any = None,
        control_sink: Callable[[Send], None] | None = None,
        dedup_window_ms: int | None = None,
        capacity: CapacityGrants | None = None,
        tag_sink: Callable[[TagWrite], None] | None = None,
        sliced: bool = False,
    ) -> None:
        """``measure``: join feedback to sends even without a policy (for stats);
        ``observer``: hears every completion, decision and tag write (``kairos explain``);
        ``control_sink``: receives the sends held out for the control group;
        ``dedup_window_ms``: skip an event identical to one fed within this window (``engine._dedup``);
        ``capacity``: the policy's channel capacities shared with the engines of the other partitions or
        workers (None: counted by this engine alone, as when it sees every subscriber);
        ``tag_sink``: hears every tag write of a ``set`` clause (``kairos replay --tags-out``; settable later);
        ``sliced``: a schedule instant is swept in slices (``sweep_step``, the daemon), not all at once."""
        self.plan = plan
        self.reference = reference or Reference()
        _check_reference(plan, self.reference)
        self.clock = LocalTime(tz)
        self.sink = sink
        self.now = -(2**62)
        self._prev: dict[tuple[str, str], dict[str, Any]] = {}
        self.ctx = Context(self.reference, self.clock, self._prev)
        #: the calendar and recency terms the scenarios read, one column per distinct term (``engine._periods``)
        self.periods = Periods(self.clock, [t for scn in plan.scenarios for t in scn.terms])
        self.ctx.periods = self.periods
        #: some scenario reads ``now`` (or a term): the routes set it per event; otherwise they do not
        self._uses_now = any(scn.uses_now for scn in plan.scenarios)
        self.scenarios = plan.scenarios
        self.stats = [ScenarioStats() for _ in plan.scenarios]
        self.runtimes: list[PatternRuntime] = []
        self.observer = observer
        self.control_sink = control_sink
        self.tag_sink = tag_sink
        #: each scenario's ``set`` clause as (tag name, compiled value) pairs (None: it writes no tag)
        self._writes: list[tuple[tuple[str, Callable[..., Any]], ...] | None] = [
            tuple((s.name, s.value.fn) for s in scn.sets) or None for scn in plan.scenarios]
        #: who a schedule visits (LANGUAGE.md §9.1); kept only when a scenario has a schedule
        self.universe: Universe | None = None
        if any(isinstance(s.pattern, Schedule) for s in plan.scenarios):
            self.universe = Universe(self.reference.tags)
        #: a daemon's engine sweeps schedule instants in slices (``sweep_step``); replay's all at once
        self.sliced = sliced
        #: the time ``advance`` is moving to (a schedule armed at the first event reads it)
        self.target = self.now
        #: the earliest time the stream this engine sees a share of is known to have begun (None: unknown):
        #: a schedule not yet armed arms from it, or from the first event if that came earlier (``arming_time``)
        self.began: int | None = None
        #: the time the schedules were armed from (None: not yet), for the owner to share with other shares
        self.armed_from: int | None = None
        self._gates: list[_Gates | None] = []
        #: each scenario's audience with its tag lookups last (None: everybody)
        self._audiences: list[Callable[..., Any] | None] = []
        classes = event_types()
        handlers: dict[type[Event], list[Entry | Guarded]] = {}
        #: the scenario of each handler (``handlers[cls][k]`` is scenario ``owners[cls][k]``'s)
        self._owners: dict[type[Event], list[int]] = {}
        tracked: dict[type[Event], list[tuple[str, dict[str, Any]]]] = {}
        for i, scn in enumerate(plan.scenarios):
            with _building("building its runtime", [_scenario(scn)]):
                self._bind(i, scn, classes, handlers, tracked, observer)
        #: the contact policy stage; None (the direct path) without policy and measurement
        self.policy: PolicyStage | None = None
        self._timed: list[Any] = list(self.runtimes)
        if plan.policy is not None or measure or observer is not None:
            with _building("building the contact policy",
                          [] if plan.policy is None else [("the policy", plan.policy.origin)]):
                self.policy = PolicyStage(plan.policy, self, len(self._timed),
                                          None if capacity is None else _StoppingCapacity(capacity))
            self._timed.append(self.policy)
        self._handlers = handlers
        self._tracked = tracked
        self._routes = {cls: self._built_route(cls) for cls in classes.values()}
        self._deadlines = Deadlines()  # (when, seq, runtime, msisdn)
        self._seq = 0
        #: the schedules' runtimes, each armed to choose its first instant at the first event
        self.schedules = [rt for rt in self.runtimes if isinstance(rt, ScheduleRuntime)]
        for rt in self.schedules:
            rt.arm(ARMING)
        self._gc_granularity = gc_granularity_ms
        self._gc_buckets: dict[int, tuple[list[Any], list[str]]] = {}  # key → (owners, msisdns)
        self._gc_keys: list[int] = []
        #: when the earliest bucket is due, (key + 1) * granularity (NEVER: none), so that the
        #: per-event "anything to sweep?" test is one comparison, not arithmetic on big ints
        self._gc_due = NEVER
        self._pending: deque[tuple[Trigger | Event, int]] = deque()  # triggers, and feedback the policy parked
        self._depth = 0
        self._id_ts: int | None = None
        self._id_counts: dict[tuple[str, str], int] = {}
        self.events_in = 0
        self.late_events = 0
        self.trigger_loops = 0
        #: events and deadlines whose processing raised (caught, skipped: ``_fault``); of them deadlines
        self.faults = 0
        self.deadline_faults = 0
        #: ``on_fault(index in the block fed or None, event or None, exception)``, set by the owner: hears of
        #: each event (index into the list given to ``feed``) or deadline (None, None) whose processing raised
        self.on_fault: Callable[[int | None, Event | None, BaseException], None] | None = None
        #: the files a traceback's frames are matched against to name a fault's scenario (``describe_fault``)
        self.scenario_files = frozenset(s.origin.file for s in plan.scenarios) | (
            frozenset() if plan.policy is None else {plan.policy.origin.file})
        #: ``guard_jumps``: time may not move more than this ahead in one step (None: any step)
        self.max_jump: int | None = None
        dpi = self._routes.get(Dpi) if FUSED_FEED else None
        with _building("generating the feed loop for dpi events", self._readers(Dpi)):
            #: the feed loop (``engine._feed``), with the DPI route pasted in (the bulk of any feed is DPI)
            self._loop = build_feed(self, LetOut, Dpi, dpi)
        if type(self).feed is Engine.feed:  # not a subclass's own feed: the loop itself, without a call
            self.feed = self._loop  # type: ignore[method-assign]  # the generated loop is the instance's feed
        self.dedup: Dedup | None = None
        if dedup_window_ms is not None:
            self.dedup = Dedup(dedup_window_ms)
            self.feed = self._deduplicating(self.feed)  # type: ignore[method-assign]  # wrapped per instance
        if sliced and self.schedules:
            self.feed = self._catching_up(self.feed)  # type: ignore[method-assign]  # wrapped per instance

    def _catching_up(self, inner: Callable[..., None]) -> Callable[..., None]:
        """``feed`` of a sliced engine with schedules: a block crossing an instant is fed up to it, time
        moves past it (the sweep starts), and while a sweep is under way each subscriber of the rest is
        visited first if the sweep has not yet (``ScheduleRuntime.catch_up``): evaluated as at the
        instant, as a replay evaluates it, before any event of theirs after it."""
        schedules = self.schedules

        def caught_up(part: list[Event]) -> list[Event]:
            msisdns = None
            for rt in schedules:
                if rt.sweep is not None:
                    if msisdns is None:
                        msisdns = [ev.msisdn for ev in part]
                    rt.catch_up_all(msisdns)
            return part

        def feed(events: list[Event], on_late: Callable[[int, Event], None] | None = None) -> None:
            # split at every instant, a sweep under way or not: an instant crossed inside ``inner`` would
            # start its sweep after the events past it that should have found their subscribers visited
            k = 0
            while True:
                due = min(rt.next for rt in schedules)
                j = next((i for i in range(k, len(events)) if events[i].ts > due), None)
                if j is None:
                    _shifted(inner, caught_up(events[k:] if k else events), on_late, k, self)
                    return
                if j > k:
                    _shifted(inner, caught_up(events[k:j]), on_late, k, self)
                k = j
                if events[j].ts <= self.now:
                    break  # a late event: nothing is due before it
                self.advance(events[j].ts)  # the instant fires (or a schedule is armed): look again
            _shifted(inner, caught_up(events[k:] if k else events), on_late, k, self)

        return feed

    def _deduplicating(self, inner: Callable[..., None]) -> Callable[..., None]:
        """``feed`` that first skips duplicates (lateness is judged first: a late copy stays late).

        Under ``guard_jumps`` only the events before a jump are judged: the engine stops there
        (``TimeJump``) and the caller feeds the rest again once the jump is decided, so they must
        not be remembered yet, nor move the memory's time."""
        dedup = self.dedup
        assert dedup is not None

        def feed(events: list[Event], on_late: Callable[[int, Event], None] | None = None) -> None:
            guard = self.max_jump
            j = len(events) if guard is None else events_before_jump(events, self.now, guard)
            head = events if j == len(events) else events[:j]
            kept, skipped = dedup.split(head, late_from=self.now)
            if not skipped:
                inner(events, on_late)
                return
            if j < len(events):
                kept = kept + events[j:]
            gone = set(skipped)
            index = [i for i in range(len(events)) if i not in gone]  # the caller's indices are into ``events``
            if on_late is not None:
                report = on_late

                def on_late(i: int, ev: Event) -> None:
                    report(index[i], ev)

            fault = self.on_fault
            if fault is not None:
                def on_fault(i: int | None, ev: Event | None, exc: BaseException) -> None:
                    fault(None if i is None else index[i], ev, exc)

                self.on_fault = on_fault
            try:
                inner(kept, on_late)
            except TimeJump:
                self.events_in -= len(skipped)  # the caller's ``interrupted`` counts them as processed
                raise
            finally:
                self.on_fault = fault

        return feed

    @property
    def duplicates(self) -> int:
        """Events skipped as duplicates (``dedup_window_ms``)."""
        return 0 if self.dedup is None else self.dedup.duplicates

    # --- time ------------------------------------------------------------

    def advance(self, t: int) -> None:
        """Time moves to ``t``: every deadline before ``t`` fires, in order.

        Raises ``TimeJump`` (before changing anything) if ``t`` is more than ``max_jump`` ahead."""
        jump = self.max_jump
        if jump is not None and t - self.now > jump:
            raise TimeJump(t, self.now)
        self.target = t
        pop = self._deadlines.pop_before
        runtimes = self._timed
        catch_up = self._catch_up if self.sliced and self.schedules else None
        while (entry := pop(t)) is not None:
            when, _, i, m = entry
            if catch_up is not None and m:  # a subscriber a sweep has not visited: first as at its instant
                catch_up(m)
            self.now = self.ctx.now = when
            self.ctx.msisdn = m
            try:  # free in CPython 3.11 while nothing raises
                runtimes[i].on_deadline(m, when)
                if self._pending:
                    self._drain()
            except LetOut:
                raise
            except Exception as exc:  # one deadline's failure must not stop the others (issue 12)
                self.deadline_faults += 1
                self._fault(None, None, exc)
        self.now = t
        if self._gc_due <= t:
            self._sweep(t)

    def started(self, t: int) -> None:
        """The stream this engine sees a share of began at ``t``: a schedule not yet armed chooses its
        first instant from ``t``, as one engine of the whole stream would at its first event, not from
        this engine's own first event (a worker or partition whose subscribers come later, or never).
        Changes nothing else: the engine's time and its jump screen stay its own."""
        for rt in self.schedules:
            if rt.next == ARMING:
                rt.arm(t)
                if self.armed_from is None:
                    self.armed_from = t

    @property
    def armed(self) -> bool:
        """Every schedule has chosen its next instant (or there is none): the stream's start no longer matters."""
        return all(rt.next != ARMING for rt in self.schedules)

    def arming_time(self) -> int:
        """Where a schedule armed at this engine's first event chooses its first instant from: the event's
        time, or ``began`` if the stream is known to have begun before it (a daemon's partition whose own
        events come later); recorded as ``armed_from``."""
        t = self.target
        began = self.began
        if began is not None and began < t:
            t = began
        if self.armed_from is None:
            self.armed_from = t
        return t

    def finish(self) -> None:
        """End of input: time stands at the last event; deadlines up to it fire.

        Triggers the policy still holds (an open arbitration window, a capacity
        queue) are not sent and are counted as ``held``.
        """
        self.advance(self.now + 1)
        self.now -= 1
        if self.policy is not None:
            self.policy.finish()

    def guard_jumps(self, max_jump: int | None) -> None:
        """From now on an event more than ``max_jump`` ms ahead of the engine's time makes ``feed``
        raise ``TimeJump`` before it is processed (None: no limit). A replay uses it to stop at a
        wild timestamp at no cost per event: the garbage-collection due time, which ``feed`` compares
        every advancing event with anyway, is held at most ``max_jump`` ahead of the time of the last
        ``advance``, so a jump always reaches ``advance``, which checks it exactly."""
        self.max_jump = max_jump
        if max_jump is not None and self.now + max_jump < self._gc_due:
            self._gc_due = self.now + max_jump

    def interrupted(self, processed: int, late: int) -> None:
        """Count the events a feed handled before a ``TimeJump`` stopped it: ``processed`` of them
        (``late`` of which were late, each already reported through ``on_late``)."""
        self.late_events += late
        self.events_in += processed - late

    def schedule(self, when: int, rt: PatternRuntime, msisdn: str) -> None:
        """A pattern deadline; runtimes ignore the ones that went stale."""
        self._seq += 1
        self._deadlines.push(when, self._seq, rt.index, msisdn)

    def schedule_last(self, when: int, owner: Any, msisdn: str) -> None:
        """A deadline that fires after every other deadline due at the same time
        (the policy closes an arbitration window once all its triggers are in)."""
        self._seq += 1
        self._deadlines.push(when, self._seq + 2**62, owner.index, msisdn)

    def watch(self, when: int, owner: Any, msisdn: str) -> None:
        """Ask ``owner.collect(msisdn, now)`` once time has passed ``when``."""
        key = when // self._gc_granularity
        bucket = self._gc_buckets.get(key)
        if bucket is None:
            return self.watch_bucket(key, owner, msisdn)
        bucket[0].append(owner)
        bucket[1].append(msisdn)
        return None

    def watch_bucket(self, key: int, owner: Any, msisdn: str) -> None:
        """``watch`` by bucket: until time passes the end of bucket ``key`` (a snapshot's form).

        A bucket holds two columns (owners, numbers), 16 bytes a watch, not a tuple each.
        """
        bucket = self._gc_buckets.get(key)
        if bucket is None:
            bucket = self._gc_buckets[key] = ([], [])
            heapq.heappush(self._gc_keys, key)
            due = (key + 1) * self._gc_granularity
            if due < self._gc_due:
                self._gc_due = due
        bucket[0].append(owner)
        bucket[1].append(msisdn)

    def watches(self) -> Iterator[tuple[int, Any, str]]:
        """Every pending watch as (bucket key, owner, msisdn)."""
        for key, (owners, numbers) in self._gc_buckets.items():
            for owner, m in zip(owners, numbers, strict=True):
                yield key, owner, m

    def _sweep(self, now: int) -> None:
        keys = self._gc_keys
        g = self._gc_granularity
        while keys and (keys[0] + 1) * g <= now:
            owners, numbers = self._gc_buckets.pop(heapq.heappop(keys))
            for owner, m in zip(owners, numbers, strict=True):
                try:  # free in CPython 3.11 while nothing raises
                    owner.collect(m, now)
                except Exception as exc:  # one subscriber's state that cannot be swept must not stop the others
                    self._fault(None, None, exc)
        self._gc_due = (keys[0] + 1) * g if keys else NEVER
        if self.max_jump is not None and now + self.max_jump < self._gc_due:
            self._gc_due = now + self.max_jump  # the next jump must reach ``advance`` (guard_jumps)

    # --- events ----------------------------------------------------------

    def on_event(self, ev: Event) -> bool:
        """Process one event; False (and counted) if it is older than the stream's time."""
        t = ev.ts
        if t > self.now:
            if self._deadlines.floor < t or self._gc_due <= t:
                self.advance(t)
            else:
                self.now = t
        elif t < self.now:
            self.late_events += 1
            return False
        self.events_in += 1
        route = self._routes.get(ev.__class__)
        if route is not None:
            self.ctx.msisdn = ev.msisdn
            try:
                route(ev)
                if self._pending:
                    self._drain()
            except LetOut:
                raise
            except Exception as exc:
                self._fault(0, ev, exc)
        return True

    def feed(self, events: list[Event], on_late: Callable[[int, Event], None] | None = None) -> None:
        """``on_event`` for a block of events, with the per-event work inlined: the loop
        ``engine._feed`` generates (an engine's ``feed`` is that loop; a subclass's own reaches it here).

        ``on_late(index, event)`` hears of each event older than the stream's time.
        """
        self._loop(events, on_late)

    def _fault(self, i: int | None, ev: Event | None, exc: Exception) -> None:
        """Processing event ``ev`` (``i``-th of the block fed) or a deadline (None) raised ``exc``:
        counted and handed to ``on_fault``; what it left to do is dropped, the triggers already sent
        still re-enter (each failing one is part of this fault)."""
        self.faults += 1
        hook = self.on_fault
        if hook is not None:
            hook(i, ev, exc)
        while self._pending:
            try:
                self._drain()
            except Exception:
                continue
        self._depth = 0

    def describe_fault(self, exc: BaseException) -> str:
        """``processing failed in FILE:LINE: Type: message`` (``engine._faults``)."""
        return describe_fault(exc, self.scenario_files)

    def _dispatch(self, ev: Any) -> None:
        route = self._routes.get(ev.__class__)
        if route is not None:
            self.ctx.msisdn = ev.msisdn
            route(ev)

    def _bind(self, i: int, scn: Scenario, classes: dict[str, type[Event]],
              handlers: dict[type[Event], list[Entry | Guarded]],
              tracked: dict[type[Event], list[tuple[str, dict[str, Any]]]], observer: Any) -> None:
        """Scenario ``i``'s runtime, gates and audience, its handlers added to ``handlers``."""
        self._audiences.append(None if scn.audience is None
                               else cheap_first(scn.audience, self.reference.lists, scn.name))
        rt = build_runtime(i, self, scn.pattern, scn)
        self.runtimes.append(rt)
        needs_gates = scn.cooldown_ms is not None or scn.once != "never"
        self._gates.append(_Gates(scn, self) if needs_gates else None)
        entry = rt.entry()
        if entry is not None:
            type_name, filter_, on_match = entry
            audience = None
            if rt.AUDIENCE_IN_ROUTE and scn.audience is not None and observer is None:
                audience = audience_guard(scn.audience, f"_a{i}_", self.reference.lists)
            refused = None if audience is None else (lambda ev, i=i: self._refused(i, ev))
            only_audience = audience is not None and scn.cooldown_ms is None and scn.during is None
            condition = None if filter_.where is None else bound_filter(
                filter_.where, f"_f{i}_", self.reference.lists, self.reference.areas_of_cell)
            fused = None if observer is not None else rt.fused(self.complete, self.watch, self._gates[i],
                                                               self.stats[i])
            handlers.setdefault(classes[type_name], []).append(Entry(
                filter_, on_match, audience, refused, condition, self.stats[i] if only_audience else None,
                fused, scn))
            self._owners.setdefault(classes[type_name], []).append(i)
        else:
            for type_name, handler in rt.handlers().items():
                handlers.setdefault(classes[type_name], []).append(Guarded(handler, rt.guard(type_name), scn))
                self._owners.setdefault(classes[type_name], []).append(i)
        for type_name, field in sorted(scn.tracked):
            store = self._prev.setdefault((type_name, field), {})
            keeper = (field, store)
            if keeper not in tracked.setdefault(classes[type_name], []):
                tracked[classes[type_name]].append(keeper)

    def _readers(self, cls: type[Event]) -> list[tuple[str, Origin]]:
        """The scenarios with a handler for ``cls``, for a ``BuildError``."""
        return [_scenario(self.scenarios[i]) for i in dict.fromkeys(self._owners.get(cls, ()))]

    def _built_route(self, cls: type[Event]) -> Callable[[Any], None] | None:
        """``_route(cls)``; should it fail, a ``BuildError`` names the scenarios whose part of
        the route fails on its own (every reader of the type if none does alone)."""
        try:
            return self._route(cls)
        except BindError:
            raise
        except Exception as e:
            tag = cls.__struct_config__.tag
            owners = self._owners.get(cls, [])
            culprits = []
            for i in dict.fromkeys(owners):
                alone = [h for h, o in zip(self._handlers.get(cls, ()), owners, strict=True) if o == i]
                try:
                    build_route(f"{tag} alone", (), alone, (), self.ctx)
                except Exception:
                    culprits.append(_scenario(self.scenarios[i]))
            with _building(f"generating the route for {tag} events", culprits or self._readers(cls)):
                raise e

    def _route(self, cls: type[Event]) -> Callable[[Any], None] | None:
        """Everything one event of ``cls`` needs, as one generated function."""
        before: list[Callable[[Any], None]] = []
        if cls is Dpi and len(self.reference.kb):
            before.append(self._label)
        elif cls is Profile:
            update = self.reference.update_tags
            before.append(lambda ev: update(ev.msisdn, ev.tags))
        if self.universe is not None and cls is not Trigger:  # a trigger's subscriber was a member already
            before.append(self.universe.see)
        tag: str = cls.__struct_config__.tag  # type: ignore[assignment]  # every event class has its tag
        terms = self.periods.updater(tag, self.ctx) if self.periods else None
        if terms is not None:
            before.append(terms)  # the event counts in its own periods: updated before any scenario reads them
        route = build_route(
            tag,
            before,
            self._handlers.get(cls, ()),
            self._tracked.get(cls, ()),
            self.ctx,
            now=self._uses_now,
        )
        if cls is Feedback and self.policy is not None:
            return self.policy.feedback_route(route)  # joins feedback to sends first
        return route

    def _label(self, ev: Any) -> None:
        """A DPI event without app or category gets them from the knowledge base."""
        if ev.app is None or ev.category is None:
            label = self.reference.kb.label(ev.host)
            if label is not None:
                if ev.app is None:
                    ev.app = label[0]
                if ev.category is None:
                    ev.category = label[1]

    # --- what a schedule's sweep needs (``forms.schedule``) --------------

    def settle(self) -> None:
        """Re-enter the triggers a completion left pending (a sweep, per subscriber)."""
        if self._pending:
            self._drain()

    @staticmethod
    def is_let_out(exc: BaseException) -> bool:
        return isinstance(exc, LetOut)

    def fault_at(self, exc: Exception) -> None:
        """A subscriber's visit at a schedule instant raised: counted as a deadline's fault."""
        self.deadline_faults += 1
        self._fault(None, None, exc)

    @contextmanager
    def at_time(self, t: int) -> Iterator[None]:
        """Evaluate as at ``t`` (a sliced sweep visiting at its instant after time moved on): ``now``
        is ``t`` meanwhile, and trigger ids counted at ``t`` do not disturb those of the current time."""
        ctx: Any = self.ctx
        has_now = hasattr(ctx, "now")  # the evaluation time of LANGUAGE.md §9.2, when the context keeps one
        now, id_ts, id_counts = self.now, self._id_ts, self._id_counts
        ctx_now = ctx.now if has_now else None
        self.now, self._id_ts, self._id_counts = t, None, {}
        if has_now:
            ctx.now = t
        try:
            yield
        finally:
            self.now, self._id_ts, self._id_counts = now, id_ts, id_counts
            if has_now:
                ctx.now = ctx_now

    def _catch_up(self, m: str) -> None:
        for rt in self.schedules:
            rt.catch_up(m)

    def sweep_step(self, n: int) -> int:
        """Visit up to ``n`` subscribers of the schedule sweeps under way (a sliced engine); how many."""
        done = 0
        for rt in self.schedules:
            if done < n:
                done += rt.step(n - done)
        if done and self._deadlines.floor < self.now:
            # the visits were at the instant, time is past it: what they left due before now (an arbitration
            # window, a wait) fires now, as it would have fired as time moved past it — at the end of input
            # no later event would move time again
            self.advance(self.now)
        return done

    @property
    def sweeping(self) -> bool:
        """A schedule instant is being swept in slices."""
        return any(rt.sweep is not None for rt in self.schedules)

    def requeue(self, ev: Event) -> None:
        """Dispatch ``ev`` after the events already pending (the policy's parked feedback)."""
        self._pending.append((ev, 0))

    def _drain(self) -> None:
        pending = self._pending
        while pending:
            ev, depth = pending.popleft()
            self._depth = depth
            self._dispatch(ev)
        self._depth = 0

    # --- completions -----------------------------------------------------

    def complete(self, rt: PatternRuntime, m: str, t: int, e: Any, a: tuple[Any, ...]) -> None:
        """A pattern completed for subscriber ``m`` at time ``t``: gate, trigger, send."""
        i = rt.index
        scn = self.scenarios[i]
        stats = self.stats[i]
        stats.matched += 1
        if self.observer is not None:
            self.observer.completed(i, m, t, e, a)
        gates = self._gates[i]
        if gates is not None and gates.cooling(m, t):
            return self._suppress(stats, "cooldown", i, m, t)
        ctx = self.ctx
        ctx.msisdn = m
        if scn.during is not None and not self._in_during(scn.during, t):
            return self._suppress(stats, "during", i, m, t)
        audience = self._audiences[i]
        if audience is not None and not audience(e, a, ctx):
            return self._suppress(stats, "audience", i, m, t)
        writes = self._writes[i]
        if writes is None:
            if gates is not None:
                reason = gates.refuse(m, t, e, a, ctx)
                if reason is not None:
                    return self._suppress(stats, reason, i, m, t)
        else:  # every expression of this trigger reads the tags as they were before it
            tags: dict[str, Any] = {}

            def compute() -> None:  # before a gate records the trigger: a value no tag can hold (raised,
                tags.update((name, fn(e, a, ctx)) for name, fn in writes)  # the event's fault) then
                self._check_tags(i, tags)  # consumes no cool-down, once or trigger id of a later one

            if gates is None:
                compute()
            else:
                reason = gates.refuse(m, t, e, a, ctx, compute)
                if reason is not None:
                    return self._suppress(stats, reason, i, m, t)
        stats.triggered += 1
        if writes is not None:
            if not scn.actions:
                return self._write_tags(i, m, t, tags)
        trigger_id = self._next_id(scn.name, m, t)
        if self.policy is not None:
            params = tuple({key: expr.fn(e, a, ctx) for key, expr in act.params} for act in scn.actions)
            if writes is not None:
                self._write_tags(i, m, t, tags)
            self.policy.offer(Candidate(trigger_id, i, scn, m, t, params, self._depth + 1))
            return None
        action = scn.actions[0]
        values = {key: expr.fn(e, a, ctx) for key, expr in action.params}
        if writes is not None:
            self._write_tags(i, m, t, tags)
        self.emit(i, m, t, trigger_id, action, values, t + action.after_ms, self._depth + 1)
        return None

    def _write_tags(self, i: int, m: str, t: int, tags: dict[str, Any]) -> None:
        """Scenario ``i`` triggered for ``m`` at ``t`` and its ``set`` clause computed ``tags`` (checked by
        ``_check_tags``): they become what ``tags.NAME`` reads from now on (no contact: the policy never
        sees them), all or none."""
        scn = self.scenarios[i]
        self.reference.update_tags(m, tags)
        self.stats[i].tag_writes += 1
        sink = self.tag_sink
        if sink is not None:
            try:
                sink(TagWrite(scn.name, m, t, tags))
            except Exception as e:
                raise SinkError(f"the tag-write sink failed: {e!r}") from e
        if self.observer is not None:
            self.observer.wrote(i, m, t, tags)

    def _check_tags(self, i: int, tags: dict[str, Any]) -> None:
        """Raise ``TagValueError`` for a value of ``tags`` (scenario ``i``'s ``set`` clause) no tag can hold."""
        for name, value in tags.items():
            problem = tag_value_problem(value)
            if problem is not None:
                scn = self.scenarios[i]
                where = next((s.origin for s in scn.sets if s.name == name), scn.origin)
                raise TagValueError(f"scenario '{scn.name}' (set at {_where(where)}) cannot write tags.{name}: "
                                    f"expected {problem}")

    def _refused(self, i: int, ev: Any) -> None:
        """A single-event completion whose audience the route already refused: counted
        under the reason ``complete`` would give (cool-down and ``during`` come first)."""
        stats = self.stats[i]
        stats.matched += 1
        m, t = ev.msisdn, ev.ts
        gates = self._gates[i]
        if gates is not None and gates.cooling(m, t):
            return self._suppress(stats, "cooldown", i, m, t)
        during = self.scenarios[i].during
        if during is not None and not self._in_during(during, t):
            return self._suppress(stats, "during", i, m, t)
        return self._suppress(stats, "audience", i, m, t)

    def emit(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
             send_at: int, depth: int) -> None:
        """Send a decided trigger and re-enter it as a ``trigger`` event at its time ``t``."""
        scn = self.scenarios[i]
        sent = self.stats[i].sent
        sent[action.channel] = sent.get(action.channel, 0) + 1
        try:
            self.sink(Send(trigger_id, scn.name, m, t, send_at, action.channel, action.template, params))
        except Exception as e:
            raise SinkError(f"the send sink failed: {e!r}") from e
        if depth > MAX_TRIGGER_DEPTH:
            self.trigger_loops += 1
            return None
        self._pending.append(
            (Trigger(ts=t, msisdn=m, id=trigger_id, scenario=scn.name, channel=action.channel,
                     template=action.template), depth)
        )
        return None

    def hold_out(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
                 send_at: int) -> None:
        """A trigger the policy held out for the control group: to ``control_sink`` (if any), never sent."""
        record = self.control_sink
        if record is None:
            return
        try:
            record(Send(trigger_id, self.scenarios[i].name, m, t, send_at, action.channel, action.template, params))
        except Exception as e:
            raise SinkError(f"the control-group sink failed: {e!r}") from e

    def _suppress(self, stats: ScenarioStats, reason: str, i: int, m: str, t: int) -> None:
        stats.suppressed[reason] = stats.suppressed.get(reason, 0) + 1
        if self.observer is not None:
            self.observer.gated(i, m, t, reason)

    def _in_during(self, during: During, t: int) -> bool:
        clock = self.clock
        if during.days is not None and clock.weekday_of(t) not in during.days:
            return False
        minute = clock.minute_of_day(t)
        return any(r.contains(minute) for r in during.ranges)

    def _next_id(self, scenario: str, m: str, t: int) -> str:
        """``SCENARIO:MSISDN:TS``, with ``:N`` for the N-th trigger at the same time."""
        if t != self._id_ts:
            self._id_ts = t
            self._id_counts.clear()
        key = (scenario, m)
        n = self._id_counts.get(key, 0) + 1
        self._id_counts[key] = n
        base = f"{scenario}:{m}:{t}"
        return base if n == 1 else f"{base}:{n}"

    # --- introspection ---------------------------------------------------

    @property
    def holds_sends(self) -> bool:
        """The policy may decide a trigger after later triggers (arbitration, capacity)."""
        return self.policy is not None and self.policy.holds

    def send_watermark(self) -> int:
        """Every send with a trigger time before this is decided and emitted already."""
        held = None if self.policy is None else self.policy.watermark()
        return self.now if held is None else min(held, self.now)

    def subscribers_in_state(self) -> int:
        """Distinct subscribers the engine holds anything for: pattern state, gates, the previous
        values ``crosses_*``/``changed`` keep, calendar and recency buckets, and the contact policy's memory."""
        seen: set[str] = set()
        for rt in self.runtimes:
            seen.update(rt.states)
        for g in self._gates:
            if g is not None:
                seen.update(g.last)
                seen.update(g.values)
        for store in self._prev.values():
            seen.update(store)
        seen.update(self.periods.rows)
        if self.policy is not None:
            seen.update(self.policy.states)
        return len(seen)


def _shifted(inner: Callable[..., None], events: list[Event], on_late: Callable[[int, Event], None] | None,
             k: int, engine: Engine) -> None:
    """``inner(events, on_late)`` for ``events`` that start at index ``k`` of the caller's block: the
    indices ``on_late`` and the engine's ``on_fault`` hear are the caller's."""
    if not k:
        inner(events, on_late)
        return
    late = None if on_late is None else (lambda i, ev: on_late(i + k, ev))
    fault = engine.on_fault
    if fault is not None:
        engine.on_fault = lambda i, ev, exc: fault(None if i is None else i + k, ev, exc)
    try:
        inner(events, late)
    finally:
        engine.on_fault = fault


def _check_reference(plan: Plan, ref: Reference) -> None:
    problems = []
    for scn in plan.scenarios:
        where = f"{scn.origin.file}:{scn.origin.line}"
        for name in sorted(scn.lists - ref.lists.keys()):
            problems.append(
                f"{where}: scenario '{scn.name}' uses list(\"{name}\") but the reference data "
                f"has no lists/{name}.txt"
            )
        for area in sorted(scn.areas - ref.area_names):
            problems.append(
                f"{where}: scenario '{scn.name}' uses area \"{area}\" but no cell in cells.csv is in it"
            )
    if plan.policy is not None:
        for name in plan.policy.exclude:
            if name not in ref.lists:
                o = plan.policy.origin
                problems.append(
                    f"{o.file}:{o.line}: the policy excludes list(\"{name}\") but the reference "
                    f"data has no lists/{name}.txt"
                )
    if problems:
        raise BindError("\n".join(problems)
                        + "\n(the reference data folder, --reference DIR, must hold the files above)")
