"""The contact policy stage: between a trigger and a send (LANGUAGE.md §6 and extensions).

``Engine.complete`` hands every trigger that passed the scenario's own gates
to ``PolicyStage.offer``. The stage decides, in event time and without I/O,
whether, when and on which channel of the ``or`` chain the subscriber is
contacted, and hands each decision back through a ``PolicyHost`` — the narrow
part of the engine it is given, so this module does not import ``_engine``
(the flow below is the whole conversation). Per subscriber it keeps only a small ``_Sub``: recent and scheduled
sends (for caps and exclusion groups), templates blocked by ``no_repeat``, and
an open arbitration window — each forgotten, through ``host.watch``, once no
rule can read it. What was decided per trigger id is kept in
``_feedback.Records`` for the ``feedback within`` retention only. Decisions
that must wait (an arbitration window, a call-centre capacity queue) are
driven by the engine's deadlines, so a replay is deterministic; at the end of
input, time stands at the last event and what is still waiting stays unsent
and is counted as ``held``. A feedback naming a trigger still waiting is
parked and dispatched right after the trigger is decided (after its
``trigger`` event), so waves see it as they would without the wait.

A trigger's way through the stage, with every call it makes on the host::

    offer ── excluded list ─────────────────────────────────────► _stop
      ├─ arbitration: window ── host.schedule_last ─► on_deadline ─► _close ─► losers _stop, winner _decide
      └─ else ──────────────────────────────────────────────────► _decide
    _decide ── each action of the chain: _allow (no_repeat, exclusive, hours/quiet, cap)
      ├─ none passes ───────────────────────────────────────────► _stop
      ├─ control group ── host.hold_out ────────────────────────► _stop
      ├─ capacity used up ── _wait ── host.schedule_last ─► on_deadline("") ─► _release ─► _allow again
      └─ _send ── host.watch (forget the send later) ── host.emit (sent; re-enters as a trigger event)
    _stop ── counted on host.stats[i].suppressed (and told to host.observer)
    feedback ── feedback_route: joined (on_feedback), or parked while its trigger waits ─► host.requeue

Order of the checks for one trigger: ``exclude`` (subscriber), arbitration
(the window's winner goes on, the others are ``arbitration``), then for each
action of the chain in turn: ``no_repeat`` (template), ``exclusive`` (group),
working ``hours`` and ``quiet`` (defer or drop), ``cap`` (rolling windows at
the send time); the first action that passes is used. Then the control group
(held out: recorded, never sent), then ``capacity`` (wait for the next
period). A stopped trigger is counted with the reason of its first action.

A capacity's places are counted by the stage itself (``used``, in its
snapshot) when its engine sees every subscriber; when the subscribers are
split over engines (partitions, workers) each engine is given one shared
``CapacityGrants`` and asks it by trigger id, so the count is one for all and
a trigger decided again finds its own place.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence
from typing import Any, Protocol
from collections.abc import Callable

from kairos.engine._calendar import (
    duration_text, local_text, next_opening, occurrence_end, period_of, period_start, range_text,
)
from kairos.engine._feedback import Record, Records, feedback_retention
from kairos.engine._localtime import LocalTime
from kairos.engine._reference import Reference
from kairos.plan import Action, Capacity, Hours, Origin, Policy, Scenario

OUTCOMES = ("delivered", "clicked", "accepted", "rejected", "failed")
_BIT = {o: 1 << i for i, o in enumerate(OUTCOMES)}
_NO_TIME = -(2**62)


def in_control(msisdn: str, scenario: str, percent: float) -> bool:
    """Stable control-group membership: an unkeyed BLAKE2b hash of scenario and msisdn, not ``hash()``.

    The same subscriber is in or out of a scenario's control group in every run,
    on every machine (the daemon and replay agree); across scenarios memberships
    are independent. Not secret by design (docs/policy.md, "What exactly happens").
    """
    if percent <= 0:
        return False
    digest = hashlib.blake2b(f"{scenario}\x00{msisdn}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") * 100.0 < percent * 18446744073709551616.0


class Counts(Protocol):
    """The counts of one scenario the stage adds to (the engine's ``ScenarioStats``)."""

    suppressed: dict[str, int]  #: stopped triggers by reason
    held: int  #: still waiting when the input ended
    outcomes: dict[str, dict[str, int]]  #: feedback per channel and outcome
    control_outcomes: dict[str, int]  #: feedback joined to held-out control triggers


class PolicyHost(Protocol):
    """What the stage needs of the engine it runs in (``Engine`` is one): its time, its deadlines
    and watches, its counts, and where a decided trigger goes."""

    @property
    def clock(self) -> LocalTime: ...
    @property
    def now(self) -> int: ...
    @property
    def scenarios(self) -> Sequence[Scenario]: ...
    @property
    def stats(self) -> Sequence[Counts]: ...
    @property
    def reference(self) -> Reference: ...
    @property
    def observer(self) -> Any: ...  # ``kairos explain``'s, hears every decision (None: nobody listens)

    def schedule_last(self, when: int, owner: Any, msisdn: str) -> None:
        """``owner.on_deadline(msisdn, when)`` once time reaches ``when``, after every other deadline then."""

    def watch(self, when: int, owner: Any, msisdn: str) -> None:
        """``owner.collect(msisdn, now)`` once time has passed ``when``."""

    def emit(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
             send_at: int, depth: int) -> None:
        """Send a decided trigger of scenario ``i`` and re-enter it as a ``trigger`` event."""

    def hold_out(self, i: int, m: str, t: int, trigger_id: str, action: Action, params: dict[str, Any],
                 send_at: int) -> None:
        """Record a trigger held out for the control group: decided, never sent."""

    def requeue(self, ev: Any) -> None:
        """Dispatch ``ev`` after the events already pending (a parked feedback)."""


class CapacityGrants(Protocol):
    """Places of channel capacities shared by several engines (``Engine(capacity=...)``): each engine
    owns part of the subscribers (a partition, a worker), the capacity counts them all together.

    ``take`` is idempotent by trigger id — a trigger decided again (after a restore from an
    older snapshot, or a partition handed to another instance) finds its own place again —
    and durable before it answers. Without one, each engine counts its own sends in its
    state (the snapshot holds the counts): right when one engine sees every subscriber.
    ``kairos.adapters.GrantFolder`` is the implementation over a shared folder.
    """

    def take(self, channel: str, per_days: int, period: int, end: int, limit: int, trigger_id: str) -> bool:
        """Grant ``trigger_id`` a place of ``channel``'s period number ``period`` (of ``per_days``
        local days, ending at epoch ms ``end``): True if it had one or one of ``limit`` is free."""
        ...


class Candidate:
    """A trigger waiting for the policy's decision."""

    __slots__ = ("id", "index", "scenario", "priority", "msisdn", "ts", "params", "depth")

    def __init__(self, id: str, index: int, scenario: Scenario, msisdn: str, ts: int,
                 params: tuple[dict[str, Any], ...], depth: int) -> None:
        self.id = id
        self.index = index
        self.scenario = scenario
        self.priority = scenario.priority
        self.msisdn = msisdn
        self.ts = ts
        self.params = params
        self.depth = depth

    def rank(self) -> tuple[int, int, str, str]:
        """Arbitration order: highest priority, then earlier time, then scenario name."""
        return (-self.priority, self.ts, self.scenario.name, self.id)


class _Sub:
    """One subscriber's policy state."""

    __slots__ = ("sends", "blocked", "window", "first")

    def __init__(self) -> None:
        self.sends: list[tuple[int, str, int]] = []  # (send_at, channel, scenario index)
        self.blocked: dict[str, int] = {}  # template → blocked until (ms, inclusive)
        self.window: list[Candidate] | None = None  # open arbitration window
        self.first = 0  # time of the window's first trigger


class PolicyStage:
    """Enforces one ``plan.Policy`` for an engine; also joins feedback for measurement."""

    def __init__(self, policy: Policy | None, host: PolicyHost, index: int,
                 grants: CapacityGrants | None = None) -> None:
        """``grants``: capacity places shared with other engines (None: this engine's own count, ``used``)."""
        self.policy = policy = policy or Policy(origin=Origin("<no policy>", 0, 0))
        self.host = host
        self.grants = grants
        self.index = index  # the engine's deadline heap addresses us like a pattern runtime
        self.states: dict[str, _Sub] = {}
        self.clock = host.clock
        scenarios = host.scenarios
        self.names = {s.name: i for i, s in enumerate(scenarios)}
        self.exclude = tuple(policy.exclude)
        self.caps: dict[str, list[tuple[int, int, bool]]] = {}  # channel → (limit, per_ms, counts any)
        for cap in policy.caps:
            self.caps.setdefault(cap.channel, []).append((cap.limit, cap.per_ms, cap.channel == "any"))
        self.quiet = {ch: [q for q in policy.quiet if ch in q.channels] for q in policy.quiet for ch in q.channels}
        self.hours: dict[str, list[Hours]] = {}  # several rules: open when any is
        for h in policy.hours:
            self.hours.setdefault(h.channel, []).append(h)
        self.capacity: dict[str, Capacity] = {c.channel: c for c in policy.capacity}
        #: (channel, period) → sends, while decisions may count in it (without shared ``grants`` only)
        self.used: dict[tuple[str, int], int] = {}
        self.waiting: dict[str, list[tuple[tuple[int, int, str, str], Candidate, Action, dict[str, Any]]]] = {}
        self.arbitrate_ms = policy.arbitrate_ms
        self.groups: list[list[tuple[int, frozenset[int], str]]] = [[] for _ in scenarios]
        for g in policy.exclusive:
            members = frozenset(self.names[n] for n in g.scenarios if n in self.names)
            for i in members:
                self.groups[i].append((g.per_ms, members, g.name))
        default = next((c.percent for c in policy.control if not c.scenarios), 0.0)
        self.control = [default] * len(scenarios)
        for c in policy.control:
            for n in c.scenarios:
                if n in self.names:
                    self.control[self.names[n]] = c.percent
        keep = [per for caps in self.caps.values() for _, per, _ in caps]
        keep += [g.per_ms for g in policy.exclusive]
        # sends are kept while a cap or group can still count them; a decision
        # may be an arbitration window late
        self.keep_ms = max(keep, default=0) and max(keep) + (policy.arbitrate_ms or 0)
        self.no_repeat = policy.no_repeat
        self.no_repeat_bits = 0 if policy.no_repeat is None else sum(_BIT[o] for o in policy.no_repeat.outcomes)
        #: trigger id → what was decided, while a feedback can still be joined to it
        self.feedback = Records(feedback_retention(policy), host.watch)
        self.records: dict[str, Record] = self.feedback.by_id
        self.holds = self.arbitrate_ms is not None or bool(self.capacity)
        self._held: list[tuple[int, str]] = []  # (ts, id) of triggers in arbitration windows
        self._windowed: set[str] = set()  # ids in open arbitration windows
        self._waiting_ids: set[str] = set()  # ids not yet decided: in a window or a capacity queue
        self._queue_low: dict[str, int] = {}  # channel → earliest trigger time in its capacity queue
        #: feedback naming a trigger not yet decided: dispatched once it is (after its ``trigger`` event)
        self._parked: dict[str, list[Any]] = {}
        #: feedback events joined to no send: unknown id, or later than ``feedback within``
        self.unmatched_feedback = 0

    # --- entry points ------------------------------------------------------

    def offer(self, c: Candidate) -> None:
        """A trigger passed its scenario's gates: decide now, or hold it for arbitration."""
        m = c.msisdn
        if self.exclude:
            on = self._excluded(m)
            if on is not None:
                return self._stop(c, "exclude", f"the subscriber is on the excluded list \"{on}\"")
        if self.arbitrate_ms is None:
            return self._decide(c)
        st = self.states.get(m)
        if st is None:
            st = self.states[m] = _Sub()
        if st.window is not None:
            if c.ts <= st.first + self.arbitrate_ms:
                st.window.append(c)
                self._hold_window(c)
                if self.host.observer is not None:
                    self._tell_wait(c, st.first + self.arbitrate_ms)
                return None
            self._close(m, st)
        st.window = [c]
        st.first = c.ts
        self._hold_window(c)
        self.host.schedule_last(c.ts + self.arbitrate_ms, self, m)
        if self.host.observer is not None:
            self._tell_wait(c, st.first + self.arbitrate_ms)
        return None

    def on_deadline(self, msisdn: str, when: int) -> None:
        """An arbitration window closes (``msisdn``) or a capacity period opens (``""``)."""
        if msisdn == "":
            return self._release(when)
        st = self.states.get(msisdn)
        if st is not None and st.window is not None and st.first + self.arbitrate_ms == when:  # type: ignore[operator]
            self._close(msisdn, st)
        return None

    def feedback_route(self, route: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """The route for ``feedback`` events: join each to its send, then ``route`` (the scenarios
        reading feedback) — unless it names a trigger the policy still holds.

        Such a feedback is parked and dispatched right after the trigger is decided,
        so a wave waiting on the trigger (``trigger as t -> not feedback … within D``)
        sees it after the trigger, as it would have without the arbitration delay.
        """
        parked = self._parked
        waiting = self._waiting_ids
        join = self.on_feedback

        def feedback(ev: Any) -> None:
            if ev.trigger_id in waiting:
                parked.setdefault(ev.trigger_id, []).append(ev)
                return
            join(ev)
            if route is not None:
                route(ev)

        return feedback

    def on_feedback(self, ev: Any) -> None:
        """A channel reported on a trigger: count it once per outcome; maybe block the template."""
        rec = self.feedback.find(ev.trigger_id, ev.ts)
        if rec is None:
            self.unmatched_feedback += 1
            return
        bit = _BIT[ev.outcome]
        if rec.seen & bit:
            return
        rec.seen |= bit
        stats = self.host.stats[rec.index]
        if rec.control:
            stats.control_outcomes[ev.outcome] = stats.control_outcomes.get(ev.outcome, 0) + 1
            return
        by = stats.outcomes.setdefault(rec.channel, {})
        by[ev.outcome] = by.get(ev.outcome, 0) + 1
        if bit & self.no_repeat_bits:
            st = self.states.get(rec.msisdn)
            if st is None:
                st = self.states[rec.msisdn] = _Sub()
            until = ev.ts + self.no_repeat.for_ms  # type: ignore[union-attr]
            if st.blocked.get(rec.template, _NO_TIME) < until:
                st.blocked[rec.template] = until
            self.host.watch(until, self, rec.msisdn)

    def collect(self, msisdn: str, now: int) -> None:
        """Forget what can no longer stop a send (``""``: capacity periods no decision can count in)."""
        if msisdn == "":
            return self._forget_periods(now)
        st = self.states.get(msisdn)
        if st is None:
            return
        self._prune(st, now)
        if not st.sends and not st.blocked and st.window is None:
            del self.states[msisdn]

    def watermark(self) -> int | None:
        """The earliest trigger time still waiting for a decision (None: nothing waits)."""
        times = list(self._queue_low.values())
        if self._held:
            times.append(self._held[0][0])
        return min(times) if times else None

    def held(self) -> int:
        """Triggers still waiting (arbitration window or capacity queue)."""
        return len(self._waiting_ids)

    def finish(self) -> None:
        """End of input: count what still waits as ``held`` on its scenario, and the
        feedback parked for it as unmatched (its trigger was never sent)."""
        obs = self.host.observer
        for st in self.states.values():
            for c in st.window or ():
                self.host.stats[c.index].held += 1
                if obs is not None:
                    obs.policy(c.index, c.msisdn, c.ts, c.id, "held", "still waiting for arbitration (until "
                               f"{self._t(st.first + self.arbitrate_ms)}) when the input ended")  # type: ignore[operator]
        for channel, queue in self.waiting.items():
            for _, c, _, _ in queue:
                self.host.stats[c.index].held += 1
                if obs is not None:
                    obs.policy(c.index, c.msisdn, c.ts, c.id, "held",
                               f"still waiting for {channel} capacity when the input ended")
        self.unmatched_feedback += sum(len(evs) for evs in self._parked.values())
        self._parked.clear()

    # --- decisions ---------------------------------------------------------

    def _tell_wait(self, c: Candidate, until: int) -> None:
        self.host.observer.policy(c.index, c.msisdn, c.ts, c.id, "wait",
                                    f"waits for arbitration until {self._t(until)} — of the subscriber's "
                                    "triggers until then only the highest priority is sent")

    def _hold_window(self, c: Candidate) -> None:
        self._waiting_ids.add(c.id)
        self._windowed.add(c.id)
        heapq.heappush(self._held, (c.ts, c.id))

    def _close(self, m: str, st: _Sub) -> None:
        window = st.window or []
        st.window = None
        window.sort(key=Candidate.rank)
        for c in window:
            self._waiting_ids.discard(c.id)
            self._windowed.discard(c.id)
        held = self._held  # windows close in time order: what is decided leaves the heap now
        while held and held[0][1] not in self._windowed:
            heapq.heappop(held)
        winner = window[0]
        for c in window[1:]:
            self._stop(c, "arbitration", f"lost arbitration to {winner.scenario.name} "
                       f"(priority {winner.priority}) at {self._t(winner.ts)}")
        self._decide(winner)
        if not st.sends and not st.blocked and st.window is None and self.states.get(m) is st:
            del self.states[m]  # nothing left to remember for this subscriber

    def _decide(self, c: Candidate) -> None:
        st = self.states.get(c.msisdn)
        if st is None:
            st = _Sub()  # kept only if a send must be remembered (``_send``)
        first_reason = None
        notes: list[str] = []
        for k, action in enumerate(c.scenario.actions):  # noqa: B007 (k, where the loop stopped, is read after it)
            reason, detail, send_at = self._allow(c, action, st, c.ts + action.after_ms)
            if reason is None:
                if detail:
                    notes.append(detail)
                break
            notes.append(f"{action.channel} \"{action.template}\": {detail}")
            if first_reason is None:
                first_reason = reason
        else:
            return self._stop(c, first_reason or "no_action", "; ".join(notes))
        params = c.params[k]
        if in_control(c.msisdn, c.scenario.name, self.control[c.index]):
            self.feedback.add(c.id, Record(c.index, action.channel, action.template, c.msisdn, True), send_at)
            self.host.hold_out(c.index, c.msisdn, c.ts, c.id, action, params, send_at)
            return self._stop(c, "control", f"in the control group ({self.control[c.index]:g}%) "
                              f"for {c.scenario.name}; would have sent {action.channel} at {self._t(send_at)}")
        cap = self.capacity.get(action.channel)
        if cap is not None and not self._take_capacity(cap, send_at, c.id):
            return self._wait(c, action, params, cap, send_at)
        self._send(c, action, params, send_at, st, "; ".join(notes))

    def _allow(self, c: Candidate, action: Action, st: _Sub, send_at: int) -> tuple[str | None, str, int]:
        """(reason it may not be used, explanation, send time) for one action of the chain."""
        channel = action.channel
        until = st.blocked.get(action.template)
        if until is not None and c.ts <= until:
            return "no_repeat", f"template answered by the subscriber; blocked until {self._t(until)}", send_at
        for per, members, group in self.groups[c.index]:
            for t, _, i in st.sends:
                if i != c.index and i in members and abs(t - send_at) <= per:
                    other = self.host.scenarios[i].name
                    when = "before" if t <= send_at else "after"
                    return "exclusive", (f"{other} of the exclusion group \"{group}\" was sent at {self._t(t)}, "
                                         f"less than {duration_text(per)} {when}"), send_at
        planned = send_at
        send_at, reason, detail = self._timing(channel, send_at)
        if reason is not None:
            return reason, detail, send_at
        for caps in (self.caps.get(channel), self.caps.get("any")):
            for limit, per, any_channel in caps or ():
                if not _fits(st.sends, send_at, None if any_channel else channel, limit, per):
                    what = "any" if any_channel else channel
                    return "cap", f"cap {what} {limit} per {duration_text(per)} reached at {self._t(send_at)}", send_at
        return None, detail if send_at != planned else "", send_at

    def _timing(self, channel: str, send_at: int) -> tuple[int, str | None, str]:
        """Working hours and quiet ranges: the deferred send time, or the reason to drop."""
        hours = self.hours.get(channel)
        quiet = self.quiet.get(channel, ())
        if hours is None and not quiet:
            return send_at, None, ""
        clock = self.clock
        planned = send_at
        why: list[str] = []  # what moved the send (for explain)
        for _ in range(64):
            moved = send_at
            if hours is not None:
                moved = min(next_opening(clock, moved, h.ranges, h.days) for h in hours)
                if moved != send_at and "working hours" not in why:
                    why.append("working hours")
            for q in quiet:
                end = occurrence_end(clock, moved, q.range, q.days)
                if end is not None:
                    if q.mode == "drop":
                        return moved, "quiet", f"falls in quiet hours for {channel} (drop) at {self._t(moved)}"
                    moved = end
                    rule = f"quiet hours {range_text(q.range)}"
                    if rule not in why:
                        why.append(rule)
            if moved == send_at:
                if moved == planned or self.host.observer is None:
                    return send_at, None, ""
                return send_at, None, (f"deferred from {self._t(planned)} by {' and '.join(why)} "
                                       f"for {channel}")
            send_at = moved
        return send_at, "quiet", f"no time outside quiet hours for {channel}"

    def _take_capacity(self, cap: Capacity, send_at: int, trigger_id: str) -> bool:
        """A place of ``cap`` in the local calendar period of ``send_at``, or False when all are taken."""
        period = period_of(self.clock, send_at, cap.per_days)
        if self.grants is not None:
            end = period_start(self.clock, period + 1, cap.per_days)
            return self.grants.take(cap.channel, cap.per_days, period, end, cap.limit, trigger_id)
        key = (cap.channel, period)
        used = self.used.get(key)
        if used is None:
            # forgotten once no decision can fall in it: a trigger is decided at most an
            # arbitration window after its time
            end = period_start(self.clock, period + 1, cap.per_days)
            self.host.watch(end + (self.arbitrate_ms or 0), self, "")
            used = 0
        if used >= cap.limit:
            return False
        self.used[key] = used + 1
        return True

    def _forget_periods(self, now: int) -> None:
        horizon = now - (self.arbitrate_ms or 0)
        for channel, period in list(self.used):
            per_days = self.capacity[channel].per_days
            if period_start(self.clock, period + 1, per_days) < horizon:
                del self.used[(channel, period)]

    def _wait(self, c: Candidate, action: Action, params: dict[str, Any], cap: Capacity, send_at: int) -> None:
        queue = self.waiting.setdefault(cap.channel, [])
        if not queue:
            nxt = period_start(self.clock, period_of(self.clock, send_at, cap.per_days) + 1, cap.per_days)
            self.host.schedule_last(max(nxt, self.host.now), self, "")
        queue.append((c.rank(), c, action, params))
        self._waiting_ids.add(c.id)
        low = self._queue_low.get(cap.channel)
        if low is None or c.ts < low:
            self._queue_low[cap.channel] = c.ts
        obs = self.host.observer
        if obs is not None:
            obs.policy(c.index, c.msisdn, c.ts, c.id, "wait",
                       f"waits for the next period: the {cap.channel} capacity ({cap.limit} per {cap.per_days}d) "
                       "is used up; the waiting go first then, highest priority first")

    def _release(self, when: int) -> None:
        """A capacity period opened: the waiting go first, highest priority first."""
        for channel, queue in list(self.waiting.items()):
            if not queue:
                continue
            cap = self.capacity[channel]
            queue.sort(key=lambda item: item[0])
            del self.waiting[channel]  # ``_wait`` opens a new queue for those still over capacity
            self._queue_low.pop(channel, None)
            for _, c, action, params in queue:
                self._waiting_ids.discard(c.id)
                st = self.states.get(c.msisdn) or _Sub()
                reason, detail, send_at = self._allow(c, action, st, when)
                if reason is not None:
                    self._stop(c, reason, f"after waiting for capacity: {detail}")
                elif self._take_capacity(cap, send_at, c.id):
                    self._send(c, action, params, send_at, st, f"waited for {channel} capacity")
                else:
                    self._wait(c, action, params, cap, send_at)

    def _send(self, c: Candidate, action: Action, params: dict[str, Any], send_at: int, st: _Sub,
              notes: str) -> None:
        if self.keep_ms:
            st = self.states.setdefault(c.msisdn, st)
            self._prune(st, self.host.now)
            st.sends.append((send_at, action.channel, c.index))
            self.host.watch(max(send_at, self.host.now) + self.keep_ms, self, c.msisdn)
        self.feedback.add(c.id, Record(c.index, action.channel, action.template, c.msisdn, False), send_at)
        obs = self.host.observer
        if obs is not None:
            detail = f"sent {action.channel} \"{action.template}\", send time {self._t(send_at)}"
            if action.after_ms:  # a person reading the timeline sees why the send time is not the trigger's
                notes = "; ".join(n for n in (f"deferred by `after {duration_text(action.after_ms)}` from the trigger",
                                              notes) if n)
            obs.policy(c.index, c.msisdn, c.ts, c.id, "sent", detail + (f" ({notes})" if notes else ""))
        self.host.emit(c.index, c.msisdn, c.ts, c.id, action, params, send_at, c.depth)
        if self._parked:
            self._unpark(c.id)

    def _stop(self, c: Candidate, reason: str, detail: str) -> None:
        stats = self.host.stats[c.index]
        stats.suppressed[reason] = stats.suppressed.get(reason, 0) + 1
        obs = self.host.observer
        if obs is not None:
            obs.policy(c.index, c.msisdn, c.ts, c.id, reason, detail)
        if self._parked:
            self._unpark(c.id)

    def _unpark(self, trigger_id: str) -> None:
        """The trigger is decided: its parked feedback follows its ``trigger`` event (if sent)."""
        for ev in self._parked.pop(trigger_id, ()):
            self.host.requeue(ev)

    def _t(self, ts: int) -> str:
        return local_text(self.clock, ts)

    def _excluded(self, m: str) -> str | None:
        """The first excluded list the subscriber is on, or None."""
        lists = self.host.reference.lists
        return next((name for name in self.exclude if m in lists.get(name, ())), None)

    def _prune(self, st: _Sub, now: int) -> None:
        horizon = now - self.keep_ms
        if st.sends and st.sends[0][0] < horizon:
            st.sends = [s for s in st.sends if s[0] >= horizon]
        if st.blocked:
            for template in [t for t, until in st.blocked.items() if until < now]:
                del st.blocked[template]


def _fits(sends: list[tuple[int, str, int]], at: int, channel: str | None, limit: int, per: int) -> bool:
    """One more send at ``at`` keeps every window of length ``per`` (both ends
    inclusive) at most ``limit`` sends on ``channel`` (None: any channel)."""
    times = sorted(t for t, ch, _ in sends if (channel is None or ch == channel) and at - per <= t <= at + per)
    if len(times) < limit:
        return True
    for start in [t for t in times if t <= at] + [at]:
        if 1 + sum(1 for t in times if start <= t <= start + per) > limit:
            return False
    return True
