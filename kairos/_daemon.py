"""``kairos run``: the engine daemon — sources → event time → engine → outbox → channels, with snapshots.

One anyio task group on uvloop. Start-up, in order: the configuration is
validated, the scenarios compiled and bound to the reference data, the last
snapshot loaded (engine state, buffered events, source positions), the
outbox started (its journal and ledger remember every send accepted or made),
then the sources resume from their saved positions. Events after the snapshot
are read again, the same decisions are made with the same trigger ids, and
the outbox drops the repeats: nothing is lost and nothing is sent twice.

Snapshots are periodic and at shutdown; a snapshot is published only after
every send its state implies is durable in the outbox. A snapshot that fails
(whatever the cause) is counted, logged and makes ``/ready`` answer 503 until
one succeeds; the previous one stays and processing goes on. SIGTERM/SIGINT:
stop reading, take the final snapshot, stop the outbox, exit 0 — or
``EXIT_SNAPSHOT_FAILED`` if the final snapshot failed.

State lives in units (``kairos._units``): one for an unpartitioned daemon,
one per owned partition for a partitioned log or a Kafka consumer group. Each
unit's sends go to its own outbox store: the unpartitioned daemon's is
``state_dir/outbox``; a partition's is beside its snapshot
(``partitions_dir/p-NNNN.outbox``), locked before the snapshot is read and
released after the last one, so the partition's next owner knows what was sent.

This module is the composition root: ``Daemon`` builds the parts — units,
snapshot files, outbox, reloader (``kairos._reload``), HTTP endpoints
(``kairos._http``), metrics (``kairos._metrics``), the Kafka consumer
(``kairos._kafka``) — and hands each itself as the narrow interface the part
declares (a ``typing.Protocol``); no part imports this module.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel
import msgspec
import structlog

from kairos import dsl
from kairos._compile import compile_configured, refuse_unknown_names
from kairos._config import (
    Config,
    ConfigError,
    FileSourceConfig,
    KafkaSourceConfig,
    PartitionedSourceConfig,
    PartitionBusy,
    StartError,
    StdinSourceConfig,
    load_config,
)
from kairos._http import HttpServer
from kairos._kafka import KafkaPump
from kairos._kafka_feedback import KafkaFeedback
from kairos._metrics import exposition, registry_for
from kairos._pseudonym import ENV_KEY, Pseudonymiser, pseudonym_key, pseudonymise_stdlib
from kairos._reload import AuditLog, Reloader, changes, versions
from kairos._snapfiles import SnapshotFailed, SnapshotFiles
from kairos._units import ALL, StreamStart, Unit, UnitLoadError, partition_number, unit_name
from kairos.adapters import (
    Channel,
    ChannelConfigError,
    ChannelLoadError,
    Feedback,
    FeedbackFile,
    FeedbackServer,
    FileChannel,
    FilePosition,
    FileTail,
    GrantFolder,
    KafkaChannel,
    StdinSource,
    TemplateCatalog,
    discover_channels,
    partition_file,
    partition_of,
    wall_ms,
)
from kairos.engine import (
    BindError,
    Engine,
    Reference,
    ReferenceError,
    Send,
    Settler,
    SinkError,
    TagWrite,
    count_newlines,
    event_union,
    fault_place,
)
from kairos.adapters import Outbox, OutboxConfig, StoreBusy
from kairos.plan import Plan

log = structlog.get_logger("kairos.daemon")

EXIT_OK, EXIT_INVALID = 0, 1
#: stopped on a signal, but the final snapshot failed: the previous one stays and a restart resumes from it
EXIT_SNAPSHOT_FAILED = 3
#: the outbox could not take a decided send (a full disk): stopped without a final snapshot
EXIT_SINK_FAILED = 4

#: later than any event time (the ``max_ahead_ms`` check switched off)
NEVER = 2**63

#: late events and bad lines are logged one by one up to this many, then every ``LOG_EVERY``-th
LOG_FIRST, LOG_EVERY = 20, 1000


#: the send watermark of a kept snapshot this run has not written (the ``.prev`` file it found): unknown, so
#: nothing below the present may be forgotten on its account
UNKNOWN_WATERMARK = -(2**62)


class Daemon:
    """The running daemon's parts; ``run`` is the whole life."""

    def __init__(self, config: Config, config_path: str | Path = "") -> None:
        self.config = config
        self.plan, self.templates = compile_configured(config, config_path)
        try:
            self.reference = Reference.load(config.reference) if config.reference else Reference()
            refuse_unknown_names(self.plan, self.reference)  # a list or area the data lacks, at its use
        except (ReferenceError, dsl.CheckError) as e:
            raise StartError(str(e)) from None
        self.files = SnapshotFiles(fork=config.snapshot.fork, keep_previous=config.snapshot.keep_previous)
        #: ``tags_out``: where tag writes are appended (flushed at each snapshot and at the end); None: nowhere
        self._tags_out: IO[bytes] | None = None
        if config.tags_out:
            try:
                self._tags_out = _open_tags_out(Path(config.tags_out))
            except OSError as e:
                raise StartError(f"tags_out: {e}") from None
        self._encode_tags = msgspec.json.Encoder().encode
        self.tags_out_errors = 0  #: tag writes (or flushes) the ``tags_out`` file refused: counted, logged
        self._decoder = msgspec.json.Decoder(event_union())
        self.decode_errors = 0
        self.late = 0
        #: events and deadlines whose processing raised: skipped, logged (``Engine.on_fault``)
        self.event_errors = 0
        self.future = 0  #: events refused for a ts more than ``time.max_ahead_ms`` ahead of the wall clock
        self._max_ahead = config.time.max_ahead_ms or None
        self.not_owned = 0
        self._read: dict[str, int] = {}  #: bytes read so far from each source without a position (stdin)
        self.events_by_type: dict[type, int] = {}
        self.sends_by: dict[tuple[str, str], int] = {}  # (scenario, channel) → sends accepted
        self.ready = False
        self.sends = 0
        self.duplicate_sends = 0
        self.snapshot_failures = 0
        #: why the last snapshot failed; None once one succeeds (``/ready`` answers 503 meanwhile)
        self.snapshot_error: str | None = None
        self._last_input = time.monotonic()
        #: state that lived through SETTLE_EVENTS events leaves the collector's walk (engine.settle)
        self._settler = Settler()
        self.partitioned = config.partitioned
        #: a channel capacity's places, shared by the partitions of every instance (None: one engine counts)
        self.grants = GrantFolder(config.partitions_dir / "capacity") if self.partitioned else None
        self.kafka_pump: KafkaPump | None = None  #: the Kafka source's consumer, while it runs (metrics read it)
        self.kafka_feedback: KafkaFeedback | None = None  #: ``[feedback.kafka]``'s consumer, while it runs
        self.after_snapshot: list[Any] = []  #: async hooks given {unit: positions} once a snapshot is published
        #: one snapshot at a time, units chosen inside it; closing a unit waits for the one under way
        self._snapshotting = anyio.Lock()
        #: unit → send watermarks of its kept snapshot files (current, previous): what a restart could decide again
        self.kept_watermarks: dict[str, tuple[int, int]] = {}
        self.units: dict[str, Unit] = {}
        #: the stream's start, shared by the units: each arms its schedules from it (``StreamStart``)
        self.stream_start = StreamStart()
        self.outbox = Outbox(_outbox_config(config), self._channels(), templates=self.templates)
        try:
            # the instance's own store (state_dir/outbox): the unpartitioned daemon's sends, and a partitioned
            # daemon's from before its partitions had stores (delivered, and never sent again)
            self.outbox.adopt(Outbox.DEFAULT, config.outbox_dir)
        except StoreBusy as e:
            raise StartError(f"state_dir: {e} (each instance needs a state_dir of its own)") from None
        before: dict[str, str] | None = None
        for name in self._initial_units():
            versions_then = self.open_unit(name)
            before = before or versions_then
        self.reloader = Reloader(self, AuditLog(config.audit_path), poll_s=config.reload.poll_ms / 1000,
                                 config_path=config_path)
        self.reloader.audit.write(changes(before or {}, versions(self.plan), "start"))
        self._metrics = registry_for(self)

    def metrics(self) -> bytes:
        """The Prometheus text of the daemon's metrics, read from its counters now (``GET /metrics``)."""
        return exposition(self._metrics)

    # --- units ---------------------------------------------------------------

    def _initial_units(self) -> list[str]:
        source = self.config.sources[0]
        if isinstance(source, PartitionedSourceConfig):
            return [unit_name(p) for p in source.owned_partitions]
        if isinstance(source, KafkaSourceConfig):
            return []  # the consumer group assigns them
        return [ALL]

    def _unit_path(self, name: str) -> Path:
        if name == ALL:
            return self.config.snapshot_path
        return self.config.partitions_dir / f"{name}.bin"

    def _unit_reference(self, name: str) -> Reference:
        """Unpartitioned: the reference data; a partition: the same, with only its subscribers' tags."""
        ref = self.reference
        if name == ALL:
            return ref
        count, p = self.config.partition_count, partition_number(name)
        tags = {m: dict(t) for m, t in ref.tags.items() if partition_of(m, count) == p}
        return Reference(areas_of_cell=ref.areas_of_cell, tags=tags, lists=ref.lists, kb=ref.kb)

    def _store_dir(self, name: str) -> Path:
        """A partition's outbox store: beside its snapshot, so it moves with it (the default store is the
        unpartitioned daemon's, in state_dir/outbox)."""
        return self.config.partitions_dir / f"{name}.outbox"

    def new_engine(self, plan: Plan, reference: Reference, unit: str = ALL) -> Engine:
        """An engine whose sends go to ``unit``'s outbox store."""
        sink = functools.partial(self._on_send, store=_store_of(unit))
        tags = None if self._tags_out is None else self._on_tag_write
        engine = Engine(plan, reference, sink=sink, tz=self.config.tz, capacity=self.grants, tag_sink=tags,
                        sliced=True)
        # the unit's subscribers are the rows to come: room for them now, not column doublings mid-stream
        engine.periods.reserve(len(reference.tags))
        return engine

    def open_unit(self, name: str) -> dict[str, str] | None:
        """Start owning a unit: build its engine, take its outbox store (a partition's: locked, so its previous
        owner has released it and published its last snapshot) and load its snapshot; returns the versions
        it was taken under."""
        try:
            engine = self.new_engine(self.plan, self._unit_reference(name), name)
        except BindError as e:
            raise StartError(str(e)) from None
        store = _store_of(name)
        if store != Outbox.DEFAULT and store not in self.outbox.stores():
            try:
                # before the snapshot is read: the lock is freed only after the last owner's final snapshot
                self.outbox.adopt(store, self._store_dir(name))
            except StoreBusy as e:
                raise PartitionBusy(f"partition {name}: {e}") from None
        unit = Unit(name, self._unit_path(name), engine, self.config.time.allowed_lateness_ms, self._on_late,
                    self.config.dedup_window_ms, self._on_fault, self.stream_start)
        try:
            versions_then = unit.load()
        except UnitLoadError as e:
            raise StartError(str(e)) from None
        self.units[name] = unit
        # the loaded file's watermark (a fresh engine's is far in the past), and the .prev file's: older, and
        # unknown until this run's first snapshot of the unit replaces it
        self.kept_watermarks[name] = (engine.send_watermark(), UNKNOWN_WATERMARK)
        return versions_then

    async def adopt_unit(self, name: str, *, quiet: bool = False) -> dict[str, str] | None:
        """``open_unit`` for a partition assigned while running: its outbox store's lock is awaited without
        blocking the event loop (its previous owner may still be releasing it). ``PartitionBusy`` if the lock
        stays held, ``StartError`` if the state cannot be loaded; ``quiet``: the wait is not logged (a retry,
        whose caller logs)."""
        store = _store_of(name)
        adopted = False
        if store != Outbox.DEFAULT and store not in self.outbox.stores():
            try:
                await self.outbox.adopt_when_free(store, self._store_dir(name), quiet=quiet)
            except StoreBusy as e:
                raise PartitionBusy(f"partition {name}: {e}") from None
            adopted = True
        try:
            return self.open_unit(name)
        except StartError:
            if adopted:  # not ours after all: the next owner must not wait on a lock held for nothing
                with anyio.CancelScope(shield=True):  # a cancelled retry must not leave the lock held
                    await self.outbox.release(store)
            raise

    async def close_unit(self, name: str) -> None:
        """Stop owning a unit (after its state is in a snapshot): its subscribers' state leaves this process,
        and its outbox store is released (in-flight attempts settled, fsynced, unlocked) for the next owner."""
        async with self._snapshotting:  # a snapshot under way finishes first; later ones no longer see the unit
            self.units.pop(name, None)
            self.kept_watermarks.pop(name, None)
        store = _store_of(name)
        if store != Outbox.DEFAULT:
            await self.outbox.release(store)

    def swap(self, plan: Plan, engines: dict[str, Engine], templates: TemplateCatalog | None = None) -> None:
        """A reload's new plan, engines and templates take over (between two events)."""
        self.plan = plan
        if templates is not None:
            self.templates = self.outbox.templates = templates
        for name, engine in engines.items():
            self.units[name].swap(engine)

    @property
    def duplicates(self) -> int:
        """Events skipped as duplicates by the units owned now."""
        return sum(u.dedup.duplicates for u in self.units.values() if u.dedup is not None)

    @property
    def engines(self) -> list[Engine]:
        return [u.engine for u in self.units.values()]

    def _channels(self) -> dict[str, Channel]:
        classes: dict[str, type[Channel]] = {"file": FileChannel, "kafka": KafkaChannel}
        try:
            classes.update(discover_channels())
        except ChannelLoadError as e:
            raise StartError(str(e)) from None
        out: dict[str, Channel] = {}
        for name, section in self.config.channels.items():
            section = dict(section)
            plugin = section.pop("plugin", name)
            cls = classes.get(plugin)
            if cls is None:
                raise StartError(f"channels.{name}: no channel plugin named {plugin!r}; "
                                 f"registered: {', '.join(sorted(classes))}")
            try:
                out[name] = cls.from_config(section, name=name, feedback=self._on_feedback)
            except ChannelConfigError as e:
                raise StartError(f"channels.{name}: {e}") from None
        return out

    # --- the hot side: synchronous, between awaits --------------------------

    def ingest(self, source: str, data: bytes, position: FilePosition | None, unit: str = ALL, *,
               record_offsets: list[int] | None = None) -> int:
        """A block of whole JSON lines from ``source`` for ``unit``, then its position after them; returns
        the number of events taken. Blocks for an unpartitioned daemon from a partitioned feed (HTTP
        ingest into a partitioned daemon) are routed by msisdn; events of partitions not owned are refused.

        Only ``\\n`` ends a line: a block whose events do not match its lines one to one (a bad or
        blank line, two values on one line) is decoded again line by line, and each bad line is
        logged with where it is (``record_offsets``: a Kafka record's offset for each line)."""
        try:
            events = self._decoder.decode_lines(data)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # RecursionError: nested ~1000 deep
            events = None
        # a \r can make two values of one line while a blank line hides the extra one from the count
        if events is None or len(events) != _lines_in(data) or b"\r" in data:
            events = self._one_by_one(source, data, position, record_offsets)
        if position is None:
            self._read[source] = self._read.get(source, 0) + len(data)
        counts = self.events_by_type
        limit = NEVER if self._max_ahead is None else wall_ms() + self._max_ahead
        ahead = 0
        for ev in events:
            if ev.ts > limit:
                ahead += 1
                continue
            cls = ev.__class__
            counts[cls] = counts.get(cls, 0) + 1
        if ahead:
            events = self._refuse_ahead(source, events, limit)
        target = self.units.get(unit)
        if target is not None:
            target.push(events)
            if position is not None:
                target.positions[source] = position
        else:
            self._route(events)
        self._last_input = time.monotonic()
        self._settler.tick(len(events))
        return len(events)

    def _route(self, events: list[Any]) -> None:
        count = self.config.partition_count
        by: dict[str, list[Any]] = {}
        for ev in events:
            by.setdefault(unit_name(partition_of(ev.msisdn, count)), []).append(ev)
        for name, part in by.items():
            target = self.units.get(name)
            if target is None:
                self.not_owned += len(part)
                log.warning("events of a partition this instance does not own were refused", unit=name, events=len(part))
            else:
                target.push(part)

    def _one_by_one(self, source: str, data: bytes, position: FilePosition | None,
                    record_offsets: list[int] | None) -> list[Any]:
        decode = self._decoder.decode
        events = []
        start = 0
        for k, line in enumerate(data.split(b"\n")):
            at, start = start, start + len(line) + 1
            if not line.strip():
                continue
            try:
                events.append(decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as e:
                self.decode_errors += 1
                n = self.decode_errors
                if n <= LOG_FIRST or n % LOG_EVERY == 0:
                    log.warning("bad input line skipped", source=source, **self._where(source, data, position, at, k,
                                                                                       record_offsets),
                                error=str(e), line=line[:200].decode("utf-8", "replace"), decode_errors=n)
        return events

    def _refuse_ahead(self, source: str, events: list[Any], limit: int) -> list[Any]:
        """``events`` without those dated after ``limit`` (the wall clock plus ``max_ahead_ms``), which are
        counted and logged — by type and ts, not msisdn — instead of moving the stream's time ahead."""
        kept = []
        for ev in events:
            if ev.ts <= limit:
                kept.append(ev)
                continue
            self.future += 1
            n = self.future
            if n <= LOG_FIRST or n % LOG_EVERY == 0:
                log.warning("event too far ahead of the wall clock refused", source=source,
                            type=ev.__struct_config__.tag, ts=ev.ts, ahead_ms=ev.ts - (limit - self._max_ahead),
                            max_ahead_ms=self._max_ahead, future_events=n)
        return kept

    def _where(self, source: str, data: bytes, position: FilePosition | None, at: int, k: int,
               record_offsets: list[int] | None) -> dict[str, Any]:
        """Where the line at byte ``at`` (the ``k``-th) of a block stands in its source, for the log."""
        if record_offsets is not None and position is not None:
            return {"topic": position.name, "partition": position.dev, "record_offset": record_offsets[k]}
        if position is not None:  # a file: the position is just after the block
            return {"file": position.name, "offset": position.offset - len(data) + at}
        if source == "http":  # one request's body
            return {"request_line": k + 1, "request_offset": at}
        return {"offset": self._read.get(source, 0) + at}  # standard input: bytes read before it

    def _on_late(self, ev: Any, now: int) -> None:
        self.late += 1
        n = self.late
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.warning("late event not processed", msisdn=ev.msisdn, type=type(ev).__name__.lower(), ts=ev.ts,
                        stream_time=now, late_events=n)

    def _on_fault(self, unit: Unit, ev: Any, exc: BaseException) -> None:
        """An event (or, ``ev`` None, a deadline) whose processing raised: the engine skipped it and went
        on. Logged with the scenario's place and the exception, never the number nor the event's values."""
        self.event_errors += 1
        n = self.event_errors
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            engine = unit.engine
            where = fault_place(exc, engine.scenario_files)
            error = f"{type(exc).__name__}: {exc}"
            if ev is None:
                log.error("deadline processing failed; deadline skipped", unit=unit.name, ts=engine.now,
                          scenario_at=where, error=error, event_errors=n)
            else:
                log.error("event processing failed; event skipped", unit=unit.name, type=ev.__struct_config__.tag,
                          ts=ev.ts, scenario_at=where, error=error, event_errors=n)

    def _on_send(self, send: Send, store: str = Outbox.DEFAULT) -> None:
        """The engine's sink: a decided send into the outbox store of the unit that decided it."""
        outbox = self.outbox
        expired = outbox.expired
        if outbox.submit(send, store=store):
            self.sends += 1
            key = (send.scenario, send.channel)
            self.sends_by[key] = self.sends_by.get(key, 0) + 1
        elif outbox.expired == expired:
            self.duplicate_sends += 1  # decided again after a restart: already in the outbox

    def _on_tag_write(self, write: TagWrite) -> None:
        """The engines' tag sink when ``tags_out`` is set: one JSON line appended per write (buffered).

        Never raises: the tags themselves are in the state and its snapshots, the file is a record of them,
        so a full disk is counted and logged (``_tags_out_failed``), not a sink failure that would stop the
        daemon and drop the trigger's send."""
        out = self._tags_out
        if out is not None:
            try:
                out.write(self._encode_tags(write) + b"\n")
            except OSError as e:
                self._tags_out_failed(e)

    def _flush_tags(self) -> None:
        """Push the buffered tag writes to ``tags_out`` (after a snapshot, at the end); a failure is counted
        and logged (the tags themselves are in the state and its snapshots: the file is a record of them)."""
        if self._tags_out is not None:
            try:
                self._tags_out.flush()
            except OSError as e:
                self._tags_out_failed(e)

    def _tags_out_failed(self, e: OSError) -> None:
        self.tags_out_errors += 1
        n = self.tags_out_errors
        if n <= LOG_FIRST or n % LOG_EVERY == 0:
            log.error("the tag writes file could not be written", path=self.config.tags_out, error=str(e),
                      tags_out_errors=n)

    def _on_feedback(self, fb: Feedback) -> None:
        """A channel's feedback re-enters as a ``feedback`` event."""
        ev = self._feedback_event(fb)
        if ev is None:
            return
        unit = self.units.get(ALL)
        if unit is not None:
            unit.push([ev])
        else:
            self._route([ev])

    def _feedback_event(self, fb: Feedback) -> Any:
        """The ``feedback`` event of a callback, counted; None if it is dated too far ahead (refused, logged)."""
        ev = self._decoder.decode(msgspec.json.encode(fb))
        if self._max_ahead is not None and not self._refuse_ahead("feedback", [ev], wall_ms() + self._max_ahead):
            return None
        self.events_by_type[ev.__class__] = self.events_by_type.get(ev.__class__, 0) + 1
        self._last_input = time.monotonic()
        return ev

    def unit_of(self, msisdn: str) -> str:
        """The unit a subscriber's events belong to (owned by this instance or not)."""
        if not self.partitioned:
            return ALL
        return unit_name(partition_of(msisdn, self.config.partition_count))

    def taking(self, unit: str) -> bool:
        """The unit is being given to this instance and is not open yet: the Kafka source's consumer has its
        partition assigned (the assignment is set before the units are opened, one after the other)."""
        pump = self.kafka_pump
        if unit in self.units or pump is None or pump.consumer is None or unit == ALL:
            return False
        p = partition_number(unit)
        return any(tp.partition == p for tp in pump.consumer.assignment())

    def feed(self, fb: Feedback, unit: str) -> None:
        """One callback from the Kafka feedback topic into ``unit`` (which this instance owns)."""
        ev = self._feedback_event(fb)
        if ev is not None:
            self.units[unit].push([ev])

    # --- snapshots -------------------------------------------------------------

    async def snapshot(self, reason: str, *, fork: bool | None = None, units: list[str] | None = None) -> None:
        """Capture the owned units' state now; publish it once the outbox holds every send it implies.

        Raises ``SnapshotFailed`` (counted, logged, the previous snapshot untouched) if it cannot."""
        async with self._snapshotting:
            await self._snapshot(reason, fork, units)

    async def _snapshot(self, reason: str, fork: bool | None, units: list[str] | None) -> None:
        outbox = self.outbox
        # chosen once no other snapshot is under way: a unit closed meanwhile (a revoked partition, its store
        # released to the next owner) is never published by this instance again
        chosen = [self.units[n] for n in (units if units is not None else list(self.units)) if n in self.units]
        marks: dict[str, int] = {}
        #: the positions the snapshot holds: read at the capture instant, as the state is, so the offsets
        #: committed after it never run ahead of the state saved (the units read on while it is written)
        positions: dict[str, dict[str, FilePosition]] = {}

        def durable() -> Any:  # called at the instant the state is captured
            marks.update((u.name, u.engine.send_watermark()) for u in chosen)
            positions.update((u.name, dict(u.positions)) for u in chosen)
            return outbox.durable(outbox.mark())

        def produce() -> list[bytes]:
            return [u.encode() for u in chosen]

        try:
            info = await self.files.take([u.path for u in chosen], produce, durable, fork=fork)
        except SnapshotFailed as e:
            self.snapshot_failures += 1
            self.snapshot_error = str(e)
            log.error("snapshot failed; the previous one stays", reason=reason, error=str(e),
                      snapshot_failures=self.snapshot_failures)
            raise
        self.snapshot_error = None
        self._advance_horizon(marks)
        self._flush_tags()
        log.info("snapshot taken", reason=reason, pause_ms=round(info.pause_ms, 2),
                 duration_ms=round(info.duration_ms, 1), bytes=info.bytes, forked=info.forked,
                 units=len(chosen), stream_time=max((u.engine.now for u in chosen), default=None),
                 snapshots=self.files.taken, events=sum(self.events_by_type.values()),
                 pending_sends=outbox.statistics().pending)
        for hook in self.after_snapshot:
            await hook(positions)

    def _advance_horizon(self, published: dict[str, int]) -> None:
        """Tell each published unit's outbox store the earliest trigger time a restart (or the partition's
        next owner) from any of its kept snapshots could decide again.

        A unit's file replaced its previous one, which is kept as ``.prev`` and could be loaded too; the
        send watermark (``Engine.send_watermark``: the stream time, or the earliest trigger the contact
        policy still holds in an arbitration window or a capacity queue) bounds what each could re-decide.
        The store and its floor move with the partition's snapshot files, so a partition arriving with
        older state finds its own floor, never one raised for other partitions."""
        for name, mark in published.items():
            current = self.kept_watermarks.get(name, (mark, UNKNOWN_WATERMARK))[0]
            self.kept_watermarks[name] = (mark, current)
            horizon = min(mark, current)
            if horizon > UNKNOWN_WATERMARK:
                self.outbox.advance_horizon(horizon, store=_store_of(name))

    # --- tasks ---------------------------------------------------------------

    async def _pump(self, name: str, source: Any, unit: str = ALL) -> None:
        async for data, position in source.blocks():
            self.ingest(name, data, position, unit)
            await anyio.lowlevel.checkpoint()  # let the outbox and the timers run between blocks
        log.info("source ended", source=name)

    async def _idle(self) -> None:
        cfg = self.config.time
        step = min(cfg.idle_after_ms, 250) / 1000
        while True:
            await anyio.sleep(step)
            if (time.monotonic() - self._last_input) * 1000 >= cfg.idle_after_ms:
                target = wall_ms() - cfg.allowed_lateness_ms
                for unit in list(self.units.values()):
                    if target > unit.engine.now:
                        unit.advance_to(target)

    async def _sweeps(self) -> None:
        """Schedule instants' sweeps go on a turn at a time (``Unit.sweep``), yielding to the sources between
        turns, with or without input, so an event waits for at most one turn; the visits count towards
        settling the collector as events do."""
        while True:
            sweeping = False
            for unit in list(self.units.values()):
                if self.units.get(unit.name) is not unit:
                    continue  # closed (its partition revoked) while an earlier unit's turn yielded: not ours now
                if unit.sweeping:
                    sweeping = True
                    visited = unit.sweep()
                    if visited:
                        self._settler.tick(visited)
                    await anyio.lowlevel.checkpoint()  # a turn of each unit, not of all units, between reads
            if not sweeping:
                await anyio.sleep(0.05)

    async def _periodic(self) -> None:
        interval = self.config.snapshot.interval_s
        while True:
            await anyio.sleep(interval)
            try:
                await self.snapshot("periodic")
            except SnapshotFailed:
                pass  # counted and logged; processing goes on and the next interval tries again
            gc.freeze()  # state that lived through a snapshot interval is long-lived: out of the collector's walk

    async def _signals(self, stopping: anyio.Event, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reloader.reload("signal")
                    continue
                log.info("signal received: shutting down", signal=signal.Signals(signum).name)
                stopping.set()
                return

    def _sources(self) -> list[tuple[str, Any, str]]:
        """(source name, source, unit) for every embedded source."""
        out = []
        for s in self.config.sources:
            if isinstance(s, FileSourceConfig):
                out.append((s.name, FileTail(s.path, poll_s=s.poll_ms / 1000,
                                             start=self.units[ALL].positions.get(s.name), pattern=s.pattern), ALL))
            elif isinstance(s, PartitionedSourceConfig):
                for p in s.owned_partitions:
                    unit = self.units[unit_name(p)]
                    tail = FileTail(partition_file(s.path, p), poll_s=s.poll_ms / 1000, start=unit.positions.get("log"))
                    out.append(("log", tail, unit.name))
            elif isinstance(s, StdinSourceConfig):
                out.append((s.name, StdinSource(), ALL))
        return out

    async def _start_feedback(self, work: Any) -> None:
        """Channel callbacks (HTTP, files and a Kafka topic) re-enter as ``feedback`` events."""
        fb = self.config.feedback
        if fb.listen:
            host, _, port = fb.listen.rpartition(":")
            server = FeedbackServer(self._on_feedback, host=host, port=int(port), secret=fb.secret, channel=fb.channel)
            bound = await work.start(server.run)
            log.info("feedback listening", host=host, port=bound)
        for path in fb.files:
            await work.start(FeedbackFile(path, self._on_feedback, channel=fb.channel).run)
        if fb.kafka is not None:
            self.kafka_feedback = KafkaFeedback(self, fb.kafka, channel=fb.channel)
            await work.start(self.kafka_feedback.run)

    async def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status."""
        stopping = anyio.Event()
        pump: KafkaPump | None = None
        async with anyio.create_task_group() as tg:
            await tg.start(self.outbox.run)
            # the Kafka consumer outlives the other tasks: the final snapshot's offsets are committed while it
            # is still in the group (a consumer that left cannot commit), then it stops and leaves
            async with anyio.create_task_group() as consumer:
                async with anyio.create_task_group() as work:
                    await work.start(self._signals, stopping)  # signals are ours before "ready" is said
                    for name, source, unit in self._sources():
                        work.start_soon(self._pump, name, source, unit)
                    kafka = self.config.sources[0]
                    if isinstance(kafka, KafkaSourceConfig):
                        pump = self.kafka_pump = KafkaPump(self, kafka)
                        await consumer.start(pump.run)
                    if self.config.time.idle_advance:
                        work.start_soon(self._idle)
                    work.start_soon(self._sweeps)
                    if self.config.snapshot.interval_s > 0:
                        work.start_soon(self._periodic)
                    if self.config.reload.watch:
                        work.start_soon(self.reloader.watch)
                    if self.config.http.listen:
                        http = self.config.http
                        host, port = http.address
                        server = HttpServer(self, host, port, admin_token=http.admin_token, ingest_token=http.ingest_token)
                        await work.start(server.run)
                    await self._start_feedback(work)
                    gc.freeze()  # the loaded state (snapshot, tags) is never walked by full collections again
                    self.ready = True
                    log.info("ready", gc_frozen=gc.get_freeze_count(), scenarios=[s.name for s in self.plan.scenarios],
                             sources=[getattr(s, "name", s.__struct_config__.tag) for s in self.config.sources],
                             units=sorted(self.units), pid=os.getpid())
                    await stopping.wait()
                    self.ready = False
                    if pump is not None:
                        await pump.pause()  # no more records: the final snapshot holds the last offsets read
                    work.cancel_scope.cancel()
                status = EXIT_OK
                with anyio.CancelScope(shield=True):
                    try:
                        await self.snapshot("shutdown", fork=False)
                    except SnapshotFailed as e:
                        status = EXIT_SNAPSHOT_FAILED
                        log.error("the final snapshot failed; the previous one stays and a restart resumes from it "
                                  "(the outbox drops repeated sends)", error=str(e), exit_status=status)
                    # the partitions' outbox stores are handed on before the consumer leaves the group: the
                    # next owner, assigned as it leaves, finds them released (pending sends are its to deliver)
                    async with anyio.create_task_group() as releasing:
                        for name in list(self.units):
                            if _store_of(name) != Outbox.DEFAULT:
                                releasing.start_soon(functools.partial(
                                    self.outbox.release, _store_of(name), wait_s=self.outbox.config.close_timeout_s))
                consumer.cancel_scope.cancel()  # the consumer stops and leaves the group
            self.outbox.stop()
        self._flush_tags()
        if self._tags_out is not None:
            self._tags_out.close()
        log.info("stopped", events=sum(e.events_in for e in self.engines), late=self.late, decode_errors=self.decode_errors,
                 event_errors=self.event_errors,
                 future=self.future,
                 duplicates=self.duplicates,
                 sends=self.sends, repeated_decisions_dropped=self.duplicate_sends, expired=self.outbox.expired)
        return status


def _open_tags_out(path: Path) -> IO[bytes]:
    """``tags_out`` opened to append; a last line a crash cut short is ended first, so the next write
    starts a line of its own instead of joining the half one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = open(path, "ab")  # noqa: SIM115 (open for the daemon's life)
    try:
        if path.is_file() and path.stat().st_size:
            with open(path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    out.write(b"\n")
    except OSError:
        out.close()
        raise
    return out


def _store_of(unit: str) -> str:
    """The outbox store of a unit: the default one for the unpartitioned daemon, the partition's own else."""
    return Outbox.DEFAULT if unit == ALL else unit


def _lines_in(data: bytes) -> int:
    """Lines in a block: its ``\\n`` (counted at memory speed), and a last line without one."""
    return count_newlines(memoryview(data)) + (bool(data) and data[-1] != 10)


def _outbox_config(config: Config) -> OutboxConfig:
    try:
        return msgspec.convert({**config.outbox, "directory": str(config.outbox_dir)}, OutboxConfig)
    except msgspec.ValidationError as e:
        raise StartError(f"outbox: {e}") from None


def configure_logging(level: str, pseudonymise: bool = False, key: str = "") -> str:
    """structlog JSON lines on standard error; ``pseudonymise``: every record's subscriber numbers as keyed
    hashes (``kairos._pseudonym``), tracebacks and the standard logging of libraries included, the key from
    KAIROS_PSEUDONYM_KEY, else ``key``, else random.
    Returns where the key came from ("off" without pseudonyms), for ``announce_pseudonyms``."""
    secret, origin = pseudonym_key(key)
    pseudonymiser = Pseudonymiser(secret) if pseudonymise else None
    pseudonymise_stdlib(pseudonymiser)  # libraries' own logging (aiosmpplib's PDUs) too
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *([pseudonymiser] if pseudonymiser else []),  # after format_exc_info: tracebacks are text by then
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    return origin if pseudonymise else "off"


def announce_pseudonyms(origin: str) -> None:
    """Say at start whether and how the log is pseudonymised (once the daemon could be built)."""
    if origin == "off":
        log.warning("log.pseudonymise is off: subscribers' numbers are written to the log as they are")
    elif origin == "random":
        log.warning(f"no pseudonym key configured: a random one for this process, so the log's pseudonyms "
                    f"cannot be linked across restarts; set {ENV_KEY} (or log.pseudonym_key) to keep them stable",
                    pseudonyms="keyed, random key")
    else:
        log.info("log pseudonymised", pseudonyms=f"keyed, key from the {origin}")


def run_daemon(config_path: str | Path) -> int:
    """``kairos run --config FILE``: validate, start, run until a signal; returns the exit status."""
    try:
        config = load_config(config_path)
    except ConfigError as e:
        print(f"kairos run: {e}", file=sys.stderr)
        return EXIT_INVALID
    origin = configure_logging(config.log.level, config.log.pseudonymise, config.log.pseudonym_key)
    try:
        daemon = Daemon(config, config_path)
    except StartError as e:
        print(f"kairos run: {e}", file=sys.stderr)
        return EXIT_INVALID
    announce_pseudonyms(origin)
    try:
        return anyio.run(daemon.run, backend="asyncio", backend_options={"use_uvloop": True})
    except* SinkError as group:
        # no final snapshot: the state counts the refused send as made; the last published snapshot and the
        # outbox's journal stay, and a restart decides it again (the ledger drops what was already sent)
        cause: BaseException = group
        while isinstance(cause, BaseExceptionGroup):  # task groups nest: the first leaf is the SinkError
            cause = cause.exceptions[0]
        log.error("a decision could not be made durable (the outbox refused a send, or the shared capacity "
                  "store could not answer); stopped without a final snapshot", error=str(cause),
                  exit_status=EXIT_SINK_FAILED, what_to_do="fix what the error says (often a full disk under "
                  "state_dir, or an unreachable partitions_dir) and start again: the restart decides the send "
                  "again from the last snapshot")
    return EXIT_SINK_FAILED  # reached only through the handler above (``return`` is not allowed inside it)
