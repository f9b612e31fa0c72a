"""Engine snapshots: every piece of per-subscriber state, in a versioned msgpack format.

A snapshot holds the pattern runtimes' states (events bound in partial matches
included, as the tagged event union), the cool-down/``once`` gates, the
previous values ``crosses_*``/``changed`` read, the calendar and recency terms'
buckets (``engine._periods``), the subscribers' tags (as
``profile`` events left them), the contact policy stage's state
(``engine._snapshot_policy``), pending deadlines, the trigger-id counters, the
stream time and the counters. Restoring it into a fresh engine continues the
run exactly where it stopped.

State is keyed by scenario name and a fingerprint of what it depends on, so a
snapshot restores into a changed plan: a scenario whose pattern is unchanged
keeps its pattern state, one whose cool-down/``once`` clauses are unchanged
keeps its gates, everything else (withdrawn scenarios, changed patterns) is
dropped and reported.

File layout: ``MAGIC`` then one msgpack map whose ``format`` field says how to
read the rest (``_READERS``); older formats stay readable.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterable
from typing import Any

import msgspec

from kairos.engine._engine import Engine, ScenarioStats
from kairos.engine._events import event_union
from kairos.engine._periods import CalendarState
from kairos.engine._snapshot_policy import POLICY_OWNER, PolicyState, capture_policy, restore_policy
from kairos.engine._universe import UniverseState
from kairos.engine.forms import Sweep, kept_fields
from kairos.engine.forms.schedule import ARMING
from kairos.plan import Scenario

MAGIC = b"KAIROS-SNAPSHOT\n"
#: 2: an absence that keeps only some fields of its first event stores its waits packed
#: (``PackedWaits``; format 1 stored whole events), under a pattern key naming those fields
FORMAT = 2


class SnapshotError(Exception):
    """A snapshot file cannot be read: not a snapshot, damaged, or from a newer Kairos."""


class ScenarioState(msgspec.Struct, array_like=True):
    """One scenario's state; ``states`` is decoded only if the scenario is still loaded."""

    name: str
    version: str
    pattern_key: str  #: fingerprint of the pattern: its states are kept only under the same one
    gates_key: str  #: fingerprint of cooldown/once: the gates are kept only under the same one
    states: msgspec.Raw
    gate_last: dict[str, int]  #: msisdn → time of the last trigger (cool-down)
    gate_values: dict[str, Any]  #: msisdn → the ``once per`` value (True for ``once``)
    stats: ScenarioStats


class EngineState(msgspec.Struct):
    """Everything an engine holds between two events."""

    now: int
    seq: int
    events_in: int
    late_events: int
    trigger_loops: int
    id_ts: int | None
    id_counts: list[tuple[str, str, int]]  #: (scenario, msisdn, n) for triggers at ``id_ts``
    deadlines: list[tuple[int, int, str, str]]  #: (when, seq, scenario, msisdn)
    prev: list[tuple[str, str, dict[str, Any]]]  #: (event type, field, msisdn → value)
    tags: dict[str, dict[str, Any]]
    scenarios: list[ScenarioState]
    policy: PolicyState | None = None  #: the contact policy stage's state, when the plan has one
    #: tag name → the subscribers whose tag of that name the engine wrote (``set``, ``profile``); None in a
    #: snapshot from before written tags were marked: its ``tags`` then replace the loaded ones whole
    written: dict[str, list[str]] | None = None
    #: the calendar and recency terms' buckets (``engine._periods``); None in snapshots from before them
    calendar: CalendarState | None = None
    #: who schedules visit (LANGUAGE.md §9.1), when the plan has one; None in older snapshots
    universe: UniverseState | None = None
    #: scenario name → the instant a schedule is sweeping in slices (a daemon), where it stands
    sweeps: dict[str, Sweep] = msgspec.field(default_factory=dict)


class Snapshot(msgspec.Struct):
    """A snapshot file: the engine's state plus whatever the daemon adds (source positions)."""

    format: int
    taken_at: int  #: wall clock, epoch ms
    engine: EngineState
    extra: bytes = b""  #: the daemon's own msgpack (positions, buffered events)


class RestoreReport(msgspec.Struct):
    """What a restore kept and what it dropped (scenarios withdrawn or changed)."""

    kept: list[str] = msgspec.field(default_factory=list)
    pattern_dropped: list[str] = msgspec.field(default_factory=list)
    gates_dropped: list[str] = msgspec.field(default_factory=list)
    withdrawn: list[str] = msgspec.field(default_factory=list)
    versions: dict[str, str] = msgspec.field(default_factory=dict)  #: the saved scenarios' versions, by name
    #: (scenario, term) of each calendar or recency term the saved state did not hold: it starts empty
    calendar_started: list[tuple[str, str]] = msgspec.field(default_factory=list)
    #: (scenario, term key, periods back kept, periods back read): a term read deeper than the state held it,
    #: whose older periods start empty (they read low until the term has run that long)
    calendar_deepened: list[tuple[str, str, int, int]] = msgspec.field(default_factory=list)


class _Header(msgspec.Struct):
    format: int


_encoder = msgspec.msgpack.Encoder()


# --- keys ---------------------------------------------------------------


def _shape(obj: Any) -> Any:
    """A structure's meaning without compiled code and source positions."""
    if isinstance(obj, msgspec.Struct):
        return (type(obj).__name__,) + tuple(
            (f, _shape(getattr(obj, f)))
            for f in obj.__struct_fields__
            if f not in ("fn", "python", "origin")
        )
    if isinstance(obj, (tuple, list)):
        return tuple(_shape(x) for x in obj)
    if isinstance(obj, frozenset):
        return tuple(sorted(obj))
    return obj


def _digest(obj: Any) -> str:
    return hashlib.sha256(repr(_shape(obj)).encode()).hexdigest()[:16]


def pattern_key(scn: Scenario) -> str:
    """Same key, same meaning of the pattern state (tracked fields included, and what an
    absence wait keeps of its first event when it keeps only some of it)."""
    kept = kept_fields(scn)
    if kept is None:
        return whole_key(scn)
    return _digest((scn.pattern, sorted(scn.tracked), kept))


def whole_key(scn: Scenario) -> str:
    """The key of the pattern state when it holds whole events (every format-1 snapshot):
    any runtime of the same pattern can take such state."""
    return _digest((scn.pattern, sorted(scn.tracked)))


def gates_key(scn: Scenario) -> str:
    """Same key, same meaning of the gate state."""
    return _digest((scn.cooldown_ms, scn.once, scn.once_per))


# --- capture ------------------------------------------------------------


def capture(engine: Engine, *, encode_states: bool = True) -> EngineState:
    """The engine's whole state, between two events (no copies of the big dicts).

    ``encode_states=False`` leaves the pattern states out (``transfer`` hands them over live).
    """
    scenarios = []
    empty = msgspec.Raw(b"")
    for i, scn in enumerate(engine.scenarios):
        gates = engine._gates[i]
        scenarios.append(
            ScenarioState(
                name=scn.name,
                version=scn.version,
                pattern_key=pattern_key(scn),
                gates_key=gates_key(scn),
                states=msgspec.Raw(_encoder.encode(engine.runtimes[i].snapshot_states())) if encode_states else empty,
                gate_last=gates.last if gates is not None else {},
                gate_values=gates.values if gates is not None else {},
                stats=engine.stats[i],
            )
        )
    names = [s.name for s in engine.scenarios] + [POLICY_OWNER]  # the policy's deadlines come after the runtimes
    policy = getattr(engine, "policy", None)
    return EngineState(
        now=engine.now,
        seq=engine._seq,
        events_in=engine.events_in,
        late_events=engine.late_events,
        trigger_loops=engine.trigger_loops,
        id_ts=engine._id_ts,
        id_counts=[(s, m, n) for (s, m), n in engine._id_counts.items()],
        deadlines=[(when, seq, names[i], m) for when, seq, i, m in engine._deadlines],
        prev=[(t, f, store) for (t, f), store in engine._prev.items() if store],
        tags=engine.reference.tags,
        scenarios=scenarios,
        policy=None if policy is None else capture_policy(policy, engine),
        written=engine.reference.written_by_name(),
        calendar=engine.periods.capture() if engine.periods else None,
        universe=None if engine.universe is None else engine.universe.capture(),
        sweeps={engine.scenarios[rt.index].name: sweep for rt in engine.schedules
                if (sweep := rt.saved_sweep()) is not None},
    )


def encode(engine: Engine, *, taken_at: int = 0, extra: bytes = b"") -> bytes:
    """A snapshot file's bytes."""
    return MAGIC + _encoder.encode(Snapshot(FORMAT, taken_at, capture(engine), extra))


# --- reading ------------------------------------------------------------


def _read_v1(body: bytes | memoryview) -> Snapshot:
    return msgspec.msgpack.decode(body, type=Snapshot)


#: format number → reader giving the current ``Snapshot``; a new format adds
#: its reader here and turns the older ones' output into the new shape
_READERS = {1: _read_v1, 2: _read_v1}  # 2 only adds ``PackedWaits`` to what pattern states may hold


def decode(data: bytes) -> Snapshot:
    """Read a snapshot file's bytes, of this or an older format."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a Kairos snapshot (the file does not start with the snapshot header)")
    body = memoryview(data)[len(MAGIC):]
    try:
        fmt = msgspec.msgpack.decode(body, type=_Header).format
    except msgspec.DecodeError as e:
        raise SnapshotError(f"damaged snapshot: {e}") from None
    reader = _READERS.get(fmt)
    if reader is None:
        raise SnapshotError(
            f"snapshot format {fmt} is newer than this Kairos reads (up to {FORMAT}); "
            "run the Kairos version that wrote it, or start without the snapshot"
        )
    try:
        return reader(body)
    except msgspec.DecodeError as e:
        raise SnapshotError(f"damaged snapshot: {e}") from None


# --- restore ------------------------------------------------------------


def transfer(old: Engine, new: Engine) -> RestoreReport:
    """Hand a running engine's state to a new one built from a changed plan (hot reload), without encoding it."""
    live = {scn.name: old.runtimes[i].states for i, scn in enumerate(old.scenarios)}
    return restore(new, capture(old, encode_states=False), live=live)


def _watch_all(engine: Engine, owner: Any, items: Iterable[tuple[int, str]]) -> None:
    """``engine.watch`` for many (when, msisdn) at once (a restore re-arms millions)."""
    g = engine._gc_granularity
    watch = engine.watch_bucket
    for when, m in items:
        watch(when // g, owner, m)


def restore(engine: Engine, state: EngineState, *, live: dict[str, dict[str, Any]] | None = None) -> RestoreReport:
    """Load ``state`` into a freshly built engine (no event fed yet); keeps what the plan still means.

    ``live``: scenario name → pattern states to take as they are instead of decoding ``states``.
    The cyclic garbage collector is paused meanwhile: millions of new objects, none of them garbage.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _restore(engine, state, live)
    finally:
        if was_enabled:
            gc.enable()


def _restore(engine: Engine, state: EngineState, live: dict[str, dict[str, Any]] | None) -> RestoreReport:
    report = RestoreReport()
    event = event_union()
    index = {scn.name: i for i, scn in enumerate(engine.scenarios)}
    kept_patterns: set[str] = set()
    for saved in state.scenarios:
        report.versions[saved.name] = saved.version
        i = index.get(saved.name)
        if i is None:
            report.withdrawn.append(saved.name)
            continue
        scn = engine.scenarios[i]
        for field in saved.stats.__struct_fields__:  # in place: routes hold the object
            setattr(engine.stats[i], field, getattr(saved.stats, field))
        rt = engine.runtimes[i]
        pattern_same = saved.pattern_key in (pattern_key(scn), whole_key(scn))
        if pattern_same:
            if live is not None:
                rt.restore(live[saved.name])
            else:
                rt.restore(msgspec.msgpack.decode(saved.states, type=rt.state_type(event)))
            kept_patterns.add(saved.name)
            expiry = rt.expiry
            _watch_all(engine, rt, ((exp, m) for m, st in rt.states.items() if (exp := expiry(st)) is not None))
        else:
            report.pattern_dropped.append(saved.name)
        gates = engine._gates[i]
        if gates is not None and saved.gates_key == gates_key(scn):
            gates.last.update(saved.gate_last)  # copies: a transfer must not share them with the old engine
            gates.values.update(saved.gate_values)
            if gates.cooldown_ms is not None:
                cd = gates.cooldown_ms
                _watch_all(engine, gates, ((last + cd, m) for m, last in gates.last.items()))
        elif saved.gate_last or saved.gate_values:
            report.gates_dropped.append(saved.name)
        if pattern_same and (gates is None or saved.gates_key == gates_key(scn)):
            report.kept.append(saved.name)
    engine.now = state.now
    engine._seq = state.seq
    engine.events_in = state.events_in
    engine.late_events = state.late_events
    engine.trigger_loops = state.trigger_loops
    engine._id_ts = state.id_ts
    engine._id_counts = {(s, m): n for s, m, n in state.id_counts}
    policy = getattr(engine, "policy", None)
    deadlines = engine._deadlines
    deadlines.clear()
    for when, seq, name, m in state.deadlines:
        if name in kept_patterns:
            deadlines.push(when, seq, index[name], m)
        elif name == POLICY_OWNER and policy is not None:
            deadlines.push(when, seq, policy.index, m)
    if policy is not None and state.policy is not None:
        restore_policy(policy, state.policy, engine)
    for event_type, field, values in state.prev:
        store = engine._prev.get((event_type, field))
        if store is not None:
            store.update(values)
    if engine.periods:
        held = {c.key for c in state.calendar.columns} if state.calendar is not None else set()
        if state.calendar is not None:
            engine.periods.restore(state.calendar)
        kept_depth = {c.key: len(c.pids) - 1 for c in state.calendar.columns if c.pids} if state.calendar else {}
        for scn in engine.scenarios:
            report.calendar_started.extend((scn.name, t.key) for t in scn.terms if t.key not in held)
            report.calendar_deepened.extend((scn.name, t.key, kept_depth[t.key], t.depth) for t in scn.terms
                                            if t.key in kept_depth and t.depth > kept_depth[t.key])
    if state.tags is not engine.reference.tags:  # a reload keeps the same reference data
        if state.written is None:  # an older snapshot: its tags as they were, written or read from the file,
            engine.reference.replace(state.tags)  # those not the file's now marked written
        else:  # the tags read now from tags.jsonl, with what the engine wrote over them
            engine.reference.overlay(state.tags, state.written)
    _restore_schedules(engine, state, kept_patterns)
    return report


def _restore_schedules(engine: Engine, state: EngineState, kept: set[str]) -> None:
    """The universe, each kept schedule's sweep under way; a schedule without a saved next instant
    (new, changed, or from an older snapshot) is armed from the saved time on."""
    universe = engine.universe
    if universe is None:
        return
    if state.universe is not None:
        universe.restore(state.universe)
    else:  # a snapshot from before schedules: every subscriber it holds state for was seen
        seen: set[str] = set()
        for store in engine._prev.values():
            seen.update(store)
        for rt in engine.runtimes:
            seen.update(rt.states)
        for gates in engine._gates:
            if gates is not None:
                seen.update(gates.last)
                seen.update(gates.values)
        universe.add(seen)
    names = {engine.scenarios[rt.index].name for rt in engine.schedules}
    armed = {name: when for when, _, name, m in state.deadlines if m == "" and name in names and name in kept}
    for rt in engine.schedules:
        name = engine.scenarios[rt.index].name
        sweep = state.sweeps.get(name)
        if name in kept and sweep is not None:
            rt.start(msgspec.structs.replace(sweep, members=list(sweep.members), caught=list(sweep.caught)))
        if name in armed:
            rt.next = armed[name]
        else:
            rt.arm(ARMING if state.now < ARMING else state.now)
