"""The Kafka source: a consumer group in which the partitions assigned to this instance are the state it owns.

Events are keyed by msisdn, so a partition holds a fixed set of subscribers.
On assignment the partition's unit is opened from its snapshot file (in the
shared ``snapshot.partitions_dir``) and the consumer seeks to the offset that
snapshot holds — or to the partition's start if the state holds none (the
committed offset is never used: it may not be the state's); on revocation the
unit is snapshotted, its offset committed and its state dropped. Offsets are
committed only from published snapshots (``Daemon.after_snapshot``), exactly
the positions each snapshot captured with the state, so a committed offset
never runs ahead of the state it produced. At shutdown the pump stops feeding,
the daemon's final snapshot is committed, and only then the consumer leaves. The same unit/offset logic runs behind the embedded
partitioned log, where it is tested without a broker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from kairos._config import KafkaSourceConfig, StartError
from kairos._snapfiles import SnapshotFailed
from kairos._units import Unit, unit_name
from kairos.adapters import FilePosition

log = structlog.get_logger("kairos.kafka")

SOURCE = "kafka"  #: the source name of a unit's Kafka position: ``FilePosition(topic, partition, 0, next offset)``


#: a hook given {unit: {source: position}} once a snapshot of those units is published
AfterSnapshot = Callable[[dict[str, dict[str, FilePosition]]], Awaitable[None]]


class Owner(Protocol):
    """What the consumer uses of the daemon: the units it owns, ingest and snapshots
    (``kairos._daemon.Daemon`` hands itself)."""

    @property
    def units(self) -> Mapping[str, Unit]: ...

    @property
    def after_snapshot(self) -> list[AfterSnapshot]: ...

    def ingest(self, source: str, data: bytes, position: FilePosition | None, unit: str = ..., *,
               record_offsets: list[int] | None = None) -> int: ...

    async def snapshot(self, reason: str, *, fork: bool | None = None, units: list[str] | None = None) -> None: ...

    async def adopt_unit(self, name: str) -> object: ...  # ``StartError`` if its outbox store or snapshot cannot be taken

    async def close_unit(self, name: str) -> None: ...  # releases its outbox store for the next owner


class KafkaPump:
    """Consumes the topic in the group and feeds each record batch to its partition's unit."""

    def __init__(self, daemon: Owner, config: KafkaSourceConfig) -> None:
        self.d = daemon
        self.config = config
        self.consumer: Any = None
        self._paused = False
        self.fed: dict[int, int] = {}  #: partition → the offset after the last record fed (or sought to)
        self.owned: set[int] = set()  #: the partitions assigned now
        self.assignments = 0  #: partition assignments received (each rebalance is a revocation and an assignment)
        self.revocations = 0  #: partition revocations received
        self._last: set[int] = set()  #: the previous assignment, to log what a rebalance gained and lost

    def pause(self) -> None:
        """Feed no more records (at shutdown: the final snapshot then holds the last offsets read, and is
        committed while the consumer is still in the group)."""
        self._paused = True

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        cfg = self.config
        self.consumer = consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers, group_id=cfg.group_id, client_id=cfg.client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            found = consumer.partitions_for_topic(cfg.topic) or set()
            if found and len(found) != cfg.partitions:
                raise RuntimeError(f"sources[0].partitions is {cfg.partitions} but topic {cfg.topic!r} has "
                                   f"{len(found)}: set it to {len(found)}")
            consumer.subscribe([cfg.topic], listener=_Rebalance(self))
            self.d.after_snapshot.append(self.commit)
            log.info("kafka consumer started", topic=cfg.topic, group=cfg.group_id)
            task_status.started()
            while not self._paused:
                batches = await consumer.getmany(timeout_ms=200, max_records=cfg.max_records)
                if self._paused:
                    break  # read but not fed: not in the final snapshot, so read again by the next owner
                for tp, records in batches.items():
                    name = unit_name(tp.partition)
                    if not records or name not in self.d.units:
                        continue
                    # a record is one line: a \n inside one (pretty-printed JSON) becomes \r, which
                    # JSON reads alike (whitespace between tokens, invalid inside a string); a record
                    # without a value (a tombstone) is a blank line, skipped
                    data = b"\n".join((r.value or b"").replace(b"\n", b"\r") for r in records) + b"\n"
                    position = FilePosition(tp.topic, tp.partition, 0, records[-1].offset + 1)
                    self.d.ingest(SOURCE, data, position, name, record_offsets=[r.offset for r in records])
                    self.fed[tp.partition] = position.offset
                    await anyio.lowlevel.checkpoint()
            await anyio.sleep_forever()  # paused: stay in the group until the daemon has committed and cancels
        finally:
            with anyio.CancelScope(shield=True):
                await consumer.stop()

    def note_revoked(self, revoked: Any) -> None:
        """Count a revocation; its partitions are no longer fed here."""
        self.revocations += 1
        for tp in revoked:
            self.owned.discard(tp.partition)
            self.fed.pop(tp.partition, None)

    def note_assigned(self, assigned: Any) -> None:
        """Count an assignment, take each partition's starting offset (its unit's position, if it holds one)
        and log what the instance gained and lost since the previous assignment."""
        self.assignments += 1
        now = {tp.partition for tp in assigned}
        self.owned = set(now)
        for p in now:
            unit = self.d.units.get(unit_name(p))
            position = None if unit is None else unit.positions.get(SOURCE)
            if position is not None:
                self.fed[p] = position.offset
        gained, lost = sorted(now - self._last), sorted(self._last - now)
        self._last = now
        log.info("partition assignment changed", topic=self.config.topic, gained=[unit_name(p) for p in gained],
                 lost=[unit_name(p) for p in lost], owned=len(now), assignments=self.assignments,
                 revocations=self.revocations)

    def lag(self) -> dict[int, int]:
        """Owned partition → records not fed yet: the broker's high-water mark (from the last fetch) minus
        the offset after the last record fed. Partitions not fetched yet, or read from their start with
        nothing fed yet, are left out (``end_offsets()`` is not used: Tansu answers it wrongly)."""
        out: dict[int, int] = {}
        consumer = self.consumer
        if consumer is None:
            return out
        for tp in consumer.assignment():
            at = self.fed.get(tp.partition)
            hw = consumer.highwater(tp) if at is not None else None
            if hw is not None and at is not None:
                out[tp.partition] = max(hw - at, 0)
        return out

    async def commit(self, positions: dict[str, dict[str, FilePosition]]) -> None:
        """After a snapshot is published: commit the offsets it holds."""
        offsets = {TopicPartition(p.name, p.dev): p.offset for unit in positions.values()
                   for source, p in unit.items() if source == SOURCE}
        if offsets and self.consumer is not None:
            try:
                await self.consumer.commit(offsets)
            except Exception as e:  # a lost group membership: the next owner resumes from the snapshot anyway
                log.warning("offset commit failed; the snapshot still holds the offsets", error=repr(e))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Partitions assigned: open their units and seek; revoked: snapshot, commit and drop them."""

    def __init__(self, pump: KafkaPump) -> None:
        self.pump = pump

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.pump.note_revoked(revoked)
        d = self.pump.d
        names = [unit_name(tp.partition) for tp in revoked if unit_name(tp.partition) in d.units]
        if not names:
            return
        try:
            await d.snapshot("revoked", fork=False, units=names)
        except SnapshotFailed:  # counted and logged by ``snapshot``; what it means for the handover is said here
            log.error("partitions handed over without their final snapshot: the next owner resumes from the "
                      "previous one and decides the events after it again; the partition's outbox store, handed "
                      "on with it, drops the sends this instance already made", units=names)
        for name in names:
            await d.close_unit(name)
        log.info("partitions revoked", units=names)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        d = self.pump.d
        for tp in assigned:
            name = unit_name(tp.partition)
            if name not in d.units:
                try:
                    await d.adopt_unit(name)
                except StartError as e:
                    log.error("partition state cannot be loaded; its events wait", unit=name, error=str(e))
                    continue
            position = d.units[name].positions.get(SOURCE)
            if position is not None:
                self.pump.consumer.seek(tp, position.offset)
            else:
                # state without a position (no snapshot yet, or one taken before any record): the partition is
                # read from its start, never from a committed offset that this state did not produce; the
                # ledger drops the sends already made
                await self.pump.consumer.seek_to_beginning(tp)
        log.info("partitions assigned", units=sorted(unit_name(tp.partition) for tp in assigned))
        self.pump.note_assigned(assigned)
