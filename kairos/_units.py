"""A unit of state: one engine with its event time, source positions and snapshot file.

Unpartitioned, the daemon has one unit for the whole stream (``snapshot.bin``).
Partitioned (Kafka, or an embedded partitioned log), it has one unit per
partition it owns (``partitions/p-NNNN.bin``): the partition's subscribers'
state, its own event time and its own offset. A partition moves between
instances by its files: the new owner takes its outbox store
(``p-NNNN.outbox``: what was already sent), loads its snapshot and resumes at
its offset.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import msgspec
import structlog

from kairos.adapters import FilePosition, wall_ms
from kairos.engine import (
    Dedup,
    DedupState,
    Engine,
    EventTime,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
    event_union,
    restore_snapshot,
)

log = structlog.get_logger("kairos.units")

ALL = "all"  #: the one unit of an unpartitioned daemon


def unit_name(partition: int) -> str:
    """The unit that holds a partition's state (and names its snapshot file)."""
    return f"p-{partition:04d}"


def partition_number(name: str) -> int:
    """The partition a unit named by ``unit_name`` holds."""
    return int(name[2:])


def _sort_rows(engine: Engine) -> None:
    """Sort a schedule's tag rows now, as the unit opens, not at its first instant (a second for a
    million rows in no order: ``Universe.rows``)."""
    if engine.universe is not None:
        engine.universe.rows()


class UnitState(msgspec.Struct):
    """What the daemon adds to a unit's engine snapshot."""

    positions: dict[str, FilePosition]  #: source → position (a Kafka offset is ``name=topic, dev=partition``)
    buffered: msgspec.Raw  #: events waiting in the lateness buffer, a msgpack list of the event union
    max_ts: int
    dedup: DedupState | None = None  #: identities of the events seen within the duplicate window
    #: the stream's start as the daemon knew it (``StreamStart``); None: unknown, or a snapshot from before
    began: int | None = None


class StreamStart:
    """The earliest time any unit of this daemon armed its schedules from (LANGUAGE.md §9.1), shared by all
    of them: one engine of the whole stream chooses its schedules' first instants at the stream's first event,
    so a unit whose own events come later (a partition, one assigned later, a reload's engine) arms from it
    too and decides the instants ``kairos replay`` decides over the same stream.

    Only a time an engine armed from counts: an event the daemon refused (too far ahead of the wall clock)
    never reaches an engine and sets nothing."""

    __slots__ = ("began",)

    def __init__(self) -> None:
        self.began: int | None = None  #: None: no unit has armed yet

    def heard(self, t: int | None) -> None:
        """A unit armed (or a snapshot says the stream began) at ``t``: the start is the earliest heard."""
        if t is not None and (self.began is None or t < self.began):
            self.began = t


class UnitLoadError(Exception):
    """A unit's snapshot cannot be read."""


_encoder = msgspec.msgpack.Encoder()


def _events() -> msgspec.msgpack.Decoder[list[Any]]:
    """The decoder of a snapshot's buffered events, built when a unit restores (once): after the folder's
    event catalogue is registered, so it knows its types too."""
    return msgspec.msgpack.Decoder(list[event_union()])  # type: ignore[misc]


#: the longest one turn of a schedule instant's sweep may take (LANGUAGE.md §9.1), in seconds: events that
#: arrive meanwhile wait at most about this long. A turn is bounded by time, not by a count of visits, since
#: a visit costs from well under a microsecond (its ``where`` false) to several (a send)
SWEEP_TURN_S = 0.002
#: while blocks of events keep coming, a sweep's turns take at most this share of the time the blocks took
#: (a backlog still moves a sweep, at about a tenth of the core); with no block since the last turn (the
#: sources are waiting) a turn takes ``SWEEP_TURN_S`` whole. A third let the queue a crossing builds grow
#: at half the max rate (bench.live_sweep: p99 0.34 s during the sweep, against 0.11-0.23 s with a tenth)
SWEEP_SHARE = 0.1
#: visits between two looks at the clock within a turn
SWEEP_CHUNK = 100


class Unit:
    """One engine, its event time, its positions and where it is snapshotted."""

    __slots__ = ("name", "path", "engine", "clock", "positions", "dedup", "on_fault", "start", "armed",
                 "_blocks", "_blocks_at_turn", "_owed")

    def __init__(self, name: str, path: Path, engine: Engine, lateness_ms: int,
                 on_late: Callable[[Any, int], None], dedup_window_ms: int | None = None,
                 on_fault: Callable[["Unit", Any, BaseException], None] | None = None,
                 start: StreamStart | None = None) -> None:
        """``on_fault(unit, event or None for a deadline, exception)``: processing raised (``Engine.on_fault``);
        the engine skipped the event or deadline and goes on. ``start``: the stream's start the daemon's units
        share (None: this unit's own)."""
        self.name = name
        self.path = path
        self.engine = engine
        self.clock = EventTime(engine, lateness_ms, on_late=on_late)
        self.positions: dict[str, FilePosition] = {}
        #: duplicates are skipped before the lateness buffer; None: off
        self.dedup = None if dedup_window_ms is None else Dedup(dedup_window_ms)
        self.on_fault = on_fault
        self.start = StreamStart() if start is None else start
        self.armed = engine.armed  #: every schedule has chosen its next instant (or there is none)
        self._hear_faults(engine)
        _sort_rows(engine)
        self._blocks = self._blocks_at_turn = 0  #: blocks pushed, and as of the last sweep turn
        self._owed = 0.0  #: seconds of sweep turns the blocks since have earned (``SWEEP_SHARE``)

    def _hear_faults(self, engine: Engine) -> None:
        report = self.on_fault
        if report is not None:
            engine.on_fault = lambda _i, ev, exc: report(self, ev, exc)

    def push(self, events: list[Any]) -> None:
        """Decoded events in: duplicates skipped, the rest to event time."""
        if self.dedup is not None:
            events = self.dedup.fresh(events)
        began = perf_counter()
        if self.armed:
            self.clock.push(events)
        else:
            self._arming(events)
        self._blocks += 1
        if self.engine.sweeping:
            self._owed = min(self._owed + (perf_counter() - began) * SWEEP_SHARE, SWEEP_TURN_S)

    @property
    def sweeping(self) -> bool:
        """A schedule instant is being swept (``sweep`` has subscribers to visit)."""
        engine = self.engine
        return bool(engine.schedules) and engine.sweeping

    def sweep(self) -> int:
        """One turn of the schedule sweeps under way (LANGUAGE.md §9.1), taken between blocks of events by the
        daemon's sweep task; how many subscribers it visited. With no block since the last turn (the
        sources are waiting) it visits for ``SWEEP_TURN_S``; else for the share of the blocks' time they
        earned (``SWEEP_SHARE``), so neither an event waits more than a turn nor a backlog stops a sweep."""
        if not self.sweeping:
            return 0
        idle = self._blocks == self._blocks_at_turn
        self._blocks_at_turn = self._blocks
        budget = SWEEP_TURN_S if idle else self._owed
        if budget <= 0.0:
            return 0
        engine = self.engine
        now = perf_counter()
        end = now + budget
        visited = 0
        while True:
            n = engine.sweep_step(SWEEP_CHUNK)
            visited += n
            if n < SWEEP_CHUNK:  # fewer than asked: every sweep has ended
                break
            now = perf_counter()
            if now >= end:
                break
        if not idle:
            self._owed = max(0.0, end - now)
        return visited

    def advance_to(self, t: int) -> None:
        """Time reaches ``t`` without events (idle advance): ``EventTime.advance_to``, armed as ``push`` arms."""
        if self.armed:
            self.clock.advance_to(t)
        else:
            self._arming(None, t)

    def _arming(self, events: list[Any] | None, t: int = 0) -> None:
        """Events in (``events``) or time to ``t`` (None) while the schedules are not armed: they arm from the
        stream's start if it came before this unit's first event, and an engine that armed tells the start."""
        engine = self.engine
        engine.began = self.start.began
        if events is None:
            self.clock.advance_to(t)
        else:
            self.clock.push(events)
        self.start.heard(engine.armed_from)
        self.armed = engine.armed

    def swap(self, engine: Engine) -> None:
        """A reload's engine takes over."""
        self.engine = engine
        self.clock.engine = engine
        self.armed = engine.armed
        self._hear_faults(engine)
        _sort_rows(engine)

    def encode(self) -> bytes:
        """The unit's snapshot file content."""
        extra = UnitState(dict(self.positions), msgspec.Raw(_encoder.encode(self.clock.buffered())), self.clock.max_ts,
                          None if self.dedup is None else self.dedup.state(), self.start.began)
        return encode_snapshot(self.engine, taken_at=wall_ms(), extra=_encoder.encode(extra))

    def load(self) -> dict[str, str] | None:
        """Restore from the unit's file if there is one; returns the scenario versions it was taken under."""
        path = self.path
        prev = path.with_name(path.name + ".prev")
        if not path.exists() and prev.exists():
            log.warning("no snapshot but a previous one: a crash interrupted publishing; using it", path=str(prev))
            path = prev
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            log.info("no snapshot: starting with empty state", unit=self.name, path=str(self.path))
            return None
        try:
            snap = decode_snapshot(data)
            report = restore_snapshot(self.engine, snap.engine)
            extra = msgspec.msgpack.decode(snap.extra, type=UnitState)
            self.clock.restore(_events().decode(extra.buffered), extra.max_ts)
            if self.dedup is not None and extra.dedup is not None:
                self.dedup.restore(extra.dedup)
            self.start.heard(extra.began)
            self.armed = self.engine.armed
        except (SnapshotError, msgspec.DecodeError, msgspec.ValidationError) as e:
            raise UnitLoadError(
                f"{path}: {e}. Move the file away to start with empty state (sends already made are "
                "still never repeated: the outbox ledger remembers them)"
            ) from None
        self.positions = dict(extra.positions)
        _sort_rows(self.engine)  # the restore forgot the rows sorted as the unit opened
        log.info("snapshot loaded", unit=self.name, path=str(path), taken_at=snap.taken_at,
                 stream_time=self.engine.now, kept=report.kept, dropped_changed=report.pattern_dropped,
                 gates_dropped=report.gates_dropped, withdrawn=report.withdrawn,
                 buffered=len(self.clock._heap), remembered=None if self.dedup is None else len(self.dedup),
                 positions={k: v.offset for k, v in self.positions.items()})
        for scenario, term in report.calendar_started:
            log.info("calendar term starts empty", unit=self.name, scenario=scenario, term=term)
        for scenario, term, kept, depth in report.calendar_deepened:
            log_deepened(scenario, term, kept, depth, unit=self.name)
        return report.versions


def log_deepened(scenario: str, term: str, kept: int, depth: int, **where: str) -> None:
    """Say that a calendar term now reads ``depth`` periods back where the state kept ``kept``: the older
    periods start empty, so the term reads low until it has run that long (LANGUAGE.md §9.2)."""
    log.info("calendar term reads deeper than its state: the older periods start empty", scenario=scenario,
             term=term, periods_kept=kept, periods_read=depth, **where)

