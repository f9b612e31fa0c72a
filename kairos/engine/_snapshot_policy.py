"""The contact policy stage's state in a snapshot: recent sends, blocked templates, open arbitration
windows, capacity queues and counts, and the send records feedback is joined to.

Scenarios are named, not numbered, so the state restores into a changed plan:
a send of a withdrawn scenario still counts against the subscriber's caps (it
was sent), while waiting triggers and records of a withdrawn scenario are
dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from kairos.engine._events import Feedback
from kairos.engine._feedback import Record
from kairos.engine._policy import Candidate, PolicyStage, _Sub

if TYPE_CHECKING:
    from kairos.engine._engine import Engine

#: the name deadlines of the policy stage carry in a snapshot (no scenario can be called that)
POLICY_OWNER = "@policy"


class CandidateState(msgspec.Struct, array_like=True):
    """A trigger waiting for the policy's decision."""

    id: str
    scenario: str
    msisdn: str
    ts: int
    params: list[dict[str, Any]]  #: the ``with`` values of every action of the chain
    depth: int


class SubState(msgspec.Struct, array_like=True):
    """One subscriber's policy state."""

    sends: list[tuple[int, str, str]]  #: (send_at, channel, scenario)
    blocked: dict[str, int]  #: template → blocked until
    window: list[CandidateState] | None
    first: int


class WaitingState(msgspec.Struct, array_like=True):
    """A trigger in a capacity queue, with the action of its chain it waits to use."""

    candidate: CandidateState
    action: int
    params: dict[str, Any]


class RecordState(msgspec.Struct, array_like=True):
    scenario: str
    channel: str
    template: str
    msisdn: str
    control: bool
    seen: int
    until: int = 0  #: the last time a feedback joins it (0 in older snapshots: a full retention from the restore)


class PolicyState(msgspec.Struct):
    """Everything a ``PolicyStage`` holds between two events."""

    subs: dict[str, SubState]
    used: list[tuple[str, int, int]]  #: (channel, period, sends) of an engine counting capacity alone
    waiting: dict[str, list[WaitingState]]
    records: dict[str, RecordState]
    unmatched_feedback: int = 0
    watches: list[tuple[int, str]] = []  #: (gc bucket, msisdn): when the stage asked to forget a subscriber
    parked: dict[str, list[Feedback]] = {}  #: feedback naming a trigger still held, by trigger id


def _candidate(c: Candidate) -> CandidateState:
    return CandidateState(c.id, c.scenario.name, c.msisdn, c.ts, list(c.params), c.depth)


def capture_policy(stage: PolicyStage, engine: Engine) -> PolicyState:
    """The state of ``engine``'s policy stage ``stage``."""
    names = [s.name for s in engine.scenarios]
    subs = {
        m: SubState(
            [(t, ch, names[i] if 0 <= i < len(names) else "") for t, ch, i in st.sends],
            st.blocked,
            None if st.window is None else [_candidate(c) for c in st.window],
            st.first,
        )
        for m, st in stage.states.items()
    }
    waiting = {
        ch: [WaitingState(_candidate(c), list(c.scenario.actions).index(a), p) for _, c, a, p in queue]
        for ch, queue in stage.waiting.items()
    }
    records = {
        k: RecordState(names[r.index], r.channel, r.template, r.msisdn, r.control, r.seen, r.until)
        for k, r in stage.records.items()
    }
    watches = [(key, m) for key, owner, m in engine.watches() if owner is stage]
    parked = {k: list(evs) for k, evs in stage._parked.items()}
    return PolicyState(subs, [(ch, p, n) for (ch, p), n in stage.used.items()], waiting, records,
                       stage.unmatched_feedback, watches, parked)


def restore_policy(stage: PolicyStage, state: PolicyState, engine: Engine) -> None:
    """Load ``state`` into ``stage``, fresh, of an ``engine`` whose scenarios may have changed."""
    index = {s.name: i for i, s in enumerate(engine.scenarios)}

    def candidate(cs: CandidateState) -> Candidate | None:
        i = index.get(cs.scenario)
        if i is None:
            return None
        scn = engine.scenarios[i]
        if len(cs.params) != len(scn.actions):
            return None  # the chain changed: the computed values no longer fit it
        return Candidate(cs.id, i, scn, cs.msisdn, cs.ts, tuple(cs.params), cs.depth)

    for m, ss in state.subs.items():
        st = _Sub()
        st.sends = [(t, ch, index.get(name, -1)) for t, ch, name in ss.sends]
        st.blocked = dict(ss.blocked)
        st.first = ss.first
        if ss.window is not None:
            window = [c for c in map(candidate, ss.window) if c is not None]
            st.window = window or None
            for waiting in window:
                stage._hold_window(waiting)
        stage.states[m] = st
    for key, m in state.watches:
        engine.watch_bucket(key, stage, m)
    if stage.grants is None:  # shared places live in their store, not in any one engine's state
        for ch, p, n in state.used:
            stage.used[(ch, p)] = n
    for ch, queue in state.waiting.items():
        for w in queue:
            held = candidate(w.candidate)
            if held is None or w.action >= len(held.scenario.actions):
                continue
            stage.waiting.setdefault(ch, []).append((held.rank(), held, held.scenario.actions[w.action], w.params))
            stage._waiting_ids.add(held.id)
            low = stage._queue_low.get(ch)
            if low is None or held.ts < low:
                stage._queue_low[ch] = held.ts
    retention = stage.feedback.retention_ms
    for k, r in state.records.items():
        i = index.get(r.scenario)
        if i is not None:
            rec = Record(i, r.channel, r.template, r.msisdn, r.control, r.seen)
            sent_at = r.until - retention if r.until else engine.now
            stage.feedback.add(k, rec, sent_at)
    stage.unmatched_feedback = state.unmatched_feedback
    for k, evs in state.parked.items():
        if k in stage._waiting_ids:
            stage._parked[k] = list(evs)
        else:  # its trigger was withdrawn with its scenario: nothing can join it any more
            stage.unmatched_feedback += len(evs)
